// main.cpp — rt-milter's command line (getopt_long): the daemon (default), --check-config
// (validate, print the resolved routes, run the daemon's preflight as the
// service user), --test (one message through the same path, no MTA), and
// where the log goes in each. Usage errors exit 64, configuration errors
// 78 (start_status.h has the rest). SIGPIPE is ignored before anything else
// runs, in every mode.
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "online_check.h"
#include "preflight.h"
#include "privileges.h"
#include "rt_client.h"
#include "runtime.h"
#include "start_status.h"
#include "status_command.h"
#include "test_mode.h"
#include "text.h"
#include "url.h"

namespace {

const char kUsage[] = R"(usage: rt-milter [-c FILE] [--debug] [--log-stderr]
       rt-milter --check-config [--online] [-c FILE]
       rt-milter --status [-c FILE]
       rt-milter --test --rcpt ADDR [--rcpt ADDR ...] [--from ADDR] [--client IP] [--auth USER]
                        [--dry-run] [-c FILE] [MESSAGE]

rt-milter delivers mail for RT addresses into Request Tracker during the SMTP
session (Postfix smtpd_milters, Sendmail INPUT_MAIL_FILTER).

  -c FILE          configuration (default /etc/rt-milter/rt-milter.toml)
  --check-config   validate the configuration, print the resolved routes, run
                   the daemon's start-up checks as its user, exit
    --online       also ask each RT server: reachable, TLS, the REST2 token
                   (rest2_token_file) taken, and with a token every route's
                   queue there; exit 69 when one of these fails
  --status         ask the running daemon (through its `metrics` listener)
                   for a summary: uptime, health, configuration generation,
                   per RT server circuit, connections and last error,
                   counters since start; exit 0 healthy, 1 unhealthy, 69 no
                   answer
  --test           run MESSAGE (or standard input) through routing, assembly,
                   POST and verdict as a live session would, printing each
                   step and the SMTP reply the client would get
    --rcpt ADDR    an envelope recipient (repeatable)
    --from ADDR    the envelope sender (default: none, the null sender)
    --client IP    the client's address, for trusted_networks (default: none)
    --auth USER    the client authenticated as USER (SMTP AUTH)
    --dry-run      show what would be posted, post nothing
  --debug          log at debug level, also on standard error
  --log-stderr     log to standard error instead of syslog
  -h, --help       this text

Before it listens, the daemon checks what delivery needs, as the user it runs
as: the journal opens and takes a write (its directory is made when missing;
a PostgreSQL journal is connected to, also by --check-config, its tables made),
the spool takes a file, TLS and header files are readable, the socket can be
bound. --check-config checks the same and creates nothing. No syslog at /dev/log:
the daemon logs to standard error. Under systemd (Type=notify) it sends
READY=1 once it listens, RELOADING=1 and READY=1 around a reload, STOPPING=1.

Signals: SIGUSR1 reloads the configuration (a bad file is logged and the
running one stays); SIGTERM or SIGHUP stop, after in-flight messages.
Exit status: 0 ok; --test: 0 accepted, 1 rejected, 75 tempfailed, 66 MESSAGE
unreadable; 1 the daemon's milter loop failed; 64 usage error; 71 the system
refused (fork, switching user); 73 cannot create or write the journal, the
spool, a directory for them or the socket (also: the socket is in use);
78 configuration error (the file, no [[route]], user, socket_group, an
unreadable TLS or header file, a secret file others can read, a directory
that is someone else's or a link).
)";

// The trust policy in one line: what proves a sender for take and resolve.
void print_trust(const rtm::Config& c) {
    const std::string networks =
        rtm::join(c.trusted_networks, ", ", [](const rtm::Network& n) { return n.to_string(); });
    const std::string ids = rtm::join(c.trusted_authserv_ids, ", ");
    std::printf(
        "trust: take and resolve need SMTP AUTH, a client in [%s] or Authentication-Results of "
        "[%s]%s; "
        "unproven: %s\n",
        networks.c_str(), ids.c_str(), c.authserv_id_with_job_id ? " with the queue id" : "",
        std::string(rtm::to_string(c.untrusted_action)).c_str());
}

void print_routes(const rtm::Config& c) {
    std::printf("configuration %s: ok\n", c.path.c_str());
    std::printf("socket %s, recipient_delimiter \"%s\", on_refusal %s, max_message_size %llu\n",
                c.socket.c_str(), c.recipient_delimiter.c_str(),
                std::string(rtm::to_string(c.on_refusal)).c_str(),
                static_cast<unsigned long long>(c.max_message_size));
    for (const auto& [name, s] : c.servers) {
        std::printf(
            "server %s: %s (timeout %lds, deadline %lds, max_concurrent %d, TLS verification "
            "%s%s%s)\n",
            name.c_str(), rtm::redact_url(s.url).c_str(), s.timeout, s.deadline, s.max_concurrent,
            s.verify_tls ? "on" : "OFF", s.ca_file.empty() ? "" : (", CA " + s.ca_file).c_str(),
            s.strip_rt_headers ? "" : ", RT's own header fields KEPT (strip_rt_headers = false)");
        // Where the credentials come from, never what they are.
        if (!s.client_cert.empty())
            std::printf("  client certificate %s, key %s\n", s.client_cert.c_str(),
                        s.client_key.c_str());
        for (const rtm::HeaderFile& h : s.header_files)
            std::printf("  header %s: value from %s (not shown)\n", h.name.c_str(), h.path.c_str());
        if (!s.rest2_token_file.empty())
            std::printf(
                "  REST2 token from %s (not shown): in-doubt messages are checked with RT\n",
                s.rest2_token_file.c_str());
    }
    print_trust(c);
    std::printf("%zu route(s):\n", c.routes.size());
    for (const rtm::Route& r : c.routes) {
        std::printf("  %s@%s -> %s queue=%s action=%s", r.local_part.c_str(), r.domain.c_str(),
                    r.server.c_str(), r.queue ? r.queue->c_str() : "(RT's default)",
                    r.action ? r.action->c_str() : "(correspond)");
        if (r.extension != rtm::ExtensionMode::None) {
            std::printf(" extension=%s", std::string(rtm::to_string(r.extension)).c_str());
            const auto& list = r.extension == rtm::ExtensionMode::Queue ? r.queues : r.actions;
            if (r.extension != rtm::ExtensionMode::Ticket) {
                const std::string joined = rtm::join(list, ", ");
                std::printf(" allowed=[%s]", list.empty() ? "any" : joined.c_str());
            }
        }
        if (r.untrusted_action)
            std::printf(" untrusted_action=%s",
                        std::string(rtm::to_string(*r.untrusted_action)).c_str());
        std::printf("  (%s)\n", r.origin.c_str());
    }
}

// --check-config: the configuration as loaded, then the daemon's preflight
// with the identity the daemon will have (preflight.h), creating nothing.
// Run by someone else than root or the service user, it cannot be that
// identity: the preflight is skipped with a note.
int check_online(const rtm::Config& config) {
    bool problems = false;
    for (const rtm::OnlineFinding& f : rtm::check_online(config, false)) {
        if (f.problem) {
            std::fflush(stdout);
            std::fprintf(stderr, "rt-milter: online: %s\n", f.line.c_str());
            problems = true;
        } else {
            std::printf("online: %s\n", f.line.c_str());
        }
    }
    std::fflush(stdout);
    return problems ? rtm::exit_status::kUnavailable : 0;
}

int check_config(const rtm::Config& config) {
    const bool root = geteuid() == 0;
    const rtm::UserCheck user =
        rtm::check_user_setting(config.user, root ? rtm::StartedAs::Root : rtm::StartedAs::Unknown);
    if (user.fatal) {
        std::fprintf(stderr, "rt-milter: %s\n", user.line.c_str());
        return rtm::exit_status::kConfig;
    }
    print_routes(config);
    if (!user.line.empty()) std::fprintf(stderr, "rt-milter: warning: %s\n", user.line.c_str());
    std::fflush(stdout);
    std::string error;
    const std::optional<rtm::ServiceUser> service = rtm::resolve_service_user(config.user, error);
    if (!service) {
        if (root || getpwnam(config.user.c_str()) == nullptr) {
            std::fprintf(stderr, "rt-milter: %s\n", error.c_str());
            return rtm::exit_status::kConfig;
        }
        std::fprintf(stderr,
                     "rt-milter: note: files and socket not checked: run --check-config as root or "
                     "as user %s\n",
                     config.user.c_str());
        return 0;
    }
    const rtm::PreflightReport report = rtm::preflight(config, *service, rtm::PreflightMode::Check);
    std::printf("checked as user %s:\n", service->name.c_str());
    for (const std::string& line : report.passed) std::printf("  %s\n", line.c_str());
    std::fflush(stdout);
    for (const std::string& note : report.notes)
        std::fprintf(stderr, "rt-milter: note: %s\n", note.c_str());
    for (const rtm::StartStatus& f : report.failures)
        std::fprintf(stderr, "rt-milter: %s\n", f.error().c_str());
    return report.exit_status();
}

// What the command line asks for.
struct CommandLine {
    std::string config_path = "/etc/rt-milter/rt-milter.toml";
    bool check = false, online = false, test = false, status = false, debug = false,
         log_stderr = false;
    rtm::TestModeOptions test_options;  // --test's, --dry-run included
    std::vector<std::string> rest;      // the operands: MESSAGE
};

// How a usage message names an option: "-c" for -c and --config, else "--NAME".
std::string option_name(const option* options, int code) {
    if (code == 'c') return "-c";
    for (const option* o = options; o->name; ++o)
        if (o->val == code) return std::string("--") + o->name;
    return "an option";
}

// Fills cl from argv; an exit status when the program ends here (--help 0,
// a usage error 64, with the usage on standard error), else nothing.
std::optional<int> parse_command_line(int argc, char** argv, CommandLine& cl) {
    // Long options come back as these codes (short ones as their letter).
    enum : int {
        kCheck = 256,
        kOnline,
        kStatus,
        kTest,
        kRcpt,
        kFrom,
        kClient,
        kAuth,
        kDryRun,
        kDebug,
        kLogStderr
    };
    static const option kLong[] = {{"config", required_argument, nullptr, 'c'},
                                   {"check-config", no_argument, nullptr, kCheck},
                                   {"online", no_argument, nullptr, kOnline},
                                   {"status", no_argument, nullptr, kStatus},
                                   {"test", no_argument, nullptr, kTest},
                                   {"rcpt", required_argument, nullptr, kRcpt},
                                   {"from", required_argument, nullptr, kFrom},
                                   {"client", required_argument, nullptr, kClient},
                                   {"auth", required_argument, nullptr, kAuth},
                                   {"dry-run", no_argument, nullptr, kDryRun},
                                   {"debug", no_argument, nullptr, kDebug},
                                   {"log-stderr", no_argument, nullptr, kLogStderr},
                                   {"help", no_argument, nullptr, 'h'},
                                   {nullptr, 0, nullptr, 0}};
    // "-": operands come back in place (code 1), so options may follow
    // MESSAGE whatever POSIXLY_CORRECT says; ":": a missing value is ':',
    // not '?'. opterr = 0: the messages are ours.
    opterr = 0;
    for (;;) {
        const int word = optind;  // the argument the next code comes from
        const int code = getopt_long(argc, argv, "-:c:h", kLong, nullptr);
        if (code == -1) break;
        switch (code) {
            case 1:
                cl.rest.emplace_back(optarg);
                break;
            case 'c':
                cl.config_path = optarg;
                break;
            case kCheck:
                cl.check = true;
                break;
            case kOnline:
                cl.online = true;
                break;
            case kStatus:
                cl.status = true;
                break;
            case kTest:
                cl.test = true;
                break;
            case kRcpt:
                cl.test_options.recipients.emplace_back(optarg);
                break;
            case kFrom:
                cl.test_options.sender = optarg;
                break;
            case kClient:
                cl.test_options.client_addr = optarg;
                break;
            case kAuth:
                cl.test_options.auth_user = optarg;
                break;
            case kDryRun:
                cl.test_options.dry_run = true;
                break;
            case kDebug:
                cl.debug = true;
                break;
            case kLogStderr:
                cl.log_stderr = true;
                break;
            case 'h':
                std::fputs(kUsage, stdout);
                return 0;
            case ':':  // optopt: the code of the option without its value
                std::fprintf(stderr, "rt-milter: %s needs a value\n%s",
                             option_name(kLong, optopt).c_str(), kUsage);
                return rtm::exit_status::kUsage;
            default:  // '?'
                std::fprintf(stderr, "rt-milter: unknown option %s\n%s", argv[word], kUsage);
                return rtm::exit_status::kUsage;
        }
    }
    for (int i = optind; i < argc; ++i) cl.rest.emplace_back(argv[i]);  // the operands after "--"
    cl.test_options.sender = std::string(rtm::strip_angle_brackets(cl.test_options.sender));
    for (std::string& r : cl.test_options.recipients) r = std::string(rtm::strip_angle_brackets(r));
    if ((!cl.test && !cl.rest.empty()) || cl.rest.size() > 1 ||
        (cl.test && cl.test_options.recipients.empty()) || (cl.check && cl.test) ||
        (cl.online && !cl.check) || (cl.status && (cl.check || cl.test))) {
        std::fputs(kUsage, stderr);
        return rtm::exit_status::kUsage;
    }
    if (!cl.test_options.client_addr.empty() &&
        !rtm::parse_ip_address(cl.test_options.client_addr)) {
        std::fprintf(stderr, "rt-milter: --client %s: not an IP address\n%s",
                     cl.test_options.client_addr.c_str(), kUsage);
        return rtm::exit_status::kUsage;
    }
    return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
    // An MTA that hangs up while we answer, or a reader of --test's output
    // that stops early, must cost us an EPIPE, never the process: ignored
    // here, before any thread exists, so no thread can take the default
    // action (libmilter ignores it too, but only from smfi_main on).
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, nullptr);

