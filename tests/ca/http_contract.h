// Holds a service's route table (net::Routes, the very list its server
// registers) against its OpenAPI file as an independent validator reads it
// (tests/openapi/openapi_peer.mjs, npm @apidevtools/swagger-parser), and checks
// that a real request to every route of the running process answers with a
// status and media type the file describes. Needs ZF_OPENAPI_PEER (the script)
// and ZF_DOCS_DIR.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <map>
#include <regex>
#include <set>
#include <string>

#include "core/json.h"
#include "core/x509.h"
#include "net/http.h"

namespace zf::test {

// The path of an OpenAPI file under docs/.
inline std::string docs_file(const std::string& name) {
  return std::string(ZF_DOCS_DIR) + "/" + name;
}

// Runs the validator on `yaml`; `ok` false with its message when the file is not valid.
struct OpenApiSummary {
  bool ok = false;
  std::string message;
  Json paths;  // path -> method -> {responses: {status: [media types]}, secured}
};

inline OpenApiSummary read_openapi(const std::string& yaml) {
  OpenApiSummary out;
  std::string cmd = "node '" + std::string(ZF_OPENAPI_PEER) + "' '" + yaml + "' 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    out.message = "cannot start node";
    return out;
  }
  std::string text;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) text.append(buf, n);
  int status = ::pclose(p);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    out.message = text.empty() ? "node could not run the OpenAPI validator" : text;
    return out;
  }
  auto j = parse_json_strict(text, {4 << 20, 64});
  if (!j || !j->contains("paths")) {
    out.message = "unexpected validator output: " + text;
    return out;
  }
  out.ok = true;
  out.paths = (*j)["paths"];
  return out;
}

// One real request to a running service.
struct Answer {
  int status = 0;
  std::string media_type;  // Content-Type without parameters
  std::string allow;
  Json body;  // parsed when JSON
};

inline Answer http_request(const std::string& base_url, const Certificate& root,
                           const std::string& method, const std::string& path,
                           const std::string& token = {}, const std::string& body = {},
                           const std::string& content_type = "application/json") {
  httplib::Client c(base_url);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, root.get());
  c.set_ca_cert_store(store);
  c.enable_server_certificate_verification(true);
  httplib::Headers h;
  if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
  httplib::Result res = method == "GET"    ? c.Get(path, h)
                        : method == "POST" ? c.Post(path, h, body, content_type)
                        : method == "PUT"  ? c.Put(path, h, body, content_type)
                                           : c.Delete(path, h);
  Answer a;
  if (!res) return a;
  a.status = res->status;
  std::string ct = res->get_header_value("Content-Type");
  a.media_type = ct.substr(0, ct.find(';'));
  a.allow = res->get_header_value("Allow");
  if (auto j = parse_json_strict(res->body, {4 << 20, 64})) a.body = *j;
  return a;
}

