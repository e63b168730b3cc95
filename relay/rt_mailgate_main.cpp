// rt_mailgate_main.cpp — main() of rt-mailgate: hands argv, $EXTENSION and
// the standard streams to run_mailgate(), which owns everything else.
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "mailgate.h"

int main(int argc, char** argv) {
    std::vector<std::string> args(argv, argv + argc);
    const char* ext = std::getenv("EXTENSION");
    std::optional<std::string> extension = ext ? std::optional<std::string>(ext) : std::nullopt;
    return rtm::run_mailgate(args, extension, 0, stdout, stderr);
}
