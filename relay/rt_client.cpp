// rt_client.cpp — the libcurl side of the mail-gateway POST.
#include "rt_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "curl_slist.h"
#include "curl_tls.h"
#include "text.h"
#include "url.h"

#ifndef RTM_VERSION
#define RTM_VERSION "0"
#endif

namespace rtm {
namespace {

// Bodies up to this size are sent from memory with the request head
// (curl's upload buffer is as large: a larger body goes in pieces anyway).
constexpr std::uint64_t kOneWriteBody = 64 * 1024;

CURL* easy(void* p) {
    return static_cast<CURL*>(p);
}

std::string deadline_text(long seconds) {
    return "deadline reached: no complete answer from RT within " + std::to_string(seconds) + " s";
}

// What one mail-gateway POST is, whatever the answer: the URL, the request
// (HTTP/1.1, a body of `size` bytes, the headers), no proxy (rt-mailgate
// ignores http_proxy too), no redirect followed by curl, no signals.
void set_post_options(CURL* c, const std::string& url, const ClientOptions& options,
                      curl_slist* headers, char* errbuf, std::uint64_t size) {
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, options.user_agent.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(size));
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
}

bool is_tls_failure(CURLcode rc) {
    switch (rc) {
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ENGINE_NOTFOUND:
        case CURLE_SSL_ENGINE_SETFAILED:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_CRL_BADFILE:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
        case CURLE_SSL_CLIENTCERT:
            return true;
        default:
            return false;
    }
}

// A transfer that failed, in words built from curl's error code
// (curl_easy_strerror) and the OS error under it (CURLINFO_OS_ERRNO), not
// read out of curl's English message (which carries a timing, "after 3 ms",
// that has no place in an SMTP reply): "Failed to connect to HOST port PORT:
// Couldn't connect to server (Connection refused)". A TLS failure keeps
// curl's own message: only it names the certificate problem.
std::string transport_error_text(CURLcode rc, const char* errbuf, long os_errno,
                                 const HttpUrl& url) {
    if (is_tls_failure(rc) && *errbuf) return errbuf;
    const std::string host(bare_host(url.host));
    std::string what = curl_easy_strerror(rc);
    if (rc == CURLE_COULDNT_CONNECT && url) {
        what = "Failed to connect to " + host + " port " + url.port + ": " + what;
    } else if (rc == CURLE_COULDNT_RESOLVE_HOST && url) {
        what += ": " + host;
    }
    if (os_errno != 0) what += " (" + std::string(std::strerror(static_cast<int>(os_errno))) + ")";
    return what;
}

}  // namespace

// What one HTTP exchange gathers through the callbacks.
struct RtClient::Exchange {
    const MultipartBody* body = nullptr;
    std::uint64_t offset = 0;  // upload position
    std::string response;      // at most RtReply::max_body bytes
    bool response_cut = false;
    std::string reason;    // reason phrase of the last status line
    std::string location;  // Location of the last response

    // Inactivity timeout, as LWP's: give up when no byte has moved either
    // way for idle_limit. (curl's low-speed check averages over several
    // seconds, so it fires late after a fast upload.)
    using Clock = std::chrono::steady_clock;
    Clock::duration idle_limit{};
    Clock::time_point last_activity = Clock::now();
    curl_off_t last_down = 0, last_up = 0;
    bool timed_out = false;
    // The overall deadline of the whole post(), redirects included: an RT
    // that drips a byte now and then never trips the inactivity timeout.
    Clock::time_point deadline = Clock::time_point::max();
    bool deadline_reached = false;
    const RtClient::Tick* tick = nullptr;
    const RtClient::Tick* uploaded = nullptr;
    bool uploaded_told = false;
    // After the transfer (collect): the last status, the OS error under a
    // failure (0: none), and how much of the request went out.
    long status = 0;
    long os_errno = 0;
    curl_off_t sent = 0;

