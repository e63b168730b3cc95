// metrics_server.cpp — the operators' HTTP listener of metrics_server.h:
// the socket bound at start, libmicrohttpd serving /metrics, /healthz and
// /status from it, and the health verdict.
#include "metrics_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#ifndef RTM_VERSION
#define RTM_VERSION "0"
#endif

namespace rtm {
namespace {

constexpr const char* kExposition = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kText = "text/plain; charset=utf-8";

double wall_now() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

MHD_Result handle(void* cls, MHD_Connection* connection, const char* url, const char* method,
                  const char* /*version*/, const char* /*upload_data*/,
                  std::size_t* upload_data_size, void** request) {
    // The first call for a request only announces it: answer on the second,
    // once a body (which none of ours takes) would have arrived.
    static int announced;
    if (*request == nullptr) {
        *request = &announced;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {  // a body: not ours to read
        *upload_data_size = 0;
        return MHD_YES;
    }
    const auto* server = static_cast<const MetricsServer*>(cls);
    MetricsServer::Answer a;
    try {
        a = server->answer(method ? method : "", url ? url : "");
    } catch (const std::exception& e) {
        a = {500, kText, std::string("internal error: ") + e.what() + "\n"};
    }
    MHD_Response* response =
        MHD_create_response_from_buffer(a.body.size(), a.body.data(), MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) return MHD_NO;
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, a.content_type.c_str());
    MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (a.status == 405) MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    const MHD_Result rc = MHD_queue_response(connection, a.status, response);
    MHD_destroy_response(response);
    return rc;
}

const char* circuit_note(const metrics::Present& present, std::string& names) {
    for (const metrics::ServerPresent& s : present.servers)
        if (s.state != "closed") names += (names.empty() ? "" : ", ") + s.name + " " + s.state;
    return names.empty() ? "" : "; circuit ";
}

}  // namespace

std::string health_problem(const metrics::Present& present, const std::string& socket_problem) {
    if (!present.configured) return "no configuration loaded";
    if (!socket_problem.empty()) return socket_problem;
    if (present.journal_on && !present.journal_usable)
        return "journal unusable: " + present.journal_error;
    return {};
}

std::unique_ptr<MetricsServer> MetricsServer::bind(const ListenAddress& address,
                                                   std::string& error) {
    sockaddr_storage storage{};
    socklen_t length = 0;
    if (address.address.v6) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(static_cast<std::uint16_t>(address.port));
        std::memcpy(&in6->sin6_addr, address.address.bytes.data(), 16);
        length = sizeof *in6;
    } else {
        auto* in = reinterpret_cast<sockaddr_in*>(&storage);
        in->sin_family = AF_INET;
        in->sin_port = htons(static_cast<std::uint16_t>(address.port));
        std::memcpy(&in->sin_addr, address.address.bytes.data(), 4);
        length = sizeof *in;
    }
    UniqueFd fd(socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int one = 1;
    if (!fd.valid() || setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&storage), length) != 0 ||
        listen(fd.get(), 16) != 0) {
        error = "metrics " + address.to_string() + ": cannot listen there: " + std::strerror(errno);
        return nullptr;
    }
    return std::unique_ptr<MetricsServer>(new MetricsServer(address, std::move(fd)));
}

MetricsServer::~MetricsServer() {
    if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
}

bool MetricsServer::start(MetricsProbe probe, std::string& error) {
    probe_ = std::move(probe);
    const int fd = fd_.release();
    // Bounded: a few scrapers at once, small requests, idle ones dropped.
    daemon_ = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD, 0, nullptr, nullptr, &handle, this, MHD_OPTION_LISTEN_SOCKET,
        fd, MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 8u,
        MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        static_cast<std::size_t>(32 * 1024), MHD_OPTION_END);
    if (daemon_ == nullptr) {
        close(fd);
        error = "metrics " + address_.to_string() + ": libmicrohttpd would not start";
        return false;
    }
    return true;
}

MetricsServer::Answer MetricsServer::answer(const std::string& method,
                                            const std::string& path) const {
    if (method != "GET" && method != "HEAD") return {405, kText, "only GET and HEAD\n"};
    if (path == "/metrics") return {200, kExposition, metrics::render(probe_.present())};
    if (path == "/healthz") return health(probe_.present());
    if (path == "/status") return status(probe_.present());
    return {404, kText, "not here: /metrics, /healthz and /status are\n"};
}

MetricsServer::Answer MetricsServer::health(const metrics::Present& present) const {
    const std::string problem = health_problem(present, probe_.socket_problem());
    if (!problem.empty()) return {503, kText, "unhealthy: " + problem + "\n"};
    std::string open;
    const char* note = circuit_note(present, open);
    return {200, kText,
            "ok: configuration loaded, socket listening, journal " +
                std::string(present.journal_on ? "usable" : "off") + note + open + "\n"};
}

MetricsServer::Answer MetricsServer::status(const metrics::Present& present) const {
    using nlohmann::json;
    const metrics::Totals t = metrics::totals();
    const std::string problem = health_problem(present, probe_.socket_problem());
    json servers = json::array();
    for (const metrics::ServerPresent& s : present.servers) {
        json entry = {{"name", s.name},
                      {"circuit", s.state},
                      {"in_progress", s.in_progress},
                      {"slots", s.slots},
                      {"waiting", s.waiting}};
        for (const metrics::ServerCounters* c : metrics::servers()) {
            if (c->name != s.name) continue;
            json posts = json::object();
            for (std::size_t i = 0; i < c->posts.size(); ++i)
                posts[metrics::to_string(static_cast<metrics::PostOutcome>(i))] =
                    c->posts[i].load();
            entry["posts"] = posts;
            entry["last_error"] = c->last_error();
            entry["last_error_at"] = c->last_error_at();
        }
        servers.push_back(entry);
    }
    json body = {
        {"version", RTM_VERSION},
        {"uptime_seconds", std::floor(wall_now() - t.started_at)},
        {"config_file", probe_.config_path},
        {"config_generation", t.config_generation},
        {"last_reload_success_at", t.last_reload_ok_at},
        {"socket", probe_.socket},
        {"healthy", problem.empty()},
        {"health", problem.empty() ? "ok" : problem},
        {"in_flight", present.in_flight},
        {"journal",
         {{"on", present.journal_on},
          {"usable", present.journal_usable},
          {"error", present.journal_error}}},
        {"servers", servers},
        {"transactions",
         {{"accepted", t.accepted},
          {"tempfailed", t.tempfailed},
          {"rejected", t.rejected},
          {"not_ours", t.not_ours}}},
        {"rcpt_refusals", {{"temporary", t.rcpt_tempfailed}, {"permanent", t.rcpt_rejected}}},
        {"journal_counts",
         {{"duplicates", t.duplicates}, {"in_doubt", t.in_doubt}, {"errors", t.journal_errors}}},
    };
    return {200, "application/json",
            body.dump(2, ' ', false, json::error_handler_t::replace) + "\n"};
}

}  // namespace rtm
