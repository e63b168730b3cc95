// routing.cpp — recipient → Target, and the address forms an MTA rewrites.
#include "routing.h"

#include <algorithm>

#include "text.h"  // ascii_lower, iequals

namespace rtm {
namespace {

bool is_digits(std::string_view s) {
    return !s.empty() && s.size() <= 18 &&
           std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

bool is_printable(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= 0x20 && c != 0x7f; });
}

RouteDecision refuse(std::string xcode, std::string text) {
    RouteDecision d;
    d.kind = RouteDecision::Kind::Refused;
    d.rcode = "550";
    d.xcode = std::move(xcode);
    d.text = std::move(text);
    return d;
}

// Postfix never splits these: mailer-daemon, postmaster, owner-*, *-request.
bool splittable(const std::string& local) {
    return local != "mailer-daemon" && local != "postmaster" && !local.starts_with("owner-") &&
           !local.ends_with("-request");
}

// Postfix strips trailing dots from a domain before it looks at it.
std::string_view without_trailing_dots(std::string_view domain) {
    while (domain.ends_with('.')) domain.remove_suffix(1);
    return domain;
}

}  // namespace

std::optional<EnvelopeAddress> rewritten_by_mta(const EnvelopeAddress& rcpt) {
    EnvelopeAddress a = rcpt;
    std::size_t cut;
    if ((cut = a.local.rfind('@')) != std::string::npos ||
        (cut = a.local.rfind('%')) != std::string::npos) {
        a.domain = a.local.substr(cut + 1);  // "user@inner" or "user%inner" at our host
        a.local.resize(cut);
    } else if ((cut = a.local.find('!')) != std::string::npos) {
        a.domain = a.local.substr(0, cut);  // "host!user": UUCP order
        a.local.erase(0, cut + 1);
    } else {
        return std::nullopt;
    }
    if (a.local.empty() || a.domain.empty()) return std::nullopt;
    return a;
}

std::string target_key(const RouteDecision& d) {
    auto field = [](const std::optional<std::string>& f) { return f ? "=" + *f : std::string(); };
    return d.route->server + "\n" + field(d.target.queue) + "\n" + field(d.target.action) + "\n" +
           field(d.target.ticket);
}

RouteTable::RouteTable(const Config& config) : config_(config) {
    for (const Route& r : config_.routes) {
        by_address_.emplace(r.local_part + "@" + r.domain, &r);
        local_parts_.insert(r.local_part);
    }
}

bool RouteTable::names_route_local_part(const std::string& local) const {
    if (local_parts_.contains(local)) return true;
    const auto cut = config_.recipient_delimiter.empty()
                         ? std::string::npos
                         : local.find_first_of(config_.recipient_delimiter);
    return cut != std::string::npos && cut > 0 && local_parts_.contains(local.substr(0, cut));
}

RouteDecision RouteTable::route(const EnvelopeAddress& rcpt, std::string_view mta_resolved) const {
    RouteDecision d = route_as_written(rcpt);
    if (d.kind != RouteDecision::Kind::NotRt) return d;
    // Not an RT address as written. Would the MTA turn it into one after
    // this check (and deliver it past the allow-lists, the verdict and the
    // journal)? Then it is refused: RT addresses are taken only as written.
    // (built only for a refusal: this runs for every ordinary recipient)
    auto raw = [&rcpt] { return "<" + rcpt.address() + ">"; };
    auto refuse_form = [&](const EnvelopeAddress& becomes) {
        return refuse("5.1.3", raw() + ": this form of an RT address is not accepted; send to <" +
                                   becomes.address() + "> itself");
    };
    if (std::optional<EnvelopeAddress> inner = rewritten_by_mta(rcpt)) {
        // Each step shortens the local part: bounded by its length.
        for (EnvelopeAddress step = *inner;;) {
            if (route_as_written(step).kind != RouteDecision::Kind::NotRt) return refuse_form(step);
            std::optional<EnvelopeAddress> next = rewritten_by_mta(step);
            if (!next) break;
            step = std::move(*next);
        }
    }
    if (!mta_resolved.empty()) {
        AddressParse resolved = parse_envelope_address(mta_resolved);
        if (resolved.address &&
            route_as_written(*resolved.address).kind != RouteDecision::Kind::NotRt) {
            return refuse_form(*resolved.address);
        }
    }
    // No domain (the MTA appends its own) or an address literal (this host's
    // own name for itself): which domain that means is the MTA's secret.
    const bool literal = rcpt.domain.starts_with('[');
    if ((rcpt.domain.empty() || literal) && !rcpt.null_sender() &&
        names_route_local_part(ascii_lower(rcpt.local))) {
        return refuse("5.1.3", raw() + ": RT addresses need their domain name");
    }
    return d;
}

const Route* RouteTable::find(const std::string& local, const std::string& domain) const {
    auto it = by_address_.find(local + "@" + domain);
    return it == by_address_.end() ? nullptr : it->second;
}

RouteDecision RouteTable::route_as_written(const EnvelopeAddress& rcpt) const {
    RouteDecision d;
    const std::string domain = ascii_lower(without_trailing_dots(rcpt.domain));
    if (domain.empty()) return d;
    const std::string local = ascii_lower(rcpt.local);

    const Route* route = find(local, domain);
    std::string extension;
    if (!route && !config_.recipient_delimiter.empty() && splittable(local)) {
        auto cut = local.find_first_of(config_.recipient_delimiter);
        if (cut != std::string::npos && cut > 0) {
            route = find(local.substr(0, cut), domain);
            extension = rcpt.local.substr(cut + 1);
        }
    }
    if (!route) return d;

    d.kind = RouteDecision::Kind::Routed;
    d.route = route;
    d.extension = extension;
    d.target.url = config_.server_for(*route).url;
    d.target.queue = route->queue;
    d.target.action = route->action;
    if (extension.empty()) return d;

    const std::string address = rcpt.address();
    if (!is_printable(extension))
        return refuse("5.1.1", "<" + address + ">: invalid address extension");
    switch (route->extension) {
        case ExtensionMode::None:
            break;  // only the X-RT-Mail-Extension header, as rt-mailgate without --extension
        case ExtensionMode::Ticket:
            if (!is_digits(extension)) {
                return refuse("5.1.1",
                              "<" + address + ">: \"" + extension + "\" is not a ticket number");
            }
            d.target.ticket = extension;
            break;
        case ExtensionMode::Queue: {
            if (route->queues.empty()) {
                d.target.queue = extension;
                break;
            }
            auto it = std::find_if(route->queues.begin(), route->queues.end(),
                                   [&](const std::string& q) { return iequals(q, extension); });
            if (it == route->queues.end()) {
                return refuse("5.1.1", "<" + address + ">: no such queue \"" + extension +
                                           "\" at this address");
            }
            d.target.queue = *it;
            break;
        }
        case ExtensionMode::Action: {
            auto it =
                std::find(route->actions.begin(), route->actions.end(), ascii_lower(extension));
            if (it == route->actions.end()) {
                return refuse("5.7.1", "<" + address + ">: action \"" + extension +
                                           "\" is not allowed at this address");
            }
            d.target.action = *it;
            break;
        }
    }
    return d;
}

std::string posted_prefix(const std::string& envelope_sender, const std::string& extension) {
    std::string prefix;
    if (!extension.empty()) prefix += "X-RT-Mail-Extension: " + extension + "\n";
    prefix += "Return-Path: <" + envelope_sender + ">\n";
    return prefix;
}

}  // namespace rtm
