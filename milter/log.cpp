// log.cpp — syslog + stderr sink.
#include "log.h"

#include <syslog.h>

#include <atomic>
#include <cstdio>
#include <mutex>

namespace rtm::log {
namespace {

std::mutex g_mutex;
Options g_options{.ident = "rt-milter", .syslog = false, .stderr_too = true, .level = LogLevel::Info};
std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
std::string g_ident = "rt-milter";  // openlog keeps the pointer

int priority(LogLevel level) {
    switch (level) {
        case LogLevel::Error: return LOG_ERR;
        case LogLevel::Warning: return LOG_WARNING;
        case LogLevel::Info: return LOG_INFO;
        case LogLevel::Debug: return LOG_DEBUG;
    }
    return LOG_INFO;
}

}  // namespace

void init(const Options& options) {
    std::lock_guard lock(g_mutex);
    g_options = options;
    g_ident = options.ident;
    g_level = static_cast<int>(options.level);
    if (options.syslog) openlog(g_ident.c_str(), LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void set_level(LogLevel level) { g_level = static_cast<int>(level); }

bool enabled(LogLevel level) { return static_cast<int>(level) <= g_level.load(); }

void write(LogLevel level, const std::string& line) {
    if (!enabled(level)) return;
    std::lock_guard lock(g_mutex);
    if (g_options.syslog) syslog(priority(level), "%s", line.c_str());
    if (g_options.stderr_too) {
        std::fprintf(stderr, "%s: %s%s\n", g_ident.c_str(),
                     level == LogLevel::Error ? "error: " : level == LogLevel::Warning ? "warning: " : "",
                     line.c_str());
        std::fflush(stderr);
    }
}

}  // namespace rtm::log
