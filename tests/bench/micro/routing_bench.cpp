// routing_bench.cpp — recipient routing, per RCPT TO: parsing the envelope
// address the MTA hands over (parse_envelope_address) and looking it up in
// the RouteTable of a small configuration, as Session::rcpt does, for a
// plain RT alias, aliases with a ticket, action or queue extension, an
// extension the route refuses, and an address that is not RT's.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <iterator>

#include "address.h"
#include "config.h"
#include "routing.h"

namespace rtm {
namespace {

constexpr const char* kConfig = R"(
socket = "unix:/run/rt-milter/rt-milter.sock"
spool_dir = "/tmp"
journal = ""
[rt]
url = "https://rt.example.com"
[servers.legacy]
url = "http://rt-old.example.com"

[[route]]
address = "rt@example.com"
queue = "General"
extension = "ticket"

[[route]]
address = "rt-comment@example.com"
queue = "General"
action = "comment"

[[route]]
address = "support@example.com"
queue = "Support"
action = "correspond"

[[route]]
address = "sales@example.com"
queue = "Sales"
extension = "queue"
queues = ["Sales", "Europe", "Americas"]

[[route]]
address = "staff@example.com"
server = "legacy"
queue = "Internal"
extension = "action"
actions = ["correspond", "comment", "take-comment"]
)";

const Config& bench_config() {
    static const Config config = [] {
        LoadResult r = load_config_string(kConfig, "bench-micro.toml");
        if (!r.config) {
            for (const ConfigError& e : r.errors)
                std::fprintf(stderr, "%s\n", e.to_string().c_str());
            std::abort();
        }
        return std::move(*r.config);
    }();
    return config;
}

const RouteTable& bench_routes() {
    static const RouteTable table(bench_config());
    return table;
}

struct Case {
    const char* label;
    const char* raw;  // argv[0] of RCPT TO, as the MTA passes it
    RouteDecision::Kind expected;
};

constexpr Case kCases[] = {
    {"rt alias", "<rt@example.com>", RouteDecision::Kind::Routed},
    {"rt+123 (ticket ext)", "<rt+123@example.com>", RouteDecision::Kind::Routed},
    {"staff+comment (action ext)", "<Staff+comment@Example.COM>", RouteDecision::Kind::Routed},
    {"sales+europe (queue allow-list)", "<sales+europe@example.com>", RouteDecision::Kind::Routed},
    {"rt+comment (refused: not a ticket)", "<rt+comment@example.com>",
     RouteDecision::Kind::Refused},
    {"not RT", "<alice.smith@example.org>", RouteDecision::Kind::NotRt},
};

// Checks once, outside the timing, that the case routes as labelled.
bool check_case(benchmark::State& state, const Case& c) {
    state.SetLabel(c.label);
    AddressParse p = parse_envelope_address(c.raw);
    if (!p.address) {
        state.SkipWithError(("does not parse: " + p.error).c_str());
        return false;
    }
    if (bench_routes().route(*p.address).kind != c.expected) {
        state.SkipWithError("routes differently than the case expects");
        return false;
    }
    return true;
}

// What Session::rcpt does per recipient: parse, then route.
void BM_ParseAndRoute(benchmark::State& state) {
    const Case& c = kCases[state.range(0)];
    if (!check_case(state, c)) return;
    const RouteTable& routes = bench_routes();
    for (auto _ : state) {
        AddressParse p = parse_envelope_address(c.raw);
        RouteDecision d = routes.route(*p.address);
        benchmark::DoNotOptimize(d);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseAndRoute)->DenseRange(0, std::size(kCases) - 1);

// The two halves apart, for the plain alias and for one with an extension.
void BM_ParseEnvelopeAddress(benchmark::State& state) {
    const Case& c = kCases[state.range(0)];
    if (!check_case(state, c)) return;
    for (auto _ : state) {
        AddressParse p = parse_envelope_address(c.raw);
        benchmark::DoNotOptimize(p);
    }
}
BENCHMARK(BM_ParseEnvelopeAddress)->Arg(0)->Arg(2);

void BM_RouteLookup(benchmark::State& state) {
    const Case& c = kCases[state.range(0)];
    if (!check_case(state, c)) return;
    const EnvelopeAddress address = *parse_envelope_address(c.raw).address;
    const RouteTable& routes = bench_routes();
    for (auto _ : state) {
        RouteDecision d = routes.route(address);
        benchmark::DoNotOptimize(d);
    }
}
BENCHMARK(BM_RouteLookup)->Arg(0)->Arg(2);

}  // namespace
}  // namespace rtm
