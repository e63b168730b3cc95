// rt_client.h — RtClient: one libcurl handle that POSTs messages to RT's mail
// gateway and returns an RtReply. It streams the body from the spool with a
// Content-Length (never chunked), follows up to three redirects by re-POSTing
// to an absolute Location (as rt-mailgate does) but never from https to
// http nor to a host it was not given, verifies TLS unless told not to,
// ignores proxy variables (as rt-mailgate does), and reuses its connection
// across posts. A locked gateway's credentials (a TLS client certificate,
// extra headers from secret files) go only to the origin of the URL first
// posted to: a redirect elsewhere is posted without them. Time is bounded twice: an inactivity
// timeout (LWP's) and, when set, an overall deadline per post(). One RtClient is used by one thread
// at a time.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "credentials.h"
#include "message.h"
#include "multipart.h"
#include "rt_reply.h"
#include "target.h"
#include "url.h"

namespace rtm {

struct ClientOptions {
    long timeout_seconds = 180;  // inactivity timeout (connect, then each wait); <= 0: none
    // Overall deadline of one post(), redirects included; <= 0: none (as
    // rt-mailgate, a drop-in, has none). Reached: a temporary failure, in
    // doubt as after the inactivity timeout when RT had the whole request.
    long deadline_seconds = 0;
    std::string ca_file;     // CA bundle replacing the system's; empty: the system's
    bool verify_tls = true;  // certificate and host name
    std::string user_agent;  // empty: "rt-milter/<version>"
    int max_redirects = 3;
    // Hosts a redirect may lead to besides the posted URL's own: exact names
    // or addresses, any ASCII case, any port. A redirect elsewhere, or from
    // https to http, is refused: a temporary failure, nothing posted there.
    std::vector<std::string> redirect_hosts;
    // Credentials for a locked gateway, sent only to the posted URL's own
    // scheme, host and port (same_origin); a redirect to another origin that
    // redirect_hosts allows is posted without them.
    std::string client_cert;  // PEM certificate for TLS client authentication; "" = none
    std::string client_key;   // its PEM private key
    std::vector<ExtraHeader> extra_headers;       // values are secrets: never shown
    std::function<void(std::string_view)> debug;  // receives one line at a time, when set
};

// Call once at program start, before any thread runs (libcurl's rule).
void http_global_init();

class RtClient {
  public:
    explicit RtClient(ClientOptions options = {});
    ~RtClient();
    RtClient(const RtClient&) = delete;
    RtClient& operator=(const RtClient&) = delete;

    // Called about once a second (more often while bytes move) during a POST,
    // on the posting thread: the milter keeps the MTA waiting with it.
    using Tick = std::function<void()>;

    // POST the message, with prefix put before it, to the target's gateway.
    RtReply post(const Target& target, std::string_view prefix, const Message& message,
                 const Tick& tick = {});

    // POST a prepared body to a full URL (what post() does after framing).
    // uploaded: called once the whole request is written to the socket —
    // from then on RT gets it even if this process dies.
    RtReply post(const std::string& url, const MultipartBody& body, const Tick& tick = {},
                 const Tick& uploaded = {});

    const ClientOptions& options() const { return options_; }
    bool has_credentials() const {
        return !options_.client_cert.empty() || !options_.extra_headers.empty();
    }

  private:
    struct Exchange;
    RtReply post_once(const std::string& url, const MultipartBody& body, Exchange& exchange,
                      bool credentials);

    ClientOptions options_;
    std::unique_ptr<void, void (*)(void*)> curl_;
    // The URL of the last post() and its parse: a client posts to the same
    // gateway again and again.
    std::string last_url_;
    HttpUrl last_origin_;
};

}  // namespace rtm