    CommandLine cl;
    if (const std::optional<int> done = parse_command_line(argc, argv, cl)) return *done;
    const bool check = cl.check, online = cl.online, test = cl.test, status = cl.status;
    rtm::TestModeOptions& test_options = cl.test_options;

    const bool interactive = check || test || status;
    rtm::log::init({.ident = "rt-milter",
                    .syslog = !interactive && !cl.log_stderr,
                    .stderr_too = interactive || cl.debug || cl.log_stderr,
                    .stderr_without_syslog = !interactive,
                    .level = cl.debug ? rtm::LogLevel::Debug : rtm::LogLevel::Info});

    if (check || test || status) {
        rtm::LoadResult loaded = rtm::load_config_file(cl.config_path);
        if (!loaded.config) {
            for (const rtm::ConfigError& e : loaded.errors)
                std::fprintf(stderr, "%s\n", e.to_string().c_str());
            std::fprintf(stderr, "rt-milter: %zu error(s) in %s\n", loaded.errors.size(),
                         cl.config_path.c_str());
            return rtm::exit_status::kConfig;
        }
        if (status) return rtm::run_status_command(*loaded.config);
        if (check) {
            const int rc = check_config(*loaded.config);
            if (rc != 0 || !online) return rc;
            rtm::http_global_init();
            return check_online(*loaded.config);
        }
        rtm::http_global_init();
        // The test mode never reads or writes the duplicate journal: a message
        // tried here must still be delivered when it really arrives.
        loaded.config->journal.clear();
        test_options.message_path = cl.rest.empty() ? "-" : cl.rest[0];
        return rtm::run_test_mode(std::make_shared<const rtm::Runtime>(std::move(*loaded.config)),
                                  test_options);
    }
    return rtm::run_daemon({.config_path = cl.config_path});
}
