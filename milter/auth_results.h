// auth_results.h — the Authentication-Results header field (RFC 8601) parsed
// into its authserv-id, version and results (method, result, reason and
// ptype.property=value pairs), comments in parentheses (nested, with
// quoted-pairs) and quoted strings taken apart as the grammar says. A pure
// function with a fuzz target (tests/fuzz/fuzz_auth_results.cpp). It only
// reads what a verifier wrote; whether to believe it is trust.h's business.
//
// Lenient, where real verifiers stray from the grammar and nothing is lost:
// an authserv-id with a "/job-id" tail (OpenDKIM's and OpenDMARC's
// AuthservIDWithJobID: "mx.example.com/4ABC12"), property values in the
// base64 alphabet unquoted (OpenDKIM's header.b=Ab+/cd==), a bare
// keyword=value after a result that is not ptype.property (Microsoft's
// "action=none": skipped) and a trailing ';'. Anything else malformed —
// an unterminated comment or quote, a control character, a result without
// '=' — fails the whole header: a header that cannot be read proves nothing.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace rtm {

struct AuthProperty {
    std::string ptype;     // "header", "smtp", "policy", ... (lower case)
    std::string property;  // "d", "from", "mailfrom", ... (lower case)
    std::string value;     // unquoted; case kept
};

struct AuthResult {
    std::string method;          // "dkim", "dmarc", "spf", ... (lower case)
    std::string method_version;  // "" when not given
    std::string result;          // "pass", "fail", "none", ... (lower case)
    std::string reason;          // "" when not given
    std::vector<AuthProperty> properties;

    // The value of the first ptype.property, or nullptr (names in lower case).
    const std::string* property(std::string_view ptype, std::string_view property) const;
};

struct AuthResults {
    std::string authserv_id;          // as written, "/job-id" included (case kept)
    std::string version;              // "" when not given
    std::vector<AuthResult> results;  // empty for "none"
};

struct AuthResultsParse {
    std::optional<AuthResults> parsed;
    std::string error;  // why not, with the byte offset, when parsed is empty
};

// The value of one Authentication-Results header field (folded or not, with
// or without the space after the colon). Longer than max_auth_results_bytes:
// refused unread (no verifier writes that much; an attacker might).
constexpr std::size_t max_auth_results_bytes = 16384;
AuthResultsParse parse_authentication_results(std::string_view value);

}  // namespace rtm
