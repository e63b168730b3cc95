// status.h — Status, the result type for expected failures (bad input, disk
// full, RT unreachable) across relay/. Exceptions are kept for programming
// errors only; a Status carries one human-readable line saying what failed.
#pragma once

#include <string>
#include <utility>

namespace rtm {

class Status {
  public:
    static Status ok() { return Status(); }
    static Status failure(std::string what) { return Status(std::move(what)); }

    bool is_ok() const { return !failed_; }
    explicit operator bool() const { return !failed_; }
    const std::string& error() const { return error_; }

  private:
    Status() = default;
    explicit Status(std::string what) : failed_(true), error_(std::move(what)) {}

    bool failed_ = false;
    std::string error_;
};

}  // namespace rtm
