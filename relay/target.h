// target.h — Target: where one copy of a message goes in RT. The RT base URL
// plus the mail-gateway form fields; a field that is not set is not sent at
// all (RT then applies its own default: queue 1, action "correspond").
#pragma once

#include <optional>
#include <string>

namespace rtm {

struct Target {
    std::string url;  // RT base URL, e.g. "https://rt.example.com" (no /REST path)
    std::optional<std::string> queue = std::nullopt;
    std::optional<std::string> action =
        std::nullopt;  // "correspond", "comment", "take-comment", ...
    std::optional<std::string> ticket = std::nullopt;

    // Plain concatenation, as rt-mailgate does: a trailing '/' gives "//REST".
    std::string gateway_url() const { return url + "/REST/1.0/NoAuth/mail-gateway"; }

    bool operator==(const Target&) const = default;
};

}  // namespace rtm
