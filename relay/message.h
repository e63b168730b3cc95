// message.h — Message: the bytes of one mail, spooled in memory up to a
// threshold and past it in an unlinked temporary file, so memory stays flat
// for any size. Append-only while it is filled, then read at any offset (the
// HTTP upload streams from it, and may rewind). A spool file is created
// already unlinked (O_TMPFILE), so nothing is left behind, even on a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>
#include <string_view>

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

// Opens an anonymous (already unlinked) read-write file in dir.
Status open_anonymous_file(const std::string& dir, UniqueFd& out);

}  // namespace rtm
