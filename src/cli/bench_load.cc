// `zf bench load`: top-ups through a network of real processes (a fresh `zf
// up` network in a temporary directory), the way issue "throughput" asks for
// it: every document is signed by its SE before the clock starts, a fixed
// number are kept in flight over HTTPS keep-alive connections, and the bank's
// and the registry's CPU time come from /proc. In the same run it measures the
// crypto ceiling (the signatures one top-up cannot avoid) and prints the
// throughput as a share of it. Some documents may carry designated
// processing numbers, to measure the bank's priority lane.
#include "cli/bench_load.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "cli/network.h"
#include "core/crypto.h"
#include "net/http.h"
#include "net/process.h"
#include "store/sql.h"
#include "wallet/wallet.h"

namespace zf::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15).
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t close = stat.rfind(')');  // the command may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Peak resident set of a process, in KiB (VmHWM).
std::int64_t peak_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("VmHWM:")) return std::stoll(line.substr(6));
  return 0;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

Json latency_json(const std::vector<double>& ms) {
  return Json{{"count", ms.size()},
              {"p50_ms", percentile(ms, 0.50)},
              {"p99_ms", percentile(ms, 0.99)},
              {"p999_ms", percentile(ms, 0.999)},
              {"max_ms", ms.empty() ? 0.0 : *std::max_element(ms.begin(), ms.end())}};
}

// What one top-up's signatures cost on this machine, on every core: the SE's
// request verified by the bank, the bank's claim signed and verified by the
// registry, the registry's record signed and verified by the bank, the
// bank's receipt signed (3 verifies, 2 signs, ES256). Operations per second.
double crypto_ceiling(double seconds) {
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::atomic<std::int64_t> done{0};
  std::vector<std::thread> pool;
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  for (unsigned t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      auto key = PrivateKey::generate();
      if (!key) return;
      const PublicKey pub = key->public_key();
      const Bytes message(400, 0x5a);  // about a document's signing input
      auto sig = key->sign(message);
      if (!sig) return;
      std::int64_t n = 0;
      while (Clock::now() < until) {
        for (int i = 0; i < 3; ++i) (void)pub.verify(message, *sig);
        for (int i = 0; i < 2; ++i) (void)key->sign(message);
        ++n;
      }
      done += n;
    });
  for (auto& t : pool) t.join();
  return static_cast<double>(done.load()) / seconds;
}

struct Job {
  std::size_t se = 0;
  std::string request;
  bool priority = false;
  std::string receipt;
  std::string error;
  double ms = 0;
};

}  // namespace

