// Interop with independent implementations (DESIGN.md §11): what our core signs,
// encrypts, issues and revokes must be accepted by the npm `jose` library and the
// `openssl` command line, and what they produce must be accepted by our strict parsers.
// Node.js, jose and openssl are required: CI installs them, so a missing tool fails.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/crypto.h"
#include "core/document.h"
#include "core/encoding.h"
#include "core/jose.h"
#include "core/json.h"
#include "core/x509.h"
#include "ca/authority.h"
#include "ca/manufacturer.h"
#include "core/enroll.h"
#include "store/file.h"

namespace zf {
namespace {

namespace fs = std::filesystem;

// ---- Small helpers

// Unwraps a result; an error becomes an exception that gtest reports with its message.
template <class T>
T must(Result<T> r, std::string_view what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().message());
  return std::move(*r);
}
void must(Status s, std::string_view what) {
  if (!s) throw std::runtime_error(std::string(what) + ": " + s.error().message());
}

void write_file(const fs::path& path, std::string_view data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!f) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string pem_wrap(ByteView der, std::string_view label) {
  std::string b64 = b64_encode(der);
  std::string out = "-----BEGIN " + std::string(label) + "-----\n";
  for (std::size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  return out + "-----END " + std::string(label) + "-----\n";
}

// A certificate's serial as bytes (for a CRL entry).
Bytes serial_bytes(const Certificate& cert) {
  std::string hex = cert.serial_hex();
  if (hex.size() % 2) hex = "0" + hex;
  return must(hex_decode(hex), "serial");
}

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// A directory under $TMPDIR that is removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "zf-interop-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp: " + std::string(strerror(errno)));
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(std::string_view name) const { return path_ / name; }

 private:
  fs::path path_;
};

// ---- Running the peers

struct RunResult {
  std::string command;
  std::string start_error;  // set when the program could not be started at all
  int exit_code = -1;       // 128 + signal number when killed by a signal
  std::string out;
  std::string err;

  bool ok() const { return start_error.empty() && exit_code == 0; }
  std::string all() const { return out + err; }
  // Everything a failure message needs.
  std::string describe() const {
    if (!start_error.empty()) return command + "\n  could not start: " + start_error;
    return command + "\n  exit " + std::to_string(exit_code) + "\n  stdout: " + out +
           "\n  stderr: " + err;
  }
};

// Runs argv[0] (searched in PATH) with `input` on stdin; stdout and stderr go to files in
// `dir` so that large outputs cannot deadlock a pipe.
RunResult run_command(const fs::path& dir, const std::vector<std::string>& argv,
                      std::string_view input = {}) {
  static int counter = 0;
  std::string stem = "run" + std::to_string(++counter);
  fs::path in = dir / (stem + ".in"), out = dir / (stem + ".out"), err = dir / (stem + ".err");
  write_file(in, input);

  RunResult r;
  for (const auto& a : argv) r.command += (r.command.empty() ? "" : " ") + a;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    r.start_error = std::string(strerror(rc)) + " (is " + argv[0] + " installed and in PATH?)";
    return r;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      r.start_error = "waitpid: " + std::string(strerror(errno));
      return r;
    }
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

RunResult run_jose(const fs::path& dir, std::vector<std::string> args,
                   std::string_view input = {}) {
  args.insert(args.begin(), {"node", ZF_JOSE_PEER});
  return run_command(dir, args, input);
}

// The peer is probed once; its absence is a test failure with a clear message.
const std::string& jose_problem() {
  static const std::string problem = [] {
    TempDir dir;
    RunResult r = run_jose(dir.path(), {"version"});
    if (!r.start_error.empty())
      return "Node.js is required for the jose interop tests but `node` could not be started: " +
             r.start_error;
    if (r.exit_code != 0)
      return "jose_peer.mjs failed to start; install the npm jose package with `npm ci` in "
             "tests/interop (scripts/setup.sh does this)\n" +
             r.describe();
    if (!(r.out.starts_with("5.") || r.out.starts_with("6.")))
      return "unexpected jose version '" + r.out + "' (want 5.x or 6.x)";
    return std::string();
  }();
  return problem;
}

const std::string& openssl_problem() {
  static const std::string problem = [] {
    TempDir dir;
    RunResult r = run_command(dir.path(), {"openssl", "version"});
    if (!r.ok()) return "the openssl command line is required for these tests\n" + r.describe();
    return std::string();
  }();
  return problem;
}

// ---- Keys, certificates and files

// One certified key, with the files the peers read.
struct Party {
  PrivateKey key;
  Certificate cert;
  std::vector<Certificate> chain;  // x5c, leaf first
  fs::path key_pem;                // PKCS#8
  fs::path spki_pem;
  fs::path cert_pem;
  fs::path chain_json;  // x5c as a JSON array of standard base64 DER
};

class InteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    now_ = std::time(nullptr);
    root_key_.emplace(must(PrivateKey::generate(SigAlg::ES256), "root key"));
    IssueParams p;
    p.common_name = "Interop Test Root";
    p.not_before = now_ - 3600;
    p.not_after = now_ + 86400;
    p.serial = new_serial();
    root_.emplace(must(make_self_signed_ca(*root_key_, p), "root certificate"));
    root_pem_ = dir_ / "root.pem";
    write_file(root_pem_, root_->pem());
  }

  // A leaf issued by the root, with role `roles`; `with_root` appends the root to its x5c.
  Party make_party(const std::string& name, SigAlg alg, bool with_root = false,
                   std::vector<Role> roles = {Role::secure_element}) {
    PrivateKey key = must(PrivateKey::generate(alg), "key for " + name);
    IssueParams p;
    p.common_name = name;
    p.user_id = "user-" + name;
    p.roles = std::move(roles);
    p.not_before = now_ - 3600;
    p.not_after = now_ + 86400;
    p.serial = new_serial();
    Certificate cert = must(issue_certificate(*root_, *root_key_, key.public_key(), p), name);
    std::vector<Certificate> chain{cert};
    if (with_root) chain.push_back(*root_);
    Party party{std::move(key),
                cert,
                chain,
                dir_ / (name + ".key.pem"),
                dir_ / (name + ".spki.pem"),
                dir_ / (name + ".pem"),
                dir_ / (name + ".x5c.json")};
    must(store::save_private_key(party.key_pem.string(), party.key), "saving key");
    write_file(party.spki_pem, pem_wrap(party.key.public_key().spki_der(), "PUBLIC KEY"));
    write_file(party.cert_pem, cert.pem());
    Json x5c = Json::array();
    for (const auto& c : chain) x5c.push_back(b64_encode(c.der()));
    write_file(party.chain_json, x5c.dump());
    return party;
  }

  CertVerifier verifier() const { return CertVerifier(*root_); }

  // A valid payment.note payload (DESIGN.md §4) issued by `payer`.
  std::string payment_note(const std::string& payer, std::int64_t seq = 7) const {
    Json note{{"type", "payment.note"},
              {"v", 1},
              {"id", payer + ":" + std::to_string(seq)},
              {"issuer", payer},
              {"seq", seq},
              {"iat", static_cast<std::int64_t>(now_)},
              {"nonce", new_nonce()},
              {"amount", 1250},
              {"currency", "CNY"},
              {"payer", payer},
              {"payee", "se-bob"}};
    return dump_json(note);
  }

  RunResult jose(std::vector<std::string> args, std::string_view input = {}) {
    return run_jose(dir_.path(), std::move(args), input);
  }
  RunResult openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    return run_command(dir_.path(), args);
  }

  TempDir dir_;
  std::time_t now_ = 0;
  std::optional<PrivateKey> root_key_;
  std::optional<Certificate> root_;
  fs::path root_pem_;
};

