// status_command.h — `rt-milter --status`: the running daemon's state, read
// from its metrics listener's /status and printed for a person.
#pragma once

#include "config.h"

namespace rtm {

// Exit status: 0 healthy, 1 unhealthy, 69 no answer, 78 no `metrics` set.
int run_status_command(const Config& config);

}  // namespace rtm
