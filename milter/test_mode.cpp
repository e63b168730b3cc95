// test_mode.cpp — the operator test mode.
#include "test_mode.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>

#include "multipart.h"
#include "session.h"
#include "url.h"

namespace rtm {
namespace {

class PrintingMta : public MtaApi {
  public:
    std::string auth_user;  // macro {auth_authen}
    std::string last_rcode, last_xcode, last_text;
    std::vector<std::string> deleted;

    std::string macro(const char* name) override {
        if (std::string(name) == "v") return "Postfix (rt-milter --test)";
        if (std::string(name) == "i") return "TEST";
        if (std::string(name) == "{auth_authen}") return auth_user;
        return "";
    }
    void set_reply(const std::string& rcode, const std::string& xcode,
                   const std::string& text) override {
        last_rcode = rcode;
        last_xcode = xcode;
        last_text = text;
    }
    bool delete_recipient(const std::string& raw) override {
        deleted.push_back(raw);
        std::printf("  MTA: recipient %s removed (delivered to RT)\n", raw.c_str());
        return true;
    }
    void progress() override { std::printf("  MTA: progress (the MTA keeps waiting)\n"); }
};

const char* name_of(Verdict v) {
    switch (v) {
        case Verdict::Continue:
            return "continue";
        case Verdict::Accept:
            return "accept";
        case Verdict::Reject:
            return "reject";
        case Verdict::Tempfail:
            return "tempfail";
        case Verdict::Discard:
            return "discard";
    }
    return "?";
}

std::string answer(Verdict v, const PrintingMta& mta, const char* default_code) {
    if (v == Verdict::Reject || v == Verdict::Tempfail) {
        if (!mta.last_rcode.empty())
            return mta.last_rcode + " " + mta.last_xcode + " " + mta.last_text;
        return default_code;
    }
    return "";
}

// Splits a message file into header fields (name, value with folding kept,
// as an MTA hands them to a milter with SMFIP_HDR_LEADSPC) and the body.
void split_message(const std::string& text,
                   std::vector<std::pair<std::string, std::string>>& headers, std::string& body) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t eol = text.find('\n', pos);
        std::size_t next = eol == std::string::npos ? text.size() : eol + 1;
        std::string line = text.substr(pos, (eol == std::string::npos ? text.size() : eol) - pos);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) {
            pos = next;
            break;
        }
        if ((line[0] == ' ' || line[0] == '\t') && !headers.empty()) {
            headers.back().second += "\n" + line;
        } else {
            auto colon = line.find(':');
            if (colon == std::string::npos) break;  // not a header: the body starts here
            headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
        }
        pos = next;
    }
    body = text.substr(std::min(pos, text.size()));
}

