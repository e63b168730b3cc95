// routing.h — RouteTable: which envelope recipients are RT addresses, and
// the Target each one posts to. Matching is as Postfix local(8) does it:
// the whole local part first, then the base name before the first
// recipient_delimiter character, case-insensitively. An address extension
// becomes a queue, a ticket or an action as the route's mode says, checked
// against its allow-list; a bad one is refused now, per recipient.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "address.h"
#include "config.h"
#include "target.h"

namespace rtm {

struct RouteDecision {
    enum class Kind { NotRt, Routed, Refused };
    Kind kind = Kind::NotRt;

    // Routed:
    const Route* route = nullptr;
    Target target;
    std::string extension;  // the address extension, case kept; "" when none

    // Refused: an SMTP reply for this recipient only.
    std::string rcode, xcode, text;
};

class RouteTable {
public:
    explicit RouteTable(const Config& config);
    RouteDecision route(const EnvelopeAddress& rcpt) const;

private:
    const Route* find(const std::string& local, const std::string& domain) const;

    const Config& config_;
    std::map<std::string, const Route*> by_address_;  // "local@domain", lower case
};

// The header lines put before the posted message: the extension, as
// rt-mailgate adds it, then Return-Path, as local delivery adds it.
std::string posted_prefix(const std::string& envelope_sender, const std::string& extension);

}  // namespace rtm
