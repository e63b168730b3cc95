// value_checks.cpp — the single-value checks of value_checks.h. Pure string
// logic, except check_ca_file and check_client_cert, which look at the file
// system. Messages say
// what is wrong and what is allowed, and end with the value as given.
#include "value_checks.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "text.h"

namespace rtm {
namespace {

bool is_control(unsigned char c) {
    return c < 0x20 || c == 0x7f;
}
bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool contains_any(std::string_view text, bool (*predicate)(unsigned char)) {
    for (unsigned char c : text)
        if (predicate(c)) return true;
    return false;
}

bool is_space_or_control(unsigned char c) {
    return is_space(c) || is_control(c);
}
bool is_angle_bracket(unsigned char c) {
    return c == '<' || c == '>';
}

// Postfix splits addresses on these bytes; none may be part of an address's syntax.
bool is_bad_delimiter(unsigned char c) {
    return c >= 0x80 || is_space_or_control(c) || c == '@' || c == '<' || c == '>' || c == '"';
}

// The whole of `text` as a number in `base`: digits only, no sign, no space.
std::optional<unsigned> parse_unsigned(std::string_view text, int base) {
    unsigned value = 0;
    const char* end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, value, base);
    if (text.empty() || error != std::errc() || stop != end) return std::nullopt;
    return value;
}

constexpr std::size_t kMaxUnixSocketPath = 107;  // sun_path is 108 bytes with the NUL
constexpr std::array<std::string_view, 4> kActions = {"correspond", "comment", "take", "resolve"};
constexpr std::string_view kActionRule =
    "must be correspond, comment, take or resolve, or several joined by '-' such as "
    "\"take-comment\" (lower-case, as RT wants them)";
constexpr std::string_view kGatewayPath = "/rest/1.0/noauth/mail-gateway";  // compared lower-cased

}  // namespace

