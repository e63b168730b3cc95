// online_check.h — what RT itself says about the configuration, before mail
// arrives (issue 12, item 3): per RT server, reachable (TLS verified) and,
// with a rest2_token_file, the token taken; with a token, that every
// route's queue exists (RT answers "temporary failure" for mail to a queue
// it does not have, and senders retry for days). Used by
// `rt-milter --check-config --online` (every server) and by the daemon at
// start and on reload (servers with a token only; warnings in the log).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config.h"

namespace rtm {

struct OnlineFinding {
    bool problem = false;
    std::string
        line;  // one line, no secret: "server rt (https://...): ...", "route a@b (file:3): ..."
};

// Asks each server of `config` (only those with a token when
// tokens_only) and returns what it found, servers first, in name order.
std::vector<OnlineFinding> check_online(const Config& config, bool tokens_only);

// The daemon's way: check_online(tokens_only) on a thread of its own, each
// finding logged (problems as warnings); never delays the caller.
void log_online_check(std::shared_ptr<const Config> config);

}  // namespace rtm
