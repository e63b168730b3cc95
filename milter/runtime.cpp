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
    RtReply post(const std::string& url, const MultipartBody& body, const Tick& uploaded) override {
        return client_.post(url, body, {}, uploaded);
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
    return workers_.size() > idle_ ? workers_.size() - idle_ : 0;
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

void ServerPool::work() {
    std::unique_ptr<RtPoster> poster;
    std::unique_lock lock(mutex_);
    for (;;) {
        ++idle_;
        wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        --idle_;
        if (queue_.empty()) return;  // stopping, and nothing left to run
        Queued job = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        RtPoster* use = nullptr;
        if (backend_.now() < job.start_by) {
            try {
                if (!poster) poster = backend_.make_poster(server_);
                use = poster.get();
            } catch (const std::exception& e) {
                log::error("RT server " + server_.name +
                           ": cannot make an HTTP client: " + e.what());
            }
        }
        job.task(use);  // the job's own exceptions go to its future
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