class JoseInterop : public InteropTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(jose_problem().empty()) << jose_problem();
    InteropTest::SetUp();
  }
};

class OpensslInterop : public InteropTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(openssl_problem().empty()) << openssl_problem();
    InteropTest::SetUp();
  }
};

// What jose_peer.mjs verify-* prints.
struct JoseVerified {
  std::string payload;
  Json signatures;
};
JoseVerified parse_verified(const RunResult& r) {
  Json j = must(parse_json_strict(r.out), "jose verify output");
  return {j.at("payload").get<std::string>(), j.at("signatures")};
}

// Decodes a JWE's protected header (test inspection only).
Json jwe_protected_header(const Json& jwe) {
  Bytes raw = must(b64url_decode(jwe.at("protected").get<std::string>()), "protected");
  return must(parse_json_strict(to_string(raw)), "protected header");
}

// ======================================================================
// JWS: we sign, jose verifies.

TEST_F(JoseInterop, WeSignCompactEs256JoseVerifies) {
  Party alice = make_party("se-alice", SigAlg::ES256);
  Party other = make_party("se-other", SigAlg::ES256);
  std::string payload = payment_note("se-alice");
  KeySigner signer(alice.key);
  std::string jws =
      must(jws_sign_compact(as_bytes(payload), {&signer, alice.chain}, "zf+jws"), "sign");

  // Key taken from x5c, chain checked against the root.
  RunResult r = jose({"verify-compact", "--ca", root_pem_.string()}, jws);
  ASSERT_TRUE(r.ok()) << r.describe();
  JoseVerified v = parse_verified(r);
  EXPECT_EQ(v.payload, payload);
  ASSERT_EQ(v.signatures.size(), 1u);
  EXPECT_EQ(v.signatures[0]["alg"], "ES256");
  EXPECT_EQ(v.signatures[0]["typ"], "zf+jws");
  EXPECT_TRUE(contains(v.signatures[0]["subject"].get<std::string>(), "CN=se-alice"))
      << v.signatures[0].dump();

  // Key given explicitly as SPKI PEM.
  r = jose({"verify-compact", "--key", alice.spki_pem.string()}, jws);
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(parse_verified(r).payload, payload);

  // And the peer does reject: the wrong key, and an x5c chain from another root.
  r = jose({"verify-compact", "--key", other.spki_pem.string()}, jws);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  TempDir elsewhere;
  PrivateKey foreign_key = must(PrivateKey::generate(SigAlg::ES256), "foreign key");
  IssueParams fp;
  fp.common_name = "Foreign Root";
  fp.not_before = now_ - 60;
  fp.not_after = now_ + 3600;
  fp.serial = new_serial();
  write_file(elsewhere / "root.pem", must(make_self_signed_ca(foreign_key, fp), "foreign").pem());
  r = jose({"verify-compact", "--ca", (elsewhere / "root.pem").string()}, jws);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
}

TEST_F(JoseInterop, WeSignCompactEdDsaJoseVerifies) {
  Party ed = make_party("se-ed", SigAlg::EdDSA, /*with_root=*/true);
  std::string payload = payment_note("se-ed");
  KeySigner signer(ed.key);
  std::string jws = must(jws_sign_compact(as_bytes(payload), {&signer, ed.chain}), "sign");

  RunResult r = jose({"verify-compact", "--ca", root_pem_.string()}, jws);
  ASSERT_TRUE(r.ok()) << r.describe();
  JoseVerified v = parse_verified(r);
  EXPECT_EQ(v.payload, payload);
  ASSERT_EQ(v.signatures.size(), 1u);
  EXPECT_EQ(v.signatures[0]["alg"], "EdDSA");
  EXPECT_TRUE(v.signatures[0]["typ"].is_null());

  r = jose({"verify-compact", "--key", ed.spki_pem.string()}, jws);
  ASSERT_TRUE(r.ok()) << r.describe();

  // A changed payload under the same signature is rejected by jose too.
  std::string tampered = jws;
  auto d1 = tampered.find('.'), d2 = tampered.rfind('.');
  tampered.replace(d1 + 1, d2 - d1 - 1, b64url_encode(as_bytes(payment_note("se-ed", 8))));
  r = jose({"verify-compact", "--ca", root_pem_.string()}, tampered);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
}

