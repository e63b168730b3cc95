// url.h — URLs as relay/ reads and shows them: parse_http_url() reads an
// absolute http(s) URL with libcurl's URL API (so what is checked is what
// curl connects to), redirect_refusal() is the rule a redirect must pass
// before anything is posted to it, same_origin() the rule for where the
// gateway credentials go, and redact_url() masks the password of a URL
// before it goes into any output (THREATS.md). No I/O here.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rtm {

struct HttpUrl {
    std::string scheme;  // "http" or "https"
    std::string host;    // as libcurl reads it: a name, IPv4 address or "[IPv6]"
    std::string port;    // explicit, or the scheme's default ("80", "443")
    std::string error;   // set: not an absolute http(s) URL, and why (one line)

    explicit operator bool() const { return error.empty(); }
};

// "http://..." or "https://..." (scheme in any case) that libcurl accepts.
HttpUrl parse_http_url(std::string_view url);

// Why a redirect from `from` (the URL just posted to) to `to` must not be
// followed, or "" when it may be. Refused: https to http (the message would
// travel unencrypted), and a host that is neither `origin`'s (the URL first
// posted to) nor one of `allowed_hosts`. Hosts compare exactly, in any ASCII
// case, with or without IPv6 brackets; the port does not count.
std::string redirect_refusal(const HttpUrl& origin, const HttpUrl& from, const HttpUrl& to,
                             const std::vector<std::string>& allowed_hosts);

// A host as HttpUrl holds it, without the brackets of an IPv6 address:
// "[::1]" -> "::1"; a name or an IPv4 address as it is.
std::string_view bare_host(std::string_view host);

// Same scheme, host (as redirect_refusal compares it) and port: where the
// gateway credentials (client certificate, extra headers) may go.
bool same_origin(const HttpUrl& a, const HttpUrl& b);

// "scheme://user:password@host/..." with the password replaced by "***"
// (the user is kept); anything else, including a URL without a password,
// comes back unchanged, byte for byte.
std::string redact_url(std::string_view url);

}  // namespace rtm
