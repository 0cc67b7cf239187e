// The emulated SE manufacturer (DESIGN.md §2): a manufacturer CA whose device
// certificates (role se-attestation) are burned into each SE at creation.
#pragma once

#include <string>

#include "core/x509.h"

namespace zf::ca {

// Creates manufacturer.key (0600) and manufacturer.pem in `dir`.
Status init_manufacturer(const std::string& dir, const std::string& name);

// A device's attestation identity as the factory hands it to an SE.
struct DeviceIdentity {
  PrivateKey key;
  std::vector<Certificate> chain;  // device certificate, manufacturer root
};

// Issues an attestation key and certificate for device `se_id`.
Result<DeviceIdentity> make_device(const std::string& manufacturer_dir, const std::string& se_id);
// Writes attest.key (0600) and attest.pem (chain) into `out_dir`; reads them back.
Status save_device(const DeviceIdentity& dev, const std::string& out_dir);
Result<DeviceIdentity> load_device(const std::string& dir);

}  // namespace zf::ca
