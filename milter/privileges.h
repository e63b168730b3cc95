// privileges.h — who rt-milter runs as. Started as root it must be told
// whom to become (`user`, or user = "root" on purpose); the one line that
// says so is built here for the daemon and --check-config alike.
#pragma once

#include <string>

namespace rtm {

// How the process that reads `user` was started. --check-config run by
// someone else cannot know how the daemon will be: Unknown.
enum class StartedAs { Root, NotRoot, Unknown };

struct UserCheck {
    bool fatal = false;  // refuse to start (exit 78, EX_CONFIG)
    std::string line;    // "" when there is nothing to say
};

UserCheck check_user_setting(const std::string& user, StartedAs started);

}  // namespace rtm
