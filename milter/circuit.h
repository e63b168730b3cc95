// circuit.h — Circuit: the circuit breaker of one RT server. After
// `failures` consecutive transport failures (no HTTP answer at all) it
// opens: RCPTs for that server are tempfailed at once (451 4.4.1) for the
// cool-down; then one probe transaction is let through, and its outcome
// closes or re-opens the circuit. Every change of state is logged. Kept per
// RT URL across configuration reloads by a CircuitRegistry (the one of a
// RuntimeFamily, runtime.h). Time is what the caller says it is (`now`).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace rtm {

class Circuit {
  public:
    using Clock = std::chrono::steady_clock;

    explicit Circuit(std::string name) : name_(std::move(name)) {}

    // At RCPT: may a transaction for this server go on? (false: 451 4.4.1)
    bool allow(int failures_to_open, std::chrono::seconds cooldown,
               Clock::time_point now = Clock::now());
    // After a POST: was there an HTTP answer of any kind (RT reachable)?
    void record(bool reachable, int failures_to_open, Clock::time_point now = Clock::now());

    enum class State { Closed, Open, HalfOpen };
    State state() const;
    int consecutive_failures() const;

  private:
    void set_state(State state, const std::string& why);

    const std::string name_;
    mutable std::mutex mutex_;
    State state_ = State::Closed;
    int failures_ = 0;
    Clock::time_point opened_at_{};
    Clock::time_point probe_at_{};  // when the half-open probe was let through
    bool probe_out_ = false;
};

// The circuits of the RT servers by URL, shared by every Runtime built with
// the registry's family: a reload keeps each server's state.
class CircuitRegistry {
  public:
    std::shared_ptr<Circuit> for_url(const std::string& url);

  private:
    std::mutex mutex_;
    std::map<std::string, std::shared_ptr<Circuit>> circuits_;
};

}  // namespace rtm
