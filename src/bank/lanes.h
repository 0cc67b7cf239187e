// The bank's admission to its work (DESIGN.md §6.10): at most `capacity`
// documents are worked on at once; the others wait, and a waiting document
// with a designated processing number goes in before every waiting one
// without. FIFO is not promised within a lane.
#pragma once

#include <condition_variable>
#include <mutex>

namespace zf::bank {

class Lanes {
 public:
  explicit Lanes(int capacity) : free_(capacity) {}

  // A place among the documents being worked on, given back when destroyed.
  class Ticket {
   public:
    Ticket() = default;
    explicit Ticket(Lanes* lanes) : lanes_(lanes) {}
    Ticket(Ticket&& o) noexcept : lanes_(o.lanes_) { o.lanes_ = nullptr; }
    Ticket& operator=(Ticket&& o) noexcept {
      if (this != &o) {
        release();
        lanes_ = o.lanes_;
        o.lanes_ = nullptr;
      }
      return *this;
    }
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { release(); }

   private:
    void release() {
      if (lanes_) lanes_->leave();
      lanes_ = nullptr;
    }
    Lanes* lanes_ = nullptr;
  };

  // Waits for a place: a priority document only for a free place, another
  // also until no priority document is waiting.
  Ticket enter(bool priority) {
    std::unique_lock lock(mu_);
    if (priority) {
      ++priority_waiting_;
      cv_.wait(lock, [&] { return free_ > 0; });
      --priority_waiting_;
    } else {
      ++normal_waiting_;
      cv_.wait(lock, [&] { return free_ > 0 && priority_waiting_ == 0; });
      --normal_waiting_;
    }
    --free_;
    return Ticket(this);
  }

  // For tests: how many wait in each lane now.
  int priority_waiting() {
    std::lock_guard lock(mu_);
    return priority_waiting_;
  }
  int normal_waiting() {
    std::lock_guard lock(mu_);
    return normal_waiting_;
  }

 private:
  void leave() {
    {
      std::lock_guard lock(mu_);
      ++free_;
    }
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  int free_;
  int priority_waiting_ = 0;
  int normal_waiting_ = 0;
};

}  // namespace zf::bank
