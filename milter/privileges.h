// privileges.h — who rt-milter runs as. Started as root it must be told
// whom to become (`user`, or user = "root" on purpose). The service user is
// resolved once at start; ActingAs lends a root process that user's
// effective identity for one step (the socket's bind, a directory it may
// create), so nothing it makes needs a chown by path; drop_privileges()
// makes the switch final. Nothing here opens a file.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "status.h"

namespace rtm {

// How the process that reads `user` was started. --check-config run by
// someone else cannot know how the daemon will be: Unknown.
enum class StartedAs { Root, NotRoot, Unknown };

struct UserCheck {
    bool fatal = false;  // refuse to start (exit 78, EX_CONFIG)
    std::string line;    // "" when there is nothing to say
};

UserCheck check_user_setting(const std::string& user, StartedAs started);

// The account rt-milter runs as once started.
struct ServiceUser {
    std::string name;  // for messages and initgroups
    uid_t uid = 0;
    gid_t gid = 0;              // its primary group
    std::vector<gid_t> groups;  // its supplementary groups
    bool from_root = false;     // started as root: becomes uid at drop_privileges()
};

// `user` as configured ("" = the running user, who must not be root: see
// check_user_setting). Fails with one line when the account does not exist
// or `user` names another account than the running one without root.
std::optional<ServiceUser> resolve_service_user(const std::string& user, std::string& error);

// The gid of a group name; nullopt when there is none.
std::optional<gid_t> group_id(const std::string& name);

// While it lives, a root process acts as `user` with effective group
// `group`: the effective uid, gid and supplementary groups change, the real
// and saved uid stay root, so the destructor can restore them. Not root:
// does nothing. Process-wide (glibc applies set*id to every thread), so it
// is for start-up, before any thread exists.
class ActingAs {
  public:
    ActingAs(const ServiceUser& user, gid_t group);
    ~ActingAs();
    ActingAs(const ActingAs&) = delete;
    ActingAs& operator=(const ActingAs&) = delete;

    const Status& status() const { return status_; }

  private:
    void restore();

    Status status_ = Status::ok();
    bool groups_set_ = false, gid_set_ = false, uid_set_ = false;
    gid_t saved_egid_ = 0;
    std::vector<gid_t> saved_groups_;
};

// Started as root: become the service user for good (groups, gid, uid), and
// check that root cannot be regained. Otherwise nothing to do. Says
// nothing: the caller logs (the preflight's child drops too).
Status drop_privileges(const ServiceUser& user);

}  // namespace rtm