TEST_F(JoseInterop, WeSignGeneralWithTwoSignersJoseVerifiesBoth) {
  Party payer = make_party("se-payer", SigAlg::ES256);
  Party payee = make_party("se-payee", SigAlg::EdDSA);
  std::string payload = payment_note("se-payer");
  KeySigner s1(payer.key), s2(payee.key);
  Json jws = must(jws_sign_general(as_bytes(payload), {{&s1, payer.chain}, {&s2, payee.chain}}),
                  "sign general");

  RunResult r = jose({"verify-general", "--ca", root_pem_.string()}, dump_json(jws));
  ASSERT_TRUE(r.ok()) << r.describe();
  JoseVerified v = parse_verified(r);
  EXPECT_EQ(v.payload, payload);
  ASSERT_EQ(v.signatures.size(), 2u);
  EXPECT_EQ(v.signatures[0]["alg"], "ES256");
  EXPECT_EQ(v.signatures[1]["alg"], "EdDSA");
  EXPECT_TRUE(contains(v.signatures[0]["subject"].get<std::string>(), "CN=se-payer"));
  EXPECT_TRUE(contains(v.signatures[1]["subject"].get<std::string>(), "CN=se-payee"));

  // Breaking only the second signature must fail the whole check.
  Json broken = jws;
  broken["signatures"][1]["signature"] = jws["signatures"][0]["signature"];
  r = jose({"verify-general"}, dump_json(broken));
  EXPECT_EQ(r.exit_code, 1) << r.describe();
}

// ======================================================================
// JWS: jose signs, we parse and verify.

// Parses a jose-made JWS and runs every check our verifiers run.
void expect_we_accept(const std::string& text, const std::string& payload,
                      const CertVerifier& verifier, const std::vector<std::string>& signer_cns,
                      const std::vector<SigAlg>& algs) {
  auto jws = jws_parse(text);
  ASSERT_TRUE(jws) << jws.error().message() << "\n" << text;
  EXPECT_EQ(to_string(jws->payload), payload);
  ASSERT_EQ(jws->signatures.size(), signer_cns.size());
  for (std::size_t i = 0; i < signer_cns.size(); ++i) {
    EXPECT_EQ(jws->signatures[i].alg, algs[i]);
    auto checked = jws_check_signature(*jws, i);
    EXPECT_TRUE(checked) << checked.error().message();
    auto leaf = verifier.verify(jws->signatures[i].x5c, Role::secure_element);
    ASSERT_TRUE(leaf) << leaf.error().message();
    EXPECT_EQ(leaf->subject_cn(), signer_cns[i]);
  }
  auto leaves = jws_verify(*jws, verifier, Role::secure_element);
  ASSERT_TRUE(leaves) << leaves.error().message();
  EXPECT_EQ(leaves->size(), signer_cns.size());
  // The full document path, as a bank or payee SE would open it.
  auto doc = open_signed_document(text, verifier, Role::secure_element);
  ASSERT_TRUE(doc) << doc.error().message();
  EXPECT_EQ(doc->doc.type(), "payment.note");
}

TEST_F(JoseInterop, JoseSignsCompactEs256WeVerify) {
  Party alice = make_party("se-alice", SigAlg::ES256);
  std::string payload = payment_note("se-alice");
  RunResult r = jose({"sign-compact", "--alg", "ES256", "--key", alice.key_pem.string(), "--x5c",
                      alice.chain_json.string(), "--typ", "zf+jws"},
                     payload);
  ASSERT_TRUE(r.ok()) << r.describe();
  expect_we_accept(r.out, payload, verifier(), {"se-alice"}, {SigAlg::ES256});
  auto jws = jws_parse(r.out);
  ASSERT_TRUE(jws);
  EXPECT_EQ(jws->signatures[0].typ, "zf+jws");
}

TEST_F(JoseInterop, JoseSignsCompactEdDsaWeVerify) {
  Party ed = make_party("se-ed", SigAlg::EdDSA, /*with_root=*/true);
  std::string payload = payment_note("se-ed");
  RunResult r = jose({"sign-compact", "--alg", "EdDSA", "--key", ed.key_pem.string(), "--x5c",
                      ed.chain_json.string()},
                     payload);
  ASSERT_TRUE(r.ok()) << r.describe();
  expect_we_accept(r.out, payload, verifier(), {"se-ed"}, {SigAlg::EdDSA});
  auto jws = jws_parse(r.out);
  ASSERT_TRUE(jws);
  EXPECT_EQ(jws->signatures[0].x5c.size(), 2u);
}

TEST_F(JoseInterop, JoseSignsGeneralWithTwoSignersWeVerify) {
  Party payer = make_party("se-payer", SigAlg::ES256);
  Party payee = make_party("se-payee", SigAlg::EdDSA);
  std::string payload = payment_note("se-payer");
  RunResult r =
      jose({"sign-general", "--signer",
            "ES256," + payer.key_pem.string() + "," + payer.chain_json.string(), "--signer",
            "EdDSA," + payee.key_pem.string() + "," + payee.chain_json.string()},
           payload);
  ASSERT_TRUE(r.ok()) << r.describe();
  expect_we_accept(r.out, payload, verifier(), {"se-payer", "se-payee"},
                   {SigAlg::ES256, SigAlg::EdDSA});
}

TEST_F(JoseInterop, TamperedJoseJwsFailsWithBadSignature) {
  for (SigAlg alg : {SigAlg::ES256, SigAlg::EdDSA}) {
    SCOPED_TRACE(std::string(sig_alg_name(alg)));
    Party p = make_party("se-t" + std::string(sig_alg_name(alg)), alg);
    std::string payload = payment_note("se-alice");
    RunResult r = jose({"sign-compact", "--alg", std::string(sig_alg_name(alg)), "--key",
                        p.key_pem.string(), "--x5c", p.chain_json.string()},
                       payload);
    ASSERT_TRUE(r.ok()) << r.describe();
    const std::string& jws = r.out;
    ASSERT_TRUE(jws_check_signature(must(jws_parse(jws), "untampered"), 0));

    // 1. Another payload (a larger amount) under the original signature.
    std::string other_payload = payload;
    other_payload.replace(other_payload.find("1250"), 4, "9999");
    std::string t1 = jws;
    auto d1 = t1.find('.'), d2 = t1.rfind('.');
    t1.replace(d1 + 1, d2 - d1 - 1, b64url_encode(as_bytes(other_payload)));
    // 2. One bit of the signature flipped.
    Bytes sig = must(b64url_decode(jws.substr(d2 + 1)), "signature");
    sig[10] ^= 0x01;
    std::string t2 = jws.substr(0, d2 + 1) + b64url_encode(sig);

    for (const std::string& tampered : {t1, t2}) {
      auto parsed = jws_parse(tampered);
      ASSERT_TRUE(parsed) << parsed.error().message();
      auto checked = jws_check_signature(*parsed, 0);
      ASSERT_FALSE(checked);
      EXPECT_EQ(checked.error().code, Errc::bad_signature) << checked.error().message();
      auto verified = jws_verify(*parsed, verifier(), Role::secure_element);
      ASSERT_FALSE(verified);
      EXPECT_EQ(verified.error().code, Errc::bad_signature);
      auto doc = open_signed_document(tampered, verifier(), Role::secure_element);
      ASSERT_FALSE(doc);
      EXPECT_EQ(doc.error().code, Errc::bad_signature);
    }
  }
}

