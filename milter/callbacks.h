// callbacks.h — the libmilter seam, the only file of rt-milter that reaches
// libmilter: registers rt-milter's callbacks and turns each C callback into
// a Session call, and gives the daemon (daemon.cpp) the few calls of its
// start-up and stop: the socket, the loop, the stop state. Per-connection
// state lives only behind smfi_setpriv; no C++ exception crosses into
// libmilter (it becomes a tempfail and a log line). Also counts live
// connections so the daemon can drain them on stop.
#pragma once

#include <memory>
#include <string>

#include "runtime.h"

namespace rtm::milter {

// The runtime new transactions get; swapped atomically on reload.
void set_runtime(std::shared_ptr<const Runtime> runtime);
std::shared_ptr<const Runtime> current_runtime();

// smfi_register with our callbacks; false (and a log line) on failure.
bool register_filter();

int live_connections();

// ---- the daemon's start-up and stop (daemon.cpp calls these in order) ----
// The socket spec libmilter will listen on (smfi_setconn); false when
// libmilter does not take it.
bool set_socket(const std::string& spec);
// Creates and binds that socket now (smfi_opensocket, which leaves an
// existing unix socket alone: the daemon has cleared a stale one itself);
// it takes the caller's identity and umask. False when libmilter cannot.
bool open_socket();
// libmilter's loop (smfi_main) until a stop (SIGTERM, SIGHUP, SIGINT);
// false when it reported failure: see stop_state() for whether that was a
// stop landing at a bad moment.
bool run();
// libmilter's own stop state (mi_stop): Stop once a signal asked for a
// stop, Abort when its listener gave up.
enum class StopState { Running, Stop, Abort };
StopState stop_state();

}  // namespace rtm::milter
