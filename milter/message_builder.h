// message_builder.h — MessageBuilder: rebuilds the message exactly from the
// milter's header and body callbacks into a relay Message (memory, then an
// unlinked spool file). Header names, values, folding and spacing are kept
// as the MTA passes them (with SMFIP_HDR_LEADSPC); line ends become LF, as
// local delivery hands mail to rt-mailgate. Counts bytes for size limits,
// and notes where RT's own header fields (rt_headers.h) stand, so that a
// server that strips them is posted the message without them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "message.h"
#include "sha256.h"

namespace rtm {

class MessageBuilder {
  public:
    // lead_space_kept: the MTA passes the space after the colon (SMFIP_HDR_LEADSPC);
    // otherwise one space is put back, as the MTA would write it.
    MessageBuilder(SpoolOptions spool, bool lead_space_kept);

    Status header(std::string_view name, std::string_view value);
    Status end_of_headers();
    Status body(std::string_view chunk);
    Status finish();  // flushes a trailing CR

    const Message& message() const { return message_; }
    std::uint64_t size() const { return message_.size(); }
    // The message less RT's own header fields (rt_headers.h), and RT's
    // spelling of each field left out, in message order.
    MessageView without_rt_headers() const { return MessageView(message_, rt_header_ranges_); }
    const std::vector<std::string>& rt_header_names() const { return rt_header_names_; }

    // What identifies this message across a client's retries, for the
    // duplicate journal: "sha256:" of the whole message less its trace
    // headers (Received, Return-Path, Authentication-Results, ...), which a
    // retry through another relay may change. Not the Message-ID alone: a
    // second message that reuses one (a careless mailer, or a forger who saw
    // it) is another message, and must not be taken for a duplicate.
    // Call after finish().
    std::string identity();

  private:
    Status append_lf(std::string_view text);  // CRLF → LF, a CR at a chunk's end held back

    Message message_;
    std::vector<ByteRange> rt_header_ranges_;
    std::vector<std::string> rt_header_names_;
    Sha256 digest_;
    bool lead_space_kept_;
    bool pending_cr_ = false;
    std::string scratch_;
};

}  // namespace rtm
