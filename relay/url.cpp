// url.cpp — reading http(s) URLs with libcurl's URL API, the redirect rule,
// and password masking for URLs shown to people.
#include "url.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>

#include "text.h"

namespace rtm {
namespace {

using CurlUrl = std::unique_ptr<CURLU, decltype(&curl_url_cleanup)>;
using CurlText = std::unique_ptr<char, decltype(&curl_free)>;

std::string get_part(CURLU* u, CURLUPart part, unsigned flags = 0) {
    char* text = nullptr;
    if (curl_url_get(u, part, &text, flags) != CURLUE_OK || !text) return {};
    return std::string(CurlText(text, &curl_free).get());
}

// "[::1]" and "::1" name the same host; case never matters (RFC 3986 3.2.2).
bool same_host(std::string_view a, std::string_view b) {
    return iequals(bare_host(a), bare_host(b));
}

bool is_scheme(std::string_view s) {
    auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    auto other = [&](char c) {
        return alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
    };
    return !s.empty() && alpha(s[0]) && std::all_of(s.begin() + 1, s.end(), other);
}

}  // namespace

HttpUrl parse_http_url(std::string_view text) {
    HttpUrl url;
    constexpr std::string_view kNotAbsolute = "URL must be absolute (http:// or https://)";
    CurlUrl u(curl_url(), &curl_url_cleanup);
    if (!u) throw std::bad_alloc();
    // The flags curl's own CURLOPT_URL parsing uses, less the scheme guess.
    const CURLUcode rc =
        curl_url_set(u.get(), CURLUPART_URL, std::string(text).c_str(), CURLU_NON_SUPPORT_SCHEME);
    if (rc != CURLUE_OK) {
        url.error = rc == CURLUE_BAD_SCHEME || rc == CURLUE_BAD_SLASHES
                        ? std::string(kNotAbsolute)
                        : "not a valid URL: " + std::string(curl_url_strerror(rc));
        return url;
    }
    url.scheme = get_part(u.get(), CURLUPART_SCHEME);  // curl gives it in lower case
    url.host = get_part(u.get(), CURLUPART_HOST);
    url.port = get_part(u.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
    // curl also reads "http:/host"; as before, only "scheme://" is absolute.
    if ((url.scheme != "http" && url.scheme != "https") ||
        text.substr(url.scheme.size(), 3) != "://" || url.host.empty()) {
        url.error = kNotAbsolute;
    }
    return url;
}

std::string redirect_refusal(const HttpUrl& origin, const HttpUrl& from, const HttpUrl& to,
                             const std::vector<std::string>& allowed_hosts) {
    std::string why;
    if (from.scheme == "https" && to.scheme != "https") {
        why = "from https to " + to.scheme + ", the message would travel unencrypted";
    }
    const bool host_ok = same_host(to.host, origin.host) ||
                         std::any_of(allowed_hosts.begin(), allowed_hosts.end(),
                                     [&](const std::string& h) { return same_host(to.host, h); });
    if (!host_ok) {
        why += (why.empty() ? "" : "; ") +
               ("to another host than " + origin.host + ", not one allowed for redirects");
    }
    return why;
}

std::string_view bare_host(std::string_view host) {
    return host.size() >= 2 && host.front() == '[' && host.back() == ']'
               ? host.substr(1, host.size() - 2)
               : host;
}

bool same_origin(const HttpUrl& a, const HttpUrl& b) {
    return a.scheme == b.scheme && same_host(a.host, b.host) && a.port == b.port;
}

std::string redact_url(std::string_view url) {
    // By the RFC 3986 grammar, not libcurl's parser: masking must also work
    // on text curl would refuse (a bad --url is still printed in its error),
    // and must leave every other byte as the user wrote it.
    const auto sep = url.find("://");
    if (sep == std::string_view::npos || !is_scheme(url.substr(0, sep))) return std::string(url);
    const auto start = sep + 3;
    const auto end = std::min(url.find_first_of("/?#", start), url.size());
    const std::string_view authority = url.substr(start, end - start);
    // The last '@': a password with a raw '@' in it is masked whole.
    const auto at = authority.rfind('@');
    const auto colon = authority.find(':');
    if (at == std::string_view::npos || colon == std::string_view::npos || colon + 1 >= at)
        return std::string(url);
    std::string out(url.substr(0, start + colon + 1));
    out += "***";
    out += url.substr(start + at);
    return out;
}

}  // namespace rtm
