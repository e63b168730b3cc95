// value_checks.h — checks of single configuration values, free of TOML: the
// milter socket spec, the socket mode, the recipient delimiter, an RT base
// URL, a route's address and RT action lists, file paths. Each returns what
// is wrong, worded for the postmaster, or nothing; the loader adds the
// file:line:col and the key.
#pragma once

#include <optional>
#include <string>
#include <string_view>

// Not used here: ascii_lower moved to common/text.h, and milter/address.h
// and milter/session.cpp still reach it through this file. Drop this
// include once they include text.h themselves.
#include "text.h"

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

// local-part@domain; a quoted local part ("a b"@example.com) is unquoted.
// Both parts come out lower-cased.
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
