// start_status.h — why rt-milter cannot start: one line naming the config
// key, the path and the reason, and the exit status (sysexits.h) that
// classifies it. The mapping, the same in the daemon and --check-config:
//   78 EX_CONFIG     the configuration asks for something that cannot work:
//                    errors in the file, no [[route]], the `user` rule, an
//                    unknown user or socket_group, an unreadable TLS file, a
//                    directory that is someone else's, a symbolic link, not
//                    a directory
//   73 EX_CANTCREAT  something rt-milter must create or open for writing
//                    cannot be: the journal, the spool, a directory for
//                    them or for the socket, the socket itself (in use too)
//   71 EX_OSERR      the system refused what should not fail: fork, pipe,
//                    switching user
// Nothing here does I/O.
#pragma once

#include <string>
#include <utility>

namespace rtm {

namespace exit_status {
constexpr int kOk = 0;
constexpr int kUsage = 64;        // EX_USAGE
constexpr int kNoInput = 66;      // EX_NOINPUT (--test's MESSAGE)
constexpr int kUnavailable = 69;  // EX_UNAVAILABLE (--check-config --online)
constexpr int kOsError = 71;      // EX_OSERR
constexpr int kCantCreate = 73;   // EX_CANTCREAT
constexpr int kTempFail = 75;     // EX_TEMPFAIL (--test)
constexpr int kConfig = 78;       // EX_CONFIG
}  // namespace exit_status

class StartStatus {
  public:
    static StartStatus ok() { return StartStatus(exit_status::kOk, ""); }
    static StartStatus config(std::string line) {
        return failure(exit_status::kConfig, std::move(line));
    }
    static StartStatus cant_create(std::string line) {
        return failure(exit_status::kCantCreate, std::move(line));
    }
    static StartStatus os_error(std::string line) {
        return failure(exit_status::kOsError, std::move(line));
    }
    // `status` other than 0 (one that came through a pipe).
    static StartStatus failure(int status, std::string line) {
        return StartStatus(status, std::move(line));
    }

    explicit operator bool() const { return exit_status_ == exit_status::kOk; }
    int exit_status() const { return exit_status_; }
    const std::string& error() const { return line_; }

  private:
    StartStatus(int status, std::string line) : exit_status_(status), line_(std::move(line)) {}

    int exit_status_;
    std::string line_;
};

}  // namespace rtm
