// address.cpp — envelope address parsing (RFC 5321 Path / Mailbox, lenient
// where MTAs are: angle brackets optional, source route ignored).
#include "address.h"

#include <algorithm>

namespace rtm {
namespace {

bool is_atext_or_dot(char c) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) return true;  // SMTPUTF8 local parts pass through
    if (std::isalnum(u)) return true;
    return std::string_view("!#$%&'*+-/=?^_`{|}~.").find(c) != std::string_view::npos;
}

bool needs_quotes(std::string_view local) {
    if (local.empty() || local.front() == '.' || local.back() == '.') return true;
    if (local.find("..") != std::string_view::npos) return true;
    return !std::all_of(local.begin(), local.end(), is_atext_or_dot);
}

}  // namespace

std::string EnvelopeAddress::address() const {
    if (null_sender()) return "";
    std::string l;
    if (needs_quotes(local)) {
        l = "\"";
        for (char c : local) {
            if (c == '"' || c == '\\') l += '\\';
            l += c;
        }
        l += '"';
    } else {
        l = local;
    }
    return domain.empty() ? l : l + "@" + domain;
}

AddressParse parse_envelope_address(std::string_view raw) {
    AddressParse result;
    EnvelopeAddress a;
    a.raw = std::string(raw);
    std::string_view s = raw;
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    if (s.starts_with("<")) {
        if (!s.ends_with(">") || s.size() < 2) {
            result.error = "unbalanced angle brackets";
            return result;
        }
        s = s.substr(1, s.size() - 2);
    }
    if (s.empty()) {  // "<>": the null sender
        result.address = std::move(a);
        return result;
    }
    // A source route "@a,@b:user@domain" is obsolete; the mailbox follows ':'.
    if (s.front() == '@') {
        auto colon = s.find(':');
        if (colon == std::string_view::npos) {
            result.error = "source route without ':'";
            return result;
        }
        s.remove_prefix(colon + 1);
    }
    // At the last '@': an unquoted local part cannot hold one, and with two
    // the part before the last is the one to quote (the error says so).
    AddressSplit split = split_address(s, UnquotedEnd::LastAt);
    if (split.quoted) {
        if (!split.closed) {
            result.error = "unterminated quoted local part";
            return result;
        }
        if (!split.rest.empty() && split.rest.front() != '@') {
            result.error = "text after the quoted local part";
            return result;
        }
    } else {
        if (split.local.empty()) {
            result.error = "empty local part";
            return result;
        }
        if (!std::all_of(split.local.begin(), split.local.end(), is_atext_or_dot)) {
            result.error = "invalid character in local part (quote it)";
            return result;
        }
    }
    a.local = std::move(split.local);
    if (!split.rest.empty()) {
        a.domain = std::string(split.rest.substr(1));
        if (a.domain.empty()) {
            result.error = "empty domain";
            return result;
        }
    }
    for (unsigned char c : a.local + a.domain) {
        if (c < 0x20 || c == 0x7f) {
            result.error = "control character in address";
            return result;
        }
    }
    for (char c : a.domain) {
        if (c == ' ' || c == '<' || c == '>' || c == '@' || c == '"' || c == ',' || c == '\\') {
            result.error = "invalid character in domain";
            return result;
        }
    }
    result.address = std::move(a);
    return result;
}

}  // namespace rtm
