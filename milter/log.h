// log.h — the daemon's log: syslog (facility mail, as Postfix's own lines)
// and, in the foreground with --debug or in test mode, standard error. A
// daemon that finds no syslog at /dev/log logs to standard error instead
// (under systemd that is the journal) and says so once. One call writes one
// line; thread-safe.
#pragma once

#include <string>

#include "config.h"

namespace rtm::log {

struct Options {
    std::string ident = "rt-milter";
    bool syslog = true;
    bool stderr_too = false;
    // With syslog: when nothing answers at /dev/log (datagram or stream),
    // log to standard error instead, with one warning saying so.
    bool stderr_without_syslog = false;
    LogLevel level = LogLevel::Info;
};

void init(const Options& options);
void set_level(LogLevel level);
bool enabled(LogLevel level);
void write(LogLevel level, const std::string& line);

inline void error(const std::string& line) {
    write(LogLevel::Error, line);
}
inline void warning(const std::string& line) {
    write(LogLevel::Warning, line);
}
inline void info(const std::string& line) {
    write(LogLevel::Info, line);
}
inline void debug(const std::string& line) {
    write(LogLevel::Debug, line);
}

}  // namespace rtm::log
