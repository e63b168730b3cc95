// rt_reply.h — RtReply: what came of one POST to RT's mail gateway, and the
// classification rules, exactly as rt-mailgate applies them: a 2xx whose body
// starts "ok" is delivered, "not ok" is refused (RT has mailed the sender),
// everything else (temporary failure, other text, non-2xx, no answer) is
// temporary. RT's own text is kept, bounded, for logs and SMTP replies.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace rtm {

struct RtReply {
    enum class Kind { Delivered, Refused, Temporary };

    Kind kind = Kind::Temporary;
    long http_status = 0;         // 0: no HTTP answer at all (connect, TLS, timeout)
    std::string status_line;      // "500 Internal Server Error"; empty without an answer
    std::string body;             // RT's answer, at most max_body bytes
    std::string transport_error;  // why there was no usable answer, one line
    bool unreachable = false;     // no HTTP answer: connect, DNS, TLS or timeout
    // RT received the whole request and then said nothing within the timeout:
    // it may well have processed it (RT does not stop when the client goes).
    bool in_doubt = false;
    // No answer in time: the read timeout, the deadline or the connect timeout.
    bool timed_out = false;

    // One printable line saying what happened, for logs and SMTP replies.
    std::string summary() const;

    static constexpr std::size_t max_body = 64 * 1024;
};

std::string_view to_string(RtReply::Kind kind);

// A complete HTTP answer: status code, reason phrase, body.
RtReply classify_http(long status, std::string_view reason, std::string_view body);

// No usable HTTP answer: what went wrong, as one line.
RtReply classify_transport_failure(std::string what, bool unreachable = true);

// The first line of text, with control and non-ASCII bytes replaced so it
// is safe in a log line, at most max bytes (an ellipsis marks a cut).
std::string printable_line(std::string_view text, std::size_t max = 200);

}  // namespace rtm
