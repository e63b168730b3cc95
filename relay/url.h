// url.h — URLs as relay/ shows them: redact_url() masks the password of a
// URL before it goes into any output (debug lines, error texts, logs), as
// THREATS.md asks of every output. Text only: no libcurl, no I/O.
#pragma once

#include <string>
#include <string_view>

namespace rtm {

// "scheme://user:password@host/..." with the password replaced by "***"
// (the user is kept); anything else, including a URL without a password,
// comes back unchanged, byte for byte.
std::string redact_url(std::string_view url);

}  // namespace rtm
