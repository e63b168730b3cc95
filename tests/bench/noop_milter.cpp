// noop-milter — the benchmark's floors: minimal libmilter milters.
//
// noop-milter SOCKET: asks for nothing and accepts everything. At
// negotiation it turns off every callback the MTA lets it (connect, HELO,
// MAIL, RCPT, DATA, unknown, headers, end of headers, body) and every reply
// to those it could not turn off, and requests no actions; only end of
// message remains, answered SMFIS_ACCEPT. What a message costs through it is
// what libmilter and the milter protocol cost on this machine, whatever a
// milter does.
//
// noop-milter --post URL [--discard] SOCKET: the same job as rt-milter with
// nothing else: receives the recipients, headers and body, POSTs the
// message as multipart/form-data (queue, action, message) to URL over a
// kept-alive connection (a pool of libcurl handles, one per concurrent
// POST), deletes the recipients when the answer starts "ok" and accepts;
// 451 otherwise. With --discard it discards the delivered message instead,
// as rt-milter ends a message all of whose recipients RT took on Sendmail
// (Sendmail would queue an accepted message with no recipient left). No
// routing, journal, trust, spool, metrics or logging: the floor a delivering
// milter can reach (tests/bench: noop-post).
//
// SOCKET in libmilter syntax: unix:/path, inet:PORT@HOST. Runs in the
// foreground until SIGTERM/SIGINT (libmilter's own handling).
#include <curl/curl.h>
#include <libmilter/mfapi.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace {

const char* g_post_url = nullptr;  // --post URL; null: accept-only
bool g_discard = false;            // --discard: a delivered message is discarded
// The no-reply bits agreed at negotiation (the same for every connection of
// one MTA): a stage that has one answers SMFIS_NOREPLY, as libmilter wants
// (anything else it logs as an error, through syslog, at every message).
std::atomic<unsigned long> g_no_reply{0};

