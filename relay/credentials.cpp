// credentials.cpp — header names, and secret files read through one open fd.
#include "credentials.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "text.h"
#include "unique_fd.h"

namespace rtm {
namespace {

constexpr std::size_t kMaxHeaderValue = 4096;

// Set by the client itself, or changing how the request is framed or routed.
constexpr std::array<std::string_view, 15> kReservedHeaders = {"host",
                                                               "content-length",
                                                               "content-type",
                                                               "transfer-encoding",
                                                               "connection",
                                                               "expect",
                                                               "te",
                                                               "trailer",
                                                               "upgrade",
                                                               "keep-alive",
                                                               "user-agent",
                                                               "proxy-authorization",
                                                               "proxy-connection",
                                                               "cookie",
                                                               "authorization"};

bool is_token_char(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

std::string user_name(uid_t uid) {
    const passwd* pw = getpwuid(uid);
    return pw ? std::string(pw->pw_name) : "uid " + std::to_string(uid);
}

std::string octal(mode_t mode) {
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

}  // namespace

Status check_header_name(std::string_view name) {
    if (name.empty()) return Status::failure("a header name must not be empty");
    for (unsigned char c : name) {
        if (!is_token_char(c)) {
            return Status::failure(
                "a header name is letters, digits and !#$%&'*+-.^_`|~ only (no space, "
                "colon or control character)");
        }
    }
    const std::string lowered = ascii_lower(name);
    if (std::find(kReservedHeaders.begin(), kReservedHeaders.end(), lowered) !=
            kReservedHeaders.end() ||
        lowered.starts_with("proxy-")) {
        return Status::failure(
            std::string(name) +
            " is set by the HTTP client itself or changes how the request is framed; "
            "choose a header of your own, e.g. X-RT-Gateway-Secret");
    }
    return Status::ok();
}

std::vector<uid_t> secret_owners(uid_t service) {
    std::vector<uid_t> owners = {0};
    if (service != 0) owners.push_back(service);
    return owners;
}

Status read_secret_file(const std::string& path, const std::vector<uid_t>& owners,
                        std::size_t max_bytes, std::string& contents) {
    if (path.empty() || path.front() != '/')
        return Status::failure("must be an absolute path, got \"" + path + "\"");
    // O_NONBLOCK: a FIFO put there must not hang us; the checks are on what was opened.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd.valid()) return Status::failure("cannot read " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return Status::failure("cannot stat " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return Status::failure(path + " is not a regular file");
    if (std::find(owners.begin(), owners.end(), st.st_uid) == owners.end()) {
        return Status::failure(path + " is owned by " + user_name(st.st_uid) + ", not by " +
                               join(owners, " or ", user_name) +
                               ": another user could change the secret; chown it");
    }
    if ((st.st_mode & 077) != 0) {
        return Status::failure(
            path + " has mode " + octal(st.st_mode) +
            ": others than its owner may read or write it; chmod 600 it (or 400)");
    }
    contents.clear();
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return Status::failure("cannot read " + path + ": " + std::strerror(errno));
        if (n == 0) break;
        contents.append(buffer, static_cast<std::size_t>(n));
        if (contents.size() > max_bytes)
            return Status::failure(path + " is longer than " + std::to_string(max_bytes) +
                                   " bytes");
    }
    return Status::ok();
}

Status read_header_file(const std::string& path, const std::vector<uid_t>& owners,
                        std::string& value) {
    std::string text;
    if (Status s = read_secret_file(path, owners, kMaxHeaderValue + 1, text); !s) return s;
    if (text.ends_with('\n')) text.pop_back();  // one: "echo secret > file" writes it
    if (text.empty()) return Status::failure(path + " is empty: it must hold the header's value");
    if (text.size() > kMaxHeaderValue)
        return Status::failure(path + " is longer than " + std::to_string(kMaxHeaderValue) +
                               " bytes");
    for (unsigned char c : text) {
        const char* what = c == '\r'   ? "a carriage return (CR)"
                           : c == '\n' ? "a line feed (LF) besides the one at its end"
                           : c == 0    ? "a NUL byte"
                           : (c < 0x20 && c != '\t') || c == 0x7f ? "a control character"
                                                                  : nullptr;
        if (what) {
            return Status::failure(
                path + " contains " + std::string(what) +
                ": a header value is one line (one newline at its end is removed)");
        }
    }
    value = std::move(text);
    return Status::ok();
}

Status check_readable_file(const std::string& path) {
    if (path.empty() || path.front() != '/')
        return Status::failure("must be an absolute path, got \"" + path + "\"");
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd.valid()) return Status::failure("cannot read " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        return Status::failure(path + " is not a regular file");
    return Status::ok();
}

}  // namespace rtm
