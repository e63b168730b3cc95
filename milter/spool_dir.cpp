// spool_dir.cpp — walking, creating and checking spool_dir and the
// journal's directory by fd.
#include "spool_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
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

// What a failure is about: the key, its value as configured, and the
// directory, with the mode a directory made here gets.
struct Subject {
    std::string key;    // "spool_dir", "journal"
    std::string value;  // the key's value (the journal's file)
    std::string dir;
    mode_t mode;
    bool must_own;

    std::string says(const std::string& what) const { return key + " " + value + ": " + what; }
};

// Why openat(parent, name, ...O_NOFOLLOW) failed, in the operator's words.
StartStatus open_failure(const Subject& s, int parent, const std::string& name,
                         const std::string& so_far, int error) {
    struct stat st {};
    if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode))
            return StartStatus::config(s.says(
                so_far +
                " is a symbolic link; rt-milter follows none there, name the real directory"));
        if (!S_ISDIR(st.st_mode))
            return StartStatus::config(s.says(so_far + " is not a directory"));
    }
    if (error == ENOENT) return StartStatus::cant_create(s.says(so_far + " does not exist"));
    return StartStatus::cant_create(s.says("cannot open " + so_far + ": " + std::strerror(error)));
}

// Only root can change a directory owned by root that group and others
// cannot write: root may create in it, and fchown what it made there.
bool only_root_writes(int dir) {
    struct stat st {};
    return fstat(dir, &st) == 0 && st.st_uid == 0 && (st.st_mode & 022) == 0;
}

// Creates `name` in `parent` for `user`: as root (then fchown on the new
// directory's fd) only where nobody else can write; elsewhere with the
// user's own identity, so a swap there can give the user nothing. The mode
// comes from the umask at mkdir. Check: says who would, making nothing.
StartStatus create_last(const Subject& s, int parent, const std::string& name,
                        const ServiceUser& user, DirAction action, DirState& out) {
    const bool as_root = geteuid() == 0 && only_root_writes(parent);
    const std::string who = as_root ? std::string("root") : user.name;
    auto cannot = [&](int error) {
        return StartStatus::cant_create(s.says("cannot create directory " + s.dir + " as user " +
                                               who + ": " + std::strerror(error)));
    };
    int rc = 0, error = 0;
    {
        std::optional<ActingAs> acting;
        if (!as_root) {
            acting.emplace(user, user.gid);
            if (!acting->status()) return StartStatus::os_error(s.says(acting->status().error()));
        }
        if (action == DirAction::Check) {
            if (faccessat(parent, ".", W_OK | X_OK, AT_EACCESS) != 0) return cannot(errno);
            out.made_by = who;
            return StartStatus::ok();
        }
        const mode_t old = umask(~s.mode & 0777);
        rc = mkdirat(parent, name.c_str(), s.mode);
        error = errno;
        umask(old);
    }
    if (rc != 0 && error != EEXIST)
        return cannot(error);  // EEXIST: made meanwhile; checked like any other
    if (rc != 0) return StartStatus::ok();
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", unsigned(s.mode));
    log::info("created " + (s.key == "spool_dir" ? s.key : "the " + s.key + "'s directory") + " " +
              s.dir + " for user " + user.name + ", mode " + mode);
    if (as_root) {
        UniqueFd made(
            openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!made.valid() || fchown(made.get(), user.uid, user.gid) != 0) {
            return StartStatus::os_error(s.says("cannot give " + s.dir + " to user " + user.name +
                                                ": " + std::strerror(errno)));
        }
    }
    return StartStatus::ok();
}

// Walks s.dir from "/" without following links, creates its last component
// when missing, and opens it (out.fd), refusing one the user does not own
// when s.must_own.
StartStatus open_dir(const Subject& s, const ServiceUser& user, DirAction action, DirState& out) {
    if (s.dir.empty() || s.dir[0] != '/')
        return StartStatus::config(s.says("not an absolute path"));
    const std::vector<std::string> parts = components(s.dir);
    if (parts.empty()) return StartStatus::config(s.says("not a directory rt-milter may own"));
    UniqueFd dir(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid())
        return StartStatus::os_error(s.says("cannot open /: " + std::string(std::strerror(errno))));
    std::string so_far;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        so_far += "/" + parts[i];
        UniqueFd next(
            openat(dir.get(), parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!next.valid()) return open_failure(s, dir.get(), parts[i], so_far, errno);
        dir = std::move(next);
    }
    const std::string& last = parts.back();
    struct stat st {};
    if (fstatat(dir.get(), last.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno != ENOENT)
            return StartStatus::cant_create(s.says(s.dir + ": " + std::strerror(errno)));
        if (StartStatus made = create_last(s, dir.get(), last, user, action, out); !made)
            return made;
        if (!out.made_by.empty()) return StartStatus::ok();  // Check: it would be made
    }
    UniqueFd opened(
        openat(dir.get(), last.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!opened.valid()) return open_failure(s, dir.get(), last, s.dir, errno);
    if (fstat(opened.get(), &st) != 0)
        return StartStatus::cant_create(s.says(s.dir + ": " + std::strerror(errno)));
    if (s.must_own && st.st_uid != user.uid) {
        return StartStatus::config(s.key + " " + s.dir + " is owned by " + user_name(st.st_uid) +
                                   ", not by " + user.name +
                                   ", the user rt-milter runs as: give it to " + user.name +
                                   " or choose another " + s.key);
    }
    out.fd = std::move(opened);
    return StartStatus::ok();
}

}  // namespace

StartStatus open_spool_dir(const std::string& path, const ServiceUser& user, DirAction action,
                           DirState& out) {
    return open_dir(Subject{"spool_dir", path, path, 0700, true}, user, action, out);
}

StartStatus open_spool_dir(const std::string& path, const ServiceUser& user, UniqueFd& out) {
    DirState state;
    StartStatus status = open_spool_dir(path, user, DirAction::Create, state);
    if (status) out = std::move(state.fd);
    return status;
}

StartStatus make_journal_dir(const std::string& journal, const ServiceUser& user, DirAction action,
                             DirState& out) {
    const Subject s{"journal", journal, std::filesystem::path(journal).parent_path().string(), 0750,
                    false};
    // An existing directory is not walked: root makes nothing in it, and the
    // journal is opened there as the service user, links and all.
    struct stat st {};
    if (stat(s.dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return StartStatus::config(s.says(s.dir + " is not a directory"));
        return StartStatus::ok();
    }
    if (errno != ENOENT)
        return StartStatus::cant_create(
            s.says("cannot reach " + s.dir + ": " + std::strerror(errno)));
    return open_dir(s, user, action, out);
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
