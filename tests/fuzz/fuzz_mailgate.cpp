// fuzz_mailgate.cpp — rt-mailgate's command line: parse_mailgate_args() and
// plan_extension() on any argument vector. Input: the words of argv (after
// argv[0]) separated by NUL; a last word "EXTENSION=..." (after a final
// NUL) is $EXTENSION instead. Checks: the extension header, when there is
// one, is a single "X-RT-Mail-Extension: " line ending in LF (unless the
// value itself brings a line break), fields come in the documented order.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "mailgate.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> args;
    std::optional<std::string> env;
    while (!in.empty()) {
        const std::size_t nul = in.find('\0');
        const std::string_view word = in.substr(0, nul);
        if (nul == std::string_view::npos && word.starts_with("EXTENSION=") && !args.empty()) {
            env = std::string(word.substr(10));
        } else {
            args.emplace_back(word);
        }
        if (nul == std::string_view::npos) break;
        in.remove_prefix(nul + 1);
    }
    const rtm::MailgateOptions o = rtm::parse_mailgate_args(args);
    const rtm::ExtensionPlan plan = rtm::plan_extension(o, env);
    if (!plan.header.empty()) {
        FUZZ_CHECK(plan.header.starts_with("X-RT-Mail-Extension: "), "the extension header's name");
        FUZZ_CHECK(plan.header.ends_with("\n"), "the extension header ends in LF");
    }
    const char* order[] = {"queue", "action", "ticket"};
    std::size_t at = 0;
    for (const rtm::FormField& f : plan.fields) {
        while (at < 3 && f.name != order[at]) ++at;
        FUZZ_CHECK(at < 3, "fields are queue, action, ticket, in that order, each once");
        ++at;
    }
    (void)rtm::perl_true(env);
    return 0;
}
