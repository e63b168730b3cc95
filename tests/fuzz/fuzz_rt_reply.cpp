// fuzz_rt_reply.cpp — classify_http(), RtReply::summary() and
// printable_line() on any answer. Input: a status line "NNN reason" up to
// the first LF (a status that is not a number: the first 4 bytes as a raw
// long, so negative and huge ones come too), then the body; the last byte
// also picks printable_line's max. Checks rt-mailgate's rules (delivered
// only for 2xx + "ok" prefix, refused only for 2xx + "not ok"), the body
// bound, and that what goes into logs and SMTP replies is one printable line.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "rt_reply.h"

namespace {

void check_printable(std::string_view s, std::size_t max) {
    FUZZ_CHECK(s.size() <= max + 4, "printable_line stays within max plus the ellipsis");
    for (unsigned char c : s)
        FUZZ_CHECK(c >= 0x20 && c < 0x7f, "printable_line is printable ASCII");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const std::size_t lf = in.find('\n');
    const std::string_view head = in.substr(0, lf);
    const std::string_view body =
        lf == std::string_view::npos ? std::string_view() : in.substr(lf + 1);

    long status = 0;
    std::string_view reason;
    std::size_t digits = 0;
    while (digits < head.size() && digits < 6 && head[digits] >= '0' && head[digits] <= '9') {
        status = status * 10 + (head[digits] - '0');
        ++digits;
    }
    if (digits > 0) {
        reason = head.substr(digits);
        if (reason.starts_with(' ')) reason.remove_prefix(1);
    } else {
        std::int32_t raw = 0;
        std::memcpy(&raw, head.data(), std::min<std::size_t>(sizeof raw, head.size()));
        status = raw;
        reason = head.substr(std::min<std::size_t>(sizeof raw, head.size()));
    }

    const rtm::RtReply r = rtm::classify_http(status, reason, body);
    const bool success = status >= 200 && status <= 299;
    FUZZ_CHECK(r.http_status == status, "the status is kept");
    FUZZ_CHECK(r.body.size() <= rtm::RtReply::max_body, "the body is bounded");
    FUZZ_CHECK(std::string_view(r.body) == body.substr(0, rtm::RtReply::max_body),
               "the body is a prefix");
    if (r.kind == rtm::RtReply::Kind::Delivered)
        FUZZ_CHECK(success && body.starts_with("ok"), "delivered only on 2xx ok");
    if (r.kind == rtm::RtReply::Kind::Refused)
        FUZZ_CHECK(success && body.starts_with("not ok"), "refused only on 2xx not ok");
    if (success && body.starts_with("ok"))
        FUZZ_CHECK(r.kind == rtm::RtReply::Kind::Delivered, "2xx ok is delivered");
    FUZZ_CHECK(!r.unreachable && r.transport_error.empty(),
               "an HTTP answer is not a transport failure");
    (void)rtm::to_string(r.kind);

    const std::string summary = r.summary();
    for (unsigned char c : summary)
        FUZZ_CHECK(c >= 0x20 && c < 0x7f, "summary() is one printable line");
    for (unsigned char c : r.status_line)
        FUZZ_CHECK(c >= 0x20 && c < 0x7f, "status_line is one printable line");

    const std::size_t max = size ? data[size - 1] : 0;
    check_printable(rtm::printable_line(in, max), max);
    check_printable(rtm::printable_line(body), 200);

    const rtm::RtReply t =
        rtm::classify_transport_failure(std::string(head), lf != std::string_view::npos);
    FUZZ_CHECK(t.kind == rtm::RtReply::Kind::Temporary, "a transport failure is temporary");
    (void)t.summary();
    return 0;
}
