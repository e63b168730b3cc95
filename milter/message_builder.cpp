// message_builder.cpp — message reconstruction from milter callbacks.
#include "message_builder.h"

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

Status MessageBuilder::header(std::string_view name, std::string_view value) {
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

Status MessageBuilder::body(std::string_view chunk) { return append_lf(chunk); }

Status MessageBuilder::finish() {
    if (!pending_cr_) return Status::ok();
    pending_cr_ = false;
    return message_.append("\r");
}

}  // namespace rtm