std::string quoted(std::string_view text) {
    std::string out = "\"";
    for (unsigned char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (is_control(c)) {
            out += "\\x";
            append_hex(out, c);
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

Problem check_socket(std::string_view spec) {
    const auto colon = spec.find(':');
    const std::string type = ascii_lower(spec.substr(0, colon));
    const std::string_view rest = colon == std::string_view::npos ? "" : spec.substr(colon + 1);
    if (type == "unix" || type == "local") {
        if (rest.empty() || rest.front() != '/')
            return "the socket path must be absolute, e.g. \"unix:/run/rt-milter/rt-milter.sock\", "
                   "got " +
                   quoted(spec);
        if (rest.size() > kMaxUnixSocketPath)
            return "the socket path is " + std::to_string(rest.size()) +
                   " bytes long; a unix socket path can be at most " +
                   std::to_string(kMaxUnixSocketPath);
        return std::nullopt;
    }
    if (type == "inet" || type == "inet6") {
        const auto at = rest.find('@');
        const std::string_view port = rest.substr(0, at);
        const std::string_view host = at == std::string_view::npos ? "" : rest.substr(at + 1);
        const std::optional<unsigned> number = parse_unsigned(port, 10);
        if (!number || *number < 1 || *number > 65535)
            return "the port must be a number from 1 to 65535, got " + quoted(port);
        if (host.empty())
            return "give the address to listen on, e.g. \"" + type + ":" + std::string(port) +
                   (type == "inet" ? "@127.0.0.1" : "@[::1]") +
                   "\"; without one libmilter listens on all interfaces";
        if (contains_any(host, is_space_or_control) ||
            (host.front() == '[') != (host.back() == ']'))
            return "the host must be a name, an address or an address in [brackets], got " +
                   quoted(host);
        return std::nullopt;
    }
    return "must be \"unix:/path\", \"inet:PORT@HOST\" or \"inet6:PORT@HOST\", got " + quoted(spec);
}

Problem parse_socket_mode(std::string_view text, unsigned& mode) {
    const std::optional<unsigned> value = parse_unsigned(text, 8);
    if (!value || *value > 0777)
        return "must be a file mode in octal digits, at most \"0777\", e.g. \"0660\", got " +
               quoted(text);
    mode = *value;
    return std::nullopt;
}

Problem check_recipient_delimiter(std::string_view delimiters) {
    if (!contains_any(delimiters, is_bad_delimiter)) return std::nullopt;
    return "must be printable ASCII characters other than '@', '<', '>', '\"' and space, got " +
           quoted(delimiters);
}

Problem check_rt_url(std::string_view url) {
    const std::string got = ", got " + quoted(url);
    if (contains_any(url, is_space_or_control))
        return "must not contain spaces or control characters" + got;
    if (!istarts_with(url, "http://") && !istarts_with(url, "https://"))
        return "must start with http:// or https://, e.g. \"https://rt.example.com\"" + got;
    const std::string_view rest = url.substr(url.find("://") + 3);
    std::string_view host = rest.substr(0, rest.find_first_of("/?#"));
    if (const auto at = host.rfind('@'); at != std::string_view::npos) host.remove_prefix(at + 1);
    if (host.empty() || host.front() == ':') return "has no host name" + got;
    if (ascii_lower(base_url(url)).ends_with(kGatewayPath))
        return "give RT's base URL, e.g. \"https://rt.example.com\", without "
               "/REST/1.0/NoAuth/mail-gateway (rt-milter adds that path)" +
               got;
    return std::nullopt;
}

std::string base_url(std::string_view url) {
    while (url.ends_with('/')) url.remove_suffix(1);
    return std::string(url);
}

AddressSplit split_address(std::string_view text, UnquotedEnd end) {
    AddressSplit split;
    if (text.starts_with('"')) {
        split.quoted = true;
        std::size_t i = 1;
        for (; i < text.size() && text[i] != '"'; ++i) {
            if (text[i] == '\\' && i + 1 < text.size()) ++i;
            split.local += text[i];
        }
        split.closed = i < text.size();
        if (split.closed) split.rest = text.substr(i + 1);
        return split;
    }
    std::size_t at = end == UnquotedEnd::FirstAt ? text.find('@') : text.rfind('@');
    if (at == std::string_view::npos) at = text.size();
    split.local = text.substr(0, at);
    split.rest = text.substr(at);
    return split;
}

Problem parse_address(std::string_view text, std::string& local_part, std::string& domain) {
    const std::string got = ", got " + quoted(text);
    const std::string example = ", e.g. \"bugs@example.com\"" + got;
    const AddressSplit split = split_address(text, UnquotedEnd::FirstAt);
    if (!split.closed) return "the quoted local part has no closing '\"'" + example;
    const bool quoted_local = split.quoted;
    const std::string& local = split.local;    // without its quotes
    const std::string_view rest = split.rest;  // after the local part: "@domain" when all is well
    const std::string_view unquoted = quoted_local ? rest : text;
    if (contains_any(text, is_control)) return "must not contain control characters" + got;
    if (contains_any(unquoted, is_angle_bracket))
        return "write the bare address, without angle brackets" + example;
    if (contains_any(unquoted, is_space))
        return "must not contain spaces (a local part with spaces is written quoted: \"\\\"a "
               "b\\\"@example.com\")" +
               got;
    if (!quoted_local && local.find('"') != std::string::npos)
        return "a '\"' may only quote the whole local part" + example;
    if (!rest.starts_with('@')) return "must be local-part@domain" + example;
    const std::string_view domain_text = rest.substr(1);
    if (domain_text.find_first_of("@\"") != std::string_view::npos)
        return "the domain may not contain '@' or '\"' (quote a local part that has them)" +
               example;
    if (local.empty()) return "the local part, before the '@', is empty" + example;
    if (domain_text.empty()) return "the domain, after the '@', is empty" + example;
    local_part = ascii_lower(local);
    domain = ascii_lower(domain_text);
    return std::nullopt;
}

Problem check_action(std::string_view action) {
    std::string_view rest = action;
    bool good = !action.empty();
    while (good) {
        const auto dash = rest.find('-');
        const std::string_view word = rest.substr(0, dash);
        good = std::find(kActions.begin(), kActions.end(), word) != kActions.end();
        if (dash == std::string_view::npos) break;
        rest.remove_prefix(dash + 1);
    }
    if (good) return std::nullopt;
    return std::string(kActionRule) + ", got " + quoted(action);
}

// ---- trust policy ----
Problem check_authserv_id(std::string_view id) {
    const bool good =
        !id.empty() && id.size() <= 255 && std::all_of(id.begin(), id.end(), [](unsigned char c) {
            return std::isalnum(c) || c == '.' || c == '-' || c == '_';
        });
    if (good) return std::nullopt;
    return "must be an authserv-id your verifiers write (OpenDKIM's and OpenDMARC's AuthservID, by "
           "default the "
           "host name), such as \"mx.example.com\": letters, digits, '.', '-' and '_', without the "
           "\"/queue-id\" "
           "AuthservIDWithJobID adds; got " +
           quoted(id);
}
// ---- end of trust policy ----

Problem check_not_empty(std::string_view text) {
    if (text.empty()) return "must not be empty";
    return std::nullopt;
}

Problem check_host_name(std::string_view host) {
    const bool literal = host.size() > 2 && host.front() == '[' && host.back() == ']';
    const std::string_view inner = literal ? host.substr(1, host.size() - 2) : host;
    const bool good =
        !inner.empty() && std::all_of(inner.begin(), inner.end(), [literal](unsigned char c) {
            return std::isalnum(c) || c == '-' || c == '.' || (literal && c == ':');
        });
    if (!good)
        return "must be a host name (or an [IPv6] or IPv4 address), without scheme or port, got " +
               quoted(host);
    return std::nullopt;
}

Problem check_absolute_path(std::string_view path) {
    if (!path.starts_with('/')) return "must be an absolute path, got " + quoted(path);
    return std::nullopt;
}

Problem check_optional_absolute_path(std::string_view path) {
    return path.empty() ? std::nullopt : check_absolute_path(path);
}

namespace {

Problem check_readable(std::string_view path, std::string_view give) {
    if (path.empty()) return std::nullopt;
    if (Problem problem = check_absolute_path(path)) return problem;
    const std::string file(path);
    struct stat status {};
    if (::access(file.c_str(), R_OK) != 0 || ::stat(file.c_str(), &status) != 0)
        return "cannot read " + quoted(path) + ": " + std::strerror(errno);
    if (S_ISDIR(status.st_mode)) return quoted(path) + " is a directory; give " + std::string(give);
    return std::nullopt;
}

}  // namespace

Problem check_ca_file(std::string_view path) {
    return check_readable(path, "the CA bundle file");
}
Problem check_client_cert(std::string_view path) {
    return check_readable(path, "the certificate file (PEM)");
}

}  // namespace rtm
