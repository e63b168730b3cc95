// daemon.h — the rt-milter daemon's life: the milter socket (stale unix
// socket removed only when nobody answers on it, mode and group set),
// privileges dropped after bind, SIGUSR1 reload (parse, validate, swap;
// a bad file is logged and the old configuration stays), and on stop a
// drain of in-flight sessions with a deadline.
#pragma once

#include <string>

namespace rtm {

struct DaemonOptions {
    std::string config_path;
};

// Returns the process exit status.
int run_daemon(const DaemonOptions& options);

}  // namespace rtm
