// message_builder.cpp — message reconstruction from milter callbacks.
#include "message_builder.h"

#include <cstring>

#include "rt_headers.h"
#include "text.h"  // ascii_lower, trim

namespace rtm {

MessageBuilder::MessageBuilder(SpoolOptions spool, bool lead_space_kept)
    : message_(std::move(spool)), lead_space_kept_(lead_space_kept) {}

Status MessageBuilder::append_lf(std::string_view text) {
    // Runs between CRs are copied whole (memchr finds the CRs) into a buffer
    // sized once: this is the per-byte hot path of every message.
    const char* data = text.data();
    const std::size_t n = text.size();
    if (n == 0) return Status::ok();
    if (!pending_cr_ && !std::memchr(data, '\r', n))
        return message_.append(text);  // nothing to change
    scratch_.resize(n + 1);
    char* out = scratch_.data();
    if (pending_cr_) {  // the CR that ended the previous chunk
        pending_cr_ = false;
        if (data[0] != '\n') *out++ = '\r';
    }
    std::size_t i = 0;
    while (i < n) {
        const void* cr = std::memchr(data + i, '\r', n - i);
        const std::size_t j =
            cr ? static_cast<std::size_t>(static_cast<const char*>(cr) - data) : n;
        std::memcpy(out, data + i, j - i);
        out += j - i;
        if (!cr) break;
        if (j + 1 == n) {  // a CR at the end: its LF may start the next chunk
            pending_cr_ = true;
            break;
        }
        if (data[j + 1] != '\n') *out++ = '\r';  // a bare CR stays
        i = j + 1;
    }
    return message_.append(
        std::string_view(scratch_.data(), static_cast<std::size_t>(out - scratch_.data())));
}

namespace {

// Added on the way, by each relay and verifier: a retry through another path
// (another MX host, a second try a day later) may carry other ones.
bool is_trace_header(const std::string& lower_name) {
    return lower_name == "received" || lower_name == "return-path" ||
           lower_name == "delivered-to" || lower_name == "x-original-to" ||
           lower_name == "authentication-results" || lower_name == "received-spf" ||
           lower_name.starts_with("x-spam-");
}

}  // namespace

std::string MessageBuilder::identity() {
    return "sha256:" + digest_.hex();
}

Status MessageBuilder::header(std::string_view name, std::string_view value) {
    const std::string lower = ascii_lower(name);
    if (!is_trace_header(lower)) {
        digest_.update(lower);
        digest_.update(":");
        digest_.update(trim(value));
        digest_.update("\n");
    }
    std::string line;
    line.reserve(name.size() + value.size() + 3);
    line.append(name);
    line += ':';
    if (!lead_space_kept_) line += ' ';
    line.append(value);
    line += "\r\n";
    // The line ends in CRLF, so append_lf holds nothing back: its bytes
    // are exactly [before, size()).
    const std::uint64_t before = message_.size();
    Status appended = append_lf(line);
    if (const std::string_view own = rt_own_header(name); appended && !own.empty()) {
        rt_header_ranges_.push_back({before, message_.size()});
        rt_header_names_.emplace_back(own);
    }
    return appended;
}

Status MessageBuilder::end_of_headers() {
    return append_lf("\r\n");
}

Status MessageBuilder::body(std::string_view chunk) {
    digest_.update(chunk);
    return append_lf(chunk);
}

Status MessageBuilder::finish() {
    if (!pending_cr_) return Status::ok();
    pending_cr_ = false;
    return message_.append("\r");
}

}  // namespace rtm
