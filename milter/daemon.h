// daemon.h — the rt-milter daemon's life: the milter socket (a unix one
// bound as the service user with its group and mode from the start; a stale
// one removed only when nobody answers on it), spool_dir opened without
// following links, privileges dropped after both, SIGUSR1 reload (parse,
// validate, swap; a bad file is logged and the old configuration stays),
// and on stop a drain of in-flight sessions with a deadline.
#pragma once

#include <string>

namespace rtm {

struct DaemonOptions {
    std::string config_path;
};

// Returns the process exit status.
int run_daemon(const DaemonOptions& options);

}  // namespace rtm
