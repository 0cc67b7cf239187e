// Starting and stopping service processes (zf up, zf demo and integration tests).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/error.h"

namespace zf::net {

// A child process; terminated (SIGTERM, then SIGKILL) when destroyed.
class Child {
 public:
  Child() = default;
  Child(Child&& o) noexcept : pid_(o.pid_) { o.pid_ = -1; }
  Child& operator=(Child&& o) noexcept;
  ~Child();
  // Starts argv[0] with `args`; stdout and stderr go to `log_path` (appended).
  // Unless `die_with_parent` is false the child gets SIGTERM when the parent
  // *thread* that spawned it exits (PR_SET_PDEATHSIG): spawn from a thread that
  // outlives the child, e.g. the main thread.
  static Result<Child> spawn(const std::vector<std::string>& argv, const std::string& log_path,
                             bool die_with_parent = true);
  pid_t pid() const { return pid_; }
  bool running();
  // SIGTERM, wait up to `grace`, then SIGKILL; returns the exit status.
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));
  // SIGKILL at once (crash tests).
  void kill9();
  // Leaves the process running past this object's life (zf up); returns its pid.
  pid_t detach() {
    pid_t p = pid_;
    pid_ = -1;
    return p;
  }

 private:
  pid_t pid_ = -1;
};

// Waits until `path` holds a port number written by a starting service.
Result<int> wait_for_port_file(const std::string& path, Child& child,
                               std::chrono::milliseconds timeout = std::chrono::milliseconds(15000));

// The path of the running executable (to start sibling `zf` processes).
std::string self_exe();

}  // namespace zf::net
