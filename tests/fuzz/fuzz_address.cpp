// fuzz_address.cpp — parse_envelope_address() on any bytes, then routing of
// what it accepts through a RouteTable of the unit tests' fixed Config (one
// route of each extension mode), with "+" and with "-+" as delimiters.
// Checks: a parsed address survives address() -> parse again unchanged; a
// routed target belongs to the route; an SMTP refusal text never carries a
// line break or NUL (it goes verbatim into an SMTP reply).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "address.h"
#include "fuzz_check.h"
#include "milter_fixtures.h"
#include "routing.h"

namespace {

const rtm::Config& config(bool two_delimiters) {
    static const rtm::Config plus = rtm::testing::make_config("http://rt.example.com");
    static const rtm::Config both = [] {
        rtm::Config c = rtm::testing::make_config("http://rt.example.com");
        c.recipient_delimiter = "-+";
        return c;
    }();
    return two_delimiters ? both : plus;
}

bool one_line(std::string_view s) {
    return s.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
}

void route(const rtm::Config& cfg, const rtm::EnvelopeAddress& a,
           std::string_view mta_resolved = {}) {
    const rtm::RouteTable table(cfg);  // holds a reference: cfg is static
    const rtm::RouteDecision d = table.route(a, mta_resolved);
    switch (d.kind) {
        case rtm::RouteDecision::Kind::NotRt:
            break;
        case rtm::RouteDecision::Kind::Routed:
            FUZZ_CHECK(d.route != nullptr, "a routed decision names its route");
            FUZZ_CHECK(d.target.url == cfg.server_for(*d.route).url,
                       "target url is the route's server");
            if (d.target.ticket) {
                FUZZ_CHECK(!d.target.ticket->empty() && d.target.ticket->find_first_not_of(
                                                            "0123456789") == std::string::npos,
                           "ticket numbers are digits");
            }
            (void)rtm::posted_prefix(a.address(), d.extension);
            break;
        case rtm::RouteDecision::Kind::Refused:
            FUZZ_CHECK(d.rcode.size() == 3 && d.rcode[0] == '5', "a refusal is 5xx");
            FUZZ_CHECK(one_line(d.text), "refusal text is one line (SMTP reply)");
            break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view raw(reinterpret_cast<const char*>(data), size);
    const rtm::AddressParse p = rtm::parse_envelope_address(raw);
    if (!p.address) {
        FUZZ_CHECK(!p.error.empty(), "a failed parse says why");
        return 0;
    }
    const rtm::EnvelopeAddress& a = *p.address;
    FUZZ_CHECK(a.raw == raw, "raw is kept exactly");
    if (!a.null_sender()) {
        const std::string again = "<" + a.address() + ">";
        const rtm::AddressParse q = rtm::parse_envelope_address(again);
        FUZZ_CHECK(q.address.has_value(), "address() parses again");
        FUZZ_CHECK(q.address->local == a.local && q.address->domain == a.domain,
                   "address() round-trips local part and domain");
    }
    route(config(false), a);
    route(config(true), a);
    // What an MTA would make of it: each step shortens the local part.
    if (const std::optional<rtm::EnvelopeAddress> r = rtm::rewritten_by_mta(a)) {
        FUZZ_CHECK(!r->local.empty() && !r->domain.empty() && r->local.size() < a.local.size(),
                   "a rewrite step shortens the local part");
    }
    // The same bytes as the MTA's own resolution of another address.
    route(config(false), a, raw.substr(raw.size() / 2));
    return 0;
}
