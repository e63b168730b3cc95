// fuzz_auth_results.cpp — parse_authentication_results() and the trust
// decisions that read its output (milter/trust.h) on any bytes. Checks: a
// parse either fails with a reason or yields a well-formed result (an
// authserv-id, lower-case keywords, a result for every method); writing the
// parse back in canonical form (every value quoted) and parsing that again
// gives the same results; whatever the input, safe_part() never leaves take
// or resolve, and alignment is only ever with the signing domain itself or
// one of its subdomains; a proof from headers names a trusted authserv-id
// and needs a "pass" in the input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth_results.h"
#include "fuzz_check.h"
#include "trust.h"

namespace {

bool is_keyword(const std::string& s) {
    for (char c : s)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    return !s.empty();
}

std::string quote(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string canonical(const rtm::AuthResults& ar) {
    std::string out = quote(ar.authserv_id);
    if (!ar.version.empty()) out += " " + ar.version;
    if (ar.results.empty()) return out + "; none";
    for (const rtm::AuthResult& r : ar.results) {
        out += "; " + r.method;
        if (!r.method_version.empty()) out += "/" + r.method_version;
        out += "=" + r.result;
        if (!r.reason.empty()) out += " reason=" + quote(r.reason);
        for (const rtm::AuthProperty& p : r.properties)
            out += " " + p.ptype + "." + p.property + "=" + quote(p.value);
    }
    return out;
}

bool same(const rtm::AuthResults& a, const rtm::AuthResults& b) {
    if (a.authserv_id != b.authserv_id || a.version != b.version ||
        a.results.size() != b.results.size())
        return false;
    for (std::size_t i = 0; i < a.results.size(); ++i) {
        const rtm::AuthResult &x = a.results[i], &y = b.results[i];
        if (x.method != y.method || x.method_version != y.method_version || x.result != y.result ||
            x.reason != y.reason || x.properties.size() != y.properties.size())
            return false;
        for (std::size_t j = 0; j < x.properties.size(); ++j) {
            if (x.properties[j].ptype != y.properties[j].ptype ||
                x.properties[j].property != y.properties[j].property ||
                x.properties[j].value != y.properties[j].value)
                return false;
        }
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);

    const rtm::AuthResultsParse p = rtm::parse_authentication_results(in);
    FUZZ_CHECK(p.parsed.has_value() != !p.error.empty(),
               "a parse has a result or a reason, not both");
    if (p.parsed) {
        const rtm::AuthResults& ar = *p.parsed;
        FUZZ_CHECK(!ar.authserv_id.empty() || in.find("\"\"") != std::string_view::npos,
                   "an empty authserv-id only from an empty quoted string");
        for (const rtm::AuthResult& r : ar.results) {
            FUZZ_CHECK(is_keyword(r.method) && is_keyword(r.result),
                       "method and result are lower-case keywords");
            for (const rtm::AuthProperty& prop : r.properties)
                FUZZ_CHECK(is_keyword(prop.ptype) && is_keyword(prop.property),
                           "ptype.property are keywords");
        }
        const std::string again = canonical(ar);
        if (again.size() <= rtm::max_auth_results_bytes) {
            const rtm::AuthResultsParse q = rtm::parse_authentication_results(again);
            FUZZ_CHECK(q.parsed && same(ar, *q.parsed),
                       "the canonical form parses to the same results");
        }
    }

    // The decisions that read such input.
    const std::string safe = rtm::safe_part(in);
    FUZZ_CHECK(!rtm::needs_proof(safe), "the safe part of any action list needs no proof");
    const std::size_t cut = in.find(' ');
    const std::string_view d = in.substr(0, cut),
                           f = cut == std::string_view::npos ? "" : in.substr(cut + 1);
    if (rtm::dkim_aligned(d, f)) {
        std::string dl(d), fl(f);
        for (char& c : dl) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
        for (char& c : fl) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
        if (dl.ends_with('.')) dl.pop_back();
        if (fl.ends_with('.')) fl.pop_back();
        FUZZ_CHECK(fl == dl || fl.ends_with("." + dl),
                   "aligned only with d itself or a subdomain of d");
    }
    (void)rtm::at_domains(in);

    rtm::Config config;
    config.trusted_authserv_ids = {"mx.example.com"};
    config.authserv_id_with_job_id = (size & 1) != 0;
    rtm::HeaderEvidence evidence;
    evidence.add(config, "Authentication-Results", in);
    evidence.add(config, "From", "Alice <alice@example.org>");
    std::vector<rtm::TrustNote> notes;
    const rtm::Proof proof = evidence.prove(config, "4ABC12", notes);
    if (proof) {
        FUZZ_CHECK(p.parsed.has_value(), "a proof from a header that parses");
        FUZZ_CHECK(proof.text.rfind("dmarc:mx.example.com", 0) == 0 ||
                       proof.text.rfind("dkim:mx.example.com:", 0) == 0,
                   "a proof names the trusted authserv-id");
        std::string lower(in);
        for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
        FUZZ_CHECK(lower.find("pass") != std::string::npos,
                   "a proof needs a pass (results are bare keywords)");
    }
    return 0;
}
