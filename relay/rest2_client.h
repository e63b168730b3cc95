// rest2_client.h — Rest2Client: asks RT 5's REST2 API (/REST/2.0, with an
// authentication token, "Authorization: token TOKEN") what the mail gateway
// cannot say: whether RT already has a message (an attachment whose
// MessageId is the message's Message-ID, on a ticket in the target's queue
// or the target ticket). Same TLS options and locked-gateway credentials as RtClient
// (ClientOptions), no redirects followed, proxies ignored. For
// --check-config --online also: RT's version (the token works) and whether
// a queue exists. The token is a
// secret: it goes into the request header and nowhere else (no error, no
// debug line). Also owns message_id_of(): the Message-ID as RT stores it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "message.h"
#include "rt_client.h"
#include "status.h"
#include "target.h"

namespace rtm {

// What RT said about one message.
struct Rest2Finding {
    enum class Kind { Found, NotFound, Failed };
    Kind kind = Kind::Failed;
    // Found: "attachment 123 on ticket 45"; NotFound: why no hit counts
    // (none at all, or "attachment 7 is on ticket 9 in queue Sales, not
    // General"); Failed: what went wrong, e.g. "HTTP 401: RT refused the
    // token", "timeout: nothing from RT for 30 s".
    std::string detail;
};

class Rest2Client {
  public:
    using Tick = std::function<void()>;

    // options: the server's; options.timeout_seconds bounds each request
    // as a whole. token: the REST2 authentication token (never shown).
    Rest2Client(ClientOptions options, std::string token);
    ~Rest2Client();
    Rest2Client(const Rest2Client&) = delete;
    Rest2Client& operator=(const Rest2Client&) = delete;

    // Does RT at target.url have the message whose Message-ID (as RT stores
    // it, message_id_of()) is message_id, in target.queue (RT's default
    // queue 1 when unset) or, when target.ticket is set, on that ticket (or
    // one merged into it)? Looks at up to 20 hits. tick: called about once
    // a second while waiting.
    Rest2Finding find_message(const Target& target, std::string_view message_id,
                              const Tick& tick = {});

    // RT's version (GET /REST/2.0/rt): RT is reachable, its TLS verifies
    // and it takes the token. A failure says which of these did not hold.
    Status rt_version(const std::string& base_url, std::string& version);
    // Whether RT has the queue (by name or id) for the token's user: GET
    // /REST/2.0/queue/QUEUE answered 200 (exists) or 404 (does not, or the
    // user may not see it); anything else is a failure.
    Status queue_exists(const std::string& base_url, const std::string& queue, bool& exists);

    // One request to base_url + "/REST/2.0/" + path: the parsed JSON answer
    // of a 2xx, else a failure saying what happened (the HTTP status, the
    // transport error); body non-empty: POSTed as application/json.
    Status call(const std::string& base_url, const std::string& path, const std::string& body,
                nlohmann::json& out, long* http_status = nullptr, const Tick& tick = {});

  private:
    ClientOptions options_;
    std::string token_;
    std::unique_ptr<void, void (*)(void*)> curl_;
};

// The Message-ID of the message's header as RT 5 stores it in
// Attachments.MessageId: the field's value unfolded and trimmed, one
// enclosing pair of angle brackets removed. nullopt when there is none (or
// it is empty).
std::optional<std::string> message_id_of(const MessageView& message);

// The id of a REST2 reference: {"type":..., "id":"45", "_url":...} or a
// plain "45" / 45; "" when neither (or value is null).
std::string rest2_id(const nlohmann::json* value);

// The member `name` of an object; nullptr when absent or not an object.
const nlohmann::json* json_member(const nlohmann::json& value, const char* name);
// A string's value or a number's text; "" for anything else.
std::string json_scalar(const nlohmann::json* value);

}  // namespace rtm
