// runtime.h — Runtime: everything a session needs that outlives it and is
// built from one configuration: the Config itself, its RouteTable, and per
// RT server a fixed pool of posting workers (each with its kept connection;
// their number caps the POSTs in flight) and its circuit breaker; and the
// duplicate journal. Built whole at start and on every reload; sessions hold the
// shared_ptr they started with, so a reload never changes a transaction.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "circuit.h"
#include "config.h"
#include "journal.h"
#include "metrics.h"
#include "rt_client.h"
#include "routing.h"

namespace rtm {

// The HTTP client options of one RT server: timeout, deadline, TLS,
// redirects and a locked gateway's credentials.
ClientOptions client_options(const RtServer& server);

class ServerPool {
public:
    using Clock = std::chrono::steady_clock;
    using Job = std::function<void(RtClient*)>;

    explicit ServerPool(const RtServer& server);
    ~ServerPool();  // stop()
    // Runs what is queued, then stops and joins the workers; a job submitted
    // later runs at once with nullptr (RT not asked). Idempotent.
    void stop();
    ServerPool(const ServerPool&) = delete;
    ServerPool& operator=(const ServerPool&) = delete;

    // Runs job on one of this server's workers with that worker's RtClient
    // (its connection kept alive across jobs). There are at most
    // max_concurrent workers, started as needed and then kept: that is the
    // cap on POSTs in flight to this server and on threads per server,
    // however many targets the messages of the moment have. A job still
    // queued at start_by runs with nullptr instead: RT was not asked.
    // Throws only when no worker can be started (nothing is queued then).
    std::future<void> submit(Job job, Clock::time_point start_by);

    const RtServer& server() const { return server_; }
    Circuit& circuit() const { return *circuit_; }
    // What the metrics count for this server (by name, since start).
    metrics::ServerCounters& counters() const { return counters_; }
    // Now: jobs queued for a worker, and jobs a worker is running.
    std::size_t waiting() const;
    std::size_t in_progress() const;

private:
    struct Queued {
        std::packaged_task<void(RtClient*)> task;
        Clock::time_point start_by;
    };
    void work();

    RtServer server_;
    std::shared_ptr<Circuit> circuit_;
    metrics::ServerCounters& counters_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Queued> queue_;
    std::vector<std::thread> workers_;
    std::size_t idle_ = 0;  // workers waiting for a job
    bool stopping_ = false;
};

class Runtime {
public:
    explicit Runtime(Config config);
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    const Config& config() const { return config_; }
    const RouteTable& routes() const { return routes_; }
    ServerPool& pool(const std::string& server) const { return *pools_.at(server); }
    const std::map<std::string, std::unique_ptr<ServerPool>>& pools() const { return pools_; }
    // Stops every server's pool (ServerPool::stop): at exit, so the workers
    // end, and OpenSSL frees their per-thread state, before its own atexit
    // cleanup runs (which comes before the destructors of our globals).
    void stop_posting() const;

    // The duplicate journal: null when it is off (journal = "") or could not
    // be opened (then journal_error() says why). A PostgreSQL journal whose
    // server was down at start is kept (journal_error() says so): it
    // connects once the server is back.
    Journal* journal() const { return journal_.get(); }
    const std::string& journal_error() const { return journal_error_; }

private:
    Config config_;
    std::unique_ptr<Journal> journal_;
    std::string journal_error_;
    RouteTable routes_;
    std::map<std::string, std::unique_ptr<ServerPool>> pools_;
};

}  // namespace rtm
