// rt_poster.h — the RT seam: everything the milter asks of RT, and the
// clock it reads while it waits, behind one set of interfaces. RtPoster is
// one kept connection to an RT server's mail gateway (one POST at
// a time); RtBackend says how posters are made, how REST2 is asked whether
// RT already has a message (a copy in doubt), what time it is, and how
// often a waiting session looks up to keep the MTA patient. Production uses
// curl_backend() (relay's RtClient and Rest2Client, the steady clock; in
// runtime.cpp); the unit tests script a fake (tests/unit/fake_poster.h), so
// Session, the journal and the circuit run without a socket or a sleep.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "config.h"
#include "multipart.h"
#include "rest2_client.h"
#include "rt_reply.h"
#include "target.h"

namespace rtm {

class RtPoster {
  public:
    using Tick = std::function<void()>;
    virtual ~RtPoster() = default;

    // POST a prepared body to a full mail-gateway URL. tick: called about
    // once a second (more often while bytes move) while it lasts, on the
    // posting thread (a session posting itself keeps the MTA waiting with
    // it). uploaded: called once the whole request is written — from then
    // on RT gets it even if this process dies (a copy with no answer is
    // then in doubt).
    virtual RtReply post(const std::string& url, const MultipartBody& body, const Tick& tick,
                         const Tick& uploaded) = 0;
};

struct RtBackend {
    using Clock = std::chrono::steady_clock;
    using Tick = std::function<void()>;

    // One poster per slot of a server's pool, made when a POST first needs
    // it and kept; may throw (then RT is not asked: "no HTTP client").
    std::function<std::unique_ptr<RtPoster>(const RtServer&)> make_poster;
    // Asks RT's REST2 whether it has the message with this Message-ID at the
    // target; tick is called about once a second while waiting. May throw.
    std::function<Rest2Finding(const RtServer&, const Target&, const std::string& message_id,
                               const Tick& tick)>
        find_message;
    // Now, for the circuit breaker, the wait for a free worker, progress to
    // the MTA and the times in log lines.
    std::function<Clock::time_point()> now = [] { return Clock::now(); };
    // How often a session waiting for RT wakes to look at the clock (and
    // tell the MTA it is still there, every 2 s of now()).
    std::chrono::milliseconds progress_poll{1000};
};

// The real thing: libcurl's RtClient per worker, Rest2Client for REST2, the
// steady clock, a 1 s poll.
RtBackend curl_backend();

}  // namespace rtm
