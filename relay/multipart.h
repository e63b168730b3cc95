// multipart.h — MultipartBody: the multipart/form-data body of one
// mail-gateway POST, framed exactly as RT's rt-mailgate frames it (form
// fields, then part "message" with Content-Type application/octet-stream and
// no filename — with a filename RT parses the wrong thing and the mail is
// lost). The message bytes are streamed from the Message (through a
// MessageView, which may leave header fields out), never copied; the total
// size is known up front so the request carries a Content-Length.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "message.h"
#include "target.h"

namespace rtm {

struct FormField {
    std::string name;
    std::string value;
    bool operator==(const FormField&) const = default;
};

// The form fields a Target sends: queue, action, ticket, each only when set.
std::vector<FormField> form_fields(const Target& target);

// A boundary of 32 random hex digits after a fixed prefix. It is drawn after
// the message is complete, so no sender can plant it; the chance that it
// occurs in a message by accident is about size * 2^-128.
std::string random_boundary();

class MultipartBody {
  public:
    // prefix: header lines put before the message (Return-Path,
    // X-RT-Mail-Extension); the viewed message must outlive the body.
    MultipartBody(const std::vector<FormField>& fields, std::string prefix, MessageView message,
                  std::string boundary = random_boundary());

    std::uint64_t size() const {
        return head_.size() + prefix_.size() + message_.size() + tail_.size();
    }
    std::string content_type() const { return "multipart/form-data; boundary=" + boundary_; }
    const std::string& boundary() const { return boundary_; }

    // Copies up to len bytes of the body from offset; returns the count (0 at
    // the end) or -1 when the spooled message cannot be read.
    long read_at(std::uint64_t offset, char* buf, std::size_t len) const;

    // The whole body as one string: for tests and small bodies only.
    std::string to_string() const;

  private:
    std::string boundary_;
    std::string head_;    // field parts and the message part's headers
    std::string prefix_;  // prepended header lines
    MessageView message_;
    std::string tail_;  // CRLF and the closing delimiter
};

}  // namespace rtm
