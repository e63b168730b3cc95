// online_check.cpp — REST2 requests for --check-config --online and the
// daemon's start and reload.
#include "online_check.h"

#include <map>
#include <thread>
#include <utility>

#include "log.h"
#include "rest2_client.h"
#include "runtime.h"
#include "url.h"

namespace rtm {
namespace {

constexpr long kOnlineTimeout = 15;  // s per request: a check, not a delivery

// The queues mail of this route can go to: its queue (RT's default queue 1
// when it has none), and the allow-list of extension = "queue".
std::vector<std::string> route_queues(const Route& route) {
    std::vector<std::string> queues;
    if (route.extension == ExtensionMode::Ticket) return queues;  // the ticket decides
    queues.push_back(route.queue.value_or("1"));
    for (const std::string& q : route.queues)
        if (q != queues.front()) queues.push_back(q);
    return queues;
}

}  // namespace

std::vector<OnlineFinding> check_online(const Config& config, bool tokens_only) {
    std::vector<OnlineFinding> found;
    for (const auto& [name, server] : config.servers) {
        const bool token = !server.rest2_token.empty();
        if (tokens_only && !token) continue;
        const std::string head = "server " + name + " (" + redact_url(server.url) + "): ";
        ClientOptions options = client_options(server);
        options.timeout_seconds = std::min<long>(server.timeout, kOnlineTimeout);
        Rest2Client rest2(std::move(options), server.rest2_token);
        std::string version;
        nlohmann::json ignored;
        long status = 0;
        if (!token) {
            // No token: RT answering at all (401 from REST2) is what can be known.
            Status s = rest2.call(server.url, "rt", "", ignored, &status);
            if (status > 0) {
                found.push_back(
                    {false, head + "reachable (HTTP " + std::to_string(status) +
                                "); no rest2_token_file: token and queues not checked"});
            } else {
                found.push_back({true, head + "not reachable: " + s.error()});
            }
            continue;
        }
        if (Status s = rest2.rt_version(server.url, version); !s) {
            found.push_back({true, head + s.error()});
            continue;
        }
        found.push_back({false, head + "reachable, token accepted (RT " +
                                    (version.empty() ? "?" : version) + ")"});
        // Each queue asked once; a missing one named for every route to it.
        std::map<std::string, std::pair<Status, bool>> asked;
        for (const Route& route : config.routes) {
            if (route.server != name) continue;
            for (const std::string& queue : route_queues(route)) {
                const std::string where =
                    "route " + route.address + " (" + route.origin + "): queue " +
                    (route.queue || queue != "1" ? queue : "1 (RT's default)");
                auto [at, first] = asked.try_emplace(queue, Status::ok(), false);
                if (first)
                    at->second.first = rest2.queue_exists(server.url, queue, at->second.second);
                const auto& [status, exists] = at->second;
                if (!status) {
                    found.push_back({true, where + ": cannot check: " + status.error()});
                } else if (!exists) {
                    found.push_back(
                        {true, where + " does not exist in RT " + name +
                                   " (or the token's user may not see it): RT answers \"temporary "
                                   "failure\" to every message for it"});
                } else if (first) {
                    found.push_back({false, where + " exists"});
                }
            }
        }
    }
    return found;
}

void log_online_check(std::shared_ptr<const Config> config) {
    std::thread([config = std::move(config)] {
        try {
            for (const OnlineFinding& f : check_online(*config, true)) {
                if (f.problem)
                    log::warning("online check: " + f.line);
                else
                    log::info("online check: " + f.line);
            }
        } catch (const std::exception& e) {
            log::warning(std::string("online check: internal error: ") + e.what());
        }
    }).detach();
}

}  // namespace rtm
