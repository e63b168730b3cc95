// spool_dir.h — spool_dir at start, without following a link: the path is
// walked from "/" one component at a time (O_NOFOLLOW), only its last
// component is created when missing, and a directory the service user does
// not own is refused. The files a crash of the named-file fallback may
// leave are removed later, as the service user, through the directory's fd.
// Nothing here chowns, chmods or unlinks by path.
#pragma once

#include <string>

#include "privileges.h"
#include "status.h"
#include "unique_fd.h"

namespace rtm {

// Opens (creating the last component if missing) the spool directory `path`
// (absolute) for `user`; `out` holds the directory open. A failure says
// which component and why, naming spool_dir.
Status open_spool_dir(const std::string& path, const ServiceUser& user, UniqueFd& out);

// Removes the regular files named rt-milter.* in the directory `dir`
// (a fd from open_spool_dir); logs each. Run as the service user.
void remove_stale_spool_files(int dir, const std::string& path);

}  // namespace rtm
