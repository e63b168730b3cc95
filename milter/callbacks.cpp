// callbacks.cpp — libmilter callbacks → Session, LibmilterMta (the MtaApi
// over smfi_*), and the daemon's socket, loop and stop state. The only file
// of rt-milter that includes libmilter's headers or calls it.
#include "callbacks.h"

#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>

#include <strings.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "log.h"
#include "network.h"
#include "rt_reply.h"  // printable_line
#include "session.h"

// libmilter's own stop state (libmilter.h, not mfapi.h; listed in Debian's
// libmilter1.0.1 symbols file): 0 running, 1 stop asked (SIGTERM, SIGHUP,
// smfi_stop), 2 abort.
extern "C" int mi_stop(void);

namespace rtm::milter {
namespace {

std::mutex g_runtime_mutex;
std::shared_ptr<const Runtime> g_runtime;
std::atomic<int> g_connections{0};

class LibmilterMta : public MtaApi {
  public:
    SMFICTX* ctx = nullptr;

    std::string macro(const char* name) override {
        const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
        if (!v && name[0] != '{' && name[1] == '\0') {  // single letters also come braced
            std::string braced = std::string("{") + name + "}";
            v = smfi_getsymval(ctx, braced.data());
        }
        return v ? v : "";
    }
    void set_reply(const std::string& rcode, const std::string& xcode,
                   const std::string& text) override {
        if (smfi_setreply(ctx, const_cast<char*>(rcode.c_str()), const_cast<char*>(xcode.c_str()),
                          const_cast<char*>(text.c_str())) != MI_SUCCESS) {
            log::warning("smfi_setreply(" + rcode + " " + xcode + ") failed");
        }
    }
    bool delete_recipient(const std::string& raw) override {
        return smfi_delrcpt(ctx, const_cast<char*>(raw.c_str())) == MI_SUCCESS;
    }
    void progress() override { smfi_progress(ctx); }
};

struct Connection {
    LibmilterMta mta;
    unsigned long no_reply = 0;  // the SMFIP_NR_* bits negotiated
    // The connect stage was negotiated away: the client's address and name
    // come as macros with MAIL (client_from_mail below).
    bool client_at_mail = false;
    Session session{&current_runtime, mta};
    Connection() { ++g_connections; }
    ~Connection() { --g_connections; }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
};

Connection* get(SMFICTX* ctx, bool create) {
    auto* c = static_cast<Connection*>(smfi_getpriv(ctx));
    if (!c && create) {
        c = new Connection();  // owned through smfi_setpriv until close
        if (smfi_setpriv(ctx, c) != MI_SUCCESS) {
            delete c;
            return nullptr;
        }
    }
    if (c) c->mta.ctx = ctx;
    return c;
}

sfsistat to_sfsistat(Verdict v) {
    switch (v) {
        case Verdict::Continue:
            return SMFIS_CONTINUE;
        case Verdict::Accept:
            return SMFIS_ACCEPT;
        case Verdict::Reject:
            return SMFIS_REJECT;
        case Verdict::Tempfail:
            return SMFIS_TEMPFAIL;
        case Verdict::Discard:
            return SMFIS_DISCARD;
    }
    return SMFIS_TEMPFAIL;
}

std::vector<std::string> args_of(char** argv) {
    std::vector<std::string> args;
    for (; argv && *argv; ++argv) args.emplace_back(*argv);
    return args;
}

// Runs one callback body; anything thrown becomes a tempfail and a log line.
// NO_REPLY_BIT: the SMFIP_NR_* bit of this stage. When it was negotiated the
// MTA does not wait for an answer: libmilter sends none, so the callback
// returns SMFIS_NOREPLY, and a failure is kept in the Session, which answers
// it at the next stage that has a reply (end of message at the latest).
template <typename F>
sfsistat guarded(SMFICTX* ctx, const char* stage, F&& body, unsigned long no_reply_bit = 0) {
    Connection* c = nullptr;
    try {
        c = get(ctx, true);
        if (!c) {
            log::error(std::string(stage) + ": cannot keep per-connection state");
            return SMFIS_TEMPFAIL;
        }
        sfsistat r = to_sfsistat(body(*c));
        return (c->no_reply & no_reply_bit) ? SMFIS_NOREPLY : r;
    } catch (const std::exception& e) {
        log::error(std::string(stage) + ": internal error: " + e.what() + "; answering tempfail");
    } catch (...) {
        log::error(std::string(stage) + ": unknown internal error; answering tempfail");
    }
    if (c && (c->no_reply & no_reply_bit)) {
        c->session.fail_internal();
        return SMFIS_NOREPLY;
    }
    smfi_setreply(ctx, const_cast<char*>("451"), const_cast<char*>("4.3.0"),
                  const_cast<char*>("rt-milter internal error; try again later"));
    return SMFIS_TEMPFAIL;
}

sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long,
                      unsigned long, unsigned long* pf0, unsigned long* pf1, unsigned long* pf2,
                      unsigned long* pf3) {
    return guarded(ctx, "negotiate", [&](Connection& c) {
        if (!(f0 & SMFIF_DELRCPT)) {
            log::error(
                "the MTA does not offer SMFIF_DELRCPT (recipient removal); refusing this "
                "connection");
            return Verdict::Reject;
        }
        *pf0 = SMFIF_DELRCPT;
        // No HELO or unknown commands; no reply to connect, MAIL, headers,
        // end of headers and body: each reply costs a round trip (two
        // context switches), and a failure there is repeated at the next
        // stage that answers (RCPT, end of message). RCPT, DATA and end of
        // message keep theirs (per-recipient answers, and DATA's accept that
        // ends the conversation for mail without RT recipients). libmilter
        // offers the NR bits also when the MTA lacks them, and then answers
        // "continue" itself.
        c.no_reply =
            f1 & (SMFIP_NR_CONN | SMFIP_NR_MAIL | SMFIP_NR_HDR | SMFIP_NR_EOH | SMFIP_NR_BODY);
        *pf1 = (f1 & (SMFIP_HDR_LEADSPC | SMFIP_NOHELO | SMFIP_NOUNKNOWN)) | c.no_reply;
        *pf2 = *pf3 = 0;
        c.session.set_lead_space_kept((*pf1 & SMFIP_HDR_LEADSPC) != 0);
        // Where the MTA sends the macros asked for, the connect stage is not
        // needed: the client's address and name, and the MTA's name (v),
        // come with MAIL, a packet and a callback fewer per SMTP connection
        // (Postfix still sends connect's macros, with its own list, in a
        // packet of their own). Otherwise connect and its macros.
        c.client_at_mail = (f0 & SMFIF_SETSYMLIST) && (f1 & SMFIP_NOCONNECT);
        if (c.client_at_mail) *pf1 |= SMFIP_NOCONNECT;
        if (f0 & SMFIF_SETSYMLIST) {
            *pf0 |= SMFIF_SETSYMLIST;
            if (!c.client_at_mail)
                smfi_setsymlist(ctx, SMFIM_CONNECT, const_cast<char*>("v j {daemon_name}"));
            // Postfix's {rcpt_addr} is trivial-rewrite's result: what the
            // address becomes after we have looked at it (routing.h).
            smfi_setsymlist(ctx, SMFIM_ENVRCPT, const_cast<char*>("i {rcpt_addr}"));
            // The trust policy: SMTP AUTH's user comes with MAIL FROM (in
            // both MTAs' defaults, asked for all the same), and the queue id
            // at end of message, which trusted Authentication-Results must
            // carry (authserv_id_with_job_id).
            smfi_setsymlist(
                ctx, SMFIM_ENVFROM,
                const_cast<char*>(c.client_at_mail ? "i {auth_authen} v {client_addr} {client_name}"
                                                   : "i {auth_authen}"));
            smfi_setsymlist(ctx, SMFIM_EOM, const_cast<char*>("i"));
        }
        return Verdict::Continue;
    });
}

// The client as the connect stage gives it: its name (one printable line:
// it goes into the log) and its socket address.
void client_from_connect(Connection& c, const char* host, const _SOCK_ADDR* addr) {
    char text[INET6_ADDRSTRLEN] = "unknown";
    std::optional<IpAddress> ip;  // for trusted_networks
    if (addr && addr->sa_family == AF_INET) {
        const in_addr& a = reinterpret_cast<const sockaddr_in*>(addr)->sin_addr;
        inet_ntop(AF_INET, &a, text, sizeof text);
        std::uint8_t octets[4];
        std::memcpy(octets, &a, sizeof octets);
        ip = IpAddress::v4(octets);
    } else if (addr && addr->sa_family == AF_INET6) {
        const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr;
        inet_ntop(AF_INET6, &a, text, sizeof text);
        std::uint8_t octets[16];
        std::memcpy(octets, &a, sizeof octets);
        ip = IpAddress::from_v6(octets);  // an IPv4-mapped one becomes IPv4
    }
    c.session.connect(host ? printable_line(host, 255) : "unknown", text, ip);
}

// The client as MAIL's macros give it when connect was negotiated away:
// {client_addr} ("192.0.2.1", "2001:db8::1"; Sendmail writes IPv6 ones
// "IPv6:2001:db8::1") and {client_name} (Sendmail brackets an address it
// could not name: "[192.0.2.1]", "[IPv6:2001:db8::1]"). A client without an
// address (no {client_addr}) is "unknown", as connect gives it; a MAIL with
// neither macro leaves what an earlier MAIL of the connection set.
void client_from_mail(Connection& c) {
    std::string addr = c.mta.macro("{client_addr}");
    std::string name = c.mta.macro("{client_name}");
    if (addr.empty() && name.empty()) return;
    if (addr.size() > 5 && strncasecmp(addr.c_str(), "IPv6:", 5) == 0) addr.erase(0, 5);
    const std::optional<IpAddress> ip = addr.empty() ? std::nullopt : parse_ip_address(addr);
    // Macro text goes into the log line: one printable line, as everything
    // else there that the MTA or a client wrote.
    addr = addr.empty() ? "unknown" : printable_line(addr, 100);
    name = name.empty() ? "unknown" : printable_line(name, 255);
    if (name.front() == '[') name = "[" + addr + "]";  // no name: the address once
    c.session.connect(name, addr, ip);
}

sfsistat on_connect(SMFICTX* ctx, char* host, _SOCK_ADDR* addr) {
    return guarded(
        ctx, "connect",
        [&](Connection& c) {
            client_from_connect(c, host, addr);
            return Verdict::Continue;
        },
        SMFIP_NR_CONN);
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
    return guarded(
        ctx, "MAIL",
        [&](Connection& c) {
            if (c.client_at_mail) client_from_mail(c);
            return c.session.mail(args_of(argv));
        },
        SMFIP_NR_MAIL);
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
    return guarded(ctx, "RCPT", [&](Connection& c) { return c.session.rcpt(args_of(argv)); });
}

sfsistat on_data(SMFICTX* ctx) {
    return guarded(ctx, "DATA", [&](Connection& c) { return c.session.data(); });
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
    return guarded(
        ctx, "header",
        [&](Connection& c) { return c.session.header(name ? name : "", value ? value : ""); },
        SMFIP_NR_HDR);
}

sfsistat on_eoh(SMFICTX* ctx) {
    return guarded(
        ctx, "end of headers", [&](Connection& c) { return c.session.end_of_headers(); },
        SMFIP_NR_EOH);
}

sfsistat on_body(SMFICTX* ctx, unsigned char* bytes, size_t len) {
    return guarded(
        ctx, "body",
        [&](Connection& c) {
            return c.session.body(std::string_view(reinterpret_cast<const char*>(bytes), len));
        },
        SMFIP_NR_BODY);
}

sfsistat on_eom(SMFICTX* ctx) {
    return guarded(ctx, "end of message",
                   [&](Connection& c) { return c.session.end_of_message(); });
}

sfsistat on_abort(SMFICTX* ctx) {
    if (auto* c = static_cast<Connection*>(smfi_getpriv(ctx))) c->session.abort();
    return SMFIS_CONTINUE;
}

sfsistat on_close(SMFICTX* ctx) {
    delete static_cast<Connection*>(
        smfi_getpriv(ctx));  // may be null: close can be the only callback
    smfi_setpriv(ctx, nullptr);
    return SMFIS_CONTINUE;
}

}  // namespace

