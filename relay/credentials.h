// credentials.h — what proves to a locked mail gateway that a POST is ours:
// a TLS client certificate with its key, and extra request headers whose
// values are read from files (a shared secret such as
// X-RT-Gateway-Secret), never from a command line or the TOML. Owns the
// rules for them: which header names may be sent, and when a file may hold
// a secret (a regular file that only its owner can read or write, owned by
// root or the user who runs us), so that rt-milter's loader and
// rt-mailgate's options refuse the same things with the same words. No
// value read here is ever put into a message, a log line or an error.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "status.h"

namespace rtm {

// One extra request header. The value is a secret: shown nowhere.
struct ExtraHeader {
    std::string name;
    std::string value;
    bool operator==(const ExtraHeader&) const = default;
};

// Why `name` may not be an extra request header: not an HTTP token
// (RFC 9110: letters, digits, !#$%&'*+-.^_`|~), or one the client sets
// itself or that would change the request's framing or routing (Host,
// Content-Length, Content-Type, Transfer-Encoding, Connection, Expect, ...).
// Ok when it may.
Status check_header_name(std::string_view name);

// The users a secret file may belong to: root and `service`.
std::vector<uid_t> secret_owners(uid_t service);

// Opens `path` and checks it as a secret file: a regular file, owned by
// one of `owners`, and no permission for group or others (mode & 077 == 0).
// On success the contents (at most max_bytes; more is a failure) go to
// `contents`. The failure says the path and the reason.
Status read_secret_file(const std::string& path, const std::vector<uid_t>& owners,
                        std::size_t max_bytes, std::string& contents);

// A header value from a secret file: one trailing newline removed; empty,
// longer than 4096 bytes, or with CR, LF, NUL or another control character
// but TAB: a failure, which says the path and the reason.
Status read_header_file(const std::string& path, const std::vector<uid_t>& owners,
                        std::string& value);

// A file that must be readable (a client certificate): opened and closed.
Status check_readable_file(const std::string& path);

}  // namespace rtm
