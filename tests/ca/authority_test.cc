// In-process tests of the CA's issuance rules, with a controllable clock.
#include <set>

#include "ca_fixture.h"
#include "core/enroll.h"

namespace zf::test {
namespace {

using ca::Authority;
using ca::Caller;
using ca::CertRequest;

struct Se {
  PrivateKey key = *PrivateKey::generate();
  ca::DeviceIdentity device;
};

class AuthorityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = Authority::open(world.ca_dir);
    ASSERT_TRUE(a) << a.error().message();
    ca = std::move(*a);
    now = std::time(nullptr);
    ca->set_clock([this] { return now; });
  }

  Se make_se(const std::string& se_id, const std::string& mfr_dir = {}) {
    auto dev = ca::make_device(mfr_dir.empty() ? world.mfr_dir : mfr_dir, se_id);
    EXPECT_TRUE(dev);
    return Se{*PrivateKey::generate(), std::move(*dev)};
  }

  CertRequest se_request(const Se& se, const std::string& user, const std::string& code,
                         const std::string& cn = {}) {
    KeySigner signer(se.device.key);
    auto att = make_attestation(signer, se.device.chain, se.key.public_key());
    CertRequest r;
    r.role = "secure-element";
    r.csr_pem = *make_csr_pem(se.key, {cn.empty() ? se.device.chain.front().subject_cn() : cn, user});
    r.attestation = attestation_to_json(*att);
    r.enrollment_code = code;
    return r;
  }

  std::size_t issued_count() { return ca->list(Caller::admin)->size(); }

  CaWorld world;
  std::unique_ptr<Authority> ca;
  std::time_t now = 0;
};

TEST_F(AuthorityTest, EnrollsAttestedSeWithCodeAndBindsUser) {
  auto code = ca->issue_enrollment_code(Caller::registration_authority, "alice", 600);
  ASSERT_TRUE(code);
  Se se = make_se("se-0001");
  auto issued = ca->issue(Caller::anonymous, se_request(se, "alice", code->code));
  ASSERT_TRUE(issued) << issued.error().message();
  EXPECT_EQ(issued->cert.subject_cn(), "se-0001");
  EXPECT_EQ(issued->cert.user_id(), "alice");
  EXPECT_TRUE(issued->cert.has_role(Role::secure_element));
  EXPECT_FALSE(issued->cert.has_role(Role::custody));
  EXPECT_EQ(Bytes(issued->cert.public_key().spki_der()), se.key.public_key().spki_der());
  CertVerifier v(world.root());
  EXPECT_TRUE(v.verify({issued->cert}, Role::secure_element));
}

TEST_F(AuthorityTest, EnrollmentCodeIsOneTime) {
  auto code = ca->issue_enrollment_code(Caller::registration_authority, "alice", 600);
  ASSERT_TRUE(ca->issue(Caller::anonymous, se_request(make_se("se-1"), "alice", code->code)));
  std::size_t before = issued_count();
  auto again = ca->issue(Caller::anonymous, se_request(make_se("se-2"), "alice", code->code));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::enrollment_code_used);
  EXPECT_EQ(issued_count(), before);
}

TEST_F(AuthorityTest, ExpiredCodeIsRefused) {
  auto code = ca->issue_enrollment_code(Caller::registration_authority, "alice", 60);
  now += 61;
  std::size_t before = issued_count();
  auto r = ca->issue(Caller::anonymous, se_request(make_se("se-1"), "alice", code->code));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::enrollment_code_expired);
  EXPECT_EQ(issued_count(), before);
}

TEST_F(AuthorityTest, CodeForAnotherUserIsRefusedAndNotConsumed) {
  auto code = ca->issue_enrollment_code(Caller::registration_authority, "alice", 600);
  std::size_t before = issued_count();
  auto r = ca->issue(Caller::anonymous, se_request(make_se("se-1"), "mallory", code->code));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::enrollment_code_wrong_user);
  EXPECT_EQ(issued_count(), before);
  // The refusal changed nothing: Alice can still use her code.
  EXPECT_TRUE(ca->issue(Caller::anonymous, se_request(make_se("se-2"), "alice", code->code)));
}

TEST_F(AuthorityTest, UnknownCodeIsRefused) {
  auto r = ca->issue(Caller::anonymous, se_request(make_se("se-1"), "alice", "AAAAAAAAAAAAAAAAAAAAAA"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::enrollment_code_unknown);
}

TEST_F(AuthorityTest, OnlyRegistrationAuthoritiesGetCodes) {
  auto r = ca->issue_enrollment_code(Caller::anonymous, "alice", 600);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unauthorized);
  auto bad_user = ca->issue_enrollment_code(Caller::registration_authority, "al ice/..", 600);
  ASSERT_FALSE(bad_user);
  EXPECT_EQ(bad_user.error().code, Errc::bad_field);
  EXPECT_EQ(bad_user.error().field, "user_id");
}

