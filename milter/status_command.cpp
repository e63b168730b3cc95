// status_command.cpp — `rt-milter --status`: asks the running daemon's
// metrics listener (the configuration's `metrics` address) for /status and
// prints it for a person: uptime and health, configuration file and
// generation, the journal, per RT server its circuit, slots in use and
// last error, and the counters since start. Exit 0 healthy, 1 unhealthy,
// 69 no answer, 78 no metrics listener configured.
#include "status_command.h"

#include <curl/curl.h>
#include <time.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "network.h"
#include "start_status.h"

namespace rtm {
namespace {

std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
    auto* body = static_cast<std::string*>(out);
    if (body->size() + size * n > (1u << 20)) return 0;  // a status is a few KB
    body->append(data, size * n);
    return size * n;
}

std::string duration(double seconds) {
    const long s = static_cast<long>(seconds);
    char buf[64];
    if (s >= 86400)
        std::snprintf(buf, sizeof buf, "%ldd %02ldh %02ldm", s / 86400, s % 86400 / 3600,
                      s % 3600 / 60);
    else if (s >= 3600)
        std::snprintf(buf, sizeof buf, "%ldh %02ldm", s / 3600, s % 3600 / 60);
    else
        std::snprintf(buf, sizeof buf, "%ldm %02lds", s / 60, s % 60);
    return buf;
}

std::string when(double epoch) {
    if (epoch <= 0) return "never";
    const time_t t = static_cast<time_t>(epoch);
    tm utc{};
    gmtime_r(&t, &utc);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &utc);
    return buf;
}

template <typename T>
T get(const nlohmann::json& j, const char* key, T fallback) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return fallback;
    try {
        return it->get<T>();
    } catch (const std::exception&) {
        return fallback;
    }
}

void print(const nlohmann::json& s) {
    using nlohmann::json;
    std::printf("rt-milter %s, up %s: %s\n", get<std::string>(s, "version", "?").c_str(),
                duration(get<double>(s, "uptime_seconds", 0)).c_str(),
                get<bool>(s, "healthy", false)
                    ? "healthy"
                    : ("UNHEALTHY: " + get<std::string>(s, "health", "?")).c_str());
    std::printf("configuration %s, generation %llu, last loaded %s\n",
                get<std::string>(s, "config_file", "?").c_str(),
                get<unsigned long long>(s, "config_generation", 0),
                when(get<double>(s, "last_reload_success_at", 0)).c_str());
    std::printf("socket %s, %d transaction(s) in flight\n",
                get<std::string>(s, "socket", "?").c_str(), get<int>(s, "in_flight", 0));
    const json journal = s.value("journal", json::object());
    if (!get<bool>(journal, "on", false))
        std::printf("journal: off\n");
    else if (get<bool>(journal, "usable", false))
        std::printf("journal: usable\n");
    else
        std::printf("journal: UNUSABLE: %s\n", get<std::string>(journal, "error", "").c_str());
    for (const json& server : s.value("servers", json::array())) {
        const json posts = server.value("posts", json::object());
        std::printf("server %s: circuit %s, %zu of %zu connection(s) in use, %zu waiting\n",
                    get<std::string>(server, "name", "?").c_str(),
                    get<std::string>(server, "circuit", "?").c_str(),
                    get<std::size_t>(server, "in_progress", 0),
                    get<std::size_t>(server, "slots", 0), get<std::size_t>(server, "waiting", 0));
        std::printf(
            "  posts since start: ok %llu, not ok %llu, temporary failure %llu, transport error "
            "%llu, timeout %llu\n",
            get<unsigned long long>(posts, "ok", 0), get<unsigned long long>(posts, "not_ok", 0),
            get<unsigned long long>(posts, "temporary_failure", 0),
            get<unsigned long long>(posts, "transport_error", 0),
            get<unsigned long long>(posts, "timeout", 0));
        const std::string error = get<std::string>(server, "last_error", "");
        std::printf("  last error: %s\n",
                    error.empty()
                        ? "none"
                        : (when(get<double>(server, "last_error_at", 0)) + ": " + error).c_str());
    }
    const json tx = s.value("transactions", json::object());
    const json rcpt = s.value("rcpt_refusals", json::object());
    const json jc = s.value("journal_counts", json::object());
    std::printf(
        "since start: %llu accepted, %llu tempfailed, %llu rejected, %llu not for RT; "
        "RCPT refused %llu temporarily, %llu permanently\n",
        get<unsigned long long>(tx, "accepted", 0), get<unsigned long long>(tx, "tempfailed", 0),
        get<unsigned long long>(tx, "rejected", 0), get<unsigned long long>(tx, "not_ours", 0),
        get<unsigned long long>(rcpt, "temporary", 0),
        get<unsigned long long>(rcpt, "permanent", 0));
    std::printf("journal since start: %llu duplicate(s) stopped, %llu in doubt, %llu error(s)\n",
                get<unsigned long long>(jc, "duplicates", 0),
                get<unsigned long long>(jc, "in_doubt", 0),
                get<unsigned long long>(jc, "errors", 0));
}

}  // namespace

int run_status_command(const Config& config) {
    if (config.metrics.empty()) {
        std::fprintf(stderr,
                     "rt-milter: %s has no metrics listener (metrics = \"127.0.0.1:9731\", say): "
                     "--status asks "
                     "the running daemon through it\n",
                     config.path.c_str());
        return exit_status::kConfig;
    }
    ListenAddress listen;
    parse_listen_address(config.metrics, listen);  // the loader has checked it
    const std::string url = "http://" + listen.to_string() + "/status";
    CURL* curl = curl_easy_init();
    if (curl == nullptr) {
        std::fprintf(stderr, "rt-milter: cannot make an HTTP client\n");
        return exit_status::kOsError;
    }
    std::string body;
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    const CURLcode rc = curl_easy_perform(curl);
    long http = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK || http != 200) {
        std::fprintf(
            stderr,
            "rt-milter: no status from %s: %s; is rt-milter running with this configuration?\n",
            url.c_str(),
            rc != CURLE_OK ? curl_easy_strerror(rc) : ("HTTP " + std::to_string(http)).c_str());
        return exit_status::kUnavailable;
    }
    nlohmann::json status = nlohmann::json::parse(body, nullptr, false);
    if (status.is_discarded() || !status.is_object()) {
        std::fprintf(stderr, "rt-milter: %s answered something that is not rt-milter's status\n",
                     url.c_str());
        return exit_status::kUnavailable;
    }
    print(status);
    return get<bool>(status, "healthy", false) ? 0 : 1;
}

}  // namespace rtm
