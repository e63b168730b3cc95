// preflight.h — what rt-milter checks before it listens, at start and in
// --check-config, so that a daemon that starts can deliver: each TLS file
// (ca_file, client_cert, client_key) and header file is readable, the spool takes a file, the
// journal opens and takes a write, and the milter socket can be bound. The directories are made
// ready first by the identity rt-milter was started with (spool_dir.h);
// the files are checked in a child process that has become the service
// user, so the checks see what the daemon will see and nothing they create
// is root's. --check-config creates nothing (a bind it tries is removed at
// once); a socket a running rt-milter answers on is a note there, not a
// failure. Each failure is one line naming the key, the path and the
// reason, classified by start_status.h. No libmilter here.
#pragma once

#include <string>
#include <vector>

#include "config.h"
#include "privileges.h"
#include "start_status.h"
#include "unique_fd.h"

namespace rtm {

// Start: the daemon's start-up, which makes the directories; the socket is
// left to the daemon's real bind. Check: --check-config.
enum class PreflightMode { Start, Check };

struct PreflightReport {
    std::vector<StartStatus> failures;  // in the order checked
    std::vector<std::string> notes;     // worth saying, not failures
    std::vector<std::string> passed;    // what was checked and is fine
    // 0, or the status of the first failure.
    int exit_status() const { return failures.empty() ? 0 : failures.front().exit_status(); }
};

// Runs every check for `config` as `user`. Start: spool_dir's fd goes to
// `spool` (the daemon sweeps stale files through it after the drop).
PreflightReport preflight(const Config& config, const ServiceUser& user, PreflightMode mode,
                          UniqueFd* spool = nullptr);

// The path of a unix socket spec ("unix:/p", "local:/p", any case); "" for
// an inet one.
std::string unix_socket_path(const std::string& spec);

// socket_group for a unix socket: the group the socket gets (the process's
// effective group when empty). Refused when there is no such group, or
// when rt-milter is not started as root and `user` is not a member.
StartStatus socket_group_of(const Config& config, const ServiceUser& user, gid_t& group);

// The socket's directory, when missing, is made by the identity that binds
// (never root), readable by whoever socket_mode lets connect. Check: says
// whether it could be, making nothing.
StartStatus make_socket_directory(const Config& config, const ServiceUser& user,
                                  PreflightMode mode);

// Binds the socket with the calling identity and lets it go at once (a
// unix socket's file is removed): what libmilter's bind will meet, in
// words. EADDRINUSE comes back as such, so that Check can see who is there.
StartStatus try_bind(const std::string& spec, const std::string& identity);

// Connects once to the listening socket `spec` (a wildcard inet address on
// loopback) and hangs up: wakes libmilter's listener out of its poll so
// that a stop takes effect at once. False when nobody answered.
bool wake_listener(const std::string& spec);

}  // namespace rtm
