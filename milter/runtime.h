// runtime.h — Runtime: everything a session needs that outlives it and is
// built from one configuration: the Config itself, its RouteTable, and per
// RT server a pool of RtClients (kept connections) with a cap on POSTs in
// flight and its circuit breaker; and the duplicate journal. Built whole at start and on every reload; sessions hold the
// shared_ptr they started with, so a reload never changes a transaction.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "circuit.h"
#include "config.h"
#include "journal.h"
#include "rt_client.h"
#include "routing.h"

namespace rtm {

class ServerPool {
public:
    explicit ServerPool(const RtServer& server);

    // A borrowed client; gives it back on destruction.
    class Lease {
    public:
        Lease(ServerPool& pool, std::unique_ptr<RtClient> client) : pool_(&pool), client_(std::move(client)) {}
        Lease(Lease&&) noexcept = default;
        Lease& operator=(Lease&&) noexcept = default;
        ~Lease();
        RtClient& client() { return *client_; }

    private:
        ServerPool* pool_;
        std::unique_ptr<RtClient> client_;
    };

    // Waits for a free slot until deadline, calling tick about every second.
    std::optional<Lease> acquire(std::chrono::steady_clock::time_point deadline, const std::function<void()>& tick);

    const RtServer& server() const { return server_; }
    Circuit& circuit() const { return *circuit_; }

private:
    void give_back(std::unique_ptr<RtClient> client);

    RtServer server_;
    std::shared_ptr<Circuit> circuit_;
    mutable std::mutex mutex_;
    std::condition_variable freed_;
    int in_use_ = 0;
    std::vector<std::unique_ptr<RtClient>> idle_;
};

class Runtime {
public:
    explicit Runtime(Config config);
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    const Config& config() const { return config_; }
    const RouteTable& routes() const { return routes_; }
    ServerPool& pool(const std::string& server) const { return *pools_.at(server); }

    // The duplicate journal: null when it is off (journal = "") or could not
    // be opened (then journal_error() says why).
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
