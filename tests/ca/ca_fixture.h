// Shared set-up for CA tests: a temporary directory with a manufacturer and a CA.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "ca/authority.h"
#include "ca/manufacturer.h"

namespace zf::test {

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh temporary directory, removed afterwards.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "zf-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A manufacturer, a trusted CA and two devices.
struct CaWorld {
  TempDir tmp;
  std::string ca_dir = (tmp.path() / "ca").string();
  std::string mfr_dir = (tmp.path() / "mfr").string();
  std::string rogue_mfr_dir = (tmp.path() / "rogue").string();

  CaWorld() {
    EXPECT_TRUE(ca::init_manufacturer(mfr_dir, "Test Manufacturer"));
    EXPECT_TRUE(ca::init_manufacturer(rogue_mfr_dir, "Untrusted Manufacturer"));
    ca::InitOptions o;
    o.dir = ca_dir;
    o.manufacturer_roots_pem = slurp(std::filesystem::path(mfr_dir) / "manufacturer.pem");
    EXPECT_TRUE(ca::init_ca(o));
  }
  Certificate root() const { return *Certificate::from_pem(slurp(std::filesystem::path(ca_dir) / "root.pem")); }
  std::string admin_token() const {
    std::string t = slurp(std::filesystem::path(ca_dir) / "admin.token");
    while (!t.empty() && t.back() == '\n') t.pop_back();
    return t;
  }
};

}  // namespace zf::test
