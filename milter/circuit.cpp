// circuit.cpp — the per-server circuit breaker and the registry that keeps
// one per RT URL.
#include "circuit.h"

#include "log.h"
#include "url.h"

namespace rtm {

bool Circuit::allow(int failures_to_open, std::chrono::seconds cooldown, Clock::time_point now) {
    if (failures_to_open <= 0) return true;
    std::lock_guard lock(mutex_);
    switch (state_) {
        case State::Closed:
            return true;
        case State::Open:
            if (now - opened_at_ < cooldown) return false;
            set_state(State::HalfOpen,
                      "cool-down of " + std::to_string(cooldown.count()) + " s over; one probe");
            probe_out_ = true;
            probe_at_ = now;
            return true;
        case State::HalfOpen:
            // One probe at a time; a probe whose transaction never reached its
            // POST (the client went away) is replaced after a cool-down.
            if (probe_out_ && now - probe_at_ < cooldown) return false;
            probe_out_ = true;
            probe_at_ = now;
            return true;
    }
    return true;
}

void Circuit::record(bool reachable, int failures_to_open, Clock::time_point now) {
    if (failures_to_open <= 0) return;
    std::lock_guard lock(mutex_);
    if (reachable) {
        failures_ = 0;
        probe_out_ = false;
        if (state_ != State::Closed) set_state(State::Closed, "RT answered");
        return;
    }
    ++failures_;
    if (state_ == State::HalfOpen || (state_ == State::Closed && failures_ >= failures_to_open)) {
        opened_at_ = now;
        probe_out_ = false;
        set_state(State::Open, std::to_string(failures_) + " consecutive failure(s) to reach RT");
    }
}

Circuit::State Circuit::state() const {
    std::lock_guard lock(mutex_);
    return state_;
}

int Circuit::consecutive_failures() const {
    std::lock_guard lock(mutex_);
    return failures_;
}

void Circuit::set_state(State state, const std::string& why) {
    static const char* names[] = {"closed", "open", "half-open"};
    log::warning("circuit for RT server " + name_ + ": " + names[static_cast<int>(state_)] +
                 " -> " + names[static_cast<int>(state)] + " (" + why + ")");
    state_ = state;
}

std::shared_ptr<Circuit> CircuitRegistry::for_url(const std::string& url) {
    std::lock_guard lock(mutex_);
    auto& c = circuits_[url];
    if (!c) c = std::make_shared<Circuit>(redact_url(url));  // its name goes into log lines
    return c;
}

}  // namespace rtm
