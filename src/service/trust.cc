#include "service/trust.h"

#include <openssl/x509.h>

#include <cstdio>

#include "ca/client.h"
#include "service/identity.h"

namespace zf::service {
namespace {

// The CRL's thisUpdate, for "never go back to an older list".
std::time_t crl_this_update(const Crl& crl) {
  const ASN1_TIME* t = X509_CRL_get0_lastUpdate(crl.get());
  if (!t) return 0;
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return timegm(&tm);
}

}  // namespace

Status TrustStore::install_crl(const Crl& crl, std::time_t now) {
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(root_.get())) != 0)
    return fail(Errc::cert_untrusted, "CRL names another issuer", "crl");
  if (X509_CRL_verify(crl.get(), X509_get0_pubkey(root_.get())) != 1)
    return fail(Errc::bad_signature, "CRL signature does not verify", "crl");
  if (crl.next_update() <= now) return fail(Errc::expired, "CRL is past its next update", "crl");
  std::unique_lock lock(mu_);
  if (crl_ && crl_this_update(crl) < crl_this_update(*crl_))
    return fail(Errc::conflict, "CRL is older than the one in use", "crl");
  crl_ = crl;
  return {};
}

std::optional<Crl> TrustStore::crl() const {
  std::shared_lock lock(mu_);
  return crl_;
}

bool TrustStore::has_valid_crl(std::time_t now) const {
  std::shared_lock lock(mu_);
  return crl_ && crl_->next_update() > now;
}

Result<CertVerifier> TrustStore::verifier(std::time_t now) const {
  CertVerifier v(root_);
  std::shared_lock lock(mu_);
  if (!crl_ || crl_->next_update() <= now)
    return fail(Errc::unavailable, "no current revocation list from the CA; try again later");
  v.set_crl(crl_);
  v.set_cache(chains_);
  return v;
}

void TrustStore::install_cached(const std::string& path, std::time_t now) {
  if (auto cached = read_text_file(path); cached)
    if (auto crl = Crl::from_pem(*cached); crl) (void)install_crl(*crl, now);
}

CrlRefresher::CrlRefresher(CrlHolder& holder, std::string name, std::string refused,
                           std::string ca_url, std::string cache_path,
                           std::chrono::seconds interval)
    : holder_(holder),
      name_(std::move(name)),
      refused_(std::move(refused)),
      ca_url_(std::move(ca_url)),
      cache_path_(std::move(cache_path)),
      interval_(interval) {}

CrlRefresher::~CrlRefresher() { stop(); }

Status CrlRefresher::refresh_now() {
  std::lock_guard fetch(fetch_mu_);
  auto client = ca::CaClient::connect(ca_url_, holder_.root());
  if (!client) return std::unexpected(client.error());
  auto crl = client->crl();
  if (!crl) return std::unexpected(crl.error());
  if (auto s = holder_.install_crl(*crl); !s) return s;
  if (!cache_path_.empty()) return write_text_file(cache_path_, crl->pem(), 0644);
  return {};
}

void CrlRefresher::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { loop(); });
}

void CrlRefresher::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CrlRefresher::loop() {
  for (;;) {
    // Without a valid CRL the holder refuses everything it checks, so ask again soon.
    auto wait = holder_.has_valid_crl() ? interval_ : std::min(interval_, std::chrono::seconds(2));
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, wait, [this] { return stopping_; })) return;
    }
    if (auto s = refresh_now(); !s) {
      std::fprintf(stderr, "zf %s: CRL refresh failed (%s); %s\n", name_.c_str(),
                   s.error().message().c_str(),
                   holder_.has_valid_crl() ? "keeping the last CRL"
                                           : ("refusing " + refused_ + " until a CRL arrives").c_str());
      std::fflush(stderr);
    }
  }
}

}  // namespace zf::service