// Checks, for every route of `routes`, that the OpenAPI file `yaml` describes it
// (and describes nothing else), then asks the running service at `base_url`
// once anonymously and once with `admin_token`: every answer's status is one
// the file lists for that route (or its `default`), with a media type listed
// for it. A wrong method is 405 with Allow; a POST body in another media type
// is 415; a body that is not JSON is refused in our own words. `samples` gives
// a concrete request path for each templated path.
inline void check_routes_against_openapi(const net::Routes& routes, const std::string& yaml,
                                         const std::string& base_url, const Certificate& root,
                                         const std::string& admin_token,
                                         const std::map<std::string, std::string>& samples) {
  OpenApiSummary api = read_openapi(yaml);
  ASSERT_TRUE(api.ok) << yaml << ": " << api.message;

  std::set<std::pair<std::string, std::string>> served;
  for (const auto& r : routes.list()) {
    served.insert({r.path, r.method});
    EXPECT_TRUE(api.paths.contains(r.path) && api.paths[r.path].contains(r.method))
        << r.method << " " << r.path << " is served but not described in " << yaml;
  }
  for (const auto& [path, item] : api.paths.items())
    for (const auto& [method, _] : item.items())
      EXPECT_TRUE(served.count({path, method}))
          << method << " " << path << " is described in " << yaml << " but not served";

  for (const auto& r : routes.list()) {
    SCOPED_TRACE(r.method + " " + r.path);
    std::string path = r.path;
    if (path.find('{') != std::string::npos) {
      auto s = samples.find(r.path);
      ASSERT_NE(s, samples.end()) << "no sample request path for " << r.path;
      path = s->second;
    }
    EXPECT_TRUE(std::regex_match(path, std::regex(r.pattern))) << path << " vs " << r.pattern;
    if (!api.paths.contains(r.path) || !api.paths[r.path].contains(r.method)) continue;
    const Json& responses = api.paths[r.path][r.method]["responses"];

    auto described = [&](const Answer& a, const std::string& who) {
      ASSERT_NE(a.status, 0) << who << ": no answer";
      std::string key = std::to_string(a.status);
      if (!responses.contains(key)) key = "default";
      ASSERT_TRUE(responses.contains(key))
          << who << ": status " << a.status << " is not described (" << responses.dump() << ")";
      const Json& types = responses[key];
      if (!types.empty()) {
        bool listed = false;
        for (const auto& t : types) listed = listed || t == a.media_type;
        EXPECT_TRUE(listed) << who << ": " << a.status << " answered " << a.media_type
                            << ", described " << types.dump();
      }
      if (a.status >= 400) {
        EXPECT_EQ(a.media_type, "application/problem+json") << who;
        EXPECT_EQ(a.body.value("status", 0), a.status) << who;
        std::string detail = a.body.value("detail", "");
        EXPECT_EQ(detail.find("json.exception"), std::string::npos) << who << ": " << detail;
      }
    };
    std::string body = r.method == "POST" ? "{}" : "";
    described(http_request(base_url, root, r.method, path, {}, body), "anonymous");
    described(http_request(base_url, root, r.method, path, admin_token, body), "admin");

    // Another method on the same path: 405 naming the ones it answers.
    bool other_served = false;
    std::string other = r.method == "GET" ? "POST" : "GET";
    for (const auto& o : routes.list())
      other_served = other_served || (o.pattern == r.pattern && o.method == other);
    if (!other_served) {
      Answer wrong =
          http_request(base_url, root, other, path, admin_token, other == "POST" ? "{}" : "");
      EXPECT_EQ(wrong.status, 405) << other << " " << path;
      EXPECT_EQ(wrong.body.value("code", ""), "method_not_allowed");
      EXPECT_NE(wrong.allow.find(r.method), std::string::npos) << "Allow: " << wrong.allow;
    }
    Answer put = http_request(base_url, root, "PUT", path, admin_token, "{}");
    EXPECT_EQ(put.status, 405) << "PUT " << path;

    if (r.method == "POST") {
      // The media type is checked before anything else, the token included.
      for (const std::string& token : {std::string(), admin_token}) {
        Answer text = http_request(base_url, root, "POST", path, token, "{}", "text/plain");
        EXPECT_EQ(text.status, 415) << path;
        EXPECT_EQ(text.body.value("code", ""), "unsupported_media_type");
        Answer form = http_request(base_url, root, "POST", path, token, "a=1",
                                   "application/x-www-form-urlencoded");
        EXPECT_EQ(form.status, 415) << path;
      }
      Answer charset = http_request(base_url, root, "POST", path, admin_token, "{}",
                                    "application/json; charset=utf-8");
      EXPECT_NE(charset.status, 415) << path;
      // Not JSON at all: refused by name, in our words, never the parser's.
      Answer broken = http_request(base_url, root, "POST", path, admin_token, "{\"a\": [1,");
      described(broken, "broken JSON");
    }
  }
}

}  // namespace zf::test
