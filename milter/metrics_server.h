// metrics_server.h — MetricsServer: the operators' HTTP listener (the
// `metrics` key), served by libmicrohttpd on a thread of its own:
//   GET /metrics  the Prometheus text exposition (metrics.h)
//   GET /healthz  200 "ok: ..." when a configuration is loaded, the milter
//                 socket listens and the journal takes writes; otherwise 503
//                 and the first reason, in one line. An open circuit is named
//                 in the body but is RT's trouble, not rt-milter's: still 200.
//   GET /status   JSON for `rt-milter --status`: uptime, configuration,
//                 per RT server its circuit, slots and last error, counters.
// Anything else is 404 (405 for a method other than GET or HEAD). The socket
// is bound at start, before the privilege drop (a port below 1024 works),
// and served after it; connections are capped in number, size and time.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "metrics.h"
#include "network.h"
#include "unique_fd.h"

struct MHD_Daemon;

namespace rtm {

// What a scrape or a health check reads, supplied by the daemon.
struct MetricsProbe {
    std::function<metrics::Present()> present;    // runtime, journal check included
    std::function<std::string()> socket_problem;  // "" when the milter socket listens
    std::string config_path;
    std::string socket;  // the milter socket spec, for /status
};

class MetricsServer {
  public:
    // Binds and listens on ADDRESS; nullptr with error set when it cannot.
    static std::unique_ptr<MetricsServer> bind(const ListenAddress& address, std::string& error);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    // Starts answering, on libmicrohttpd's thread. False with error set.
    bool start(MetricsProbe probe, std::string& error);
    const ListenAddress& address() const { return address_; }

    // The three answers, as the handler gives them (also for tests).
    struct Answer {
        unsigned status = 200;
        std::string content_type, body;
    };
    Answer answer(const std::string& method, const std::string& path) const;

  private:
    explicit MetricsServer(const ListenAddress& address, UniqueFd fd)
        : address_(address), fd_(std::move(fd)) {}
    Answer health(const metrics::Present& present) const;
    Answer status(const metrics::Present& present) const;

    ListenAddress address_;
    UniqueFd fd_;  // until start() hands it to libmicrohttpd
    MetricsProbe probe_;
    MHD_Daemon* daemon_ = nullptr;
};

// The health verdict in one line, from what a probe found: "" when healthy.
std::string health_problem(const metrics::Present& present, const std::string& socket_problem);

}  // namespace rtm
