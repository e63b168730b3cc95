// fuzz_config.cpp — load_config_string() on any bytes: it must never crash
// or throw (an exception escaping here is a libFuzzer crash), a result has a
// Config exactly when it has no errors, every error prints, and a Config it
// accepts is usable: it has a route, every route's server exists
// (server_for() is .at()), and a RouteTable over it routes a few addresses.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "address.h"
#include "config.h"
#include "fuzz_check.h"
#include "routing.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const rtm::LoadResult r = rtm::load_config_string(text, "fuzz.toml");
    FUZZ_CHECK(r.config.has_value() == r.errors.empty(),
               "a Config exactly when there are no errors");
    for (const rtm::ConfigError& e : r.errors) {
        const std::string line = e.to_string();
        FUZZ_CHECK(!line.empty(), "an error prints as something");
        FUZZ_CHECK(e.file == "fuzz.toml", "an error names the file");
    }
    if (!r.config) return 0;
    const rtm::Config& c = *r.config;
    FUZZ_CHECK(c.servers.count("rt") == 1, "an accepted config has [rt]");
    FUZZ_CHECK(!c.routes.empty(), "an accepted config has a [[route]]");
    for (const rtm::Route& route : c.routes) {
        FUZZ_CHECK(c.servers.count(route.server) == 1, "every route's server exists");
        (void)c.server_for(route);
    }
    const rtm::RouteTable table(c);
    for (const rtm::Route& route : c.routes) {
        for (const std::string& raw :
             {"<" + route.address + ">", "<" + route.local_part + "+1@" + route.domain + ">",
              "<" + route.local_part + "+x@" + route.domain + ">"}) {
            const rtm::AddressParse p = rtm::parse_envelope_address(raw);
            if (p.address) (void)table.route(*p.address);
        }
    }
    return 0;
}
