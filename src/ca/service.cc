#include "ca/service.h"

#include <cstdio>
#include <thread>

namespace zf::ca {
namespace {

Json cert_json(const IssuedCert& c) {
  Json j{{"serial", c.serial},
         {"role", c.role},
         {"subject", c.cert.subject_cn()},
         {"user_id", c.cert.user_id()},
         {"key_id", c.cert.subject_key_id()},
         {"not_after", c.cert.not_after()},
         {"certificate", c.cert.pem()},
         {"revoked", c.revoked_at.has_value()}};
  if (c.revoked_at) j["revoked_at"] = *c.revoked_at;
  return j;
}

template <class T, class F>
void reply(httplib::Response& res, const Result<T>& r, F&& to_json) {
  if (!r) return net::write_problem(res, r.error());
  net::write_json(res, to_json(*r));
}

}  // namespace

net::Routes routes(Authority* ca) {
  net::Routes r;
  r.get("/v1/root", [ca](const httplib::Request&, httplib::Response& res) {
    net::write_json(res, Json{{"certificate", ca->root().pem()}});
  });
  r.get("/v1/root.pem", [ca](const httplib::Request&, httplib::Response& res) {
    res.set_content(ca->root().pem(), "application/x-pem-file");
  });

  r.post("/v1/registration-authorities", [ca](const httplib::Request& req, httplib::Response& res) {
    auto body = net::read_json_body(req);
    if (!body) return net::write_problem(res, body.error());
    if (ca->authenticate(net::bearer_token(req)) != Caller::admin)
      return net::write_problem(res, Error{Errc::unauthorized, {}, "admin token required"});
    if (auto s = only_fields(*body, {"name"}); !s) return net::write_problem(res, s.error());
    auto name = get_string(*body, "name", 64);
    if (!name) return net::write_problem(res, name.error());
    reply(res, ca->add_registration_authority(*name), [&](const std::string& token) {
      return Json{{"name", *name}, {"token", token}};
    });
  });

  r.post("/v1/enrollment-codes", [ca](const httplib::Request& req, httplib::Response& res) {
    Caller caller = ca->authenticate(net::bearer_token(req));
    if (caller == Caller::anonymous)
      return net::write_problem(res, Error{Errc::unauthorized, {}, "registration authority token required"});
    auto body = net::read_json_body(req);
    if (!body) return net::write_problem(res, body.error());
    if (auto s = only_fields(*body, {"user_id", "ttl_s"}); !s) return net::write_problem(res, s.error());
    auto user = get_string(*body, "user_id", 64);
    if (!user) return net::write_problem(res, user.error());
    std::int64_t ttl = 86400;
    if (body->contains("ttl_s")) {
      auto t = get_int(*body, "ttl_s");
      if (!t) return net::write_problem(res, t.error());
      ttl = *t;
    }
    reply(res, ca->issue_enrollment_code(caller, *user, ttl), [](const EnrollmentCode& c) {
      return Json{{"code", c.code}, {"user_id", c.user_id}, {"expires_at", c.expires_at}};
    });
  });

  r.post("/v1/certificates", [ca](const httplib::Request& req, httplib::Response& res) {
    Caller caller = ca->authenticate(net::bearer_token(req));
    auto body = net::read_json_body(req);
    if (!body) return net::write_problem(res, body.error());
    if (auto s = only_fields(*body, {"role", "csr", "attestation", "enrollment_code", "validity_days"}); !s)
      return net::write_problem(res, s.error());
    CertRequest cr;
    auto role = get_string(*body, "role", 32);
    if (!role) return net::write_problem(res, role.error());
    cr.role = *role;
    auto csr = get_string(*body, "csr", 16 * 1024);
    if (!csr) return net::write_problem(res, csr.error());
    cr.csr_pem = *csr;
    if (body->contains("attestation")) cr.attestation = (*body)["attestation"];
    if (body->contains("enrollment_code")) {
      auto code = get_string(*body, "enrollment_code", 64);
      if (!code) return net::write_problem(res, code.error());
      cr.enrollment_code = *code;
    }
    if (body->contains("validity_days")) {
      auto v = get_int(*body, "validity_days");
      if (!v) return net::write_problem(res, v.error());
      if (*v < 0 || *v > 3650) return net::write_problem(res, Error{Errc::bad_field, "validity_days", "0..3650"});
      cr.validity_days = static_cast<int>(*v);
    }
    auto issued = ca->issue(caller, cr);
    if (!issued) return net::write_problem(res, issued.error());
    Json j = cert_json(*issued);
    j["chain"] = Json::array({issued->cert.pem(), ca->root().pem()});
    net::write_json(res, j, 201);
  });

  r.get("/v1/certificates", [ca](const httplib::Request& req, httplib::Response& res) {
    if (req.has_param("ski")) {
      return reply(res, ca->find_by_key_id(req.get_param_value("ski")), cert_json);
    }
    auto all = ca->list(ca->authenticate(net::bearer_token(req)));
    reply(res, all, [](const std::vector<IssuedCert>& v) {
      Json arr = Json::array();
      for (const auto& c : v) arr.push_back(cert_json(c));
      return Json{{"certificates", arr}};
    });
  });

  r.get("/v1/secure-elements/{id}", R"(/v1/secure-elements/([A-Za-z0-9._:@-]{1,128}))",
        [ca](const httplib::Request& req, httplib::Response& res) {
          reply(res, ca->find_secure_elements(req.matches[1]), [](const std::vector<IssuedCert>& v) {
            Json arr = Json::array();
            for (const auto& c : v) arr.push_back(cert_json(c));
            return Json{{"certificates", arr}};
          });
        });

  r.get("/v1/certificates/{serial}", R"(/v1/certificates/([0-9a-f]{1,64}))", [ca](const httplib::Request& req, httplib::Response& res) {
    reply(res, ca->find_by_serial(req.matches[1]), cert_json);
  });

  r.post("/v1/certificates/{serial}/revoke", R"(/v1/certificates/([0-9a-f]{1,64})/revoke)", [ca](const httplib::Request& req, httplib::Response& res) {
    Caller caller = ca->authenticate(net::bearer_token(req));
    std::string reason;
    if (!req.body.empty()) {
      auto body = net::read_json_body(req);
      if (!body) return net::write_problem(res, body.error());
      if (auto s = only_fields(*body, {"reason"}); !s) return net::write_problem(res, s.error());
      if (body->contains("reason")) {
        auto r = get_string(*body, "reason", 256);
        if (!r) return net::write_problem(res, r.error());
        reason = *r;
      }
    }
    std::string serial = req.matches[1];
    if (auto s = ca->revoke(caller, serial, reason); !s) return net::write_problem(res, s.error());
    reply(res, ca->find_by_serial(serial), cert_json);
  });

  r.get("/v1/crl", [ca](const httplib::Request&, httplib::Response& res) {
    reply(res, ca->crl(), [](const Crl& c) { return Json{{"crl", c.pem()}, {"next_update", c.next_update()}}; });
  });
  r.get("/v1/crl.pem", [ca](const httplib::Request&, httplib::Response& res) {
    auto c = ca->crl();
    if (!c) return net::write_problem(res, c.error());
    res.set_content(c->pem(), "application/x-pem-file");
  });
  return r;
}

int serve(const std::string& dir, int port, const std::string& port_file, std::int64_t crl_validity_s) {
  auto ca = Authority::open(dir);
  if (!ca) {
    std::fprintf(stderr, "zf ca serve: %s\n", ca.error().message().c_str());
    return 1;
  }
  (*ca)->set_crl_validity(crl_validity_s);
  net::HttpsServer server((*ca)->tls_cert(), (*ca)->tls_key());
  server.serve_routes(routes(ca->get()));
  auto bound = server.bind("127.0.0.1", port);
  if (!bound) {
    std::fprintf(stderr, "zf ca serve: %s\n", bound.error().message().c_str());
    return 1;
  }
  if (!port_file.empty()) {
    if (auto s = net::write_port_file(port_file, *bound); !s) {
      std::fprintf(stderr, "zf ca serve: %s\n", s.error().message().c_str());
      return 1;
    }
  }
  server.stop_on_signals();
  std::printf("zf ca: serving https://127.0.0.1:%d\n", *bound);
  std::fflush(stdout);
  server.run();
  return 0;
}

}  // namespace zf::ca
