// runtime.cpp — Runtime, the per-server pools of posting workers, the
// process's RuntimeFamily, and curl_backend(): the RT seam's production
// side (relay's RtClient and Rest2Client behind RtPoster and RtBackend).
#include "runtime.h"

#include <algorithm>

#include "log.h"

namespace rtm {
namespace {

// One worker's libcurl client: its connection is kept across POSTs.
class CurlPoster : public RtPoster {
  public:
    explicit CurlPoster(const RtServer& server) : client_(client_options(server)) {}
    RtReply post(const std::string& url, const MultipartBody& body, const Tick& tick,
                 const Tick& uploaded) override {
        return client_.post(url, body, tick, uploaded);
    }

  private:
    RtClient client_;
};

}  // namespace

RtBackend curl_backend() {
    RtBackend backend;
    backend.make_poster = [](const RtServer& server) -> std::unique_ptr<RtPoster> {
        return std::make_unique<CurlPoster>(server);
    };
    backend.find_message = [](const RtServer& server, const Target& target,
                              const std::string& message_id, const RtBackend::Tick& tick) {
        ClientOptions options = client_options(server);
        // Bounded: the MTA waits, kept alive by tick, but not for ever.
        options.timeout_seconds = std::min<long>(server.timeout, 60);
        Rest2Client rest2(std::move(options), server.rest2_token);
        return rest2.find_message(target, message_id, tick);
    };
    return backend;
}

const std::shared_ptr<RuntimeFamily>& RuntimeFamily::process() {
    static const std::shared_ptr<RuntimeFamily> family = std::make_shared<RuntimeFamily>();
    return family;
}

ClientOptions client_options(const RtServer& server) {
    ClientOptions options;
    options.timeout_seconds = server.timeout;
    options.ca_file = server.ca_file;
    options.verify_tls = server.verify_tls;
    options.deadline_seconds = server.deadline;
    options.redirect_hosts = server.redirect_hosts;
    options.client_cert = server.client_cert;
    options.client_key = server.client_key;
    for (const HeaderFile& h : server.header_files)
        options.extra_headers.push_back({h.name, h.value});
    return options;
}

ServerPool::ServerPool(const RtServer& server, std::shared_ptr<Circuit> circuit,
                       const RtBackend& backend)
    : server_(server),
      circuit_(std::move(circuit)),
      backend_(backend),
      counters_(metrics::server(server.name)) {}

std::size_t ServerPool::waiting() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
}

std::size_t ServerPool::in_progress() const {
    std::lock_guard lock(mutex_);
    return active_;
}

ServerPool::~ServerPool() {
    stop();
}

void ServerPool::stop() {
    std::vector<std::thread> workers;
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        workers.swap(workers_);
    }
    wake_.notify_all();
    for (std::thread& worker : workers) worker.join();
}

std::future<void> ServerPool::submit(Job job, Clock::time_point start_by) {
    std::packaged_task<void(RtPoster*)> task(std::move(job));
    std::future<void> done = task.get_future();
    std::unique_lock lock(mutex_);
    if (stopping_) {  // stop() was called: RT is not asked
        lock.unlock();
        task(nullptr);
        return done;
    }
    // Every queued job that no idle worker will take: one more worker, up to
    // the cap. Started before the job is queued, so a failure queues nothing.
    if (queue_.size() + 1 > idle_ &&
        workers_.size() < static_cast<std::size_t>(server_.max_concurrent)) {
        workers_.emplace_back([this] { work(); });
    }
    queue_.push_back({std::move(task), start_by});
    wake_.notify_one();
    return done;
}

std::optional<ServerPool::Lease> ServerPool::try_lease() {
    std::unique_lock lock(mutex_);
    if (stopping_ || !queue_.empty() ||
        active_ >= static_cast<std::size_t>(server_.max_concurrent)) {
        return std::nullopt;
    }
    ++active_;
    std::unique_ptr<RtPoster> poster = take_poster();
    lock.unlock();
    if (!poster) poster = make_poster();
    return Lease(this, std::move(poster));
}

ServerPool::Lease::~Lease() {
    if (pool_) pool_->give_back(std::move(poster_));
}

std::unique_ptr<RtPoster> ServerPool::take_poster() {
    if (spare_.empty()) return nullptr;
    std::unique_ptr<RtPoster> poster = std::move(spare_.back());
    spare_.pop_back();
    return poster;
}

std::unique_ptr<RtPoster> ServerPool::make_poster() {
    try {
        return backend_.make_poster(server_);
    } catch (const std::exception& e) {
        log::error("RT server " + server_.name + ": cannot make an HTTP client: " + e.what());
        return nullptr;
    }
}

void ServerPool::give_back(std::unique_ptr<RtPoster> poster) {
    {
        std::lock_guard lock(mutex_);
        if (poster) spare_.push_back(std::move(poster));
        --active_;
    }
    wake_.notify_one();  // a slot is free: a job waiting for one may go
}

void ServerPool::work() {
    const std::size_t cap = static_cast<std::size_t>(server_.max_concurrent);
    std::unique_lock lock(mutex_);
    for (;;) {
        ++idle_;
        wake_.wait(lock, [&] {
            return (!queue_.empty() && active_ < cap) || (stopping_ && queue_.empty());
        });
        --idle_;
        if (queue_.empty()) return;  // stopping, and nothing left to run
        Queued job = std::move(queue_.front());
        queue_.pop_front();
        ++active_;
        std::unique_ptr<RtPoster> poster = take_poster();
        lock.unlock();
        const bool in_time = backend_.now() < job.start_by;
        if (in_time && !poster) poster = make_poster();
        job.task(in_time ? poster.get() : nullptr);  // the job's own exceptions go to its future
        give_back(std::move(poster));
        lock.lock();
    }
}

void Runtime::stop_posting() const {
    for (const auto& [name, pool] : pools_) pool->stop();
}

Runtime::Runtime(Config config)
    : Runtime(std::move(config), curl_backend(), RuntimeFamily::process()) {}

Runtime::Runtime(Config config, RtBackend backend, std::shared_ptr<RuntimeFamily> family)
    : config_(std::move(config)),
      backend_(std::move(backend)),
      family_(std::move(family)),
      routes_(config_) {
    for (const auto& [name, server] : config_.servers) {
        pools_.emplace(name, std::make_unique<ServerPool>(
                                 server, family_->circuits.for_url(server.url), backend_));
    }
    if (!config_.journal.empty()) {
        journal_ = Journal::open(config_.journal, config_.journal_expiry, journal_error_, true);
        if (!journal_error_.empty()) log::error("DUPLICATE JOURNAL UNAVAILABLE: " + journal_error_);
    }
}

}  // namespace rtm
