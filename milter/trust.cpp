// trust.cpp — the trust policy of trust.h: action lists, domain alignment,
// RFC 2047 decoding for the '@' scan, and the proofs.
#include "trust.h"

#include <algorithm>
#include <set>

#include "rt_reply.h"  // printable_line
#include "text.h"      // ascii_lower

namespace rtm {
namespace {

template <class F>
void for_each_action(std::string_view action, F&& f) {
    while (true) {
        const std::size_t dash = action.find('-');
        f(action.substr(0, dash));
        if (dash == std::string_view::npos) return;
        action.remove_prefix(dash + 1);
    }
}

bool is_unsafe(std::string_view word) {
    return word == "take" || word == "resolve";
}

std::string normal_domain(std::string_view domain) {
    if (domain.ends_with('.')) domain.remove_suffix(1);
    return ascii_lower(domain);
}

// Lower-case LDH labels joined by single dots.
bool is_domain(std::string_view d) {
    if (d.empty() || d.size() > 253 || d.front() == '.' || d.back() == '.') return false;
    char previous = '.';
    for (char c : d) {
        const bool ldh = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        if (!ldh && !(c == '.' && previous != '.')) return false;
        previous = c;
    }
    return true;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string decode_q(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '_') {
            out += ' ';
        } else if (text[i] == '=' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 &&
                   hex_value(text[i + 2]) >= 0) {
            out += static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

std::string decode_b(std::string_view text) {
    std::string out;
    unsigned buffer = 0;
    int bits = 0;
    for (char c : text) {
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else
            continue;  // '=' padding, stray bytes
        buffer = (buffer << 6) | static_cast<unsigned>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out += static_cast<char>((buffer >> bits) & 0xff);
        }
    }
    return out;
}

// "=?charset?Q|B?text?=" decoded in place; anything else copied. Linear: once
// no "?=" follows, none will for a later "=?" either.
std::string decode_encoded_words(std::string_view v) {
    std::string out;
    std::size_t i = 0;
    while (i < v.size()) {
        if (v[i] == '=' && i + 1 < v.size() && v[i + 1] == '?') {
            const std::size_t charset_end = v.find('?', i + 2);
            if (charset_end != std::string_view::npos && charset_end + 2 < v.size() &&
                v[charset_end + 2] == '?') {
                const char encoding = v[charset_end + 1];
                const std::size_t end = v.find("?=", charset_end + 3);
                if (end == std::string_view::npos) break;
                const std::string_view text = v.substr(charset_end + 3, end - charset_end - 3);
                if (encoding == 'Q' || encoding == 'q') {
                    out += decode_q(text);
                    i = end + 2;
                    continue;
                }
                if (encoding == 'B' || encoding == 'b') {
                    out += decode_b(text);
                    i = end + 2;
                    continue;
                }
            }
        }
        out += v[i++];
    }
    out.append(v.substr(std::min(i, v.size())));
    return out;
}

// "mx.example.com/4ABC12" -> {"mx.example.com", "4ABC12", true}
struct AuthservId {
    std::string base;  // lower case
    std::string job;
    bool has_job = false;
};

AuthservId split_authserv_id(std::string_view id) {
    const std::size_t slash = id.find('/');
    AuthservId out;
    out.base = ascii_lower(id.substr(0, slash));
    if (slash != std::string_view::npos) {
        out.has_job = true;
        out.job = std::string(id.substr(slash + 1));
    }
    return out;
}

bool trusted_id(const Config& config, const std::string& base) {
    return std::find(config.trusted_authserv_ids.begin(), config.trusted_authserv_ids.end(),
                     base) != config.trusted_authserv_ids.end();
}

}  // namespace

bool needs_proof(std::string_view action) {
    bool unsafe = false;
    for_each_action(action, [&](std::string_view word) { unsafe = unsafe || is_unsafe(word); });
    return unsafe;
}

std::string safe_part(std::string_view action) {
    std::string out;
    for_each_action(action, [&](std::string_view word) {
        if (!is_unsafe(word) && !word.empty()) out += (out.empty() ? "" : "-") + std::string(word);
    });
    return out.empty() ? std::string("comment") : out;
}

bool dkim_aligned(std::string_view signing_domain, std::string_view author_domain) {
    const std::string d = normal_domain(signing_domain);
    const std::string f = normal_domain(author_domain);
    if (!is_domain(d) || !is_domain(f) || d.find('.') == std::string::npos) return false;
    return f == d || (f.size() > d.size() && f.ends_with(d) && f[f.size() - d.size() - 1] == '.');
}

std::vector<std::string> at_domains(std::string_view header_value) {
    const std::string decoded = decode_encoded_words(header_value);
    std::vector<std::string> domains;
    for (std::size_t at = decoded.find('@'); at != std::string::npos;
         at = decoded.find('@', at + 1)) {
        std::size_t end = at + 1;
        while (end < decoded.size() && (std::isalnum(static_cast<unsigned char>(decoded[end])) ||
                                        decoded[end] == '.' || decoded[end] == '-'))
            ++end;
        domains.push_back(normal_domain(std::string_view(decoded).substr(at + 1, end - at - 1)));
    }
    return domains;
}

Proof prove_by_envelope(const Config& config, std::string_view auth_user,
                        const std::optional<IpAddress>& client) {
    Proof proof;
    if (!auth_user.empty()) {
        proof.kind = Proof::Kind::Auth;
        proof.text = "auth:" + printable_line(auth_user, 100);
        return proof;
    }
    if (!client) return proof;
    for (const Network& network : config.trusted_networks) {
        if (network.contains(*client)) {
            proof.kind = Proof::Kind::Network;
            proof.text = "network:" + network.to_string();
            return proof;
        }
    }
    return proof;
}

void HeaderEvidence::add(const Config& config, std::string_view name, std::string_view value) {
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t'))
        name.remove_suffix(1);  // "From :"
    const std::string lower = ascii_lower(name);
    Identity* identity = lower == "from"       ? &from_
                         : lower == "reply-to" ? &reply_to_
                         : lower == "sender"   ? &sender_
                                               : nullptr;
    if (identity) {
        if (identity->count++ == 0) {
            identity->too_long = value.size() > max_identity_bytes;
            if (!identity->too_long) identity->first = std::string(value);
        }
        return;
    }
    if (lower != "authentication-results" || config.trusted_authserv_ids.empty()) return;
    AuthResultsParse parse = parse_authentication_results(value);
    if (!parse.parsed || !trusted_id(config, split_authserv_id(parse.parsed->authserv_id).base))
        return;
    if (trusted_.size() >= max_kept_results) {
        ++trusted_dropped_;
        return;
    }
    trusted_.push_back(std::move(*parse.parsed));
}

bool HeaderEvidence::check_identity(const Identity& header, std::string_view name,
                                    const std::string* from_domain, std::string& domain,
                                    std::string& why) const {
    const std::string prefix = std::string(name) + ": ";
    if (header.count > 1) {
        why = prefix + "appears " + std::to_string(header.count) + " times";
        return false;
    }
    if (header.too_long) {
        why = prefix + "longer than " + std::to_string(max_identity_bytes) + " bytes";
        return false;
    }
    const std::vector<std::string> domains = at_domains(header.first);
    const std::set<std::string> distinct(domains.begin(), domains.end());
    if (distinct.empty()) {
        why = prefix + "names no address with a domain";
        return false;
    }
    if (distinct.size() > 1) {
        why = prefix + "names more than one domain";
        return false;
    }
    domain = *distinct.begin();
    if (!is_domain(domain)) {
        why = prefix + "names no plain domain name";
        return false;
    }
    if (from_domain && domain != *from_domain) {
        why = prefix + "names another domain than From:";
        return false;
    }
    return true;
}

std::optional<std::string> HeaderEvidence::author_domain(std::string& why) const {
    if (from_.count == 0) {
        why = "no From:";
        return std::nullopt;
    }
    std::string from_domain, other;
    if (!check_identity(from_, "From", nullptr, from_domain, why)) return std::nullopt;
    if (reply_to_.count > 0 && !check_identity(reply_to_, "Reply-To", &from_domain, other, why))
        return std::nullopt;
    if (sender_.count > 0 && !check_identity(sender_, "Sender", &from_domain, other, why))
        return std::nullopt;
    return from_domain;
}

Proof HeaderEvidence::prove(const Config& config, std::string_view queue_id,
                            std::vector<TrustNote>& notes) const {
    Proof proof;
    if (trusted_.empty()) return proof;
    if (trusted_dropped_ > 0) {
        notes.push_back({false, std::to_string(trusted_dropped_) +
                                    " further Authentication-Results header(s) of "
                                    "trusted authserv-ids not read (more than " +
                                    std::to_string(max_kept_results) + ")"});
    }
    std::string why;
    const std::optional<std::string> author = author_domain(why);
    if (!author) {
        notes.push_back({false, "Authentication-Results not used: " + why});
        return proof;
    }
    // The headers this host's own verifiers wrote for this message.
    std::vector<std::pair<const AuthResults*, std::string>> ours;  // with the authserv-id's base
    for (const AuthResults& ar : trusted_) {
        const AuthservId id = split_authserv_id(ar.authserv_id);
        const std::string shown = printable_line(ar.authserv_id, 100);
        if (id.has_job && (queue_id.empty() || id.job != queue_id)) {
            notes.push_back({true, "Authentication-Results from " + shown +
                                       " ignored: not this message's queue id " +
                                       (queue_id.empty() ? std::string("(none given)")
                                                         : printable_line(queue_id, 40)) +
                                       " (forged, or copied from another message)"});
            continue;
        }
        if (!id.has_job && config.authserv_id_with_job_id) {
            notes.push_back(
                {false, "Authentication-Results from " + shown +
                            " ignored: no queue id after the authserv-id (authserv_id_with_job_id "
                            "needs the verifiers' AuthservIDWithJobID)"});
            continue;
        }
        ours.emplace_back(&ar, id.base);
    }
    for (const auto& [ar, base] : ours) {
        for (const AuthResult& r : ar->results) {
            const std::string* from = r.property("header", "from");
            if (r.method == "dmarc" && r.result == "pass" && from &&
                normal_domain(*from) == *author) {
                proof.kind = Proof::Kind::Dmarc;
                proof.text = "dmarc:" + base;
                return proof;
            }
        }
    }
    for (const auto& [ar, base] : ours) {
        for (const AuthResult& r : ar->results) {
            if (r.method != "dkim" || r.result != "pass") continue;
            std::string d;
            if (const std::string* header_d = r.property("header", "d")) {
                d = *header_d;
            } else if (const std::string* header_i = r.property("header", "i")) {
                // The AUID's domain is d or below it: aligned with it, aligned with d.
                const std::size_t at = header_i->rfind('@');
                d = at == std::string::npos ? std::string() : header_i->substr(at + 1);
            }
            if (dkim_aligned(d, *author)) {
                proof.kind = Proof::Kind::Dkim;
                proof.text = "dkim:" + base + ":d=" + normal_domain(d);
                return proof;
            }
        }
    }
    return proof;
}

}  // namespace rtm
