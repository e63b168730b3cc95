// privileges.cpp — the `user` policy (root only on purpose), the service
// user, ActingAs and the final drop.
#include "privileges.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace rtm {
namespace {

std::string errno_text() {
    return std::strerror(errno);
}

std::vector<gid_t> current_groups() {
    const int n = getgroups(0, nullptr);
    std::vector<gid_t> groups(n > 0 ? static_cast<std::size_t>(n) : 0);
    if (n > 0 && getgroups(n, groups.data()) < 0) groups.clear();
    return groups;
}

std::vector<gid_t> groups_of(const char* name, gid_t gid) {
    int n = 32;
    std::vector<gid_t> groups;
    for (int attempt = 0; attempt < 4; ++attempt) {  // getgrouplist says how many it needs
        groups.resize(static_cast<std::size_t>(n));
        int want = n;
        if (getgrouplist(name, gid, groups.data(), &want) >= 0) {
            groups.resize(static_cast<std::size_t>(want));
            return groups;
        }
        n = want > n ? want : n * 2;
    }
    return {gid};
}

}  // namespace

UserCheck check_user_setting(const std::string& user, StartedAs started) {
    static const std::string advice =
        "set user to an unprivileged account (e.g. user = \"rt-milter\"), or user = \"root\" to "
        "run as root on purpose";
    if (user == "root" && started != StartedAs::NotRoot) {
        return {
            false,
            "user = \"root\": rt-milter runs as root on purpose; an unprivileged account is safer"};
    }
    if (!user.empty() || started == StartedAs::NotRoot)
        return {};  // not root: resolve_service_user judges
    if (started == StartedAs::Root)
        return {true, "user is empty and rt-milter was started as root: " + advice};
    return {false, "user is empty: started as root, rt-milter refuses to run; " + advice};
}

std::optional<ServiceUser> resolve_service_user(const std::string& user, std::string& error) {
    ServiceUser service;
    const bool root = geteuid() == 0;
    if (user.empty()) {
        service.uid = geteuid();
        service.gid = getegid();
        service.groups = current_groups();
        const passwd* pw = getpwuid(service.uid);
        service.name = pw ? pw->pw_name : "uid " + std::to_string(service.uid);
        return service;
    }
    const passwd* pw = getpwnam(user.c_str());
    if (!pw) {
        error = "user " + user + " does not exist";
        return std::nullopt;
    }
    service.name = pw->pw_name;
    service.uid = pw->pw_uid;
    service.gid = pw->pw_gid;
    if (!root) {
        if (service.uid != geteuid()) {
            error = "user = \"" + user + "\" needs rt-milter started as root";
            return std::nullopt;
        }
        service.gid = getegid();
        service.groups = current_groups();
        return service;
    }
    service.groups = groups_of(pw->pw_name, pw->pw_gid);
    service.from_root = true;
    return service;
}

std::optional<gid_t> group_id(const std::string& name) {
    if (const group* g = getgrnam(name.c_str())) return g->gr_gid;
    return std::nullopt;
}

ActingAs::ActingAs(const ServiceUser& user, gid_t group) {
    if (geteuid() != 0) return;
    saved_egid_ = getegid();
    saved_groups_ = current_groups();
    // Groups and gid first: once the uid is not 0 they cannot change.
    if (setgroups(user.groups.size(), user.groups.data()) != 0) {
        status_ =
            Status::failure("cannot take the groups of user " + user.name + ": " + errno_text());
        return;
    }
    groups_set_ = true;
    if (setegid(group) != 0) {
        status_ =
            Status::failure("cannot take group " + std::to_string(group) + ": " + errno_text());
        restore();
        return;
    }
    gid_set_ = true;
    if (seteuid(user.uid) != 0) {
        status_ = Status::failure("cannot act as user " + user.name + ": " + errno_text());
        restore();
        return;
    }
    uid_set_ = true;
}

ActingAs::~ActingAs() {
    restore();
}

void ActingAs::restore() {
    // A process that cannot get back to what it was must not carry on
    // half switched: abort, and let the supervisor report it.
    if (uid_set_ && seteuid(0) != 0) std::abort();
    if (gid_set_ && setegid(saved_egid_) != 0) std::abort();
    if (groups_set_ && setgroups(saved_groups_.size(), saved_groups_.data()) != 0) std::abort();
    uid_set_ = gid_set_ = groups_set_ = false;
}

Status drop_privileges(const ServiceUser& user) {
    if (!user.from_root) return Status::ok();
    if (initgroups(user.name.c_str(), user.gid) != 0 || setgid(user.gid) != 0 ||
        setuid(user.uid) != 0) {
        return Status::failure("cannot switch to user " + user.name + ": " + errno_text());
    }
    if (user.uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        return Status::failure("switched to user " + user.name + " but could become root again");
    }
    return Status::ok();
}

}  // namespace rtm