Result<Json> run_topup_load(const LoadOptions& o, const std::function<void(const std::string&)>& progress) {
  if (o.users < 1 || o.users > 256) return fail(Errc::bad_field, "1..256 users", "users");
  if (o.rounds < 1 || o.in_flight < 1 || o.per_se < 1 || o.per_se > 16)
    return fail(Errc::bad_field, "rounds, in-flight >= 1 and 1..16 documents per SE and round", "rounds");
  std::string tmpl = (fs::temp_directory_path() / "zf-load-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return fail(Errc::io_error, "cannot make a temporary directory");
  const fs::path dir = tmpl;
  struct Cleanup {
    fs::path dir;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (!keep) fs::remove_all(dir, ec);
    }
  } cleanup{dir, o.keep};

  progress("starting a network with " + std::to_string(o.users) + " SEs in " + dir.string() + "\n");
  NetworkOptions no;
  no.dir = dir.string();
  no.users.clear();
  for (int i = 1; i <= o.users; ++i) no.users.push_back("u" + std::to_string(i));
  no.detach = false;
  no.zf_binary = o.zf_binary.empty() ? net::self_exe() : o.zf_binary;
  no.postgres = o.postgres;
  auto net = network_up(no, [](const std::string&) {});
  if (!net) return std::unexpected(net.error());
  // The network's PostgreSQL schemas go with its directory.
  struct DropSchemas {
    Network& net;
    bool keep;
    ~DropSchemas() {
      if (keep || net.postgres_schemas.empty()) return;
      net.stop_all();  // the services let go of their connections first
      for (const auto& s : net.postgres_schemas) (void)store::drop_postgres_schema(net.postgres, s);
    }
  } drop_schemas{*net, o.keep};
  const pid_t bank_pid = net->children.at(net->bank_id).pid();
  const pid_t registry_pid = net->children.at(net->registry_id).pid();

  std::vector<std::unique_ptr<wallet::Wallet>> wallets;
  for (const auto& se : net->ses) {
    auto w = wallet::Wallet::open(se.wallet);
    if (!w) return std::unexpected(w.error());
    if (auto s = (*w)->unlock(no.pin); !s) return std::unexpected(s.error());
    wallets.push_back(std::move(*w));
  }
  std::ifstream root_in(net->root_file);
  auto root = Certificate::from_pem(std::string(std::istreambuf_iterator<char>(root_in), {}));
  if (!root) return std::unexpected(root.error());

  progress("measuring the crypto ceiling\n");
  const double ceiling = crypto_ceiling(2.0);

  std::mt19937_64 rng(o.seed);
  std::vector<double> all_ms, priority_ms, normal_ms;
  double wall_s = 0, bank_cpu = 0, registry_cpu = 0;
  std::size_t errors = 0;
  std::string first_error;
  const int per_round_priority = static_cast<int>(o.priority_share * o.per_se + 0.5);
  std::vector<std::unique_ptr<net::HttpsClient>> conns;  // one per client, kept across rounds
  for (int round = 0; round < o.rounds; ++round) {
    // Signed before the clock starts: each SE's top-up requests (CNY 0.01),
    // a share of them with a processing number asked for them.
    std::vector<Job> jobs;
    for (std::size_t i = 0; i < wallets.size(); ++i) {
      const auto& se = net->ses[i];
      for (int k = 0; k < o.per_se; ++k) {
        Json params{{"amount", 1}, {"currency", "CNY"}, {"bank", net->bank_id}, {"account", se.account}};
        const bool priority = k < per_round_priority;
        if (priority) {
          auto n = wallets[i]->process_number(net->bank_id, se.account);
          if (!n) return std::unexpected(n.error());
          params["process_no"] = (*n)["process_no"];
        }
        auto signed_req = wallets[i]->se().topup_request(params);
        if (!signed_req) return std::unexpected(signed_req.error());
        jobs.push_back(Job{i, (*signed_req)["request"], priority, {}, {}, 0});
      }
    }
    std::shuffle(jobs.begin(), jobs.end(), rng);

    // The connections are made (TLS handshakes included) before the clock
    // starts and kept across rounds: the figure is the steady state of
    // keep-alive clients, not the cost of connecting.
    while (conns.size() < static_cast<std::size_t>(o.in_flight)) {
      auto client = net::HttpsClient::connect(net->bank_url, *root, net::ServerId::bank(net->bank_id));
      if (!client) return std::unexpected(client.error());
      client->set_keep_alive(true);
      if (auto ping = client->get_json("/v1/info"); !ping) return std::unexpected(ping.error());
      conns.push_back(std::make_unique<net::HttpsClient>(std::move(*client)));
    }
    const double bank0 = cpu_seconds(bank_pid), reg0 = cpu_seconds(registry_pid);
    std::atomic<std::size_t> next{0}, finished{0};
    std::atomic<int> alive{o.in_flight};
    const auto start = Clock::now();
    std::vector<std::thread> clients;
    for (int c = 0; c < o.in_flight; ++c)
      clients.emplace_back([&, c] {
        struct Leave {
          std::atomic<int>& n;
          ~Leave() { --n; }
        } leave{alive};
        net::HttpsClient* client = conns[static_cast<std::size_t>(c)].get();
        for (std::size_t j; (j = next++) < jobs.size();) {
          Job& job = jobs[j];
          const auto t0 = Clock::now();
          auto r = client->post_json("/v1/topup", Json{{"request", job.request}});
          job.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
          if (r && r->contains("receipt")) job.receipt = (*r)["receipt"];
          else job.error = r ? "no receipt" : r.error().message();
          ++finished;
        }
      });
    // The progress bar, on the caller's channel, while the clients work.
    while (finished < jobs.size() && alive > 0) {
      const std::size_t f = finished;
      const int width = 30, filled = static_cast<int>(width * f / jobs.size());
      progress("\rround " + std::to_string(round + 1) + "/" + std::to_string(o.rounds) + " [" +
               std::string(filled, '#') + std::string(width - filled, '.') + "] " + std::to_string(f) + "/" +
               std::to_string(jobs.size()));
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    for (auto& t : clients) t.join();
    wall_s += std::chrono::duration<double>(Clock::now() - start).count();
    bank_cpu += cpu_seconds(bank_pid) - bank0;
    registry_cpu += cpu_seconds(registry_pid) - reg0;

    // After the clock: each SE takes its receipts, so the books and the SEs agree.
    for (Job& job : jobs) {
      if (job.receipt.empty()) {
        ++errors;
        if (first_error.empty()) first_error = job.error.empty() ? "not sent" : job.error;
        continue;
      }
      all_ms.push_back(job.ms);
      (job.priority ? priority_ms : normal_ms).push_back(job.ms);
      if (auto a = wallets[job.se]->se().apply_topup_receipt(job.receipt); !a)
        return std::unexpected(a.error());
    }
  }
  progress("\n");

  auto audit = network_audit(net->dir);
  const double ops = static_cast<double>(all_ms.size());
  const double per_s = wall_s > 0 ? ops / wall_s : 0;
  Json report{{"operation", "topup"},
              {"ses", o.users},
              {"rounds", o.rounds},
              {"in_flight", o.in_flight},
              {"topups", all_ms.size()},
              {"errors", errors},
              {"wall_s", wall_s},
              {"topups_per_s", per_s},
              {"latency", latency_json(all_ms)},
              {"bank_cpu_ms_per_topup", ops > 0 ? bank_cpu * 1000 / ops : 0},
              {"registry_cpu_ms_per_topup", ops > 0 ? registry_cpu * 1000 / ops : 0},
              {"bank_peak_rss_kib", peak_rss_kib(bank_pid)},
              {"registry_peak_rss_kib", peak_rss_kib(registry_pid)},
              {"crypto_ceiling_per_s", ceiling},
              {"share_of_ceiling", ceiling > 0 ? per_s / ceiling : 0},
              {"cores", std::thread::hardware_concurrency()},
              {"seed", o.seed},
              {"audit_ok", audit && (*audit)["ok"].get<bool>()}};
  if (!first_error.empty()) report["first_error"] = first_error;
  if (per_round_priority > 0) {
    report["priority_latency"] = latency_json(priority_ms);
    report["normal_latency"] = latency_json(normal_ms);
  }
  return report;
}

std::string load_report_text(const Json& r) {
  char buf[2048];
  auto lat = [](const Json& l) {
    char b[160];
    std::snprintf(b, sizeof b, "p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms (%lld)", l.value("p50_ms", 0.0),
                  l.value("p99_ms", 0.0), l.value("p999_ms", 0.0), static_cast<long long>(l.value("count", 0)));
    return std::string(b);
  };
  std::snprintf(buf, sizeof buf,
                "%lld top-ups from %d SEs, %d in flight, in %.2f s: %.1f top-ups/s (%lld failed)\n"
                "latency: %s\n"
                "bank CPU %.2f ms per top-up, registry CPU %.2f ms per top-up; peak RSS bank %lld KiB, registry "
                "%lld KiB\n"
                "crypto ceiling (3 verifies + 2 signs, ES256, %d cores): %.0f top-ups/s; this run reached %.1f %% of it\n",
                static_cast<long long>(r.value("topups", 0)), r.value("ses", 0), r.value("in_flight", 0),
                r.value("wall_s", 0.0), r.value("topups_per_s", 0.0), static_cast<long long>(r.value("errors", 0)),
                lat(r["latency"]).c_str(), r.value("bank_cpu_ms_per_topup", 0.0),
                r.value("registry_cpu_ms_per_topup", 0.0), static_cast<long long>(r.value("bank_peak_rss_kib", 0)),
                static_cast<long long>(r.value("registry_peak_rss_kib", 0)), r.value("cores", 0),
                r.value("crypto_ceiling_per_s", 0.0), 100 * r.value("share_of_ceiling", 0.0));
  std::string text = buf;
  if (r.contains("priority_latency"))
    text += "with a processing number: " + lat(r["priority_latency"]) + "\nwithout: " + lat(r["normal_latency"]) + "\n";
  if (r.contains("first_error")) text += "first error: " + r.value("first_error", "") + "\n";
  text += r.value("audit_ok", false) ? "zf audit: ok\n" : "zf audit: FAILED\n";
  return text;
}

}  // namespace zf::cli
