// url.cpp — password masking for URLs shown to people.
#include "url.h"

#include <algorithm>

namespace rtm {
namespace {

bool is_scheme(std::string_view s) {
    auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    auto other = [&](char c) { return alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'; };
    return !s.empty() && alpha(s[0]) && std::all_of(s.begin() + 1, s.end(), other);
}

}  // namespace

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
    if (at == std::string_view::npos || colon == std::string_view::npos || colon + 1 >= at) return std::string(url);
    std::string out(url.substr(0, start + colon + 1));
    out += "***";
    out += url.substr(start + at);
    return out;
}

}  // namespace rtm
