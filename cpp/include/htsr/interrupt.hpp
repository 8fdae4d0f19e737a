// Stopping a long analysis early (Ctrl-C): the caller hands the pipeline a StopToken built from a check
// (the bindings: "is a Python signal pending?"); the pipeline polls it between layers and between slices,
// starts no new work once it fired, and ends with htsr::Interrupted instead of returning partial results.
#pragma once
#include <atomic>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <thread>

namespace htsr {

// Thrown by the pipeline when its StopToken fired; nothing it computed in the interrupted call is returned.
struct Interrupted : std::runtime_error {
    Interrupted() : std::runtime_error("analysis interrupted") {}
};

class StopToken {
public:
    // check() returns true when the work should stop. It runs only on the thread that made the token (the one
    // Python runs signal handlers on) and at most once per `interval`; other threads (OpenMP workers) read the
    // latched answer.
    explicit StopToken(std::function<bool()> check,
                       std::chrono::steady_clock::duration interval = std::chrono::milliseconds(10));
    StopToken(const StopToken&) = delete;
    StopToken& operator=(const StopToken&) = delete;

    bool requested() const;

private:
    std::function<bool()> check_;
    std::thread::id owner_;
    std::chrono::steady_clock::duration interval_;
    mutable std::atomic<bool> stopped_{false};
    mutable std::chrono::steady_clock::time_point next_check_;  // touched by the owner thread only
};

// Null-safe forms for option structs whose token is optional.
inline bool stop_requested(const StopToken* stop) { return stop != nullptr && stop->requested(); }
void throw_if_stopped(const StopToken* stop);

}  // namespace htsr