// ======================================================================
// JWE: we encrypt, jose decrypts.

TEST_F(JoseInterop, WeEncryptForOneRecipientJoseDecrypts) {
  Party payee = make_party("se-payee", SigAlg::ES256);
  Party stranger = make_party("se-stranger", SigAlg::ES256);
  const std::string secret = R"({"amount":1250,"memo":"sensitive"})";
  PublicKey payee_pub = payee.key.public_key();
  Json jwe = must(jwe_encrypt(as_bytes(secret), {{&payee_pub, "se-payee"}}), "encrypt");

  RunResult r =
      jose({"decrypt", "--key", payee.key_pem.string(), "--kid", "se-payee"}, dump_json(jwe));
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.out, secret);

  r = jose({"decrypt", "--key", stranger.key_pem.string()}, dump_json(jwe));
  EXPECT_EQ(r.exit_code, 1) << r.describe();
}

TEST_F(JoseInterop, WeEncryptForTwoRecipientsJoseDecryptsAsEach) {
  Party payee = make_party("se-payee", SigAlg::ES256);
  Party payer = make_party("se-payer", SigAlg::ES256);
  Party stranger = make_party("se-stranger", SigAlg::ES256);
  const std::string secret = "controlled payment key material";
  PublicKey payee_pub = payee.key.public_key(), payer_pub = payer.key.public_key();
  Json jwe =
      must(jwe_encrypt(as_bytes(secret), {{&payee_pub, "se-payee"}, {&payer_pub, "se-payer"}}),
           "encrypt");
  std::string text = dump_json(jwe);

  for (const Party* p : {&payee, &payer}) {
    std::string kid = p->cert.subject_cn();
    RunResult r = jose({"decrypt", "--key", p->key_pem.string(), "--kid", kid}, text);
    ASSERT_TRUE(r.ok()) << kid << ": " << r.describe();
    EXPECT_EQ(r.out, secret);
    r = jose({"decrypt", "--key", p->key_pem.string()}, text);  // any recipient entry
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.out, secret);
  }
  // The payee's key under the payer's label, and a stranger, both fail.
  RunResult r = jose({"decrypt", "--key", payee.key_pem.string(), "--kid", "se-payer"}, text);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  r = jose({"decrypt", "--key", stranger.key_pem.string()}, text);
  EXPECT_EQ(r.exit_code, 1) << r.describe();
}

// ======================================================================
// JWE: jose encrypts, we decrypt.

TEST_F(JoseInterop, JoseEncryptsForOneRecipientWeDecrypt) {
  Party payee = make_party("se-payee", SigAlg::ES256);
  Party stranger = make_party("se-stranger", SigAlg::ES256);
  const std::string secret = R"({"amount":1250,"memo":"from a web wallet"})";
  RunResult r = jose({"encrypt", "--recipient", payee.spki_pem.string() + ",se-payee"}, secret);
  ASSERT_TRUE(r.ok()) << r.describe();

  auto jwe = jwe_parse(r.out);
  ASSERT_TRUE(jwe) << jwe.error().message() << "\n" << r.out;
  // jose puts the single recipient's ephemeral key in the protected header (RFC 7516
  // §7.2.1 allows it); our parser accepts exactly that shape, and only for one recipient.
  EXPECT_TRUE(jwe_protected_header(*jwe).contains("epk")) << r.out;
  EXPECT_FALSE(jwe->contains("unprotected"));

  auto plain = jwe_decrypt(*jwe, payee.key, "se-payee");
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_EQ(to_string(plain->view()), secret);
  plain = jwe_decrypt(*jwe, payee.key);
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_EQ(to_string(plain->view()), secret);

  auto wrong = jwe_decrypt(*jwe, stranger.key);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, Errc::decrypt_failed);
  wrong = jwe_decrypt(*jwe, payee.key, "se-someone-else");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, Errc::no_recipient);
}

TEST_F(JoseInterop, JoseSingleRecipientShapeIsStillStrict) {
  Party payee = make_party("se-payee", SigAlg::ES256);
  RunResult r = jose({"encrypt", "--recipient", payee.spki_pem.string() + ",se-payee"}, "x");
  ASSERT_TRUE(r.ok()) << r.describe();
  Json jwe = must(jwe_parse(r.out), "jose JWE");
  Json epk = jwe_protected_header(jwe).at("epk");

  // The ephemeral key in both places breaks RFC 7516's disjointness rule.
  Json both = jwe;
  both["recipients"][0]["header"]["epk"] = epk;
  auto e = jwe_parse(dump_json(both));
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, Errc::bad_header) << e.error().message();

  // A protected ephemeral key shared by two recipients is refused.
  Json two = jwe;
  two["recipients"].push_back(jwe["recipients"][0]);
  e = jwe_parse(dump_json(two));
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, Errc::bad_header) << e.error().message();

  // A changed protected epk is caught: it is part of the authenticated data.
  Json prot = jwe_protected_header(jwe);
  PrivateKey other = must(PrivateKey::generate(SigAlg::ES256), "other");
  auto xy = must(other.public_key().p256_xy(), "xy");
  prot["epk"]["x"] = b64url_encode(xy.first);
  prot["epk"]["y"] = b64url_encode(xy.second);
  Json swapped = jwe;
  swapped["protected"] = b64url_encode(as_bytes(dump_json(prot)));
  auto d = jwe_decrypt(must(jwe_parse(dump_json(swapped)), "swapped"), payee.key);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code, Errc::decrypt_failed);

  // Other protected members stay refused.
  prot = jwe_protected_header(jwe);
  prot["zip"] = "DEF";
  Json zipped = jwe;
  zipped["protected"] = b64url_encode(as_bytes(dump_json(prot)));
  e = jwe_parse(dump_json(zipped));
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, Errc::bad_header);
}

