// message_builder.cpp — message reconstruction from milter callbacks.
#include "message_builder.h"

#include "value_checks.h"  // ascii_lower

namespace rtm {

MessageBuilder::MessageBuilder(SpoolOptions spool, bool lead_space_kept)
    : message_(std::move(spool)), lead_space_kept_(lead_space_kept) {}

Status MessageBuilder::append_lf(std::string_view text) {
    scratch_.clear();
    scratch_.reserve(text.size() + 1);
    for (char c : text) {
        if (pending_cr_) {
            pending_cr_ = false;
            if (c != '\n') scratch_ += '\r';  // a bare CR stays
        }
        if (c == '\r') {
            pending_cr_ = true;
            continue;
        }
        scratch_ += c;
    }
    return message_.append(scratch_);
}

namespace {

bool is_trace_header(const std::string& lower_name) {
    return lower_name == "received" || lower_name == "return-path" || lower_name == "delivered-to" ||
           lower_name == "x-original-to";
}

std::string trimmed(std::string_view s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return {};
    return std::string(s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1));
}

}  // namespace

std::string MessageBuilder::identity() {
    if (!message_id_.empty()) return "id:" + message_id_;
    return "sha256:" + digest_.hex();
}

Status MessageBuilder::header(std::string_view name, std::string_view value) {
    const std::string lower = ascii_lower(name);
    if (lower == "message-id" && message_id_.empty()) message_id_ = trimmed(value);
    if (!is_trace_header(lower)) {
        digest_.update(lower);
        digest_.update(":");
        digest_.update(trimmed(value));
        digest_.update("\n");
    }
    std::string line;
    line.reserve(name.size() + value.size() + 3);
    line.append(name);
    line += ':';
    if (!lead_space_kept_) line += ' ';
    line.append(value);
    line += "\r\n";
    return append_lf(line);
}

Status MessageBuilder::end_of_headers() { return append_lf("\r\n"); }

Status MessageBuilder::body(std::string_view chunk) {
    if (message_id_.empty()) digest_.update(chunk);  // only needed without a Message-ID
    return append_lf(chunk);
}

Status MessageBuilder::finish() {
    if (!pending_cr_) return Status::ok();
    pending_cr_ = false;
    return message_.append("\r");
}

}  // namespace rtm