void set_runtime(std::shared_ptr<const Runtime> runtime) {
    std::lock_guard lock(g_runtime_mutex);
    g_runtime = std::move(runtime);
}

std::shared_ptr<const Runtime> current_runtime() {
    std::lock_guard lock(g_runtime_mutex);
    return g_runtime;
}

int live_connections() {
    return g_connections.load();
}

bool register_filter() {
    smfiDesc desc{};
    desc.xxfi_name = const_cast<char*>("rt-milter");
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = SMFIF_DELRCPT;
    desc.xxfi_connect = on_connect;
    desc.xxfi_envfrom = on_envfrom;
    desc.xxfi_envrcpt = on_envrcpt;
    desc.xxfi_header = on_header;
    desc.xxfi_eoh = on_eoh;
    desc.xxfi_body = on_body;
    desc.xxfi_eom = on_eom;
    desc.xxfi_abort = on_abort;
    desc.xxfi_close = on_close;
    desc.xxfi_data = on_data;
    desc.xxfi_negotiate = on_negotiate;
    if (smfi_register(desc) != MI_SUCCESS) {
        log::error("smfi_register failed");
        return false;
    }
    return true;
}

bool set_socket(const std::string& spec) {
    return smfi_setconn(const_cast<char*>(spec.c_str())) == MI_SUCCESS;
}

bool open_socket() {
    return smfi_opensocket(false) == MI_SUCCESS;
}

bool run() {
    return smfi_main() == MI_SUCCESS;
}

StopState stop_state() {
    switch (mi_stop()) {
        case 0:
            return StopState::Running;
        case 1:
            return StopState::Stop;
        default:
            return StopState::Abort;
    }
}

}  // namespace rtm::milter
