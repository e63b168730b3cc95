// fake_poster.cpp — FakeRtBackend: scripted answers, held answers released
// by the test, the manual clock, scripted REST2.
#include "fake_poster.h"

namespace rtm::testing {

class FakeRtBackend::Poster : public RtPoster {
  public:
    Poster(FakeRtBackend& fake, RtServer server) : fake_(fake), server_(std::move(server)) {}
    RtReply post(const std::string& url, const MultipartBody& body, const Tick& tick,
                 const Tick& uploaded) override {
        return fake_.answer(server_, url, body, tick, uploaded);
    }

  private:
    FakeRtBackend& fake_;
    RtServer server_;
};

FakeRtBackend::FakeRtBackend(Handler handler) : handler_(std::move(handler)) {}

FakeRtBackend::~FakeRtBackend() {
    release();
}

RtBackend FakeRtBackend::backend() {
    RtBackend b;
    b.make_poster = [this](const RtServer& server) -> std::unique_ptr<RtPoster> {
        return std::make_unique<Poster>(*this, server);
    };
    b.find_message = [this](const RtServer&, const Target& target, const std::string& message_id,
                            const RtBackend::Tick&) {
        Rest2 rest2;
        {
            std::lock_guard lock(mutex_);
            ++rest2_requests_;
            rest2 = rest2_;
        }
        if (!rest2) return Rest2Finding{Rest2Finding::Kind::Failed, "no REST2 scripted"};
        return rest2(target, message_id);
    };
    b.now = [this] { return now(); };
    // A waiting session looks at the clock often: a held answer's `takes`
    // is seen at once.
    b.progress_poll = std::chrono::milliseconds(1);
    return b;
}

std::shared_ptr<const Runtime> FakeRtBackend::runtime(Config config) {
    return std::make_shared<const Runtime>(std::move(config), backend(), family_);
}

RtReply FakeRtBackend::answer(const RtServer& server, const std::string& url,
                              const MultipartBody& body, const RtPoster::Tick& tick,
                              const RtPoster::Tick& uploaded) {
    FakeRequest request;
    const auto path_at = url.find('/', url.find("://") + 3);
    request.head = "POST " +
                   (path_at == std::string::npos ? std::string("/") : url.substr(path_at)) +
                   " HTTP/1.1\r\nContent-Type: " + body.content_type() +
                   "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    request.body = body.to_string();
    const FakeAnswer a = handler_ ? handler_(request) : FakeAnswer{};
    {
        std::unique_lock lock(mutex_);
        requests_.push_back(request);
        now_ += a.takes;  // RT's time: seen by a waiting session while the answer is held
        if (a.hold) {
            const std::uint64_t seen = releases_;
            ++held_;
            changed_.notify_all();
            // As libcurl does while it waits: tick, without the lock (a
            // session posting itself tells the MTA, whose test may release).
            while (!changed_.wait_for(lock, std::chrono::milliseconds(1),
                                      [&] { return releases_ > seen; })) {
                if (!tick) continue;
                lock.unlock();
                tick();
                lock.lock();
            }
            --held_;
        }
    }
    switch (a.kind) {
        case FakeAnswer::Kind::Unreachable:
            return classify_transport_failure(
                a.detail.empty() ? "Failed to connect to " + server.url + ": Connection refused"
                                 : a.detail,
                true);
        case FakeAnswer::Kind::TimeoutInDoubt: {
            if (uploaded) uploaded();
            RtReply r = classify_transport_failure(
                a.detail.empty()
                    ? "read timeout: nothing from RT for " + std::to_string(server.timeout) + " s"
                    : a.detail,
                false);
            r.timed_out = true;
            r.in_doubt = true;
            return r;
        }
        case FakeAnswer::Kind::Http:
            break;
    }
    if (uploaded) uploaded();
    const char* reason = a.status == 200 ? "OK" : a.status == 500 ? "Internal Server Error" : "";
    return classify_http(a.status, reason, a.body);
}

std::vector<FakeRequest> FakeRtBackend::requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

std::size_t FakeRtBackend::held() const {
    std::lock_guard lock(mutex_);
    return held_;
}

bool FakeRtBackend::wait_until_held(std::size_t n, std::chrono::seconds limit) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return held_ >= n; });
}

void FakeRtBackend::release() {
    {
        std::lock_guard lock(mutex_);
        ++releases_;
    }
    changed_.notify_all();
}

FakeRtBackend::Clock::time_point FakeRtBackend::now() const {
    std::lock_guard lock(mutex_);
    return now_;
}

void FakeRtBackend::advance(Clock::duration d) {
    std::lock_guard lock(mutex_);
    now_ += d;
}

void FakeRtBackend::set_rest2(Rest2 rest2) {
    std::lock_guard lock(mutex_);
    rest2_ = std::move(rest2);
}

int FakeRtBackend::rest2_requests() const {
    std::lock_guard lock(mutex_);
    return rest2_requests_;
}

}  // namespace rtm::testing
