// rt_headers.h — the header fields RT takes as its own: its instructions
// and findings (RT-Send-Cc, RT-Attach, ..., the crypt status fields) and
// X-RT-Mail-Extension, which only the gateway client adds. A sender who
// writes them into a message can make an RT older than 4.4.7 / 5.0.5
// (CVE-2023-41259) mail copies elsewhere, attach other tickets' files or
// skip its loop checks; the extension field is shown as if the address had
// carried it. RtHeaderScanner finds them in a message's header section as
// its bytes arrive, as byte ranges a MessageView leaves out; the rest of
// the message is not touched. Top-level header only, as RT strips.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "message.h"

namespace rtm {

// The field's name as RT spells it, when `name` (any ASCII case, blanks
// before the colon allowed) is one of RT's own; "" otherwise.
std::string_view rt_own_header(std::string_view name);

class RtHeaderScanner {
  public:
    // The message's bytes, in order, in chunks of any size (LF or CRLF line
    // ends). Past the header section it only counts.
    void feed(std::string_view bytes);
    // The end of the message: a field that runs to it ends there.
    void finish();

    // Each of RT's fields, with its continuation lines and line end, in
    // message order (sorted, disjoint: what MessageView takes).
    const std::vector<ByteRange>& ranges() const { return ranges_; }
    // RT's spelling of each, parallel to ranges().
    const std::vector<std::string>& names() const { return names_; }

  private:
    void close_field(std::uint64_t end);
    void step(char c);

    static constexpr std::size_t kLongestName = 40;  // longer: not one of RT's

    std::vector<ByteRange> ranges_;
    std::vector<std::string> names_;
    std::uint64_t offset_ = 0;  // of the next byte
    bool in_body_ = false;
    bool at_line_start_ = true;
    bool cr_at_line_start_ = false;  // a line that begins with CR: "\r\n" ends the header
    bool reading_name_ = false;
    std::string name_;
    bool field_open_ = false;
    std::uint64_t field_start_ = 0;
    std::string_view field_rt_name_;  // "" when the open field is not RT's
};

}  // namespace rtm
