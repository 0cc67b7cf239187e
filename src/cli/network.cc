#include "cli/network.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <optional>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "bank/bank.h"
#include "bank/client.h"
#include "registry/registry.h"
#include "ca/authority.h"
#include "ca/client.h"
#include "ca/manufacturer.h"
#include "cli/util.h"
#include "core/document.h"
#include "se_host/device.h"
#include "store/file.h"
#include "store/sealed.h"
#include "core/crypto.h"
#include "store/sql.h"
#include "wallet/wallet.h"

namespace zf::cli {
namespace fs = std::filesystem;
namespace {

std::string slurp(const fs::path& p) { return read_all(p.string()); }

std::string first_line(std::string s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

template <class T>
Status check(const Result<T>& r, const std::string& what) {
  if (r) return {};
  return fail(r.error().code, what + ": " + r.error().message(), r.error().field);
}
Status check(const Status& r, const std::string& what) {
  if (r) return {};
  return fail(r.error().code, what + ": " + r.error().message(), r.error().field);
}

// Starts `zf <args> --port <port>` and waits for its port file. Records the pid for `zf down`.
Result<int> launch(Network& net, bool detach, const std::string& name, std::vector<std::string> args, int port) {
  fs::path run = fs::path(net.dir) / "run";
  fs::create_directories(run);
  std::string port_file = (run / (name + ".port")).string();
  fs::remove(port_file);
  args.insert(args.begin(), net.zf_binary);
  args.insert(args.end(), {"--port", std::to_string(port), "--port-file", port_file});
  auto child = net::Child::spawn(args, (run / (name + ".log")).string(), !detach);
  if (!child) return std::unexpected(child.error());
  auto bound = net::wait_for_port_file(port_file, *child);
  if (!bound) return fail(bound.error().code, name + ": " + bound.error().detail + " (see run/" + name + ".log)");
  // The start time beside the pid lets `zf down` tell our process from a later one
  // that was given the same pid.
  if (auto s = store::append_line_durable((run / "pids").string(),
                                         std::to_string(child->pid()) + " " + name + " " +
                                             std::to_string(process_start_time(child->pid()).value_or(0)));
      !s)
    return std::unexpected(s.error());
  if (detach) child->detach();
  else net.children[name] = std::move(*child);
  return bound;
}

Result<int> start(Network& net, const NetworkOptions& opts, const std::string& name, std::vector<std::string> args) {
  auto port = launch(net, opts.detach, name, args, 0);
  if (port) net.services.push_back(NetworkService{name, std::move(args), *port});
  return port;
}

}  // namespace

void Network::kill9(const std::string& name) {
  auto it = children.find(name);
  if (it != children.end()) it->second.kill9();
}

Status Network::restart(const std::string& name) {
  for (const auto& svc : services) {
    if (svc.name != name) continue;
    auto it = children.find(name);
    if (it != children.end()) it->second.stop();
    // A port just released by a killed process can take a moment to bind again.
    for (int attempt = 0;; ++attempt) {
      auto port = launch(*this, false, name, svc.args, svc.port);
      if (port) return {};
      if (attempt == 20) return std::unexpected(port.error());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return fail(Errc::not_found, "no service " + name);
}

Json Network::to_json() const {
  Json ses_json = Json::array();
  for (const auto& s : ses)
    ses_json.push_back(Json{{"user", s.user}, {"se_id", s.se_id}, {"dir", s.dir}, {"wallet", s.wallet},
                            {"account", s.account}, {"port", s.port}});
  Json services_json = Json::array();
  for (const auto& s : services) services_json.push_back(Json{{"name", s.name}, {"args", s.args}, {"port", s.port}});
  return Json{{"ca", {{"url", ca_url}, {"dir", ca_dir}, {"root", root_file}}},
              {"registry", {{"id", registry_id}, {"url", registry_url}, {"dir", registry_dir}}},
              {"bank", {{"id", bank_id}, {"url", bank_url}, {"dir", bank_dir}}},
              {"ses", ses_json},
              {"services", services_json},
              {"postgres", {{"url", postgres}, {"schemas", postgres_schemas}}}};
}

Result<Network> Network::load(const std::string& dir) {
  auto j = parse_json_strict(slurp(fs::path(dir) / "network.json"), {1 << 20, 8});
  if (!j) return fail(Errc::not_found, "no network in " + dir + " (run `zf up`)");
  Network n;
  n.dir = dir;
  try {
    n.ca_url = j->at("ca").at("url");
    n.ca_dir = j->at("ca").at("dir");
    n.root_file = j->at("ca").at("root");
    n.registry_id = j->at("registry").value("id", "registry");
    n.registry_url = j->at("registry").at("url");
    n.registry_dir = j->at("registry").at("dir");
    n.bank_id = j->at("bank").at("id");
    n.bank_url = j->at("bank").at("url");
    n.bank_dir = j->at("bank").at("dir");
    for (const auto& s : j->at("ses"))
      n.ses.push_back(NetworkSe{s.at("user"), s.at("se_id"), s.at("dir"), s.at("wallet"), s.at("account"), s.at("port")});
    // In start order; networks made before this was recorded have none.
    for (const auto& s : j->value("services", Json::array()))
      n.services.push_back(NetworkService{s.at("name"), s.at("args").get<std::vector<std::string>>(), s.at("port")});
    if (j->contains("postgres")) {
      n.postgres = j->at("postgres").value("url", "");
      n.postgres_schemas = j->at("postgres").value("schemas", std::vector<std::string>{});
    }
  } catch (const Json::exception& e) {
    return fail(Errc::bad_field, std::string("network.json: ") + e.what());
  }
  return n;
}

// Bringing a network up:
//   1. manufacturer and CA (trusting it), CA process;
//   2. the bank: custody and TLS certificates from the CA, bank process, RA token;
//   3. per user: SE made by the manufacturer, SE process, terminal (wallet),
//      personalization (PIN, key inside, attestation, enrollment code, certificate,
//      CRL), a bank account and the initial cash-in.
Result<Network> network_up(const NetworkOptions& opts, const Say& say) {
  Network net;
  net.dir = fs::absolute(opts.dir).string();
  net.zf_binary = opts.zf_binary.empty() ? net::self_exe() : opts.zf_binary;
  if (fs::exists(fs::path(net.dir) / "network.json")) return fail(Errc::conflict, "a network exists in " + net.dir);
  fs::create_directories(net.dir);
  fs::path d(net.dir);
  auto cash = Amount::parse(opts.cash_in);
  if (!cash) return std::unexpected(cash.error());

  std::string mfr = (d / "manufacturer").string();
  if (auto s = check(ca::init_manufacturer(mfr, "zhuanfu SE Manufacturer"), "manufacturer"); !s) return std::unexpected(s.error());
  net.ca_dir = (d / "ca").string();
  ca::InitOptions ca_init;
  ca_init.dir = net.ca_dir;
  ca_init.manufacturer_roots_pem = slurp(fs::path(mfr) / "manufacturer.pem");
  if (auto s = check(ca::init_ca(ca_init), "CA init"); !s) return std::unexpected(s.error());
  net.root_file = (fs::path(net.ca_dir) / "root.pem").string();
  auto root = Certificate::from_pem(slurp(net.root_file));
  if (!root) return std::unexpected(root.error());
  std::vector<std::string> ca_args = {"ca", "serve", "--dir", net.ca_dir};
  std::vector<std::string> crl_refresh;  // for the bank and the registry
  if (opts.crl_validity_s > 0) {
    ca_args.insert(ca_args.end(), {"--crl-validity-s", std::to_string(opts.crl_validity_s)});
    crl_refresh = {"--crl-refresh-s", std::to_string(std::max<std::int64_t>(1, opts.crl_validity_s / 3))};
  }
  auto ca_port = start(net, opts, "ca", ca_args);
  if (!ca_port) return std::unexpected(ca_port.error());
  net.ca_url = "https://127.0.0.1:" + std::to_string(*ca_port);
  say("CA          " + net.ca_url + "  (state " + net.ca_dir + ")");
  std::string ca_admin = first_line(slurp(fs::path(net.ca_dir) / "admin.token"));
  auto ca_admin_client = ca::CaClient::connect(net.ca_url, *root, ca_admin);
  if (!ca_admin_client) return std::unexpected(ca_admin_client.error());

  // With PostgreSQL, the registry and the bank each get a fresh schema.
  auto database_for = [&](const std::string& service) -> Result<std::string> {
    if (opts.postgres.empty()) return std::string();
    std::string schema = "zf_" + hex_encode(random_bytes(6)) + "_" + service;
    if (auto s = store::create_postgres_schema(opts.postgres, schema); !s) return std::unexpected(s.error());
    net.postgres = opts.postgres;
    net.postgres_schemas.push_back(schema);
    say("database    " + service + " in PostgreSQL schema " + schema);
    return store::postgres_schema_url(opts.postgres, schema);
  };

  // The registry: every payee terminal claims a note there before its SE takes it.
  net.registry_dir = (d / "registry").string();
  auto registry_db = database_for("registry");
  if (!registry_db) return std::unexpected(registry_db.error());
  registry::InitOptions reg_init{net.registry_dir, net.registry_id, net.ca_url, root->pem(), *registry_db};
  auto reg_issue = [&](const std::string& role, const std::string& csr) {
    return ca_admin_client->request_certificate(role, csr);
  };
  if (auto s = check(registry::init_registry(reg_init, reg_issue), "registry init"); !s) return std::unexpected(s.error());
  std::vector<std::string> reg_args = {"registry", "serve", "--dir", net.registry_dir};
  reg_args.insert(reg_args.end(), crl_refresh.begin(), crl_refresh.end());
  auto reg_port = start(net, opts, "registry", reg_args);
  if (!reg_port) return std::unexpected(reg_port.error());
  net.registry_url = "https://127.0.0.1:" + std::to_string(*reg_port);
  say("registry    " + net.registry_url + "  (state " + net.registry_dir + ")");

  net.bank_id = opts.bank_id;
  net.bank_dir = (d / "banks" / opts.bank_id).string();
  // The bank claims every top-up request and deposit note at the registry before it moves money.
  auto bank_db = database_for("bank");
  if (!bank_db) return std::unexpected(bank_db.error());
  bank::InitOptions bank_init{net.bank_dir,      opts.bank_id,      net.ca_url, root->pem(),
                              net.registry_url, net.registry_id, *bank_db};
  auto issue = [&](const std::string& role, const std::string& csr) {
    return ca_admin_client->request_certificate(role, csr);
  };
  if (auto s = check(bank::init_bank(bank_init, issue), "bank init"); !s) return std::unexpected(s.error());
  std::vector<std::string> bank_args = {"bank", "serve", "--dir", net.bank_dir};
  bank_args.insert(bank_args.end(), crl_refresh.begin(), crl_refresh.end());
  bank_args.insert(bank_args.end(), opts.bank_args.begin(), opts.bank_args.end());
  auto bank_port = start(net, opts, opts.bank_id, bank_args);
  if (!bank_port) return std::unexpected(bank_port.error());
  net.bank_url = "https://127.0.0.1:" + std::to_string(*bank_port);
  say("bank        " + net.bank_url + "  " + opts.bank_id + " (state " + net.bank_dir + ")");
  auto ra_token = ca_admin_client->add_registration_authority(opts.bank_id);
  if (auto s = check(ra_token, "registration authority"); !s) return std::unexpected(s.error());
  auto ra = ca::CaClient::connect(net.ca_url, *root, *ra_token);
  auto anon_ca = ca::CaClient::connect(net.ca_url, *root);
  auto bank_admin = bank::BankClient::connect(net.bank_url, *root, net.bank_id,
                                             first_line(slurp(fs::path(net.bank_dir) / "admin.token")));
  if (!ra || !anon_ca || !bank_admin) return fail(Errc::unavailable, "cannot reach CA or bank");

  for (const auto& user : opts.users) {
    NetworkSe se;
    se.user = user;
    se.se_id = "se-" + user;
    se.dir = (d / "se" / se.se_id).string();
    se.wallet = (d / "wallets" / user).string();
    se.account = user + "-main";
    if (auto s = check(se::Device::create(se.dir, se.se_id, mfr), "SE " + se.se_id); !s) return std::unexpected(s.error());
    auto port = start(net, opts, se.se_id, {"se", "serve", "--dir", se.dir});
    if (!port) return std::unexpected(port.error());
    se.port = *port;

    wallet::WalletConfig wc;
    wc.se_port = se.port;
    wc.ca_url = net.ca_url;
    wc.root_pem = root->pem();
    wc.banks[opts.bank_id] = wallet::BankEndpoint{net.bank_url};
    wc.registry_url = net.registry_url;
    wc.registry_id = net.registry_id;
    if (auto s = check(wallet::Wallet::init(se.wallet, wc), "wallet " + user); !s) return std::unexpected(s.error());

    // Personalization through the terminal (DESIGN.md §6.1), over the paired
    // link: first the pairing, confirmed as the person would, by reading the
    // code the SE shows (its pairing.code) and comparing it with the terminal's.
    auto link = wallet::SeClient::connect(se.port);
    if (!link) return std::unexpected(link.error());
    fs::path shown = fs::path(se.dir) / "pairing.code";
    auto paired = link->pair(
        "", [&](const std::string& code) { return first_line(slurp(shown)) == code; },
        [&](const SecretBytes& key) { return wallet::save_pairing_key(se.wallet, key); });
    if (auto s = check(paired, "pair " + se.se_id); !s) return std::unexpected(s.error());
    auto perso = link->personalize(Json{{"user_id", user},
                                        {"pin", opts.pin},
                                        {"puk", opts.puk},
                                        {"root", root->pem()},
                                        {"max_balance_minor", opts.max_balance_minor},
                                        {"max_payment_minor", opts.max_payment_minor}});
    if (auto s = check(perso, "personalize " + se.se_id); !s) return std::unexpected(s.error());
    auto code = ra->enrollment_code(user, 600);
    if (auto s = check(code, "enrollment code"); !s) return std::unexpected(s.error());
    auto att = attestation_from_json((*perso)["attestation"]);
    if (auto s = check(att, "attestation"); !s) return std::unexpected(s.error());
    auto cert = anon_ca->request_certificate("secure-element", (*perso)["csr"], *att, *code);
    if (auto s = check(cert, "certificate for " + se.se_id); !s) return std::unexpected(s.error());
    if (auto s = check(link->install_certificate(cert->pem()), "install certificate"); !s) return std::unexpected(s.error());
    auto crl = anon_ca->crl();
    if (auto s = check(crl, "CRL"); !s) return std::unexpected(s.error());
    if (auto s = check(link->update_crl(crl->pem()), "install CRL"); !s) return std::unexpected(s.error());

    bank::OpenAccountRequest acct{se.account, std::string(cash->currency().code()), user, se.se_id, {}, 0};
    if (auto s = check(bank_admin->open_account(acct), "open account"); !s) return std::unexpected(s.error());
    if (auto s = check(bank_admin->cash_in(se.account, *cash, "initial-" + user), "cash-in"); !s)
      return std::unexpected(s.error());
    say("SE          " + se.se_id + " on 127.0.0.1:" + std::to_string(se.port) + ", user " + user + ", account " +
        se.account + " (" + cash->to_string() + "), wallet " + se.wallet);
    net.ses.push_back(std::move(se));
  }
  // The first two users also share a joint account that both must sign for (DESIGN.md §6.9).
  if (net.ses.size() >= 2) {
    const NetworkSe &a = net.ses[0], &b = net.ses[1];
    const std::string joint = joint_account_id(a.user, b.user);
    bank::OpenAccountRequest acct{joint, std::string(cash->currency().code()), a.user + "-" + b.user, std::nullopt,
                                  {a.se_id, b.se_id}, 0};
    if (auto s = check(bank_admin->open_account(acct), "open joint account"); !s) return std::unexpected(s.error());
    if (auto s = check(bank_admin->cash_in(joint, *cash, "initial-" + joint), "cash-in"); !s)
      return std::unexpected(s.error());
    say("joint       account " + joint + " (" + cash->to_string() + "), co-managed by " + a.se_id + " and " + b.se_id +
        ": a spend needs both signatures");
  }
  if (auto s = store::write_file_atomic((d / "network.json").string(), net.to_json().dump(2) + "\n"); !s)
    return std::unexpected(s.error());
  return net;
}

std::optional<std::uint64_t> process_start_time(pid_t pid) {
  // /proc/<pid>/stat: "pid (comm) state ..." with the start time as field 22; comm
  // may hold spaces and parentheses, so fields are counted after the last ')'.
  std::string stat = slurp(fs::path("/proc") / std::to_string(pid) / "stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i)
    if (!(fields >> field)) return std::nullopt;
  try {
    return std::stoull(field);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool is_network_process(pid_t pid, const std::string& dir, const std::string& name,
                        std::uint64_t start_time) {
  if (pid <= 1) return false;
  auto now = process_start_time(pid);
  if (!now || (start_time != 0 && *now != start_time)) return false;
  // Its command line names this network's port file for that service.
  fs::path proc = fs::path("/proc") / std::to_string(pid);
  std::string cmdline = slurp(proc / "cmdline");
  std::vector<std::string> args;
  for (std::size_t at = 0; at < cmdline.size();) {
    auto end = cmdline.find('\0', at);
    if (end == std::string::npos) end = cmdline.size();
    args.push_back(cmdline.substr(at, end - at));
    at = end + 1;
  }
  std::error_code ec;
  fs::path want = fs::weakly_canonical(fs::path(dir) / "run" / (name + ".port"), ec);
  if (ec) return false;
  fs::path cwd = fs::read_symlink(proc / "cwd", ec);
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] != "--port-file") continue;
    fs::path got = args[i + 1];
    if (got.is_relative()) {
      if (cwd.empty()) return false;
      got = cwd / got;
    }
    fs::path canon = fs::weakly_canonical(got, ec);
    if (!ec && canon == want) return true;
  }
  return false;
}

namespace {

// run/pids: "pid name start_time" per line (older files have no start time),
// in the order the processes were started.
struct PidLine {
  pid_t pid;
  std::string name;
  std::uint64_t start_time;
};
std::optional<std::vector<PidLine>> read_pids(const std::string& dir) {
  std::ifstream in(fs::path(dir) / "run" / "pids");
  if (!in) return std::nullopt;
  std::vector<PidLine> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    long long pid = 0;
    std::string name;
    std::uint64_t start_time = 0;
    if (!(f >> pid >> name)) continue;
    f >> start_time;
    if (pid <= 1 || pid > std::numeric_limits<pid_t>::max()) continue;
    out.push_back({static_cast<pid_t>(pid), std::move(name), start_time});
  }
  return out;
}

}  // namespace

Result<Network> network_start(const std::string& dir, const std::string& zf_binary, const Say& say) {
  auto net = Network::load(dir);
  if (!net) return net;
  if (net->services.empty())
    return fail(Errc::bad_field, "network.json in " + dir + " does not record its services (made by an older zf up)",
                "services");
  net->zf_binary = zf_binary.empty() ? net::self_exe() : zf_binary;
  // Which of them still run: the last recorded pid of each name, if it is still ours.
  std::map<std::string, PidLine> last;
  for (auto& p : read_pids(dir).value_or(std::vector<PidLine>{})) last[p.name] = p;
  for (const auto& svc : net->services) {
    auto it = last.find(svc.name);
    if (it != last.end() && is_network_process(it->second.pid, dir, svc.name, it->second.start_time)) {
      if (say) say(svc.name + " is already running on port " + std::to_string(svc.port));
      continue;
    }
    // Each on the port it had, so every URL in the wallets and configs still holds.
    Result<int> port = fail(Errc::internal, "not started");
    for (int attempt = 0; attempt < 20; ++attempt) {
      port = launch(*net, true, svc.name, svc.args, svc.port);
      if (port) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!port) return fail(port.error().code, "cannot start " + svc.name + " again: " + port.error().message());
    if (say) say("started " + svc.name + " again on https://127.0.0.1:" + std::to_string(*port));
  }
  return net;
}

Status network_down(const std::string& dir, const std::function<void(const std::string&)>& say) {
  auto pids = read_pids(dir);
  if (!pids) return fail(Errc::not_found, "no running network in " + dir);
  // A pid is signalled only while it is still the process `zf up` started:
  // same start time, and a command line that names this network's port file for it.
  for (const auto& p : *pids) {
    if (!is_network_process(p.pid, dir, p.name, p.start_time)) {
      if (say) say("zf down: " + p.name + " (pid " + std::to_string(p.pid) + ") is not running; left alone");
      continue;
    }
    ::kill(p.pid, SIGTERM);
  }
  fs::remove(fs::path(dir) / "run" / "pids");
  return {};
}

// System conservation (DESIGN.md §3), per currency:
//   Σ e-cash outstanding = Σ SE balances
//                        + payment notes signed but not yet received (Σ sent - Σ received)
//                        + top-ups the bank processed whose receipt the SE has not applied
//                        + deposit notes the SE signed that the bank has not processed.
// Then the notes in flight item by item (DESIGN.md §7): every payment note an SE
// still lists among the documents it signed is looked up in the registry's
// records and in its payee SE's received set, and the registry's alerts are
// counted (a reused (SE, seq) means a cloned or rolled-back SE: the audit fails).
Result<Json> network_audit(const std::string& dir) {
  auto net = Network::load(dir);
  if (!net) return std::unexpected(net.error());
  auto root = Certificate::from_pem(slurp(net->root_file));
  if (!root) return std::unexpected(root.error());
  auto bank = bank::BankClient::connect(net->bank_url, *root, net->bank_id,
                                       first_line(slurp(fs::path(net->bank_dir) / "admin.token")));
  if (!bank) return std::unexpected(bank.error());
  auto report = bank->audit();
  if (!report && report.error().code == Errc::unavailable) {
    // A stopped network (or a bank that does not answer): its books are its files.
    auto local = bank::Bank::open(net->bank_dir);
    if (!local) return std::unexpected(local.error());
    report = (*local)->audit();
  }
  if (!report) return std::unexpected(report.error());
  // The bank's books, read through its store (SQLite file or PostgreSQL).
  auto bank_config = bank::read_config(net->bank_dir);
  if (!bank_config) return std::unexpected(bank_config.error());
  auto books = bank::open_store(bank::db_url_of(net->bank_dir, *bank_config));
  if (!books) return std::unexpected(books.error());
  // Whether the bank moved money for a document (a signed refusal moved none).
  auto processed = [&](const std::string& doc_id) -> bool {
    auto found = (*books)->find_processed(doc_id);
    if (!found || !*found) return false;
    auto jws = jws_parse((*found)->response);
    if (!jws) return true;
    auto doc = Document::parse(to_string(jws->payload));
    return !doc || doc->str("status") != "refused";
  };

  struct Figures {
    std::int64_t se_balances = 0, notes_in_flight = 0, topups_unapplied = 0, deposits_unsettled = 0, outstanding = 0;
  };
  std::map<std::string, Figures> fig;
  Json bank_json{{"id", net->bank_id}, {"ok", report->ok()}, {"violations", report->violations}};
  for (const auto& c : report->currencies) {
    fig[c.currency].outstanding = c.ecash_outstanding_minor;
    bank_json["currencies"][c.currency] = Json{{"customer_minor", c.customer_minor},
                                               {"joint_minor", c.joint_minor},
                                               {"hold_minor", c.hold_minor},
                                               {"ecash_outstanding_minor", c.ecash_outstanding_minor},
                                               {"issued_minor", c.issued_minor},
                                               {"conserved", c.conserved}};
  }
  // The holds still open, each one: what hold_minor is made of (the bank's
  // audit checked that the hold accounts hold exactly their sum).
  Json open_holds = Json::array();
  // Every hold still held is due by the end of time.
  auto held = (*books)->due_holds(std::numeric_limits<std::int64_t>::max(), std::numeric_limits<int>::max());
  if (!held) return std::unexpected(held.error());
  for (const auto& h : *held)
    open_holds.push_back(Json{{"hold_id", h.id},
                              {"payer_account", h.payer_account},
                              {"payee_account", h.payee_account},
                              {"currency", h.currency},
                              {"amount_minor", h.amount_minor},
                              {"release_at", h.release_at}});
  bank_json["open_holds"] = open_holds;
  std::map<std::string, Json> states;  // SE id -> its state, read once for both views
  for (const auto& se : net->ses) {
    auto device = se::Device::open(se.dir);
    if (!device) return std::unexpected(device.error());
    Json s = (*device)->applet().state_json();
    for (const auto& [cur, v] : s["balances"].items()) fig[cur].se_balances += v.get<std::int64_t>();
    for (const auto& [cur, v] : s["sent_minor"].items()) fig[cur].notes_in_flight += v.get<std::int64_t>();
    for (const auto& [cur, v] : s["received_minor"].items()) fig[cur].notes_in_flight -= v.get<std::int64_t>();
    if (s.contains("reclaimed_minor"))
      for (const auto& [cur, v] : s["reclaimed_minor"].items()) fig[cur].notes_in_flight -= v.get<std::int64_t>();
    for (const auto& [id, req] : s["pending_topups"].items())
      if (processed(id)) fig[req["currency"].get<std::string>()].topups_unapplied += req["amount"].get<std::int64_t>();
    for (const auto& [id, note] : s["pending_deposits"].items())
      if (!processed(id)) fig[note["currency"].get<std::string>()].deposits_unsettled += note["amount"].get<std::int64_t>();
    states[se.se_id] = std::move(s);
  }
  bool ok = report->ok();
  Json system = Json::object();
  for (const auto& [cur, f] : fig) {
    std::int64_t held = f.se_balances + f.notes_in_flight + f.topups_unapplied + f.deposits_unsettled;
    bool conserved = held == f.outstanding && f.notes_in_flight >= 0;
    ok = ok && conserved;
    system[cur] = Json{{"ecash_outstanding_minor", f.outstanding}, {"se_balances_minor", f.se_balances},
                       {"notes_in_flight_minor", f.notes_in_flight}, {"topups_unapplied_minor", f.topups_unapplied},
                       {"deposits_unsettled_minor", f.deposits_unsettled}, {"conserved", conserved}};
  }

  // The registry's own database, read through its store: the audit works
  // while the registry is down, and sees exactly what the registry would answer.
  auto registry_config = registry::read_config(net->registry_dir);
  if (!registry_config) return std::unexpected(registry_config.error());
  std::string registry_db = registry::db_url_of(net->registry_dir, *registry_config);
  if (!store::Database::is_postgresql(registry_db) && !fs::exists(registry_db))
    return fail(Errc::not_found, "no registry database " + registry_db);
  auto records = registry::open_store(registry_db);
  if (!records) return std::unexpected(records.error());
  auto record_of = [&](const std::string& doc_id) { return (*records)->find(doc_id); };

  // Each note an SE still lists is, in this order:
  //   seq_reused  the registry holds its id for another document (the payload
  //               digests differ): the payer signed two notes under one seq;
  //               no registry-checked payee will take it;
  //   received    in its payee SE's received set;
  //   reclaimed   the registry holds it for its payer, whose SE no longer
  //               keeps it open: the value came back (counted in reclaimed_minor);
  //   claimed     a record exists but the SE it names has not credited it: the
  //               payee's terminal must retry the receive (or the payer's the
  //               reclaim);
  //   in_transit  nobody has claimed it yet.
  struct NoteFigures {
    std::int64_t claimed = 0, in_transit = 0, seq_reused = 0;
  };
  std::map<std::string, NoteFigures> note_fig;
  Json not_received = Json::array();
  // An SE keeps only its newest signed documents (Applet::kIssuedKept); its log
  // is whole while it has one entry per sequence number spent.
  bool complete = true;
  for (const auto& se : net->ses) {
    const Json& s = states[se.se_id];
    const Json& issued = s["issued"];
    if (static_cast<std::int64_t>(issued.size()) != s["seq"].get<std::int64_t>()) complete = false;
    for (const auto& entry : issued) {
      auto jws = jws_parse(entry.get<std::string>());
      if (!jws) return fail(jws.error().code, se.se_id + " lists an unreadable document: " + jws.error().message());
      auto doc = Document::parse(to_string(jws->payload));
      if (!doc) return fail(doc.error().code, se.se_id + " lists an invalid document: " + doc.error().message());
      if (doc->type() == "f2f.payment") {
        // A face-to-face payment is in flight while its payer holds it as
        // undelivered, unless its payee credited it (the ack has not come back).
        if (!s.contains("f2f_undelivered") || !s["f2f_undelivered"].contains(doc->id())) continue;
        const std::string payee = doc->str("payee");
        bool credited = false, refused = false;
        if (auto p = states.find(payee); p != states.end()) {
          const Json& ids = p->second["received_notes"];
          refused = p->second.contains("f2f_refused") &&
                    std::find(p->second["f2f_refused"].begin(), p->second["f2f_refused"].end(), doc->id()) !=
                        p->second["f2f_refused"].end();
          credited = ids.is_object() && ids.contains(doc->id()) && !refused;
        }
        if (credited) continue;
        const std::string cur(doc->amount()->currency().code());
        not_received.push_back(Json{{"id", doc->id()},
                                    {"payer", doc->issuer()},
                                    {"payee", payee},
                                    {"amount_minor", doc->amount()->minor()},
                                    {"currency", cur},
                                    {"state", refused ? "refused_face_to_face" : "undelivered_face_to_face"}});
        note_fig[cur].in_transit += doc->amount()->minor();
        continue;
      }
      if (doc->type() == "cpay.note") {
        // An escrow note is in flight while its payer keeps it open, unless its
        // payee accepted it (the payer has not closed it yet).
        if (!s.contains("cpay_open") || !s["cpay_open"].contains(doc->id())) continue;
        const Json& e = s["cpay_open"][doc->id()];
        const std::string payee = e.value("payee", std::string());
        bool accepted = false, refunded = false;
        if (auto p = states.find(payee); p != states.end()) {
          const Json& ids = p->second["received_notes"];
          const Json& refs = p->second.contains("cpay_refunded") ? p->second["cpay_refunded"] : Json::array();
          refunded = std::find(refs.begin(), refs.end(), doc->id()) != refs.end();
          accepted = ids.is_object() && ids.contains(doc->id()) && !refunded;
        }
        if (accepted) continue;
        const std::string cur = e.value("currency", std::string());
        not_received.push_back(Json{{"id", doc->id()},
                                    {"payer", doc->issuer()},
                                    {"payee", payee},
                                    {"amount_minor", e.value("amount", std::int64_t{0})},
                                    {"currency", cur},
                                    {"state", refunded ? "refunded_escrow" : "in_escrow"}});
        note_fig[cur].in_transit += e.value("amount", std::int64_t{0});
        continue;
      }
      if (doc->type() != "payment.note") continue;
      auto held = record_of(doc->id());
      if (!held) return fail(held.error().code, "registry records: " + held.error().message());
      const std::string payee = doc->str("payee");
      const std::string cur(doc->amount()->currency().code());
      bool received = false;
      if (auto p = states.find(payee); p != states.end()) {
        // The payee remembers the newest notes it received (se::ReceivedIds); one
        // issued at or before its floor that it holds at the registry was received.
        const Json& ids = p->second["received_notes"];
        received = ids.is_object() ? ids.contains(doc->id()) : false;
        if (!received && *held && (*held)->processor == payee)
          received = doc->iat() <= p->second.value("received_floor_iat", std::int64_t{0});
      }
      const bool reclaimed = *held && (*held)->processor == doc->issuer() && s.contains("outstanding_notes") &&
                             !s["outstanding_notes"].contains(doc->id());
      Json item{{"id", doc->id()},
                {"payer", doc->issuer()},
                {"payee", payee},
                {"amount_minor", doc->amount()->minor()},
                {"currency", cur}};
      if (*held && (*held)->result_digest != sha256(jws->payload)) {
        item["state"] = "seq_reused";
        note_fig[cur].seq_reused += doc->amount()->minor();
      } else if (received || reclaimed) {
        continue;
      } else if (*held) {
        item["state"] = "claimed";
        note_fig[cur].claimed += doc->amount()->minor();
      } else {
        item["state"] = "in_transit";
        note_fig[cur].in_transit += doc->amount()->minor();
      }
      if (*held) item["processor"] = (*held)->processor;
      not_received.push_back(std::move(item));
    }
  }
  // Cross-check with the counters: with whole logs the listed notes are all the
  // notes in flight, so claimed + in_transit must equal Σ sent - Σ received; with
  // a shortened log they can only be fewer. A seq_reused note is refused by the
  // registry whatever the counters say, so it is reported apart and fails the audit.
  Json note_currencies = Json::object();
  for (const auto& [cur, f] : fig) note_fig[cur];
  for (const auto& [cur, nf] : note_fig) {
    std::int64_t in_flight = fig[cur].notes_in_flight;
    std::int64_t itemized = nf.claimed + nf.in_transit;
    bool consistent = complete ? itemized == in_flight : itemized <= in_flight;
    ok = ok && consistent && nf.seq_reused == 0;
    note_currencies[cur] = Json{{"claimed_minor", nf.claimed},       {"in_transit_minor", nf.in_transit},
                                {"seq_reused_minor", nf.seq_reused}, {"notes_in_flight_minor", in_flight},
                                {"notes_consistent", consistent}};
  }

  auto alert_rows = (*records)->alerts(0, std::numeric_limits<int>::max());
  if (!alert_rows) return fail(alert_rows.error().code, "registry alerts: " + alert_rows.error().message());
  auto alerts = static_cast<std::int64_t>(alert_rows->size());
  Json alerted = Json::array();
  for (const auto& a : *alert_rows)
    if (std::find(alerted.begin(), alerted.end(), a.se_id) == alerted.end()) alerted.push_back(a.se_id);
  ok = ok && alerts == 0;
  return Json{{"ok", ok},
              {"banks", Json::array({bank_json})},
              {"system", system},
              {"notes", {{"complete", complete}, {"currencies", note_currencies}, {"not_received", not_received}}},
              {"alerts", alerts},
              {"alerted_ses", alerted}};
}

}  // namespace zf::cli
