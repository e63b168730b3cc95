// value_checks.h — checks of single configuration values, free of TOML: the
// milter socket spec, the socket mode, the recipient delimiter, an RT base
// URL, a route's address and RT action lists, file paths. Each returns what
// is wrong, worded for the postmaster, or nothing; the loader adds the
// file:line:col and the key. Also split_address, the core that a route's
// address here and an SMTP envelope address (milter/address.h) are parsed
// with.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace rtm {

// What is wrong with a value, or nothing when it is good.
using Problem = std::optional<std::string>;

// `text` as a double-quoted string, control characters escaped, for messages.
std::string quoted(std::string_view text);

Problem check_socket(std::string_view spec);
Problem parse_socket_mode(std::string_view text, unsigned& mode);
Problem check_recipient_delimiter(std::string_view delimiters);

// An RT base URL; base_url() is what is kept of a good one (no trailing '/').
Problem check_rt_url(std::string_view url);
std::string base_url(std::string_view url);

// A mail address cut after its local part: the one core of parse_address
// below and of parse_envelope_address (milter/address.h, which says why the
// two differ). A quoted local part ("a b"@example.com) comes out unquoted,
// its backslash escapes removed; an unquoted one ends at the first or the
// last '@' (`end`), or with the text when it has none. Nothing is checked.
struct AddressSplit {
    std::string local;      // the local part, unquoted
    std::string_view rest;  // what follows it: "@domain" when well formed, "" when nothing does
    bool quoted = false;    // the local part was quoted
    bool closed = true;     // false: a quoted local part without its closing '"' (rest is "")
};
enum class UnquotedEnd { FirstAt, LastAt };
AddressSplit split_address(std::string_view text, UnquotedEnd end);

// A route's address: local-part@domain as an operator writes it, bare (no
// angle brackets, no spaces outside a quoted local part). Both parts come
// out lower-cased.
Problem parse_address(std::string_view text, std::string& local_part, std::string& domain);

// RT's mail-gateway action: correspond, comment, take, resolve, or several of
// them joined by '-' ("take-comment"). Case-sensitive, as RT is.
Problem check_action(std::string_view action);

// An authserv-id of trusted_authserv_ids (RFC 8601; a host name in practice).
Problem check_authserv_id(std::string_view id);

Problem check_not_empty(std::string_view text);
Problem check_host_name(std::string_view host);  // a redirect target: name or address, no port
Problem check_absolute_path(std::string_view path);
Problem check_optional_absolute_path(std::string_view path);  // "" allowed
Problem check_ca_file(std::string_view path);                 // "" allowed, else readable
Problem check_client_cert(std::string_view path);             // "" allowed, else readable

}  // namespace rtm