TEST_F(AuthorityTest, SeCsrWithoutAttestationIsRefused) {
  auto code = ca->issue_enrollment_code(Caller::registration_authority, "alice", 600);
  CertRequest r = se_request(make_se("se-1"), "alice", code->code);
  r.attestation.reset();
  std::size_t before = issued_count();
  auto res = ca->issue(Caller::anonymous, r);
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, Errc::attestation_missing);
  EXPECT_EQ(issued_count(), before);
}

TEST_F(AuthorityTest, AttestationFromUntrustedManufacturerIsRefused) {
  auto code = ca->issue_enrollment_code(Caller::registration_authority, "alice", 600);
  auto res = ca->issue(Caller::anonymous, se_request(make_se("se-1", world.rogue_mfr_dir), "alice", code->code));
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, Errc::attestation_untrusted);
  // The code was not consumed by the refused request.
  EXPECT_TRUE(ca->issue(Caller::anonymous, se_request(make_se("se-2"), "alice", code->code)));
}

TEST_F(AuthorityTest, AttestationOverAnotherKeyIsRefused) {
  auto code = ca->issue_enrollment_code(Caller::registration_authority, "alice", 600);
  Se se = make_se("se-1");
  CertRequest r = se_request(se, "alice", code->code);
  // A software key presents the genuine device's attestation of a different key.
  PrivateKey software = *PrivateKey::generate();
  r.csr_pem = *make_csr_pem(software, {"se-1", "alice"});
  auto res = ca->issue(Caller::anonymous, r);
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, Errc::attestation_bad_signature);
}

TEST_F(AuthorityTest, CsrMustNameTheAttestedDevice) {
  auto code = ca->issue_enrollment_code(Caller::registration_authority, "alice", 600);
  auto res = ca->issue(Caller::anonymous, se_request(make_se("se-1"), "alice", code->code, "se-other"));
  ASSERT_FALSE(res);
  EXPECT_EQ(res.error().code, Errc::bad_field);
}

TEST_F(AuthorityTest, CsrWithBrokenSignatureIsRefused) {
  PrivateKey k1 = *PrivateKey::generate();
  std::string pem = *make_csr_pem(k1, {"bank-x", ""});
  // Flip one base64 character inside the signature (the last full line of the body).
  auto end = pem.find("-----END");
  auto pos = pem.rfind('\n', end - 2) - 3;
  pem[pos] = pem[pos] == 'A' ? 'B' : 'A';
  CertRequest r{"custody", pem, std::nullopt, "", 0};
  std::size_t before = issued_count();
  auto res = ca->issue(Caller::admin, r);
  ASSERT_FALSE(res);
  EXPECT_TRUE(res.error().code == Errc::csr_bad_signature || res.error().code == Errc::csr_malformed)
      << res.error().message();
  EXPECT_EQ(issued_count(), before);
}

TEST_F(AuthorityTest, ServerRolesNeedAdmin) {
  PrivateKey k = *PrivateKey::generate();
  CertRequest r{"custody", *make_csr_pem(k, {"bank-a", ""}), std::nullopt, "", 0};
  auto anon = ca->issue(Caller::anonymous, r);
  ASSERT_FALSE(anon);
  EXPECT_EQ(anon.error().code, Errc::unauthorized);
  auto ra = ca->issue(Caller::registration_authority, r);
  ASSERT_FALSE(ra);
  EXPECT_EQ(ra.error().code, Errc::forbidden);
  auto ok = ca->issue(Caller::admin, r);
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok->cert.has_role(Role::custody));
  CertRequest att{"se-attestation", r.csr_pem, std::nullopt, "", 0};
  EXPECT_EQ(ca->issue(Caller::admin, att).error().code, Errc::forbidden);
  CertRequest unknown{"wizard", r.csr_pem, std::nullopt, "", 0};
  EXPECT_EQ(ca->issue(Caller::admin, unknown).error().code, Errc::bad_field);
}

TEST_F(AuthorityTest, SerialsAreUniqueAndPersist) {
  std::set<std::string> serials;
  PrivateKey k = *PrivateKey::generate();
  for (int i = 0; i < 40; ++i) {
    auto c = ca->issue(Caller::admin, {"registry", *make_csr_pem(k, {"reg-" + std::to_string(i), ""}), std::nullopt, "", 0});
    ASSERT_TRUE(c);
    serials.insert(c->serial);
  }
  EXPECT_EQ(serials.size(), 40u);
  ca.reset();
  auto reopened = Authority::open(world.ca_dir);
  ASSERT_TRUE(reopened);
  std::size_t found = 0;
  auto listed = (*reopened)->list(Caller::admin);
  ASSERT_TRUE(listed);
  for (const auto& c : *listed) found += serials.count(c.serial);
  EXPECT_EQ(found, 40u);
}

