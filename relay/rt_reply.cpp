// rt_reply.cpp — classification of RT mail-gateway answers.
#include "rt_reply.h"

#include "text.h"  // printable_char

namespace rtm {

std::string_view to_string(RtReply::Kind kind) {
    switch (kind) {
        case RtReply::Kind::Delivered:
            return "delivered";
        case RtReply::Kind::Refused:
            return "refused";
        case RtReply::Kind::Temporary:
            return "temporary";
    }
    return "temporary";
}

RtReply classify_http(long status, std::string_view reason, std::string_view body) {
    RtReply r;
    r.http_status = status;
    r.status_line = std::to_string(status);
    if (!reason.empty()) r.status_line += " " + printable_line(reason, 100);
    r.body.assign(body.substr(0, RtReply::max_body));
    const bool success = status >= 200 && status <= 299;
    if (success && body.starts_with("ok")) {  // a prefix match, as rt-mailgate's /^(ok|not ok)/
        r.kind = RtReply::Kind::Delivered;
    } else if (success && body.starts_with("not ok")) {
        r.kind = RtReply::Kind::Refused;
    } else {
        r.kind = RtReply::Kind::Temporary;
    }
    return r;
}

RtReply classify_transport_failure(std::string what, bool unreachable) {
    RtReply r;
    r.kind = RtReply::Kind::Temporary;
    r.transport_error = std::move(what);
    r.unreachable = unreachable;
    return r;
}

std::string printable_line(std::string_view text, std::size_t max) {
    std::size_t end = text.find_first_of("\r\n");
    std::string_view line = text.substr(0, end);
    std::string out;
    for (char c : line) {
        if (out.size() >= max) {
            out += "...";
            break;
        }
        out += printable_char(c);
    }
    if (end != std::string_view::npos &&
        text.find_first_not_of("\r\n", end) != std::string_view::npos && !out.ends_with("...")) {
        out += " ...";
    }
    return out;
}

std::string RtReply::summary() const {
    if (!transport_error.empty()) return "HTTP request failed: " + transport_error;
    if (http_status < 200 || http_status > 299) return "HTTP request failed: " + status_line;
    if (body.empty()) return "RT answered with an empty body";
    return "RT said: " + printable_line(body);
}

}  // namespace rtm
