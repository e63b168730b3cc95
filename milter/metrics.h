// metrics.h — what rt-milter counts for its operators: the process-wide
// counters and histograms (transactions by verdict, POSTs by server and
// outcome and their seconds, posted sizes, the journal's duplicates,
// in-doubt resolutions and errors, configuration loads), and their
// rendering in the Prometheus text exposition format (version 0.0.4).
// Counting is a relaxed atomic add: the hot path pays nothing measurable.
// Gauges that describe the present (transactions in flight, POSTs waiting,
// circuits, the journal's health) are read when a scrape asks, by
// metrics_server.cpp, and handed to render() as Present. Labels stay
// bounded: verdicts, outcomes, and RT server names from the configuration;
// never a sender, a recipient or a Message-ID.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "rt_reply.h"

namespace rtm::metrics {

enum class TxVerdict { Accepted, Tempfailed, Rejected, NotOurs };
enum class PostOutcome { Ok, NotOk, TemporaryFailure, TransportError, Timeout };
enum class InDoubtResolution { FoundInRt, NotInRt, Rest2Failed, CountedDelivered, PostedAgain };

// A histogram with fixed upper bounds (le), +Inf last.
template <std::size_t N>
struct Histogram {
    explicit constexpr Histogram(std::array<double, N> bounds) : le(bounds) {}
    void observe(double value);
    const std::array<double, N> le;
    std::array<std::atomic<std::uint64_t>, N + 1> buckets{};  // not cumulative; [N] is +Inf
    std::atomic<double> sum{0};
};

// The counters of one RT server, by name. Never freed: a server removed by a
// reload keeps its counts since start.
struct ServerCounters {
    std::string name;
    std::array<std::atomic<std::uint64_t>, 5> posts{};  // by PostOutcome
    Histogram<11> seconds{{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}};
    // The last transport or RT error, for --status ("" when none yet).
    std::string last_error() const;
    void set_last_error(const std::string& text);
    double last_error_at() const { return last_error_at_.load(std::memory_order_relaxed); }

  private:
    mutable std::mutex mutex_;  // taken only on errors and by /status
    std::string last_error_;
    std::atomic<double> last_error_at_{0};
};

// The server's counters, made on first use (a lock and a lookup: once per
// ServerPool, which keeps the reference).
ServerCounters& server(const std::string& name);

void count_transaction(TxVerdict verdict);
void count_rcpt_refusal(bool temporary);
PostOutcome outcome_of(const RtReply& reply);
void count_post(ServerCounters& server, const RtReply& reply, double seconds);
void count_posted_bytes(std::uint64_t bytes);
void count_journal_duplicate();
void count_in_doubt(InDoubtResolution resolution);
void count_journal_error();
// A configuration load at start or by a reload: ok or not.
void count_config_load(bool ok);

// The present, read at scrape time by whoever holds the runtime.
struct ServerPresent {
    std::string name;
    std::string state;  // "closed", "open", "half_open"
    std::size_t waiting = 0, in_progress = 0, slots = 0;
};
struct Present {
    bool configured = false;
    int in_flight = 0;
    bool journal_on = false, journal_usable = true;
    std::string journal_error;  // why not usable
    std::vector<ServerPresent> servers;
};

// The whole exposition, counters since start and the present.
std::string render(const Present& present);

// Read by --status and the tests: counters since start.
struct Totals {
    std::uint64_t accepted = 0, tempfailed = 0, rejected = 0, not_ours = 0;
    std::uint64_t rcpt_tempfailed = 0, rcpt_rejected = 0;
    std::uint64_t duplicates = 0, journal_errors = 0, in_doubt = 0;
    std::uint64_t config_generation = 0;
    double last_reload_ok_at = 0;  // seconds since the epoch
    double started_at = 0;
};
Totals totals();
std::vector<const ServerCounters*> servers();

const char* to_string(PostOutcome outcome);

}  // namespace rtm::metrics
