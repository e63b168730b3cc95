// circuit.h — Circuit: the circuit breaker of one RT server. After
// `failures` consecutive transport failures (no HTTP answer at all) it
// opens: RCPTs for that server are tempfailed at once (451 4.4.1) for the
// cool-down; then one probe transaction is let through, and its outcome
// closes or re-opens the circuit. Every change of state is logged. Kept per
// RT URL across configuration reloads (circuit_for).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

namespace rtm {

class Circuit {
public:
    using Clock = std::chrono::steady_clock;

    explicit Circuit(std::string name) : name_(std::move(name)) {}

    // At RCPT: may a transaction for this server go on? (false: 451 4.4.1)
    bool allow(int failures_to_open, std::chrono::seconds cooldown, Clock::time_point now = Clock::now());
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

// The circuit of the RT server at url, shared by every Runtime.
std::shared_ptr<Circuit> circuit_for(const std::string& url);

}  // namespace rtm
