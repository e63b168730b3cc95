// message.cpp — the Message spool: memory first, then an anonymous file;
// MessageView's reads around the ranges it leaves out.
#include "message.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace rtm {
namespace {

std::string default_spool_dir() {
    const char* tmp = std::getenv("TMPDIR");
    return (tmp && *tmp) ? tmp : "/tmp";
}

Status write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return Status::failure(std::string("cannot write spool file: ") + std::strerror(errno));
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return Status::ok();
}

}  // namespace

Status open_anonymous_file(const std::string& dir, UniqueFd& out) {
    int fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        // File systems without O_TMPFILE: create, then unlink at once.
        std::string path = dir + "/rt-milter.XXXXXX";
        fd = ::mkostemp(path.data(), O_CLOEXEC);
        if (fd >= 0) ::unlink(path.c_str());
    }
    if (fd < 0) {
        return Status::failure("cannot create spool file in " + dir + ": " + std::strerror(errno));
    }
    out.reset(fd);
    return Status::ok();
}

Message::Message(SpoolOptions options) : options_(std::move(options)) {
    if (options_.dir.empty()) options_.dir = default_spool_dir();
}

Status Message::spill() {
    if (Status s = open_anonymous_file(options_.dir, file_); !s) return s;
    for (const std::string& block : memory_) {
        if (Status s = write_all(file_.get(), block); !s) return s;
    }
    std::vector<std::string>().swap(memory_);
    return Status::ok();
}

Status Message::append(std::string_view bytes) {
    if (!file_.valid() && size_ + bytes.size() > options_.memory_limit) {
        if (Status s = spill(); !s) return s;
    }
    if (file_.valid()) {
        if (Status s = write_all(file_.get(), bytes); !s) return s;
        size_ += bytes.size();
        return Status::ok();
    }
    size_ += bytes.size();
    while (!bytes.empty()) {
        if (memory_.empty() || memory_.back().size() == kBlock) {
            // The first block grows as a string does (most messages are
            // small); the next ones are taken whole.
            memory_.emplace_back();
            if (memory_.size() > 1) memory_.back().reserve(kBlock);
        }
        std::string& block = memory_.back();
        const std::size_t n = std::min(bytes.size(), kBlock - block.size());
        block.append(bytes.data(), n);
        bytes.remove_prefix(n);
    }
    return Status::ok();
}

long Message::read_at(std::uint64_t offset, char* buf, std::size_t len) const {
    if (offset >= size_) return 0;
    len = static_cast<std::size_t>(std::min<std::uint64_t>(len, size_ - offset));
    if (!file_.valid()) {
        std::size_t done = 0;
        while (done < len) {  // every block but the last is full
            const std::uint64_t at = offset + done;
            const std::string& block = memory_[static_cast<std::size_t>(at / kBlock)];
            const std::size_t in = static_cast<std::size_t>(at % kBlock);
            const std::size_t n = std::min(len - done, block.size() - in);
            std::memcpy(buf + done, block.data() + in, n);
            done += n;
        }
        return static_cast<long>(len);
    }
    for (;;) {
        ssize_t n = ::pread(file_.get(), buf, len, static_cast<off_t>(offset));
        if (n < 0 && errno == EINTR) continue;
        return static_cast<long>(n);
    }
}

MessageView::MessageView(const Message& message, std::vector<ByteRange> left_out)
    : message_(&message), left_out_(std::move(left_out)), size_(message.size()) {
    for (const ByteRange& r : left_out_) size_ -= r.end - r.begin;
}

long MessageView::read_at(std::uint64_t offset, char* buf, std::size_t len) const {
    std::size_t done = 0;
    while (done < len) {
        // The message's own offset of kept byte offset + done: past every
        // range that starts at or before it (sorted, so in one walk).
        std::uint64_t at = offset + done;
        std::uint64_t kept_until = message_->size();
        for (const ByteRange& r : left_out_) {
            if (r.begin <= at) {
                at += r.end - r.begin;
            } else {
                kept_until = r.begin;
                break;
            }
        }
        if (at >= message_->size()) break;
        const auto want =
            static_cast<std::size_t>(std::min<std::uint64_t>(len - done, kept_until - at));
        const long n = message_->read_at(at, buf + done, want);
        if (n < 0) return -1;
        if (n == 0) break;
        done += static_cast<std::size_t>(n);
    }
    return static_cast<long>(done);
}

}  // namespace rtm