TEST_F(AuthorityTest, RevocationReachesTheCrl) {
  PrivateKey k = *PrivateKey::generate();
  auto c = ca->issue(Caller::admin, {"custody", *make_csr_pem(k, {"bank-a", ""}), std::nullopt, "", 0});
  ASSERT_TRUE(c);
  CertVerifier v(world.root());
  v.set_crl(*ca->crl());
  EXPECT_TRUE(v.verify({c->cert}, Role::custody));

  EXPECT_EQ(ca->revoke(Caller::registration_authority, c->serial, "x").error().code, Errc::forbidden);
  EXPECT_EQ(ca->revoke(Caller::admin, "abcdef", "x").error().code, Errc::not_found);
  ASSERT_TRUE(ca->revoke(Caller::admin, c->serial, "keyCompromise"));
  ASSERT_TRUE(ca->revoke(Caller::admin, c->serial, "again"));  // idempotent
  EXPECT_TRUE(ca->find_by_serial(c->serial)->revoked_at.has_value());
  v.set_crl(*ca->crl());
  auto r = v.verify({c->cert}, Role::custody);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::cert_revoked);
}

TEST_F(AuthorityTest, LookupBySerialAndKeyId) {
  PrivateKey k = *PrivateKey::generate();
  auto c = ca->issue(Caller::admin, {"custody", *make_csr_pem(k, {"bank-a", ""}), std::nullopt, "", 0});
  ASSERT_TRUE(c);
  EXPECT_EQ(ca->find_by_serial(c->serial)->cert.der(), c->cert.der());
  EXPECT_EQ(ca->find_by_key_id(c->cert.subject_key_id())->serial, c->serial);
  EXPECT_EQ(ca->find_by_serial("0123").error().code, Errc::not_found);
  EXPECT_EQ(ca->list(Caller::registration_authority).error().code, Errc::forbidden);
}

TEST_F(AuthorityTest, FindsAPayeeBySeIdOrByUserId) {
  auto enroll = [&](const std::string& se_id, const std::string& user) {
    auto code = ca->issue_enrollment_code(Caller::registration_authority, user, 600);
    Se se = make_se(se_id);
    auto issued = ca->issue(Caller::anonymous, se_request(se, user, code->code));
    EXPECT_TRUE(issued) << issued.error().message();
    return issued->serial;
  };
  std::string bob1 = enroll("se-0001", "bob");
  enroll("se-0002", "carol");
  // A custody certificate named like a user is not an SE.
  PrivateKey k = *PrivateKey::generate();
  ASSERT_TRUE(ca->issue(Caller::admin, {"custody", *make_csr_pem(k, {"dave", ""}), std::nullopt, "", 0}));

  auto by_se = ca->find_secure_elements("se-0001");
  ASSERT_TRUE(by_se) << by_se.error().message();
  ASSERT_EQ(by_se->size(), 1u);
  EXPECT_EQ(by_se->front().cert.user_id(), "bob");
  auto by_user = ca->find_secure_elements("carol");
  ASSERT_TRUE(by_user);
  ASSERT_EQ(by_user->size(), 1u);
  EXPECT_EQ(by_user->front().cert.subject_cn(), "se-0002");
  EXPECT_EQ(ca->find_secure_elements("dave").error().code, Errc::not_found);
  EXPECT_EQ(ca->find_secure_elements("se-9999").error().code, Errc::not_found);
  EXPECT_EQ(ca->find_secure_elements("").error().code, Errc::bad_field);

  // Bob's second SE: both are listed for him, newest first; a revoked one stays, flagged.
  now += 10;
  std::string bob2 = enroll("se-0003", "bob");
  ASSERT_TRUE(ca->revoke(Caller::admin, bob1, "device lost"));
  auto both = ca->find_secure_elements("bob");
  ASSERT_TRUE(both);
  ASSERT_EQ(both->size(), 2u);
  EXPECT_EQ((*both)[0].serial, bob2);
  EXPECT_FALSE((*both)[0].revoked_at.has_value());
  EXPECT_EQ((*both)[1].serial, bob1);
  EXPECT_TRUE((*both)[1].revoked_at.has_value());
}

TEST_F(AuthorityTest, TokensAuthenticate) {
  EXPECT_EQ(ca->authenticate(world.admin_token()), Caller::admin);
  auto ra = ca->add_registration_authority("bank-a");
  ASSERT_TRUE(ra);
  EXPECT_EQ(ca->authenticate(*ra), Caller::registration_authority);
  EXPECT_EQ(ca->authenticate("not-a-token"), Caller::anonymous);
  EXPECT_EQ(ca->authenticate(""), Caller::anonymous);
  EXPECT_EQ(ca->add_registration_authority("bank-a").error().code, Errc::conflict);
}

TEST_F(AuthorityTest, InitRefusesAnExistingCa) {
  ca::InitOptions o;
  o.dir = world.ca_dir;
  auto s = ca::init_ca(o);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::conflict);
  EXPECT_EQ(std::filesystem::status(std::filesystem::path(world.ca_dir) / "root.key").permissions() &
                std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

}  // namespace
}  // namespace zf::test