    // The callbacks below, pointed at this exchange.
    void attach(CURL* c) {
        curl_easy_setopt(c, CURLOPT_READFUNCTION, &Exchange::on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, this);
        curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, &Exchange::on_seek);
        curl_easy_setopt(c, CURLOPT_SEEKDATA, this);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Exchange::on_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, this);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &Exchange::on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, this);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Exchange::on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, this);
    }

    // What the transfer left in the handle; then every pointer into the
    // posting frame (this, the error buffer, the header list) is dropped.
    void collect(CURL* c) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
        curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &sent);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, nullptr);
        curl_easy_setopt(c, CURLOPT_READDATA, nullptr);
        curl_easy_setopt(c, CURLOPT_SEEKDATA, nullptr);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, nullptr);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, nullptr);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, nullptr);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 1L);
    }

    static int on_progress(void* self, curl_off_t, curl_off_t down, curl_off_t up_total,
                           curl_off_t up) {
        auto* x = static_cast<Exchange*>(self);
        if (x->tick && *x->tick) (*x->tick)();
        if (!x->uploaded_told && up_total > 0 && up == up_total) {
            x->uploaded_told = true;
            if (x->uploaded && *x->uploaded) (*x->uploaded)();
        }
        const auto now = Clock::now();
        if (now >= x->deadline) {
            x->deadline_reached = true;
            return 1;  // abort the transfer
        }
        if (down != x->last_down || up != x->last_up) {
            x->last_down = down;
            x->last_up = up;
            x->last_activity = now;
        } else if (x->idle_limit.count() > 0 && now - x->last_activity >= x->idle_limit) {
            x->timed_out = true;
            return 1;  // abort the transfer
        }
        return 0;
    }

    static size_t on_read(char* buf, size_t size, size_t n, void* self) {
        auto* x = static_cast<Exchange*>(self);
        long got = x->body->read_at(x->offset, buf, size * n);
        if (got < 0) return CURL_READFUNC_ABORT;
        x->offset += static_cast<std::uint64_t>(got);
        return static_cast<size_t>(got);
    }
    static int on_seek(void* self, curl_off_t offset, int origin) {
        auto* x = static_cast<Exchange*>(self);
        if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
        x->offset = static_cast<std::uint64_t>(offset);
        return CURL_SEEKFUNC_OK;
    }
    static size_t on_write(char* data, size_t size, size_t n, void* self) {
        auto* x = static_cast<Exchange*>(self);
        size_t len = size * n;
        size_t room = RtReply::max_body - x->response.size();
        x->response.append(data, std::min(len, room));
        if (len > room) {
            x->response_cut = true;  // enough to classify; stop reading a flood
            return 0;
        }
        return len;
    }
    static size_t on_header(char* data, size_t size, size_t n, void* self) {
        auto* x = static_cast<Exchange*>(self);
        std::string_view line(data, size * n);
        if (line.starts_with("HTTP/")) {  // a new response (after 100, or a redirect)
            x->reason.clear();
            x->location.clear();
            auto sp = line.find(' ');
            auto sp2 = sp == std::string_view::npos ? sp : line.find(' ', sp + 1);
            if (sp2 != std::string_view::npos) x->reason = trim(line.substr(sp2 + 1));
        } else if (line.size() > 9 && istarts_with(line, "location:")) {
            x->location = trim(line.substr(9));
        }
        return size * n;
    }
};

void http_global_init() {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        throw std::runtime_error("curl_global_init failed");
    }
}

RtClient::RtClient(ClientOptions options)
    : options_(std::move(options)),
      curl_(curl_easy_init(), [](void* p) { curl_easy_cleanup(easy(p)); }) {
    if (!curl_) throw std::runtime_error("curl_easy_init failed");
    if (options_.user_agent.empty()) options_.user_agent = "rt-milter/" RTM_VERSION;
}

RtClient::~RtClient() = default;

RtReply RtClient::post(const Target& target, std::string_view prefix, const Message& message,
                       const Tick& tick) {
    MultipartBody body(form_fields(target), std::string(prefix), message);
    return post(target.gateway_url(), body, tick);
}

RtReply RtClient::post(const std::string& url, const MultipartBody& body, const Tick& tick,
                       const Tick& uploaded) {
    const auto deadline =
        options_.deadline_seconds > 0
            ? Exchange::Clock::now() + std::chrono::seconds(options_.deadline_seconds)
            : Exchange::Clock::time_point::max();
    if (url != last_url_ || last_url_.empty()) {
        last_origin_ = parse_http_url(url);
        last_url_ = url;
    }
    const HttpUrl& origin = last_origin_;
    if (!origin)
        return classify_transport_failure(
            "'" + printable_line(redact_url(url)) + "': " + origin.error, false);
    HttpUrl from = origin;
    std::string next = url;
    for (int redirects = 0;; ++redirects) {
        // Spent on earlier hops: RT answered them, so it is not unreachable.
        if (redirects > 0 && Exchange::Clock::now() >= deadline) {
            return classify_transport_failure(deadline_text(options_.deadline_seconds), false);
        }
        // Ours to give only to the origin we were told to post to.
        const bool credentials = same_origin(origin, from);
        if (options_.debug) {
            options_.debug("connecting to " + redact_url(next));
            if (!credentials && has_credentials())
                options_.debug("not sending the client certificate and extra headers to " +
                               from.host + ":" + from.port + ", another origin than " +
                               origin.host + ":" + origin.port);
        }
        Exchange exchange;
        exchange.tick = &tick;
        exchange.uploaded = &uploaded;
        exchange.deadline = deadline;
        RtReply reply = post_once(next, body, exchange, credentials);
        if (reply.http_status < 300 || reply.http_status > 399 ||
            redirects == options_.max_redirects) {
            return reply;
        }
        if (exchange.location.empty()) {
            return classify_transport_failure(reply.status_line + " without a Location header",
                                              false);
        }
        const std::string to_text =
            reply.status_line + " to '" + printable_line(redact_url(exchange.location)) + "'";
        const HttpUrl to = parse_http_url(exchange.location);
        if (!to) return classify_transport_failure(to_text + ": " + to.error, false);
        // Checked before the next POST: a refused Location gets nothing.
        if (std::string why = redirect_refusal(origin, from, to, options_.redirect_hosts);
            !why.empty()) {
            return classify_transport_failure(
                "redirect refused: " + to_text + ": " + printable_line(why), false);
        }
        from = to;
        next = exchange.location;
    }
}

