// callbacks.h — the libmilter seam: registers rt-milter's callbacks and
// turns each C callback into a Session call. Per-connection state lives
// only behind smfi_setpriv; no C++ exception crosses into libmilter (it
// becomes a tempfail and a log line). Also counts live connections so the
// daemon can drain them on stop.
#pragma once

#include <memory>

#include "runtime.h"

namespace rtm::milter {

// The runtime new transactions get; swapped atomically on reload.
void set_runtime(std::shared_ptr<const Runtime> runtime);
std::shared_ptr<const Runtime> current_runtime();

// smfi_register with our callbacks; false (and a log line) on failure.
bool register_filter();

int live_connections();

}  // namespace rtm::milter