// The message to try: the file, or standard input for "-" or ""; nothing
// when the file cannot be read.
std::optional<std::string> read_message(const std::string& path) {
    if (path.empty() || path == "-")
        return std::string(std::istreambuf_iterator<char>(std::cin),
                           std::istreambuf_iterator<char>());
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The client's last reply line for a refusal (the stage's default when the
// session set none); the exit status: 1 rejected, 75 tempfailed.
int refused(Verdict v, const PrintingMta& mta, const char* default_reply) {
    std::printf("SMTP reply to the client: %s\n", answer(v, mta, default_reply).c_str());
    return v == Verdict::Reject ? 1 : 75;
}

// What routing makes of one recipient, for its RCPT line.
std::string route_of(const Runtime& runtime, const std::string& raw) {
    AddressParse parsed = parse_envelope_address(raw);
    if (!parsed.address) return "not an RT address: delivered by the MTA as usual";
    RouteDecision d = runtime.routes().route(*parsed.address);
    if (d.kind != RouteDecision::Kind::Routed)
        return "not an RT address: delivered by the MTA as usual";
    std::string route = "RT address (route " + d.route->address + ", " + d.route->origin +
                        "): server " + d.route->server + " " + redact_url(d.target.gateway_url());
    if (d.target.queue) route += ", queue=" + *d.target.queue;
    if (d.target.action) route += ", action=" + *d.target.action;
    if (d.target.ticket) route += ", ticket=" + *d.target.ticket;
    if (!d.extension.empty()) route += ", extension \"" + d.extension + "\"";
    return route;
}

// RCPT TO for each recipient, a line each; returns how many were taken.
int send_recipients(Session& session, PrintingMta& mta, const Runtime& runtime,
                    const std::vector<std::string>& recipients) {
    int accepted = 0;
    for (const std::string& rcpt : recipients) {
        const std::string raw = "<" + rcpt + ">";
        mta.last_rcode.clear();
        const Verdict v = session.rcpt({raw});
        const std::string route = route_of(runtime, raw);
        if (v == Verdict::Continue) {
            ++accepted;
            std::printf("RCPT TO:%s -> continue: %s\n", raw.c_str(), route.c_str());
        } else {
            std::printf("RCPT TO:%s -> %s %s %s (this recipient only)\n", raw.c_str(),
                        mta.last_rcode.c_str(), mta.last_xcode.c_str(), mta.last_text.c_str());
        }
    }
    return accepted;
}

// The message's header fields and body, in the chunks an MTA would send;
// Continue when the session took them all, else its first other verdict.
Verdict send_message(Session& session, const std::string& text) {
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    split_message(text, headers, body);
    for (const auto& [name, value] : headers) {
        if (const Verdict v = session.header(name, value); v != Verdict::Continue) return v;
    }
    if (const Verdict v = session.end_of_headers(); v != Verdict::Continue) return v;
    std::printf("message: %zu header fields, %zu body bytes\n", headers.size(), body.size());
    for (std::size_t off = 0; off < body.size(); off += 65535) {
        if (const Verdict v = session.body(std::string_view(body).substr(off, 65535));
            v != Verdict::Continue)
            return v;
    }
    return Verdict::Continue;
}

// Each POST of the end of message: the form fields, the start of the
// message part, RT's answer.
void print_deliveries(const Session& session) {
    for (const Delivery& d : session.last_deliveries()) {
        std::printf("  POST %s\n", redact_url(d.target.gateway_url()).c_str());
        for (const FormField& f : form_fields(d.target))
            std::printf("    field %s=%s\n", f.name.c_str(), f.value.c_str());
        std::printf("    message part: %zu bytes, starting:\n",
                    static_cast<std::size_t>(d.posted_size));
        std::istringstream prefix(d.posted_head);
        for (std::string line; std::getline(prefix, line);)
            std::printf("      | %s\n", line.c_str());
        std::printf("    for %zu recipient(s) -> %s: %s (%.2f s)\n", d.recipients.size(),
                    std::string(to_string(d.reply.kind)).c_str(), d.reply.summary().c_str(),
                    d.seconds);
    }
}

}  // namespace

int run_test_mode(std::shared_ptr<const Runtime> runtime, const TestModeOptions& options) {
    const std::optional<std::string> text = read_message(options.message_path);
    if (!text) {
        std::fprintf(stderr, "rt-milter: cannot read %s\n", options.message_path.c_str());
        return 66;
    }

    PrintingMta mta;
    mta.auth_user = options.auth_user;
    Session session([runtime] { return runtime; }, mta);
    session.set_lead_space_kept(true);
    session.set_test_mode(options.dry_run);
    if (options.client_addr.empty()) {
        session.connect("localhost", "unknown");  // no address: nothing for trusted_networks
    } else {
        session.connect("test-client", options.client_addr, parse_ip_address(options.client_addr));
    }

    Verdict v = session.mail({"<" + options.sender + ">"});
    std::printf("MAIL FROM:<%s> -> %s\n", options.sender.c_str(), name_of(v));
    if (v != Verdict::Continue) return refused(v, mta, "451 4.7.1 Service unavailable");
    if (send_recipients(session, mta, *runtime, options.recipients) == 0) {
        std::printf("no recipient left: the client gets no DATA\n");
        return 1;
    }
    v = session.data();
    std::printf("DATA -> %s%s\n", name_of(v),
                v == Verdict::Accept ? " (no RT recipient: not rt-milter's business)" : "");
    if (v == Verdict::Accept) {
        std::printf("SMTP reply to the client: 250 (the MTA delivers as usual)\n");
        return 0;
    }
    if (v = send_message(session, *text); v != Verdict::Continue)
        return refused(v, mta, "451 4.3.0");
    std::printf("end of message: %s\n",
                options.dry_run ? "dry run, nothing is posted" : "posting to RT ...");
    v = session.end_of_message();
    print_deliveries(session);
    std::printf("verdict: %s\n", name_of(v));
    switch (v) {
        case Verdict::Accept:
        case Verdict::Continue:
        case Verdict::Discard:
            std::printf(
                "SMTP reply to the client: 250 2.0.0 Ok: queued (RT recipients removed: %zu)\n",
                mta.deleted.size());
            return 0;
        case Verdict::Reject:
        case Verdict::Tempfail:
            break;
    }
    return refused(v, mta, "451 4.3.0");
}

}  // namespace rtm
