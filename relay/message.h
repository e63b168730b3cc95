// message.h — Message: the bytes of one mail, spooled in memory up to a
// threshold and past it in an unlinked temporary file, so memory stays flat
// for any size. Append-only while it is filled, then read at any offset (the
// HTTP upload streams from it, and may rewind). A spool file is created
// already unlinked (O_TMPFILE), so nothing is left behind, even on a crash.
// MessageView: a Message read with some byte ranges left out (header fields
// one RT server must not see), the message itself untouched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "status.h"
#include "unique_fd.h"

namespace rtm {

struct SpoolOptions {
    std::size_t memory_limit = 1 << 20;  // bytes kept in memory before spilling to disk
    std::string dir;                     // spool directory; empty: $TMPDIR, else /tmp
};

class Message {
  public:
    explicit Message(SpoolOptions options = {});
    Message(Message&&) noexcept = default;
    Message& operator=(Message&&) noexcept = default;

    Status append(std::string_view bytes);

    std::uint64_t size() const { return size_; }
    bool on_disk() const { return file_.valid(); }
    const std::string& spool_dir() const { return options_.dir; }

    // Copies up to len bytes from offset into buf; returns how many (0 at the
    // end), or -1 with errno set when the spool file cannot be read.
    long read_at(std::uint64_t offset, char* buf, std::size_t len) const;

  private:
    Status spill();

    // In memory: blocks of kBlock bytes (the last one partly filled), so a
    // growing message is never copied to a bigger buffer.
    static constexpr std::size_t kBlock = 64 * 1024;

    SpoolOptions options_;
    std::vector<std::string> memory_;
    UniqueFd file_;
    std::uint64_t size_ = 0;
};

// [begin, end) of a Message's bytes.
struct ByteRange {
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
    bool operator==(const ByteRange&) const = default;
};

// A Message as posted: all of it, or all but some ranges. The ranges are
// sorted, do not overlap and lie inside the message (RtHeaderScanner and
// MessageBuilder give them so). Refers to the Message, which must outlive it.
class MessageView {
  public:
    // The whole message (implicit: wherever a view is taken, a Message is one).
    MessageView(const Message& message)
        : MessageView(message, {}) {}  // NOLINT(google-explicit-constructor)
    MessageView(const Message& message, std::vector<ByteRange> left_out);

    std::uint64_t size() const { return size_; }
    // As Message::read_at, over the bytes that are kept.
    long read_at(std::uint64_t offset, char* buf, std::size_t len) const;

  private:
    const Message* message_;
    std::vector<ByteRange> left_out_;
    std::uint64_t size_;
};

// Opens an anonymous (already unlinked) read-write file in dir.
Status open_anonymous_file(const std::string& dir, UniqueFd& out);

}  // namespace rtm
