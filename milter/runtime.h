// runtime.h — Runtime: everything a session needs that outlives it and is
// built from one configuration: the Config itself, its RouteTable, and per
// RT server a fixed pool of posting workers (each with its kept RtPoster;
// their number caps the POSTs in flight) and its circuit breaker; the
// duplicate journal; and the RtBackend it reaches RT and reads the time
// through (rt_poster.h: libcurl in production, a script in the unit tests).
// Built whole at start and on every reload; sessions hold the shared_ptr
// they started with, so a reload never changes a transaction. What outlives
// every Runtime of a process — the circuits, kept per RT URL across reloads,
// and the count of transactions in flight — is a RuntimeFamily: the daemon's
// is RuntimeFamily::process(), a test makes its own.
#pragma once

#include <atomic>
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
#include "routing.h"
#include "rt_client.h"
#include "rt_poster.h"

namespace rtm {

// The HTTP client options of one RT server: timeout, deadline, TLS,
// redirects and a locked gateway's credentials.
ClientOptions client_options(const RtServer& server);

// What the Runtimes of one process share, whichever configuration each was
// built from.
struct RuntimeFamily {
    CircuitRegistry circuits;
    // Transactions (MAIL to end of message or abort) in progress: the daemon
    // drains them on stop.
    std::atomic<int> in_flight{0};

    // The daemon's: what Runtime(Config) joins.
    static const std::shared_ptr<RuntimeFamily>& process();
};

class ServerPool {
  public:
    using Clock = std::chrono::steady_clock;
    using Job = std::function<void(RtPoster*)>;

    // backend: makes each worker's poster and tells the time (it must
    // outlive the pool: the Runtime holds both).
    ServerPool(const RtServer& server, std::shared_ptr<Circuit> circuit, const RtBackend& backend);
    ~ServerPool();  // stop()
    // Runs what is queued, then stops and joins the workers; a job submitted
    // later runs at once with nullptr (RT not asked). Idempotent.
    void stop();
    ServerPool(const ServerPool&) = delete;
    ServerPool& operator=(const ServerPool&) = delete;

    // Runs job on one of this server's workers with that worker's RtPoster
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
        std::packaged_task<void(RtPoster*)> task;
        Clock::time_point start_by;
    };
    void work();

    RtServer server_;
    std::shared_ptr<Circuit> circuit_;
    const RtBackend& backend_;
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
    // Production: libcurl (curl_backend()), the process's family.
    explicit Runtime(Config config);
    Runtime(Config config, RtBackend backend, std::shared_ptr<RuntimeFamily> family);
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    const Config& config() const { return config_; }
    const RouteTable& routes() const { return routes_; }
    const RtBackend& backend() const { return backend_; }
    RuntimeFamily& family() const { return *family_; }
    const std::shared_ptr<RuntimeFamily>& family_ptr() const { return family_; }
    RtBackend::Clock::time_point now() const { return backend_.now(); }
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
    RtBackend backend_;  // before the pools, which use it
    std::shared_ptr<RuntimeFamily> family_;
    std::unique_ptr<Journal> journal_;
    std::string journal_error_;
    RouteTable routes_;
    std::map<std::string, std::unique_ptr<ServerPool>> pools_;
};

}  // namespace rtm
