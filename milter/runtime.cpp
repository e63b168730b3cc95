// runtime.cpp — Runtime and the per-server client pools.
#include "runtime.h"

#include "log.h"

namespace rtm {

ServerPool::ServerPool(const RtServer& server) : server_(server), circuit_(circuit_for(server.url)) {}

ServerPool::Lease::~Lease() {
    if (pool_ && client_) pool_->give_back(std::move(client_));
}

std::optional<ServerPool::Lease> ServerPool::acquire(std::chrono::steady_clock::time_point deadline,
                                                     const std::function<void()>& tick) {
    std::unique_lock lock(mutex_);
    while (in_use_ >= server_.max_concurrent) {
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        freed_.wait_for(lock, std::chrono::seconds(1));
        if (tick) {
            lock.unlock();
            tick();
            lock.lock();
        }
    }
    ++in_use_;
    std::unique_ptr<RtClient> client;
    if (!idle_.empty()) {
        client = std::move(idle_.back());
        idle_.pop_back();
    }
    lock.unlock();
    if (!client) {
        ClientOptions options;
        options.timeout_seconds = server_.timeout;
        options.ca_file = server_.ca_file;
        options.verify_tls = server_.verify_tls;
        try {
            client = std::make_unique<RtClient>(std::move(options));
        } catch (...) {
            lock.lock();
            --in_use_;
            freed_.notify_one();
            throw;
        }
    }
    return Lease(*this, std::move(client));
}

void ServerPool::give_back(std::unique_ptr<RtClient> client) {
    std::lock_guard lock(mutex_);
    --in_use_;
    idle_.push_back(std::move(client));
    freed_.notify_one();
}

Runtime::Runtime(Config config) : config_(std::move(config)), routes_(config_) {
    for (const auto& [name, server] : config_.servers) pools_.emplace(name, std::make_unique<ServerPool>(server));
    if (!config_.journal.empty()) {
        journal_ = Journal::open(config_.journal, config_.journal_expiry, journal_error_);
        if (!journal_) log::error("DUPLICATE JOURNAL UNAVAILABLE: " + journal_error_);
    }
}

}  // namespace rtm
