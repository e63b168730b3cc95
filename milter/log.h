// log.h — the daemon's log: syslog (facility mail, as Postfix's own lines)
// and, in the foreground with --debug or in test mode, standard error.
// One call writes one line; thread-safe.
#pragma once

#include <string>

#include "config.h"

namespace rtm::log {

struct Options {
    std::string ident = "rt-milter";
    bool syslog = true;
    bool stderr_too = false;
    LogLevel level = LogLevel::Info;
};

void init(const Options& options);
void set_level(LogLevel level);
bool enabled(LogLevel level);
void write(LogLevel level, const std::string& line);

inline void error(const std::string& line) { write(LogLevel::Error, line); }
inline void warning(const std::string& line) { write(LogLevel::Warning, line); }
inline void info(const std::string& line) { write(LogLevel::Info, line); }
inline void debug(const std::string& line) { write(LogLevel::Debug, line); }

}  // namespace rtm::log
