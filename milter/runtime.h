// runtime.h — Runtime: everything a session needs that outlives it and is
// built from one configuration: the Config itself, its RouteTable, and per
// RT server a pool of max_concurrent slots (kept RtPosters, and workers for
// the messages with several targets; a session posts its one target in its
// own thread) and its circuit breaker; the
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
#include <utility>
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

    // Runs job on one of this server's workers with one of the pool's
    // RtPosters (each keeps its connection alive across jobs). At most
    // max_concurrent POSTs run at once, leases included: that is the cap
    // on POSTs in flight to this server (and on its workers, started as
    // needed and then kept), however many targets the messages of the
    // moment have. A job still queued at start_by runs with nullptr
    // instead: RT was not asked. Throws only when no worker can be started
    // (nothing is queued then).
    std::future<void> submit(Job job, Clock::time_point start_by);

    // One of the max_concurrent slots, taken by the calling thread itself:
    // a session posts its message without handing it to a worker (no
    // thread switch on the way to RT and back). poster() is one of the
    // pool's, or nullptr when none could be made (RT is not asked then).
    // The slot and the poster go back when the lease ends.
    class Lease {
      public:
        Lease(Lease&& other) noexcept
            : pool_(std::exchange(other.pool_, nullptr)), poster_(std::move(other.poster_)) {}
        Lease& operator=(Lease&&) = delete;
        ~Lease();
        RtPoster* poster() const { return poster_.get(); }

      private:
        friend class ServerPool;
        Lease(ServerPool* pool, std::unique_ptr<RtPoster> poster)
            : pool_(pool), poster_(std::move(poster)) {}
        ServerPool* pool_;
        std::unique_ptr<RtPoster> poster_;
    };
    // A lease when a slot is free and no job waits for one (a waiting job
    // goes first); otherwise none, and the caller submits.
    std::optional<Lease> try_lease();

    const RtServer& server() const { return server_; }
    Circuit& circuit() const { return *circuit_; }
    // What the metrics count for this server (by name, since start).
    metrics::ServerCounters& counters() const { return counters_; }
    // Now: jobs queued for a worker, and POSTs running (workers' and leases').
    std::size_t waiting() const;
    std::size_t in_progress() const;

  private:
    struct Queued {
        std::packaged_task<void(RtPoster*)> task;
        Clock::time_point start_by;
    };
    void work();
    // A spare poster (mutex_ held), or nullptr: the caller makes one.
    std::unique_ptr<RtPoster> take_poster();
    std::unique_ptr<RtPoster> make_poster();           // nullptr, logged, when it cannot
    void give_back(std::unique_ptr<RtPoster> poster);  // ends a POST: slot and poster

    RtServer server_;
    std::shared_ptr<Circuit> circuit_;
    const RtBackend& backend_;
    metrics::ServerCounters& counters_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Queued> queue_;
    std::vector<std::thread> workers_;
    std::vector<std::unique_ptr<RtPoster>> spare_;  // posters not in use, the last used last
    std::size_t idle_ = 0;                          // workers waiting for a job
    std::size_t active_ = 0;                        // POSTs running (a slot each)
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
