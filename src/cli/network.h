// A local zhuanfu network (DESIGN.md §1): manufacturer, CA, one bank and N
// secure elements with their terminals, each service its own process.
// `zf up` builds and starts one, `zf down` stops it, `zf audit` checks it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "net/process.h"

namespace zf::cli {

struct NetworkOptions {
  std::string dir;
  std::vector<std::string> users = {"alice", "bob", "carol"};
  std::string bank_id = "bank-a";
  std::string cash_in = "CNY 1000.00";  // paid into each user's account
  std::string pin = "123456";
  std::string puk = "12345678";
  std::int64_t max_balance_minor = 500000;  // SE limits (CNY 5000.00)
  std::int64_t max_payment_minor = 200000;  // CNY 2000.00
  bool detach = true;                       // leave the services running after we return
  std::string zf_binary;                    // the `zf` executable (default: this process's)
  std::vector<std::string> bank_args;       // extra `zf bank serve` arguments (fault injection in tests)
  // How long the CA's CRLs are valid (0: one day). The bank and the registry
  // then fetch a new one every third of that.
  std::int64_t crl_validity_s = 0;
  // A PostgreSQL database (postgresql://…): the registry's records and the
  // bank's books go there, each in a schema of its own made for this network.
  // Empty: SQLite files in the network's directory.
  std::string postgres;
};

// A service process of the network and how to start it again on the same port.
struct NetworkService {
  std::string name;
  std::vector<std::string> args;  // without --port/--port-file
  int port = 0;
};

struct NetworkSe {
  std::string user, se_id, dir, wallet, account;
  int port = 0;
};

struct Network {
  std::string dir;
  std::string ca_url, ca_dir, root_file;
  std::string bank_id, bank_url, bank_dir;
  std::string registry_id = "registry", registry_url, registry_dir;
  std::vector<NetworkSe> ses;
  std::vector<NetworkService> services;
  std::string postgres;                    // NetworkOptions::postgres
  std::vector<std::string> postgres_schemas;  // the schemas made there for this network
  std::map<std::string, net::Child> children;  // when not detached
  std::string zf_binary;
  Json to_json() const;
  static Result<Network> load(const std::string& dir);
  // Crash tests: SIGKILL a service, and start it again on its old port.
  void kill9(const std::string& name);
  Status restart(const std::string& name);
  // Stops every child (when not detached).
  void stop_all() { children.clear(); }
};

using Say = std::function<void(const std::string&)>;

// The joint account `zf up` opens for its first two users, both co-managers.
inline std::string joint_account_id(const std::string& first_user, const std::string& second_user) {
  return first_user + "-" + second_user + "-joint";
}

// Creates the directories, starts every service and personalizes every SE.
Result<Network> network_up(const NetworkOptions& opts, const Say& say);
// Stops every process recorded in DIR/run/pids that is still ours (SIGTERM);
// `say` hears about each one left alone.
// Starts again, each on the port it had, every service of the network in
// `dir` that is not running (after `zf down`, a reboot or a crash); leaves
// the running ones alone. The state on disk is the network's: nothing is
// created or reset.
Result<Network> network_start(const std::string& dir, const std::string& zf_binary, const Say& say);
Status network_down(const std::string& dir,
                    const std::function<void(const std::string&)>& say = {});

// The start time of a process (clock ticks after boot, /proc/<pid>/stat), if it exists.
std::optional<std::uint64_t> process_start_time(pid_t pid);
// True while `pid` is still the `name` service that `zf up` started for `dir`:
// the same start time (when recorded, non-zero) and a command line naming
// <dir>/run/<name>.port as its port file.
bool is_network_process(pid_t pid, const std::string& dir, const std::string& name,
                        std::uint64_t start_time);
// Every bank's books, and Σ SE balances + value in flight = Σ e-cash outstanding.
Result<Json> network_audit(const std::string& dir);

// Adds `zf up`, `zf down` and `zf audit`.
}  // namespace zf::cli
