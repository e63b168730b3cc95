// routing.cpp — recipient → Target.
#include "routing.h"

#include <algorithm>

namespace rtm {
namespace {

bool is_digits(std::string_view s) {
    return !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
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

}  // namespace

RouteTable::RouteTable(const Config& config) : config_(config) {
    for (const Route& r : config_.routes) by_address_.emplace(r.local_part + "@" + r.domain, &r);
}

const Route* RouteTable::find(const std::string& local, const std::string& domain) const {
    auto it = by_address_.find(local + "@" + domain);
    return it == by_address_.end() ? nullptr : it->second;
}

RouteDecision RouteTable::route(const EnvelopeAddress& rcpt) const {
    RouteDecision d;
    if (rcpt.domain.empty()) return d;
    const std::string domain = ascii_lower(rcpt.domain);
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
    if (!is_printable(extension)) return refuse("5.1.1", "<" + address + ">: invalid address extension");
    switch (route->extension) {
        case ExtensionMode::None:
            break;  // only the X-RT-Mail-Extension header, as rt-mailgate without --extension
        case ExtensionMode::Ticket:
            if (!is_digits(extension)) {
                return refuse("5.1.1", "<" + address + ">: \"" + extension + "\" is not a ticket number");
            }
            d.target.ticket = extension;
            break;
        case ExtensionMode::Queue: {
            if (route->queues.empty()) {
                d.target.queue = extension;
                break;
            }
            auto it = std::find_if(route->queues.begin(), route->queues.end(),
                                   [&](const std::string& q) { return ascii_lower(q) == ascii_lower(extension); });
            if (it == route->queues.end()) {
                return refuse("5.1.1", "<" + address + ">: no such queue \"" + extension + "\" at this address");
            }
            d.target.queue = *it;
            break;
        }
        case ExtensionMode::Action: {
            auto it = std::find(route->actions.begin(), route->actions.end(), ascii_lower(extension));
            if (it == route->actions.end()) {
                return refuse("5.7.1", "<" + address + ">: action \"" + extension + "\" is not allowed at this address");
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
