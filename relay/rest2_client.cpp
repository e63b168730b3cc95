// rest2_client.cpp — REST2 requests over libcurl, and the search that
// follows an attachment to its transaction, ticket and queue.
#include "rest2_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "curl_slist.h"
#include "curl_tls.h"
#include "text.h"
#include "url.h"

namespace rtm {
namespace {

constexpr std::size_t kMaxAnswer = 1 << 20;  // a search answer of 20 items is far less
constexpr int kMaxHits = 20;

CURL* easy(void* p) {
    return static_cast<CURL*>(p);
}

struct Exchange {
    std::string answer;
    bool cut = false;
    const Rest2Client::Tick* tick = nullptr;

    static size_t on_write(char* data, size_t size, size_t n, void* self) {
        auto* x = static_cast<Exchange*>(self);
        const size_t len = size * n;
        if (x->answer.size() + len > kMaxAnswer) {
            x->cut = true;
            return 0;
        }
        x->answer.append(data, len);
        return len;
    }
    static int on_progress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
        auto* x = static_cast<Exchange*>(self);
        if (x->tick && *x->tick) (*x->tick)();
        return 0;
    }
};

Rest2Finding failed(std::string why) {
    return {Rest2Finding::Kind::Failed, std::move(why)};
}

// A path segment: unreserved characters as they are, the rest %XX.
std::string escape(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
        if (plain) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            append_hex(out, c, true);
        }
    }
    return out;
}

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

const nlohmann::json* json_member(const nlohmann::json& value, const char* name) {
    if (!value.is_object()) return nullptr;
    auto it = value.find(name);
    return it == value.end() ? nullptr : &*it;
}

std::string json_scalar(const nlohmann::json* value) {
    if (value == nullptr) return {};
    if (value->is_string()) return value->get<std::string>();
    if (value->is_number()) return value->dump();
    return {};
}

std::string rest2_id(const nlohmann::json* value) {
    if (value == nullptr) return {};
    if (value->is_object()) return rest2_id(json_member(*value, "id"));
    return json_scalar(value);
}

Rest2Client::Rest2Client(ClientOptions options, std::string token)
    : options_(std::move(options)),
      token_(std::move(token)),
      curl_(curl_easy_init(), [](void* p) { curl_easy_cleanup(easy(p)); }) {
    if (!curl_) throw std::runtime_error("curl_easy_init failed");
    if (options_.user_agent.empty()) options_.user_agent = "rt-milter";
}

Rest2Client::~Rest2Client() = default;

Status Rest2Client::call(const std::string& base_url, const std::string& path,
                         const std::string& body, nlohmann::json& out, long* http_status,
                         const Tick& tick) {
    const std::string url = base_url + "/REST/2.0/" + path;
    CURL* c = easy(curl_.get());
    curl_easy_reset(c);
    char errbuf[CURL_ERROR_SIZE] = "";
    Exchange x;
    x.tick = &tick;
    CurlSlist headers;
    headers.add("Authorization: token " + token_);
    headers.add("Accept: application/json");
    headers.add("Expect:");
    if (!body.empty()) headers.add("Content-Type: application/json");
    for (const ExtraHeader& h : options_.extra_headers) headers.add(h.name + ": " + h.value);
    const long timeout = options_.timeout_seconds > 0 ? options_.timeout_seconds : 0;
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.list);
    if (!body.empty()) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Exchange::on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &Exchange::on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, timeout);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
    set_tls_options(c, options_, true);  // no redirects followed: always the origin
    const CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, nullptr);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, nullptr);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 1L);
    if (http_status) *http_status = status;
    const std::string where = redact_url(base_url) + "/REST/2.0/" + path.substr(0, path.find('?'));
    if (rc != CURLE_OK) {
        if (rc == CURLE_OPERATION_TIMEDOUT)
            return Status::failure(where + ": timeout: no answer from RT within " +
                                   std::to_string(timeout) + " s");
        if (x.cut)
            return Status::failure(where + ": answer longer than " + std::to_string(kMaxAnswer) +
                                   " bytes");
        return Status::failure(where + ": " +
                               printable_line(*errbuf ? errbuf : curl_easy_strerror(rc), 200));
    }
    if (status == 401 || status == 403) {
        return Status::failure(
            where + ": HTTP " + std::to_string(status) +
            ": RT refused the token (wrong, expired or revoked? see rest2_token_file)");
    }
    if (status < 200 || status > 299)
        return Status::failure(where + ": HTTP " + std::to_string(status));
    try {
        out = nlohmann::json::parse(x.answer);  // bounded: the answer is capped at kMaxAnswer
    } catch (const nlohmann::json::exception& e) {
        return Status::failure(where + ": HTTP " + std::to_string(status) +
                               " but not JSON: " + printable_line(e.what(), 200));
    }
    return Status::ok();
}

