// log.cpp — syslog + stderr sink, and the look for a syslog at /dev/log.
#include "log.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>

namespace rtm::log {
namespace {

std::mutex g_mutex;
Options g_options{
    .ident = "rt-milter", .syslog = false, .stderr_too = true, .level = LogLevel::Info};
std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
std::string g_ident = "rt-milter";  // openlog keeps the pointer

int priority(LogLevel level) {
    switch (level) {
        case LogLevel::Error:
            return LOG_ERR;
        case LogLevel::Warning:
            return LOG_WARNING;
        case LogLevel::Info:
            return LOG_INFO;
        case LogLevel::Debug:
            return LOG_DEBUG;
    }
    return LOG_INFO;
}

// Whether something listens at _PATH_LOG, tried the way glibc's syslog()
// does: a datagram socket, then a stream one.
bool syslog_answers() {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", _PATH_LOG);
    for (int type : {SOCK_DGRAM, SOCK_STREAM}) {
        const int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        const bool connected =
            connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
        close(fd);
        if (connected) return true;
    }
    return false;
}

}  // namespace

void init(const Options& options) {
    bool no_syslog = false;
    {
        std::lock_guard lock(g_mutex);
        g_options = options;
        g_ident = options.ident;
        g_level = static_cast<int>(options.level);
        if (options.syslog && options.stderr_without_syslog && !syslog_answers()) {
            g_options.syslog = false;
            g_options.stderr_too = true;
            no_syslog = true;
        }
        if (g_options.syslog) openlog(g_ident.c_str(), LOG_PID | LOG_NDELAY, LOG_MAIL);
    }
    if (no_syslog)
        warning(std::string("no syslog at ") + _PATH_LOG + ": logging to standard error");
}

void set_level(LogLevel level) {
    g_level = static_cast<int>(level);
}

bool enabled(LogLevel level) {
    return static_cast<int>(level) <= g_level.load();
}

void write(LogLevel level, const std::string& line) {
    if (!enabled(level)) return;
    std::lock_guard lock(g_mutex);
    if (g_options.syslog) syslog(priority(level), "%s", line.c_str());
    if (g_options.stderr_too) {
        std::fprintf(stderr, "%s: %s%s\n", g_ident.c_str(),
                     level == LogLevel::Error     ? "error: "
                     : level == LogLevel::Warning ? "warning: "
                                                  : "",
                     line.c_str());
        std::fflush(stderr);
    }
}

}  // namespace rtm::log