TEST_F(JoseInterop, JoseEncryptsForTwoRecipientsWeDecryptAsEach) {
  Party payee = make_party("se-payee", SigAlg::ES256);
  Party payer = make_party("se-payer", SigAlg::ES256);
  Party stranger = make_party("se-stranger", SigAlg::ES256);
  const std::string secret = "escrowed note contents";
  RunResult r = jose({"encrypt", "--recipient", payee.spki_pem.string() + ",se-payee",
                      "--recipient", payer.spki_pem.string() + ",se-payer"},
                     secret);
  ASSERT_TRUE(r.ok()) << r.describe();
  auto jwe = jwe_parse(r.out);
  ASSERT_TRUE(jwe) << jwe.error().message() << "\n" << r.out;
  EXPECT_EQ(jwe_protected_header(*jwe), Json::object({{"enc", "A256GCM"}}));
  ASSERT_EQ(jwe->at("recipients").size(), 2u);

  for (const Party* p : {&payee, &payer}) {
    std::string kid = p->cert.subject_cn();
    auto plain = jwe_decrypt(*jwe, p->key, kid);
    ASSERT_TRUE(plain) << kid << ": " << plain.error().message();
    EXPECT_EQ(to_string(plain->view()), secret);
    plain = jwe_decrypt(*jwe, p->key);
    ASSERT_TRUE(plain) << plain.error().message();
    EXPECT_EQ(to_string(plain->view()), secret);
    // The content key unwrapped by either recipient is the same key.
    auto cek = jwe_unwrap_cek(*jwe, p->key, kid);
    ASSERT_TRUE(cek);
    auto again = jwe_decrypt_with_cek(*jwe, cek->view());
    ASSERT_TRUE(again);
    EXPECT_EQ(to_string(again->view()), secret);
  }
  auto wrong = jwe_decrypt(*jwe, payee.key, "se-payer");
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, Errc::decrypt_failed);
  wrong = jwe_decrypt(*jwe, stranger.key);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, Errc::decrypt_failed);
}

// ======================================================================
// X.509 with the openssl command line.

TEST_F(OpensslInterop, VerifiesOurChainAndRevocationList) {
  Party good = make_party("se-good", SigAlg::ES256);
  Party revoked = make_party("se-revoked", SigAlg::EdDSA);
  CrlParams cp;
  cp.this_update = now_ - 60;
  cp.next_update = now_ + 3600;
  cp.revoked.push_back({serial_bytes(revoked.cert), now_ - 30});
  Crl crl = must(make_crl(*root_, *root_key_, cp), "crl");
  fs::path crl_pem = dir_ / "crl.pem";
  write_file(crl_pem, crl.pem());

  RunResult r = openssl({"verify", "-x509_strict", "-CAfile", root_pem_.string(), "-crl_check",
                         "-CRLfile", crl_pem.string(), good.cert_pem.string()});
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_TRUE(contains(r.out, good.cert_pem.string() + ": OK")) << r.describe();

  r = openssl({"verify", "-x509_strict", "-CAfile", root_pem_.string(), "-crl_check", "-CRLfile",
               crl_pem.string(), revoked.cert_pem.string()});
  EXPECT_NE(r.exit_code, 0) << r.describe();
  EXPECT_TRUE(contains(r.all(), "certificate revoked")) << r.describe();

  // Our own verifier reaches the same verdicts.
  CertVerifier v = verifier();
  v.set_crl(crl);
  EXPECT_TRUE(v.verify(good.chain, Role::secure_element));
  auto rv = v.verify(revoked.chain, Role::secure_element);
  ASSERT_FALSE(rv);
  EXPECT_EQ(rv.error().code, Errc::cert_revoked);

  // Without the root openssl refuses the leaf: the test can fail.
  r = openssl({"verify", "-CAfile", good.cert_pem.string(), revoked.cert_pem.string()});
  EXPECT_NE(r.exit_code, 0) << r.describe();
}

TEST_F(OpensslInterop, CrlSignatureVerifies) {
  Party revoked = make_party("se-revoked", SigAlg::ES256);
  CrlParams cp;
  cp.this_update = now_ - 60;
  cp.next_update = now_ + 3600;
  cp.number = 42;
  cp.revoked.push_back({serial_bytes(revoked.cert), now_ - 30});
  std::string serial_hex = hex_encode(serial_bytes(revoked.cert));
  fs::path crl_pem = dir_ / "crl.pem";
  write_file(crl_pem, must(make_crl(*root_, *root_key_, cp), "crl").pem());

  RunResult r = openssl({"crl", "-in", crl_pem.string(), "-CAfile", root_pem_.string(), "-noout"});
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_TRUE(contains(r.all(), "verify OK")) << r.describe();

  r = openssl({"crl", "-in", crl_pem.string(), "-noout", "-text"});
  ASSERT_TRUE(r.ok()) << r.describe();
  std::string upper_serial;
  for (char c : serial_hex) upper_serial += static_cast<char>(std::toupper(c));
  EXPECT_TRUE(contains(r.out, upper_serial)) << r.describe();
  EXPECT_TRUE(contains(r.out, "X509v3 CRL Number")) << r.describe();
  EXPECT_TRUE(contains(r.out, "42")) << r.describe();

  // Checked against a different CA, the signature does not verify.
  PrivateKey foreign_key = must(PrivateKey::generate(SigAlg::ES256), "foreign key");
  IssueParams fp;
  fp.common_name = "Interop Test Root";  // same name, different key
  fp.not_before = now_ - 60;
  fp.not_after = now_ + 3600;
  fp.serial = new_serial();
  fs::path foreign_pem = dir_ / "foreign-root.pem";
  write_file(foreign_pem, must(make_self_signed_ca(foreign_key, fp), "foreign").pem());
  r = openssl({"crl", "-in", crl_pem.string(), "-CAfile", foreign_pem.string(), "-noout"});
  EXPECT_FALSE(contains(r.all(), "verify OK")) << r.describe();
  EXPECT_TRUE(contains(r.all(), "verify failure")) << r.describe();
}

