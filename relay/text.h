// text.h — the small string helpers relay/, conf/ and milter/ all use:
// ASCII case folding and comparison (never the locale's: std::tolower
// depends on it), trimming, stripping one pair of angle brackets, joining
// with a separator, hex digits, and the printable stand-in for a byte of
// text that goes into a log line or an SMTP reply.
//
// Why in relay/: relay is the lowest layer (milter -> relay and conf), and,
// as with relay_credentials, conf takes this one header-only piece of it
// without depending on the rest (the INTERFACE target rtm_text,
// relay/CMakeLists.txt, includes nothing and links nothing). Pure functions
// on bytes; no I/O, no allocation beyond the strings returned.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rtm {

// 'A'..'Z' to 'a'..'z'; every other byte (UTF-8 included) as it is.
constexpr char ascii_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

inline std::string ascii_lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) c = ascii_lower(c);
    return out;
}

// Equal but for ASCII case.
constexpr bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

// `text` begins with `prefix`, ASCII case ignored.
constexpr bool istarts_with(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

// `text` without the bytes of `chars` at either end.
constexpr std::string_view trim(std::string_view text, std::string_view chars = " \t\r\n") {
    const auto first = text.find_first_not_of(chars);
    if (first == std::string_view::npos) return {};
    return text.substr(first, text.find_last_not_of(chars) - first + 1);
}

// "<x>" -> "x"; anything else (one bracket, none) as it is.
constexpr std::string_view strip_angle_brackets(std::string_view text) {
    return text.size() >= 2 && text.front() == '<' && text.back() == '>'
               ? text.substr(1, text.size() - 2)
               : text;
}

// The items, each through show (by default as they are), between separators.
struct AsIs {
    template <class T>
    const T& operator()(const T& item) const {
        return item;
    }
};
template <class Range, class Show = AsIs>
std::string join(const Range& items, std::string_view separator, Show show = {}) {
    std::string out;
    bool first = true;
    for (const auto& item : items) {
        if (!first) out += separator;
        first = false;
        out += show(item);
    }
    return out;
}

// Two hex digits for a byte, appended: lower case, or upper case (%XX).
inline void append_hex(std::string& out, unsigned char byte, bool upper = false) {
    const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    out += digits[byte >> 4];
    out += digits[byte & 15];
}

// Every byte of `bytes` as two lower-case hex digits.
inline std::string to_hex(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (unsigned char c : bytes) append_hex(out, c);
    return out;
}

// A byte as it may stand in a one-line text for people (a log line, an
// SMTP reply): printable ASCII as it is, a TAB as a space, anything else '?'.
constexpr char printable_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f ? c : (c == '\t' ? ' ' : '?');
}

}  // namespace rtm