sfsistat go_on(unsigned long nr_bit) {
    return (g_no_reply.load(std::memory_order_relaxed) & nr_bit) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

sfsistat negotiate(SMFICTX*, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                   unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
    (void)f0;
    const unsigned long wanted = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT |
                                 SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOUNKNOWN |
                                 SMFIP_NODATA | SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL |
                                 SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH |
                                 SMFIP_NR_BODY | SMFIP_NR_HDR;
    // Posting: the recipients, headers and body are needed, and deleting
    // recipients; their replies are not (as rt-milter asks).
    const unsigned long posting = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA |
                                  SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_DATA |
                                  SMFIP_NR_UNKN | SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_NR_HDR;
    *pf0 = g_post_url ? SMFIF_DELRCPT : 0;
    *pf1 = f1 & (g_post_url ? posting : wanted);
    g_no_reply =
        *pf1 & (SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_DATA |
                SMFIP_NR_UNKN | SMFIP_NR_EOH | SMFIP_NR_BODY | SMFIP_NR_HDR);
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

sfsistat eom_accept(SMFICTX*) {
    return SMFIS_ACCEPT;
}

// --- the posting job -------------------------------------------------------

struct Transaction {
    std::vector<std::string> rcpts;
    std::string message;
};

Transaction& tx(SMFICTX* ctx) {
    auto* t = static_cast<Transaction*>(smfi_getpriv(ctx));
    if (t == nullptr) {
        t = new Transaction;
        smfi_setpriv(ctx, t);
    }
    return *t;
}

void forget(SMFICTX* ctx) {
    delete static_cast<Transaction*>(smfi_getpriv(ctx));
    smfi_setpriv(ctx, nullptr);
}

// Kept-alive handles: one per POST in flight, reused across sessions.
std::mutex g_pool_mutex;
std::vector<CURL*> g_pool;

CURL* take_handle() {
    std::lock_guard lock(g_pool_mutex);
    if (g_pool.empty()) return curl_easy_init();
    CURL* h = g_pool.back();
    g_pool.pop_back();
    return h;
}

void give_back(CURL* h) {
    std::lock_guard lock(g_pool_mutex);
    g_pool.push_back(h);
}

std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
}

// RT's answer starts "ok": delivered.
bool post(const std::string& message) {
    static const std::string boundary = "----noop-post-7d3f1a";
    std::string body;
    body.reserve(message.size() + 512);
    for (const char* field : {"queue", "action"}) {
        body += "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + field +
                "\"\r\n\r\n" + (std::strcmp(field, "queue") == 0 ? "General" : "correspond") +
                "\r\n";
    }
    body += "--" + boundary +
            "\r\nContent-Disposition: form-data; name=\"message\"; filename=\"message\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n";
    body += message;
    body += "\r\n--" + boundary + "--\r\n";
    CURL* h = take_handle();
    if (h == nullptr) return false;
    std::string answer;
    curl_slist* headers = curl_slist_append(
        nullptr, ("Content-Type: multipart/form-data; boundary=" + boundary).c_str());
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(h, CURLOPT_URL, g_post_url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 180L);
    const CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
    curl_slist_free_all(headers);
    give_back(h);
    return rc == CURLE_OK && status / 100 == 2 && answer.compare(0, 2, "ok") == 0;
}

// MAIL is not needed, but without a callback libmilter answers it itself
// with "continue", which it then logs as breaking the agreed no-reply.
sfsistat on_mail(SMFICTX*, char**) {
    return go_on(SMFIP_NR_MAIL);
}

sfsistat on_rcpt(SMFICTX* ctx, char** argv) {
    if (argv[0] != nullptr) tx(ctx).rcpts.emplace_back(argv[0]);
    return go_on(SMFIP_NR_RCPT);
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
    std::string& m = tx(ctx).message;
    m += name;
    m += ": ";
    m += value;
    m += "\n";
    return go_on(SMFIP_NR_HDR);
}

sfsistat on_eoh(SMFICTX* ctx) {
    tx(ctx).message += "\n";
    return go_on(SMFIP_NR_EOH);
}

sfsistat on_body(SMFICTX* ctx, unsigned char* chunk, std::size_t size) {
    tx(ctx).message.append(reinterpret_cast<const char*>(chunk), size);
    return go_on(SMFIP_NR_BODY);
}

sfsistat on_eom(SMFICTX* ctx) {
    Transaction& t = tx(ctx);
    sfsistat verdict = SMFIS_ACCEPT;
    if (!post(t.message)) {
        smfi_setreply(ctx, const_cast<char*>("451"), const_cast<char*>("4.3.0"),
                      const_cast<char*>("RT did not take it"));
        verdict = SMFIS_TEMPFAIL;
    } else if (g_discard) {
        verdict = SMFIS_DISCARD;
    } else {
        for (std::string& r : t.rcpts) smfi_delrcpt(ctx, r.data());
    }
    forget(ctx);
    return verdict;
}

sfsistat on_abort(SMFICTX* ctx) {
    forget(ctx);
    return SMFIS_CONTINUE;
}

sfsistat on_close(SMFICTX* ctx) {
    forget(ctx);
    return SMFIS_CONTINUE;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 4 && std::strcmp(argv[1], "--post") == 0) {
        g_post_url = argv[2];
        argv += 2;
        argc -= 2;
        if (argc == 3 && std::strcmp(argv[1], "--discard") == 0) {
            g_discard = true;
            ++argv;
            --argc;
        }
    }
    if (argc != 2) {
        std::fprintf(stderr,
                     "usage: %s [--post URL [--discard]] SOCKET (unix:/path | inet:PORT@HOST)\n",
                     argv[0]);
        return 2;
    }
    struct smfiDesc desc;
    std::memset(&desc, 0, sizeof desc);
    desc.xxfi_name = const_cast<char*>("noop-milter");
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_negotiate = negotiate;
    if (g_post_url != nullptr) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        desc.xxfi_flags = SMFIF_DELRCPT;
        desc.xxfi_envfrom = on_mail;
        desc.xxfi_envrcpt = on_rcpt;
        desc.xxfi_header = on_header;
        desc.xxfi_eoh = on_eoh;
        desc.xxfi_body = on_body;
        desc.xxfi_eom = on_eom;
        desc.xxfi_abort = on_abort;
        desc.xxfi_close = on_close;
    } else {
        desc.xxfi_flags = 0;
        desc.xxfi_eom = eom_accept;
    }
    if (std::strncmp(argv[1], "unix:", 5) == 0 || std::strncmp(argv[1], "local:", 6) == 0) {
        const char* path = std::strchr(argv[1], ':') + 1;
        unlink(path);
    }
    if (smfi_setconn(argv[1]) == MI_FAILURE || smfi_register(desc) == MI_FAILURE) {
        std::fprintf(stderr, "noop-milter: cannot use %s\n", argv[1]);
        return 1;
    }
    umask(0111);  // Postfix's smtpd (user postfix) must be able to connect
    if (smfi_opensocket(1) == MI_FAILURE) {
        std::fprintf(stderr, "noop-milter: cannot open %s\n", argv[1]);
        return 1;
    }
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