RtReply RtClient::post_once(const std::string& url, const MultipartBody& body, Exchange& x,
                            bool credentials) {
    CURL* c = easy(curl_.get());
    curl_easy_reset(c);  // keeps the connection cache: connections are reused
    char errbuf[CURL_ERROR_SIZE] = "";
    x.body = &body;

    CurlSlist headers;
    headers.add("Content-Type: " + body.content_type());
    headers.add("Expect:");  // no 100-continue round trip
    if (credentials)
        for (const ExtraHeader& h : options_.extra_headers) headers.add(h.name + ": " + h.value);

    const long timeout = options_.timeout_seconds > 0 ? options_.timeout_seconds : 0;
    set_post_options(c, url, options_, headers.list, errbuf, body.size());
    // A small body goes out with the request head in one write (held in
    // memory here); a larger one streams from the message (on_read), as
    // curl would send it in upload-buffer pieces all the same. A body that
    // cannot be read whole here streams too, so that its read error ends
    // the transfer as before (on_read) rather than throwing out of post().
    std::string small;
    if (body.size() <= kOneWriteBody) {
        try {
            small = body.to_string();
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, small.data());
        } catch (const std::runtime_error&) {
            small.clear();
        }
    }
    // An inactivity timeout, like LWP's: connect within it, and never a
    // whole timeout without a byte moving (see Exchange::on_progress).
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout);
    x.idle_limit = std::chrono::seconds(timeout);
    x.attach(c);
    set_tls_options(c, options_, credentials);

    const CURLcode rc = curl_easy_perform(c);
    x.collect(c);  // and drops every pointer into this frame: the handle outlives it

    // A 2xx whose body was cut short still says what RT did when its start
    // is there ("ok..."): rt-mailgate reads it the same way. That holds too
    // when our own timeout or deadline cut it: RT had the request and was
    // answering, so what it has not said yet leaves the copy in doubt (a
    // retry must not post it again), never "temporary, post again".
    const bool cut_by_us = x.timed_out || x.deadline_reached;
    const bool is_2xx = x.status >= 200 && x.status <= 299;
    const bool cut_short_2xx = is_2xx && !x.response.empty() &&
                               (rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR ||
                                rc == CURLE_GOT_NOTHING || cut_by_us);
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && x.response_cut && x.status > 0) ||
        cut_short_2xx) {
        RtReply reply = classify_http(x.status, x.reason, x.response);
        if (cut_by_us && reply.kind == RtReply::Kind::Temporary) reply.in_doubt = true;
        if (options_.debug) options_.debug(x.response);
        return reply;
    }

    std::string what;
    if (x.deadline_reached) {
        what = deadline_text(options_.deadline_seconds);
    } else if (x.timed_out) {
        what = "read timeout: nothing from RT for " + std::to_string(timeout) + " s";
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        what = "connect timeout: no connection to RT within " + std::to_string(timeout) + " s";
    } else {
        what = transport_error_text(rc, errbuf, x.os_errno, parse_http_url(url));
    }
    const bool unreachable =
        rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
        rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_PEER_FAILED_VERIFICATION ||
        (rc == CURLE_OPERATION_TIMEDOUT && !x.timed_out) ||
        (x.deadline_reached && x.sent == 0);  // not a byte of the request got out
    RtReply reply = classify_transport_failure(printable_line(what, 300), unreachable);
    reply.timed_out = x.deadline_reached || x.timed_out || rc == CURLE_OPERATION_TIMEDOUT;
    reply.in_doubt =
        cut_by_us && (x.status == 0 || is_2xx) && static_cast<std::uint64_t>(x.sent) == body.size();
    return reply;
}

}  // namespace rtm
