// daemon.h — the rt-milter daemon's life: the preflight (preflight.h:
// journal, spool, TLS files, as the service user) before anything listens,
// the milter socket (a unix one bound as the service user with its group
// and mode from the start; a stale one removed only when nobody answers on
// it), privileges dropped after it, READY=1 to the service manager once it
// listens, SIGUSR1 reload (parse, validate, swap; a bad file is logged and
// the old configuration stays; RELOADING=1 then READY=1), and on stop
// (STOPPING=1) a drain of in-flight sessions with a deadline.
#pragma once

#include <string>

namespace rtm {

struct DaemonOptions {
    std::string config_path;
};

// Returns the process exit status (start_status.h; 1 when libmilter's
// listener failed).
int run_daemon(const DaemonOptions& options);

}  // namespace rtm
