// spool_dir.h — the directories rt-milter keeps, made ready at start:
// spool_dir and the duplicate journal's directory. A missing one is made
// for the service user like this: the path is walked from "/" one
// component at a time (O_NOFOLLOW), only the last component is created —
// by root (then fchown on its fd) where only root can write, else with the
// service user's identity — and its mode is set on its fd. A spool_dir the
// service user does not own is refused; the journal's directory, when it
// exists, is the user's business (the journal is opened as that user).
// --check-config makes nothing: it says whether start would make it. The
// files a crash of the named-file fallback may leave in the spool are
// removed later, as the service user, through the directory's fd. Nothing
// here chowns, chmods or unlinks by path. Every failure is one line naming
// the key (start_status.h classifies it).
#pragma once

#include <string>

#include "privileges.h"
#include "start_status.h"
#include "unique_fd.h"

namespace rtm {

// Create: as the daemon starts. Check: as --check-config, creating nothing.
enum class DirAction { Create, Check };

// What became of a directory: open (it exists), or missing and to be made
// at start by `made_by` ("root", or the service user's name).
struct DirState {
    UniqueFd fd;
    std::string made_by;
};

// Opens (creating the last component if missing, mode 0700) the spool
// directory `path` (absolute) for `user`; `out` holds the directory open.
StartStatus open_spool_dir(const std::string& path, const ServiceUser& user, UniqueFd& out);
StartStatus open_spool_dir(const std::string& path, const ServiceUser& user, DirAction action,
                           DirState& out);

// The directory of the journal file `journal` (absolute): left as it is
// when it exists (out.fd stays closed: the journal is opened by path, as
// the service user), else its last component is created (mode 0750).
StartStatus make_journal_dir(const std::string& journal, const ServiceUser& user, DirAction action,
                             DirState& out);

// Removes the regular files named rt-milter.* in the directory `dir`
// (a fd from open_spool_dir); logs each. Run as the service user.
void remove_stale_spool_files(int dir, const std::string& path);

}  // namespace rtm
