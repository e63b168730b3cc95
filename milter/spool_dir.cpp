// spool_dir.cpp — walking, creating and checking spool_dir by fd.
#include "spool_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "log.h"

namespace rtm {
namespace {

std::vector<std::string> components(const std::string& path) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t end = path.find('/', start);
        if (end == std::string::npos) end = path.size();
        std::string part = path.substr(start, end - start);
        if (!part.empty() && part != ".") parts.push_back(std::move(part));
        start = end + 1;
    }
    return parts;
}

std::string user_name(uid_t uid) {
    const passwd* pw = getpwuid(uid);
    return pw ? std::string(pw->pw_name) : "uid " + std::to_string(uid);
}

// Why openat(parent, name, ...O_NOFOLLOW) failed, in the operator's words.
std::string open_failure(int parent, const std::string& name, const std::string& so_far,
                         int error) {
    struct stat st {};
    if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode))
            return so_far +
                   " is a symbolic link; rt-milter follows none there, name the real directory";
        if (!S_ISDIR(st.st_mode)) return so_far + " is not a directory";
    }
    if (error == ENOENT) return so_far + " does not exist";
    return "cannot open " + so_far + ": " + std::strerror(error);
}

// Only root can change a directory owned by root that group and others
// cannot write: root may create in it, and fchown what it made there.
bool only_root_writes(int dir) {
    struct stat st {};
    return fstat(dir, &st) == 0 && st.st_uid == 0 && (st.st_mode & 022) == 0;
}

// Creates `name` in `parent` for `user`: as root (then fchown on the new
// directory's fd) only where nobody else can write; elsewhere with the
// user's own identity, so a swap there can give the user nothing.
Status create_last(int parent, const std::string& name, const std::string& path,
                   const ServiceUser& user) {
    const bool as_root = geteuid() == 0 && only_root_writes(parent);
    int rc = 0;
    if (as_root) {
        rc = mkdirat(parent, name.c_str(), 0700);
    } else {
        ActingAs acting(user, user.gid);
        if (!acting.status())
            return Status::failure("spool_dir " + path + ": " + acting.status().error());
        rc = mkdirat(parent, name.c_str(), 0700);
    }
    if (rc != 0 && errno != EEXIST) {  // EEXIST: made meanwhile; it is checked like any other
        return Status::failure("cannot create spool_dir " + path + " as user " +
                               (as_root ? std::string("root") : user.name) + ": " +
                               std::strerror(errno));
    }
    if (rc == 0) log::info("created spool_dir " + path);
    if (rc == 0 && as_root) {
        UniqueFd made(
            openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!made.valid() || fchown(made.get(), user.uid, user.gid) != 0) {
            return Status::failure("cannot give spool_dir " + path + " to user " + user.name +
                                   ": " + std::strerror(errno));
        }
    }
    return Status::ok();
}

}  // namespace

Status open_spool_dir(const std::string& path, const ServiceUser& user, UniqueFd& out) {
    if (path.empty() || path[0] != '/')
        return Status::failure("spool_dir " + path + ": not an absolute path");
    const std::vector<std::string> parts = components(path);
    UniqueFd dir(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid()) return Status::failure("cannot open /: " + std::string(std::strerror(errno)));
    std::string so_far;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        so_far += "/" + parts[i];
        UniqueFd next(
            openat(dir.get(), parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next.valid())
            return Status::failure("spool_dir " + path + ": " +
                                   open_failure(dir.get(), parts[i], so_far, errno));
        dir = std::move(next);
    }
    if (parts.empty())
        return Status::failure("spool_dir " + path + ": not a directory rt-milter may own");
    const std::string& last = parts.back();
    struct stat st {};
    if (fstatat(dir.get(), last.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT)
            return Status::failure("spool_dir " + path + ": " + std::strerror(errno));
        if (Status s = create_last(dir.get(), last, path, user); !s) return s;
    }
    UniqueFd spool(
        openat(dir.get(), last.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!spool.valid())
        return Status::failure("spool_dir " + path + ": " +
                               open_failure(dir.get(), last, path, errno));
    if (fstat(spool.get(), &st) != 0)
        return Status::failure("spool_dir " + path + ": " + std::strerror(errno));
    if (st.st_uid != user.uid) {
        return Status::failure("spool_dir " + path + " is owned by " + user_name(st.st_uid) +
                               ", not by " + user.name +
                               ", the user rt-milter runs as: give it to " + user.name +
                               " or choose another spool_dir");
    }
    out = std::move(spool);
    return Status::ok();
}

void remove_stale_spool_files(int dir, const std::string& path) {
    // fdopendir takes the fd over; a duplicate leaves the caller's own.
    const int copy = fcntl(dir, F_DUPFD_CLOEXEC, 0);
    if (copy < 0) return;
    DIR* listing = fdopendir(copy);
    if (!listing) {
        close(copy);
        return;
    }
    std::vector<std::string> stale;
    while (const dirent* entry = readdir(listing)) {
        const std::string name = entry->d_name;
        struct stat st {};
        if (name.starts_with("rt-milter.") &&
            fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode)) {
            stale.push_back(name);
        }
    }
    closedir(listing);
    // Spool files are created unlinked (O_TMPFILE); only the fallback for
    // file systems without it names them, and a crash could leave one.
    for (const std::string& name : stale) {
        if (unlinkat(dir, name.c_str(), 0) == 0) {
            log::info("removed stale spool file " + path + "/" + name);
        } else {
            log::warning("cannot remove stale spool file " + path + "/" + name + ": " +
                         std::strerror(errno));
        }
    }
}

}  // namespace rtm
