#include "cli/util.h"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace zf::cli {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string strip(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

int complain(const Error& e, const std::string& what) {
  std::fprintf(stderr, "zf %s: %s\n", what.c_str(), e.message().c_str());
  return 2;
}

}  // namespace zf::cli
