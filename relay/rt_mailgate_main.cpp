// rt_mailgate_main.cpp — main() of rt-mailgate: sets the process-wide
// SIGPIPE disposition, then hands argv, $EXTENSION and the standard streams
// to run_mailgate(), which owns everything else.
#include <csignal>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "mailgate.h"

int main(int argc, char** argv) {
    // Before anything is written: a reader of our stderr or stdout that goes
    // away (the MTA, a pipe to a log) must not kill a delivery half done.
    // A write to it then fails with EPIPE like any other write error, and
    // the exit code still says what became of the message.
    std::signal(SIGPIPE, SIG_IGN);
    std::vector<std::string> args(argv, argv + argc);
    const char* ext = std::getenv("EXTENSION");
    std::optional<std::string> extension = ext ? std::optional<std::string>(ext) : std::nullopt;
    return rtm::run_mailgate(args, extension, 0, stdout, stderr);
}
