// StopToken: a latched, throttled cancellation check (see htsr/interrupt.hpp).
#include "htsr/interrupt.hpp"

#include <utility>

namespace htsr {

StopToken::StopToken(std::function<bool()> check, std::chrono::steady_clock::duration interval)
    : check_(std::move(check)), owner_(std::this_thread::get_id()), interval_(interval),
      next_check_(std::chrono::steady_clock::now()) {}

bool StopToken::requested() const {
    if (stopped_.load(std::memory_order_relaxed)) return true;
    // Only the owner runs the check: signal handlers run on that thread, and the check may take Python's GIL.
    if (!check_ || std::this_thread::get_id() != owner_) return false;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_check_) return false;
    next_check_ = now + interval_;
    if (!check_()) return false;
    stopped_.store(true, std::memory_order_relaxed);
    return true;
}

void throw_if_stopped(const StopToken* stop) {
    if (stop_requested(stop)) throw Interrupted();
}

}  // namespace htsr