TEST_F(OpensslInterop, AcceptsOurCsr) {
  for (SigAlg alg : {SigAlg::ES256, SigAlg::EdDSA}) {
    SCOPED_TRACE(std::string(sig_alg_name(alg)));
    PrivateKey key = must(PrivateKey::generate(alg), "key");
    std::string csr = must(make_csr_pem(key, {"se-0042", "user-42"}), "csr");
    fs::path csr_pem = dir_ / ("csr-" + std::string(sig_alg_name(alg)) + ".pem");
    write_file(csr_pem, csr);

    RunResult r = openssl({"req", "-verify", "-in", csr_pem.string(), "-noout"});
    EXPECT_TRUE(r.ok()) << r.describe();
    EXPECT_TRUE(contains(r.all(), "verify OK")) << r.describe();

    r = openssl({"req", "-in", csr_pem.string(), "-noout", "-subject", "-nameopt", "RFC2253"});
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_TRUE(contains(r.out, "CN=se-0042")) << r.describe();
    EXPECT_TRUE(contains(r.out, "UID=user-42")) << r.describe();

    // A CSR whose signature belongs to another key is refused by openssl.
    std::string body = csr;
    std::string der_b64;
    std::istringstream lines(body);
    for (std::string line; std::getline(lines, line);)
      if (!line.starts_with("-----")) der_b64 += line;
    Bytes der = must(b64_decode(der_b64), "csr der");
    der[der.size() - 5] ^= 0x01;  // inside the signature
    fs::path bad_pem = dir_ / ("csr-bad-" + std::string(sig_alg_name(alg)) + ".pem");
    write_file(bad_pem, pem_wrap(der, "CERTIFICATE REQUEST"));
    r = openssl({"req", "-verify", "-in", bad_pem.string(), "-noout"});
    EXPECT_FALSE(r.ok() && contains(r.all(), "verify OK")) << r.describe();
  }
}

TEST_F(OpensslInterop, ShowsRoleOidInExtendedKeyUsage) {
  Party se = make_party("se-eku", SigAlg::ES256);
  RunResult r = openssl({"x509", "-in", se.cert_pem.string(), "-noout", "-text"});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_TRUE(contains(r.out, "X509v3 Extended Key Usage")) << r.out;
  EXPECT_TRUE(contains(r.out, role_oid(Role::secure_element))) << r.out;
  EXPECT_FALSE(contains(r.out, "TLS Web Server Authentication")) << r.out;
  EXPECT_TRUE(contains(r.out, "CA:FALSE")) << r.out;

  Party tls = make_party("localhost", SigAlg::ES256, false, {Role::tls_server});
  r = openssl({"x509", "-in", tls.cert_pem.string(), "-noout", "-text"});
  ASSERT_TRUE(r.ok()) << r.describe();
  EXPECT_TRUE(contains(r.out, role_oid(Role::tls_server))) << r.out;
  EXPECT_TRUE(contains(r.out, "TLS Web Server Authentication")) << r.out;
  EXPECT_FALSE(contains(r.out, role_oid(Role::secure_element))) << r.out;

  // openssl agrees the tls-server certificate is fit for a TLS server.
  r = openssl(
      {"verify", "-CAfile", root_pem_.string(), "-purpose", "sslserver", tls.cert_pem.string()});
  EXPECT_TRUE(r.ok()) << r.describe();
}

TEST_F(OpensslInterop, ParseCsrAcceptsOpensslCsr) {
  struct Case {
    std::string name;
    std::vector<std::string> newkey;
    SigAlg alg;
  };
  const std::vector<Case> cases = {
      {"p256", {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"}, SigAlg::ES256},
      {"ed25519", {"-newkey", "ed25519"}, SigAlg::EdDSA},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    fs::path key_pem = dir_ / (c.name + ".key.pem"), csr_pem = dir_ / (c.name + ".csr.pem");
    std::vector<std::string> args = {"req", "-new"};
    args.insert(args.end(), c.newkey.begin(), c.newkey.end());
    args.insert(args.end(), {"-nodes", "-subj", "/CN=x", "-keyout", key_pem.string(), "-out",
                             csr_pem.string()});
    RunResult r = openssl(args);
    ASSERT_TRUE(r.ok()) << r.describe();

    auto parsed = parse_csr_pem(read_file(csr_pem));
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_EQ(parsed->info.common_name, "x");
    EXPECT_EQ(parsed->info.user_id, "");
    EXPECT_EQ(parsed->key.alg(), c.alg);
    // The key we read is the key openssl generated.
    r = openssl({"pkey", "-in", key_pem.string(), "-pubout", "-outform", "DER", "-out",
                 (dir_ / (c.name + ".spki.der")).string()});
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(to_string(parsed->key.spki_der()), read_file(dir_ / (c.name + ".spki.der")));
  }

  // Key types outside the allow-list are refused.
  fs::path rsa_csr = dir_ / "rsa.csr.pem";
  RunResult r = openssl({"req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=x",
                         "-keyout", (dir_ / "rsa.key.pem").string(), "-out", rsa_csr.string()});
  ASSERT_TRUE(r.ok()) << r.describe();
  auto parsed = parse_csr_pem(read_file(rsa_csr));
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, Errc::csr_malformed);
}

TEST_F(OpensslInterop, OpensslIssuedCertificatePassesOurVerifier) {
  // The other direction for certificates: the openssl CA commands issue a leaf with our role
  // OID from our root key, and CertVerifier accepts it for that role only.
  fs::path root_key_pem = dir_ / "root.key.pem";
  must(store::save_private_key(root_key_pem.string(), *root_key_), "root key file");
  fs::path csr_pem = dir_ / "ossl.csr.pem", cert_pem = dir_ / "ossl.pem", ext = dir_ / "ext.cnf";
  RunResult r = openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                         "-nodes", "-subj", "/CN=se-ossl", "-keyout",
                         (dir_ / "ossl.key.pem").string(), "-out", csr_pem.string()});
  ASSERT_TRUE(r.ok()) << r.describe();
  write_file(ext,
             "[v3]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
             "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n"
             "extendedKeyUsage=" +
                 std::string(role_oid(Role::secure_element)) + "\n");
  r = openssl({"x509", "-req", "-in", csr_pem.string(), "-CA", root_pem_.string(), "-CAkey",
               root_key_pem.string(), "-set_serial", "0x1234abcd", "-days", "1", "-sha256",
               "-extfile", ext.string(), "-extensions", "v3", "-out", cert_pem.string()});
  ASSERT_TRUE(r.ok()) << r.describe();

  Certificate cert = must(Certificate::from_pem(read_file(cert_pem)), "openssl certificate");
  EXPECT_EQ(cert.subject_cn(), "se-ossl");
  EXPECT_EQ(cert.serial_hex(), "1234abcd");
  EXPECT_EQ(cert.roles(), std::vector<Role>{Role::secure_element});
  auto ok = verifier().verify({cert}, Role::secure_element);
  ASSERT_TRUE(ok) << ok.error().message();
  auto wrong = verifier().verify({cert}, Role::custody);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, Errc::cert_wrong_role);
}

