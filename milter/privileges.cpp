// privileges.cpp — the `user` policy: root only on purpose.
#include "privileges.h"

namespace rtm {

UserCheck check_user_setting(const std::string& user, StartedAs started) {
    static const std::string advice =
        "set user to an unprivileged account (e.g. user = \"rt-milter\"), or user = \"root\" to run as root on purpose";
    if (user == "root" && started != StartedAs::NotRoot) {
        return {false, "user = \"root\": rt-milter runs as root on purpose; an unprivileged account is safer"};
    }
    if (!user.empty() || started == StartedAs::NotRoot) return {};  // not root: drop_privileges judges
    if (started == StartedAs::Root) return {true, "user is empty and rt-milter was started as root: " + advice};
    return {false, "user is empty: started as root, rt-milter refuses to run; " + advice};
}

}  // namespace rtm
