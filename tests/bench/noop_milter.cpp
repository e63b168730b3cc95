// noop-milter — the benchmark's floor: a minimal libmilter milter that asks
// for nothing and accepts everything. At negotiation it turns off every
// callback the MTA lets it (connect, HELO, MAIL, RCPT, DATA, unknown,
// headers, end of headers, body) and every reply to those it could not turn
// off, and requests no actions; only end of message remains, answered
// SMFIS_ACCEPT. What a message costs through it is what libmilter and the
// milter protocol cost on this machine, whatever a milter does.
//
// Usage: noop-milter SOCKET   (libmilter syntax: unix:/path, inet:PORT@HOST)
// Runs in the foreground until SIGTERM/SIGINT (libmilter's own handling).
#include <libmilter/mfapi.h>

#include <sys/stat.h>
#include <unistd.h>
#include <cstdio>
#include <cstring>

namespace {

sfsistat negotiate(SMFICTX*, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                   unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
    (void)f0;
    const unsigned long wanted = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT |
                                 SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOUNKNOWN |
                                 SMFIP_NODATA | SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL |
                                 SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH |
                                 SMFIP_NR_BODY | SMFIP_NR_HDR;
    *pf0 = 0;            // no actions (no header changes, no recipient changes)
    *pf1 = f1 & wanted;  // every "don't send" / "no reply" the MTA offers
    *pf2 = 0;
    *pf3 = 0;
    return SMFIS_CONTINUE;
}

sfsistat eom(SMFICTX*) {
    return SMFIS_ACCEPT;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s SOCKET (unix:/path | inet:PORT@HOST)\n", argv[0]);
        return 2;
    }
    struct smfiDesc desc;
    std::memset(&desc, 0, sizeof desc);
    desc.xxfi_name = const_cast<char*>("noop-milter");
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = 0;
    desc.xxfi_eom = eom;
    desc.xxfi_negotiate = negotiate;
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
