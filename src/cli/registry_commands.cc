// `zf registry ...`: the transfer-record server (init, serve) and its client
// commands (claim, query, alerts, info). See docs/registry-api.md.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "ca/client.h"
#include "cli/commands.h"
#include "cli/util.h"
#include "registry/api.h"
#include "registry/client.h"
#include "registry/registry.h"
#include "registry/service.h"

namespace zf::cli {
namespace {

// Where a command finds the registry and how it authenticates.
struct RegistryRemote {
  std::string url;
  std::string id;
  std::string root_file;
  std::string token_file;
  bool wants_token = false;

  void add_to(CLI::App* cmd, bool admin) {
    wants_token = admin;
    cmd->add_option("--url", url, "registry base URL, e.g. https://127.0.0.1:8445")->required();
    cmd->add_option("--id", id,
                    "the registry id its TLS certificate must name (without it, any registry of this CA)");
    cmd->add_option("--root", root_file, "the CA root certificate (PEM) to trust")
        ->required()
        ->check(CLI::ExistingFile);
    if (admin)
      cmd->add_option("--token-file", token_file,
                      "file holding the registry admin token (or set ZF_TOKEN)");
  }
  Result<Certificate> root() const { return Certificate::from_pem(read_all(root_file)); }
  Result<registry::RegistryClient> connect() const {
    auto r = root();
    if (!r) return std::unexpected(r.error());
    std::string token;
    if (wants_token) {
      if (!token_file.empty())
        token = strip(read_all(token_file));
      else if (const char* env = std::getenv("ZF_TOKEN"))
        token = env;
    }
    return registry::RegistryClient::connect(url, *r, id, token);
  }
};

// A verified record as one JSON line, with the JWS for whoever needs the proof.
Json record_json(const registry::RecordView& r, const std::string& jws) {
  Json j{{"status", std::string(registry::record_status_name(r.status))},
         {"doc_id", r.doc_id},
         {"processor", r.processor},
         {"result_digest", b64url_encode(r.result_digest)},
         {"registry", r.registry},
         {"record", jws}};
  if (r.doc_issuer) j["doc_issuer"] = *r.doc_issuer;
  if (r.doc_seq) j["doc_seq"] = *r.doc_seq;
  if (r.doc_type) j["doc_type"] = *r.doc_type;
  if (r.claimed_at) j["claimed_at"] = *r.claimed_at;
  return j;
}

}  // namespace

void add_registry_commands(CLI::App& app, int& exit_code) {
  auto* reg = app.add_subcommand("registry", "transfer-record server (registry)");
  reg->require_subcommand(1);

  {
    auto* cmd = reg->add_subcommand(
        "init",
        "create a registry state directory: registry key (0600) and certificate, TLS "
        "certificate, admin token, registry.db");
    auto opts = std::make_shared<registry::InitOptions>();
    auto root_file = std::make_shared<std::string>();
    auto token_file = std::make_shared<std::string>();
    cmd->add_option("--dir", opts->dir, "state directory")->required();
    cmd->add_option("--id", opts->registry_id,
                    "registry id, e.g. registry-1 (the registry certificate's CN)")
        ->required();
    cmd->add_option("--ca-url", opts->ca_url, "CA base URL")->required();
    cmd->add_option("--ca-root", *root_file, "the CA root certificate (PEM)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--ca-token-file", *token_file, "file holding the CA admin token")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--db", opts->db_url,
                    "keep the records in this PostgreSQL database (postgresql://user@host/db); default: registry.db "
                    "in --dir");
    cmd->callback([opts, root_file, token_file, &exit_code] {
      opts->ca_root_pem = read_all(*root_file);
      auto root = Certificate::from_pem(opts->ca_root_pem);
      if (!root) return void(exit_code = complain(root.error(), "registry init"));
      auto ca = ca::CaClient::connect(opts->ca_url, *root, strip(read_all(*token_file)));
      if (!ca) return void(exit_code = complain(ca.error(), "registry init"));
      auto issue = [&](const std::string& role, const std::string& csr) {
        return ca->request_certificate(role, csr);
      };
      if (auto s = registry::init_registry(*opts, issue); !s)
        return void(exit_code = complain(s.error(), "registry init"));
      std::printf("registry %s created in %s (registry.pem, admin.token)\n",
                  opts->registry_id.c_str(), opts->dir.c_str());
    });
  }
  {
    auto* cmd = reg->add_subcommand("serve", "serve the registry over HTTPS on 127.0.0.1");
    auto opts = std::make_shared<registry::ServeOptions>();
    cmd->add_option("--dir", opts->dir, "state directory")->required();
    cmd->add_option("--port", opts->port, "TCP port (0 picks a free one)");
    cmd->add_option("--port-file", opts->port_file, "write the bound port here");
    cmd->add_option("--ca-url", opts->ca_url, "CA base URL (default: the one given at init)");
    cmd->add_option("--crl-refresh-s", opts->crl_refresh_s,
                    "seconds between CRL fetches (default 60)")
        ->check(CLI::Range(1, 86400));
    cmd->callback([opts, &exit_code] { exit_code = registry::serve(*opts); });
  }
  {
    auto* cmd = reg->add_subcommand(
        "claim",
        "submit a signed claim (compact JWS in a file, or - for stdin) and print the verified "
        "record");
    auto remote = std::make_shared<RegistryRemote>();
    auto file = std::make_shared<std::string>();
    remote->add_to(cmd, false);
    cmd->add_option("--claim-file", *file, "file holding the signed claim")->required();
    cmd->callback([=, &exit_code] {
      std::string jws;
      if (*file == "-") {
        std::stringstream ss;
        ss << std::cin.rdbuf();
        jws = strip(ss.str());
      } else {
        jws = strip(read_all(*file));
      }
      auto root = remote->root();
      if (!root) return void(exit_code = complain(root.error(), "registry claim"));
      auto c = remote->connect();
      if (!c) return void(exit_code = complain(c.error(), "registry claim"));
      auto record = c->claim(jws);
      if (!record) return void(exit_code = complain(record.error(), "registry claim"));
      auto view = registry::open_record(*record, CertVerifier(*root));
      if (!view) return void(exit_code = complain(view.error(), "registry claim"));
      std::printf("%s\n", dump_json(record_json(*view, *record)).c_str());
    });
  }
  {
    auto* cmd = reg->add_subcommand(
        "query",
        "print the verified record of a document id (exit 1 if there is none); records are not public: "
        "present the document (--document) or the admin token (--token-file)");
    auto remote = std::make_shared<RegistryRemote>();
    auto doc_id = std::make_shared<std::string>();
    auto document = std::make_shared<std::string>();
    remote->add_to(cmd, true);
    cmd->add_option("doc_id", *doc_id, "the document id")->required();
    cmd->add_option("--document", *document, "the document itself (compact JWS file), to read its record")
        ->check(CLI::ExistingFile);
    cmd->callback([=, &exit_code] {
      auto root = remote->root();
      if (!root) return void(exit_code = complain(root.error(), "registry query"));
      auto c = remote->connect();
      if (!c) return void(exit_code = complain(c.error(), "registry query"));
      auto record = document->empty() ? c->query(*doc_id)
                                      : c->query_with_document(*doc_id, strip(read_all(*document)));
      if (!record && record.error().code == Errc::not_found) {
        std::fprintf(stderr, "zf registry query: %s\n", record.error().message().c_str());
        return void(exit_code = 1);
      }
      if (!record) return void(exit_code = complain(record.error(), "registry query"));
      auto view = registry::open_record(*record, CertVerifier(*root));
      if (!view) return void(exit_code = complain(view.error(), "registry query"));
      std::printf("%s\n", dump_json(record_json(*view, *record)).c_str());
    });
  }
  {
    auto* cmd = reg->add_subcommand(
        "alerts", "list clone/rollback alerts: reused (SE, seq) pairs (admin), one JSON per line");
    auto remote = std::make_shared<RegistryRemote>();
    auto after = std::make_shared<std::int64_t>(0);
    remote->add_to(cmd, true);
    cmd->add_option("--after", *after, "only alerts with a larger id")
        ->check(CLI::NonNegativeNumber);
    cmd->callback([=, &exit_code] {
      auto c = remote->connect();
      if (!c) return void(exit_code = complain(c.error(), "registry alerts"));
      std::int64_t cursor = *after;
      std::size_t total = 0;
      for (;;) {
        auto page = c->alerts(cursor, 1000);
        if (!page) return void(exit_code = complain(page.error(), "registry alerts"));
        for (const auto& a : *page) {
          Json j = registry::alert_to_json(a);
          j.erase("second_claim");  // evidence; fetch it over the API when needed
          std::printf("%s\n", dump_json(j).c_str());
          cursor = a.id;
        }
        total += page->size();
        if (page->size() < 1000) break;
      }
      std::fprintf(stderr, "%zu alert(s)\n", total);
    });
  }
  {
    auto* cmd = reg->add_subcommand("info", "show the registry id and certificate");
    auto remote = std::make_shared<RegistryRemote>();
    remote->add_to(cmd, false);
    cmd->callback([=, &exit_code] {
      auto c = remote->connect();
      if (!c) return void(exit_code = complain(c.error(), "registry info"));
      auto i = c->info();
      if (!i) return void(exit_code = complain(i.error(), "registry info"));
      std::printf("registry %s (CRL %s)\n%s", i->registry_id.c_str(),
                  i->crl_valid ? "current" : "missing or expired", i->certificate.pem().c_str());
    });
  }
}

}  // namespace zf::cli
