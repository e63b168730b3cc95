// routing.h — RouteTable: which envelope recipients are RT addresses, and
// the Target each one posts to. Matching is as Postfix local(8) does it:
// the whole local part first, then the base name before the first
// recipient_delimiter character, case-insensitively. An address extension
// becomes a queue, a ticket or an action as the route's mode says, checked
// against its allow-list; a bad one is refused now, per recipient. Address
// forms the MTA would rewrite into an RT address (bang paths, the percent
// hack, a quoted '@', what Postfix's {rcpt_addr} resolves to) are refused,
// so no RT mail gets past these checks by a detour through the MTA.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
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
    // mta_resolved: the MTA's own resolution of the address, when it gives
    // one (Postfix's {rcpt_addr}: trivial-rewrite's result); "" when not.
    RouteDecision route(const EnvelopeAddress& rcpt, std::string_view mta_resolved = {}) const;

  private:
    RouteDecision route_as_written(const EnvelopeAddress& rcpt) const;
    const Route* find(const std::string& local, const std::string& domain) const;
    bool names_route_local_part(const std::string& local) const;

    const Config& config_;
    std::map<std::string, const Route*> by_address_;  // "local@domain", lower case
    std::set<std::string> local_parts_;               // every route's local part, lower case
};

// One step of what an MTA's address rewriting may make of rcpt: a quoted '@'
// or the percent hack in the local part ("a%b@here" -> "a@b"), or a bang
// path ("b!a" -> "a@b"); nullopt when none applies.
std::optional<EnvelopeAddress> rewritten_by_mta(const EnvelopeAddress& rcpt);

// What makes two RT recipients one POST: the server and the form fields. An
// extension that only fills the X-RT-Mail-Extension header does not.
std::string target_key(const RouteDecision& decision);

// The header lines put before the posted message: the extension, as
// rt-mailgate adds it, then Return-Path, as local delivery adds it.
std::string posted_prefix(const std::string& envelope_sender, const std::string& extension);

}  // namespace rtm