Rest2Finding Rest2Client::find_message(const Target& target, std::string_view message_id,
                                       const Tick& tick) {
    // RT 5: POST /REST/2.0/attachments with a JSON array of limits
    // (RT::REST2::Resource::Collection::QueryByJSON); MessageId is one of
    // an attachment's readable, so searchable, fields.
    nlohmann::json hits;
    // (invalid UTF-8 in a hostile Message-ID is replaced, not thrown on)
    const std::string query =
        nlohmann::json::array(
            {{{"field", "MessageId"}, {"operator", "="}, {"value", std::string(message_id)}}})
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (Status s = call(target.url, "attachments?per_page=" + std::to_string(kMaxHits), query, hits,
                        nullptr, tick);
        !s)
        return failed(s.error());
    const nlohmann::json* items = json_member(hits, "items");
    if (items == nullptr || !items->is_array())
        return failed("the attachments search answered without \"items\"");
    std::string elsewhere;  // the first hit that is not where the target points
    for (const nlohmann::json& item : *items) {
        const std::string attachment = rest2_id(&item);
        if (!all_digits(attachment)) continue;
        nlohmann::json a, txn, ticket;
        if (Status s = call(target.url, "attachment/" + attachment, "", a, nullptr, tick); !s)
            return failed(s.error());
        const std::string txn_id = rest2_id(json_member(a, "TransactionId"));
        if (!all_digits(txn_id))
            return failed("attachment " + attachment + " without a TransactionId");
        if (Status s = call(target.url, "transaction/" + txn_id, "", txn, nullptr, tick); !s)
            return failed(s.error());
        const nlohmann::json* type = json_member(txn, "ObjectType");
        const nlohmann::json* object = json_member(txn, "Object");
        const bool on_ticket = json_scalar(type) == "RT::Ticket" ||
                               (object && json_scalar(json_member(*object, "type")) == "ticket");
        if (!on_ticket) continue;  // an attachment of something else than a ticket
        std::string ticket_id = rest2_id(object);
        if (ticket_id.empty()) ticket_id = rest2_id(json_member(txn, "ObjectId"));
        if (!all_digits(ticket_id)) continue;
        if (Status s = call(target.url, "ticket/" + ticket_id, "", ticket, nullptr, tick); !s)
            return failed(s.error());
        const std::string effective = rest2_id(json_member(ticket, "EffectiveId"));
        const std::string where = "attachment " + attachment + " on ticket " + ticket_id;
        if (target.ticket) {
            if (*target.ticket == ticket_id || *target.ticket == effective)
                return {Rest2Finding::Kind::Found, where};
            if (elsewhere.empty()) elsewhere = where + ", not on ticket " + *target.ticket;
            continue;
        }
        const std::string queue_id = rest2_id(json_member(ticket, "Queue"));
        const std::string wanted = target.queue.value_or("1");  // the gateway's default: queue 1
        if (queue_id == wanted) return {Rest2Finding::Kind::Found, where};
        if (!all_digits(wanted) && all_digits(queue_id)) {
            nlohmann::json queue;
            if (Status s = call(target.url, "queue/" + queue_id, "", queue, nullptr, tick); !s)
                return failed(s.error());
            const std::string name = json_scalar(json_member(queue, "Name"));
            if (iequals(name, wanted)) return {Rest2Finding::Kind::Found, where};
            if (elsewhere.empty())
                elsewhere = where + " in queue " +
                            printable_line(name.empty() ? queue_id : name, 100) + ", not " + wanted;
            continue;
        }
        if (elsewhere.empty()) elsewhere = where + " in queue " + queue_id + ", not " + wanted;
    }
    if (!elsewhere.empty()) return {Rest2Finding::Kind::NotFound, "only " + elsewhere};
    return {Rest2Finding::Kind::NotFound, "no attachment with this Message-ID"};
}

Status Rest2Client::rt_version(const std::string& base_url, std::string& version) {
    nlohmann::json answer;
    if (Status s = call(base_url, "rt", "", answer); !s) return s;
    version = printable_line(json_scalar(json_member(answer, "Version")), 40);
    return Status::ok();
}

Status Rest2Client::queue_exists(const std::string& base_url, const std::string& queue,
                                 bool& exists) {
    nlohmann::json answer;
    long status = 0;
    Status s = call(base_url, "queue/" + escape(queue), "", answer, &status);
    exists = s.is_ok();
    if (!s && status == 404) return Status::ok();
    return s;
}

std::optional<std::string> message_id_of(const MessageView& message) {
    // The header ends at the first empty line; 256 KiB of it is plenty.
    std::string head(static_cast<std::size_t>(std::min<std::uint64_t>(message.size(), 256 * 1024)),
                     '\0');
    const long got = message.read_at(0, head.data(), head.size());
    head.resize(static_cast<std::size_t>(std::max(0L, got)));
    std::optional<std::string> value;
    std::size_t pos = 0;
    while (pos < head.size()) {
        std::size_t end = head.find('\n', pos);
        if (end == std::string::npos) end = head.size();
        std::string_view line(head.data() + pos, end - pos);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.empty()) break;  // end of the header
        if (value && (line.front() == ' ' || line.front() == '\t')) {
            *value += std::string(line);  // a folded continuation
        } else if (value) {
            break;  // the field after Message-ID
        } else if (line.size() >= 11 && istarts_with(line, "message-id:")) {
            value = std::string(line.substr(11));
        }
        pos = end + 1;
    }
    if (!value) return std::nullopt;
    const std::string_view id = strip_angle_brackets(trim(*value, " \t"));
    if (id.empty()) return std::nullopt;
    return std::string(id);
}

}  // namespace rtm
