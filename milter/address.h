// address.h — envelope addresses as the MTA hands them to a milter
// (argv[0] of MAIL FROM / RCPT TO: "<Local+ext@Domain>", possibly with a
// source route or a quoted local part), parsed into local part and domain.
// Parsing only: no routing, no case folding of what is kept.
//
// One core, two parsers: the local part is cut off and unquoted by
// split_address (conf/value_checks.h), which a route's address in the
// configuration (parse_address there) is parsed with too. The wrappers
// differ because their inputs do: an envelope argument may come in angle
// brackets, be the null sender "<>", carry a source route, have no domain
// ("<postmaster>"); it keeps its case and its raw text (smfi_delrcpt wants
// it back), and its errors become a 501 reply. A configured address is
// written bare by an operator, must have both parts, comes out lower-cased,
// and its errors say how to write it in the file.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "text.h"          // ascii_lower, for this header's users
#include "value_checks.h"  // split_address

namespace rtm {

struct EnvelopeAddress {
    std::string raw;     // exactly as received (what smfi_delrcpt must be given back)
    std::string local;   // local part, unquoted, case kept; empty for the null sender "<>"
    std::string domain;  // domain, case kept; empty when the address has none
    bool null_sender() const { return local.empty() && domain.empty(); }
    std::string address() const;  // local@domain (local re-quoted when it needs quotes)
};

struct AddressParse {
    std::optional<EnvelopeAddress> address;
    std::string error;  // why it could not be parsed, for a "501 5.1.3"-style reply
};

AddressParse parse_envelope_address(std::string_view raw);

}  // namespace rtm