// ======================================================================
// Certificates as our CA issues them, read by other X.509 stacks (DESIGN.md §2:
// whoever holds the root verifies our documents with the library they use):
// Python's cryptography, node's crypto.X509Certificate, Go's crypto/x509 and
// `openssl x509 -text` must each read the role OIDs and the names back.

// The project's arc as docs/ca-api.md gives it, spelled out so that a change of
// encoding in src/core/x509.cc shows up here.
constexpr std::string_view kArc =
    "1.2.840.113556.1.8000.2554.47257.40399.21107.16631.44565.3319016.9006337.1.";
constexpr std::string_view kServerAuth = "1.3.6.1.5.5.7.3.1";

// What a reader must find in one certificate.
struct Expected {
  std::string file;
  std::string cn;
  std::string uid;
  bool ca = false;
  std::vector<std::string> eku;
  std::vector<std::string> dns, ip, uri;
};

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::string> strings(const Json& j) {
  std::vector<std::string> out;
  for (const auto& v : j) out.push_back(v.get<std::string>());
  return out;
}

class CertificateReaders : public ::testing::Test {
 protected:
  // A manufacturer, our CA, and the certificates it issues to a bank (custody
  // and TLS), a registry and a secure element (attested, with an enrollment code).
  void SetUp() override {
    const fs::path mfr = dir_ / "mfr", ca_dir = dir_ / "ca";
    must(ca::init_manufacturer(mfr.string(), "Interop Manufacturer"), "manufacturer");
    ca::InitOptions o;
    o.dir = ca_dir.string();
    o.manufacturer_roots_pem = read_file(mfr / "manufacturer.pem");
    must(ca::init_ca(o), "CA init");
    auto authority = must(ca::Authority::open(o.dir), "CA open");
    auto issue = [&](const std::string& role, const std::string& cn, const std::string& file) {
      PrivateKey key = must(PrivateKey::generate(), "key");
      ca::CertRequest req;
      req.role = role;
      req.csr_pem = must(make_csr_pem(key, {cn, ""}), "CSR");
      auto issued = must(authority->issue(ca::Caller::admin, req), role);
      write_file(dir_ / file, issued.cert.pem());
    };
    issue("custody", "bank-a", "custody.pem");
    issue("registry", "registry-1", "registry.pem");
    issue("tls-server", "bank-a", "tls.pem");

    ca::DeviceIdentity device = must(ca::make_device(mfr.string(), "se-interop"), "device");
    PrivateKey se_key = must(PrivateKey::generate(), "SE key");
    KeySigner attester(device.key);
    auto code = must(authority->issue_enrollment_code(ca::Caller::registration_authority, "alice", 600), "code");
    ca::CertRequest se;
    se.role = "secure-element";
    se.csr_pem = must(make_csr_pem(se_key, {"se-interop", "alice"}), "SE CSR");
    se.attestation =
        attestation_to_json(must(make_attestation(attester, device.chain, se_key.public_key()), "attestation"));
    se.enrollment_code = code.code;
    write_file(dir_ / "se.pem", must(authority->issue(ca::Caller::anonymous, se), "SE certificate").cert.pem());
    fs::copy_file(ca_dir / "root.pem", dir_ / "root.pem");
    fs::copy_file(ca_dir / "tls.pem", dir_ / "ca-tls-chain.pem");
    write_file(dir_ / "ca-tls.pem",
               must(certificates_from_pem(read_file(ca_dir / "tls.pem")), "CA TLS").front().pem());

    const std::string arc(kArc);
    expected_ = {
        {"root.pem", "zhuanfu Root CA", "", true, {}, {}, {}, {}},
        {"custody.pem", "bank-a", "", false, {arc + "2"}, {}, {}, {}},
        {"registry.pem", "registry-1", "", false, {arc + "3"}, {}, {}, {}},
        {"tls.pem", "bank-a", "", false, {std::string(kServerAuth), arc + "4"}, {"localhost"}, {"127.0.0.1"},
         {"urn:zhuanfu:bank:bank-a"}},
        {"ca-tls.pem", "localhost", "", false, {std::string(kServerAuth), arc + "4"}, {"localhost"},
         {"127.0.0.1"}, {"urn:zhuanfu:ca:zhuanfu%20Root%20CA"}},
        {"se.pem", "se-interop", "alice", false, {arc + "1"}, {}, {}, {}},
    };
    // Our own reading agrees, so the readers are compared with what we issued.
    for (const auto& e : expected_) {
      Certificate c = must(Certificate::from_pem(read_file(dir_ / e.file)), e.file);
      EXPECT_EQ(c.subject_cn(), e.cn) << e.file;
      EXPECT_EQ(c.san_uris(), e.uri) << e.file;
      for (Role r : c.roles()) EXPECT_NE(std::find(e.eku.begin(), e.eku.end(), role_oid(r)), e.eku.end()) << e.file;
    }
  }

  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : expected_) out.push_back((dir_ / e.file).string());
    return out;
  }

  // Checks a reader's {file: {cn, uid, ca, eku, dns, ip, uri}} against what we issued.
  void check_readings(const RunResult& r, std::string_view reader) {
    ASSERT_TRUE(r.ok()) << reader << " could not read our certificates:\n" << r.describe();
    Json j = must(parse_json_strict(r.out), std::string(reader) + " output");
    for (const auto& e : expected_) {
      SCOPED_TRACE(std::string(reader) + " reading " + e.file);
      const std::string key = (dir_ / e.file).string();
      ASSERT_TRUE(j.contains(key)) << r.out;
      const Json& got = j.at(key);
      EXPECT_EQ(got.at("cn").get<std::string>(), e.cn);
      EXPECT_EQ(got.at("uid").get<std::string>(), e.uid);
      EXPECT_EQ(got.at("ca").get<bool>(), e.ca);
      EXPECT_EQ(sorted(strings(got.at("eku"))), sorted(e.eku));
      EXPECT_EQ(strings(got.at("dns")), e.dns);
      EXPECT_EQ(strings(got.at("ip")), e.ip);
      EXPECT_EQ(strings(got.at("uri")), e.uri);
    }
  }

  // A certificate carrying the role OIDs' former encoding, 2.25.<UUID>, made by
  // the openssl command line (our code no longer writes it).
  fs::path old_encoding_certificate() {
    const fs::path key = dir_ / "old.key", cert = dir_ / "old.pem";
    RunResult r = run_command(dir_.path(), {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                            "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=se-old",
                                            "-days", "1", "-keyout", key.string(), "-out", cert.string(),
                                            "-addext",
                                            "extendedKeyUsage=2.25.245375573407834867081390762487047613697.1.1"});
    EXPECT_TRUE(r.ok()) << r.describe();
    return cert;
  }

  // `go run cert_reader.go FILES`, building in the build tree and fetching nothing.
  static std::vector<std::string> go_reader(const std::vector<std::string>& files) {
    std::vector<std::string> argv = {"env",         "GOCACHE=" ZF_GO_CACHE, "GOPATH=" ZF_GO_PATH,
                                     "GOPROXY=off", "GO111MODULE=off",      "go",
                                     "run",         ZF_CERT_READER_GO};
    argv.insert(argv.end(), files.begin(), files.end());
    return argv;
  }

  TempDir dir_;
  std::vector<Expected> expected_;
};

