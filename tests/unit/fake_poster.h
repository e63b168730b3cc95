// fake_poster.h — FakeRtBackend: the unit tests' RT behind the RT seam
// (milter/rt_poster.h), with no socket and no sleep. A handler scripts RT's
// answer to each POST: RT's text ("ok", "not ok", "temporary failure"),
// any HTTP status, a transport failure (RT unreachable), or a timeout after
// the whole request reached RT (in doubt). An answer can be held until the
// test releases it, so "RT is slow" or "busy" is an event, not a sleep.
// Time is a manual clock that the test, or an answer's `takes`, moves.
// REST2 look-ups are scripted too. Every POST is recorded as a FakeRequest
// (fake_rt.h): its head and its multipart body as they would go on the
// wire, so field() reads them. It owns a fresh RuntimeFamily: the circuits
// and the in-flight count of one test are that test's own.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fake_rt.h"
#include "runtime.h"

namespace rtm::testing {

struct FakeAnswer {
    enum class Kind {
        Http,            // RT answered status with body
        Unreachable,     // no connection: nothing of the request reached RT
        TimeoutInDoubt,  // RT had the whole request, then said nothing in time
    };
    Kind kind = Kind::Http;
    int status = 200;
    std::string body = "ok\n";
    std::string detail;  // a transport failure's text ("" for a usual one)
    bool hold = false;   // answered only once the test calls release()
    // The clock moves this far when the POST arrives (before a held answer).
    std::chrono::milliseconds takes{0};

    static FakeAnswer ok() { return {}; }
    static FakeAnswer not_ok() { return http(200, "not ok - operation unsuccessful\n"); }
    static FakeAnswer temporary() {
        return http(200, "temporary failure - operation unsuccessful\n");
    }
    static FakeAnswer http(int status, std::string body) {
        FakeAnswer a;
        a.status = status;
        a.body = std::move(body);
        return a;
    }
    static FakeAnswer unreachable() {
        FakeAnswer a;
        a.kind = Kind::Unreachable;
        return a;
    }
    static FakeAnswer in_doubt() {
        FakeAnswer a;
        a.kind = Kind::TimeoutInDoubt;
        return a;
    }
    FakeAnswer held() && {
        hold = true;
        return std::move(*this);
    }
};

class FakeRtBackend {
  public:
    using Handler = std::function<FakeAnswer(const FakeRequest&)>;
    using Clock = RtBackend::Clock;
    using Rest2 = std::function<Rest2Finding(const Target&, const std::string& message_id)>;

    // Without a handler every POST is delivered ("ok").
    explicit FakeRtBackend(Handler handler = {});
    ~FakeRtBackend();  // releases what is held
    FakeRtBackend(const FakeRtBackend&) = delete;
    FakeRtBackend& operator=(const FakeRtBackend&) = delete;

    // The seam's side of it, for a Runtime; this object must outlive it.
    RtBackend backend();
    // A Runtime of config on this backend and its family.
    std::shared_ptr<const Runtime> runtime(Config config);
    RuntimeFamily& family() const { return *family_; }
    const std::shared_ptr<RuntimeFamily>& family_ptr() const { return family_; }

    // Every POST so far, in the order they arrived.
    std::vector<FakeRequest> requests() const;

    // Held answers: how many wait now; wait until n do (false after
    // `limit`, a bound for a broken test only); let every one go.
    std::size_t held() const;
    bool wait_until_held(std::size_t n,
                         std::chrono::seconds limit = std::chrono::seconds(30)) const;
    void release();

    // The manual clock every Runtime of this backend reads.
    Clock::time_point now() const;
    void advance(Clock::duration d);

    // REST2: what RT says it has (unset: a failure, "no REST2 scripted").
    void set_rest2(Rest2 rest2);
    int rest2_requests() const;

  private:
    class Poster;
    RtReply answer(const RtServer& server, const std::string& url, const MultipartBody& body,
                   const RtPoster::Tick& tick, const RtPoster::Tick& uploaded);

    Handler handler_;
    Rest2 rest2_;
    std::shared_ptr<RuntimeFamily> family_ = std::make_shared<RuntimeFamily>();
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    std::vector<FakeRequest> requests_;
    std::size_t held_ = 0;
    std::uint64_t releases_ = 0;
    Clock::time_point now_ = Clock::time_point() + std::chrono::hours(24);
    int rest2_requests_ = 0;
};

}  // namespace rtm::testing