TEST_F(CertificateReaders, PythonCryptographyReadsRolesAndNames) {
  RunResult version = run_command(dir_.path(), {ZF_PYTHON3, ZF_CERT_READER_PY, "version"});
  ASSERT_TRUE(version.ok()) << "Debian's python3-cryptography is required (scripts/setup.sh installs it)\n"
                            << version.describe();
  std::vector<std::string> argv = {ZF_PYTHON3, ZF_CERT_READER_PY};
  for (const auto& f : files()) argv.push_back(f);
  check_readings(run_command(dir_.path(), argv), "python3 cryptography " + version.out);
}

TEST_F(CertificateReaders, PythonAndGoRefusedTheOldEncoding) {
  // Why the arc changed: the 128-bit arc of 2.25.<UUID> is refused outright, so
  // a verifier could not even load the certificate.
  const std::string old = old_encoding_certificate().string();
  RunResult py = run_command(dir_.path(), {ZF_PYTHON3, ZF_CERT_READER_PY, old});
  EXPECT_FALSE(py.ok()) << py.describe();
  EXPECT_TRUE(contains(py.err, "InvalidValue")) << py.describe();
  RunResult go = run_command(dir_.path(), go_reader({old}));
  EXPECT_FALSE(go.ok()) << go.describe();
  EXPECT_TRUE(contains(go.err, "invalid extended key usages")) << go.describe();
}

TEST_F(CertificateReaders, NodeX509CertificateReadsRolesAndNames) {
  std::vector<std::string> argv = {"node", ZF_CERT_READER_MJS};
  for (const auto& f : files()) argv.push_back(f);
  check_readings(run_command(dir_.path(), argv), "node crypto.X509Certificate");
}

TEST_F(CertificateReaders, GoCryptoX509ReadsRolesAndNames) {
  check_readings(run_command(dir_.path(), go_reader(files())), "go crypto/x509");
}

TEST_F(CertificateReaders, OpensslTextShowsRolesAndNames) {
  ASSERT_TRUE(openssl_problem().empty()) << openssl_problem();
  for (const auto& e : expected_) {
    SCOPED_TRACE(e.file);
    RunResult r = run_command(dir_.path(), {"openssl", "x509", "-in", (dir_ / e.file).string(), "-noout", "-text"});
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_TRUE(contains(r.out, "Subject: CN = " + e.cn) || contains(r.out, "CN = " + e.cn + ",")) << r.out;
    for (const auto& oid : e.eku) {
      if (oid == kServerAuth) continue;  // openssl names it "TLS Web Server Authentication"
      EXPECT_TRUE(contains(r.out, oid)) << oid << "\n" << r.out;
    }
    if (e.eku.empty()) {
      EXPECT_FALSE(contains(r.out, "Extended Key Usage")) << r.out;
    }
    for (const auto& d : e.dns) EXPECT_TRUE(contains(r.out, "DNS:" + d)) << r.out;
    for (const auto& ip : e.ip) EXPECT_TRUE(contains(r.out, "IP Address:" + ip)) << r.out;
    for (const auto& u : e.uri) EXPECT_TRUE(contains(r.out, "URI:" + u)) << r.out;
  }
  // And it still chains the TLS certificates to the root for a TLS server.
  RunResult v = run_command(dir_.path(), {"openssl", "verify", "-x509_strict", "-CAfile", (dir_ / "root.pem").string(),
                                          "-purpose", "sslserver", (dir_ / "tls.pem").string(),
                                          (dir_ / "ca-tls.pem").string()});
  EXPECT_TRUE(v.ok()) << v.describe();
}

}  // namespace
}  // namespace zf
