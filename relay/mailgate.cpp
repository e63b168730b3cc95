// mailgate.cpp — rt-mailgate's logic: options, $EXTENSION, reading the
// message, the POST, and the exit code. Texts a postmaster sees are one line
// each; where the original's wording is known to admins it is kept.
#include "mailgate.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "message.h"
#include "rt_client.h"
#include "rt_headers.h"
#include "target.h"
#include "text.h"

#ifndef RTM_VERSION
#define RTM_VERSION "0"
#endif

namespace rtm {
namespace {

enum class ArgKind { Flag, String, Integer, Negatable };

struct OptionSpec {
    std::string_view name;
    ArgKind kind;
    bool ours = false;  // not in the original: never makes its spellings ambiguous
};

constexpr OptionSpec kOptions[] = {
    {"queue", ArgKind::String},
    {"action", ArgKind::String},
    {"url", ArgKind::String},
    {"jar", ArgKind::String},
    {"help", ArgKind::Flag},
    {"debug", ArgKind::Flag},
    {"extension", ArgKind::String},
    {"timeout", ArgKind::Integer},
    {"verify-ssl", ArgKind::Negatable},
    {"ca-file", ArgKind::String},
    {"allow-redirect-host", ArgKind::String, true},
    {"strip-rt-headers", ArgKind::Flag, true},
    {"client-cert", ArgKind::String, true},
    {"client-key", ArgKind::String, true},
    {"header-file", ArgKind::String, true},
};

// One spelling of an option: its name, or "no"/"no-" + name for a negatable one.
struct Spelling {
    std::string text;
    const OptionSpec* spec;
    bool negated;
};

std::vector<Spelling> spellings() {
    std::vector<Spelling> all;
    for (const OptionSpec& spec : kOptions) {
        all.push_back({std::string(spec.name), &spec, false});
        if (spec.kind == ArgKind::Negatable) {
            all.push_back({"no" + std::string(spec.name), &spec, true});
            all.push_back({"no-" + std::string(spec.name), &spec, true});
        }
    }
    return all;
}

bool is_integer(std::string_view s) {
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) s.remove_prefix(1);
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

long long to_integer(std::string_view s) {
    bool negative = s[0] == '-';
    if (s[0] == '+' || s[0] == '-') s.remove_prefix(1);
    long long v = 0;
    for (char c : s) {
        if (v > 1'000'000'000'000LL) break;  // clamp: any such timeout means "for ever"
        v = v * 10 + (c - '0');
    }
    return negative ? -v : v;
}

void set_string(MailgateOptions& o, std::string_view name, std::string value) {
    if (name == "queue")
        o.queue = std::move(value);
    else if (name == "action")
        o.action = std::move(value);
    else if (name == "url")
        o.url = std::move(value);
    else if (name == "jar")
        o.jar = std::move(value);
    else if (name == "extension")
        o.extension = std::move(value);
    else if (name == "ca-file")
        o.ca_file = std::move(value);
    else if (name == "allow-redirect-host" && !value.empty())
        o.redirect_hosts.push_back(std::move(value));
    else if (name == "client-cert")
        o.client_cert = std::move(value);
    else if (name == "client-key")
        o.client_key = std::move(value);
    else if (name == "header-file")
        o.header_files.push_back(std::move(value));
}

// Perl's \s on bytes: space, \t, \n, \v, \f, \r.
bool is_perl_space(char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

std::string fold_extension_value(std::string value) {
    // s/(\r*\n)+$//: a trailing run of CR/LF that ends in LF goes.
    if (!value.empty() && value.back() == '\n') {
        auto keep = value.find_last_not_of("\r\n");
        value.erase(keep == std::string::npos ? 0 : keep + 1);
    }
    // s/(\r*\n)/$1\t/g: every line break continues with a TAB.
    std::string out;
    for (char c : value) {
        out += c;
        if (c == '\n') out += '\t';
    }
    return out;
}

const char kUsage[] = R"(NAME
    rt-mailgate - deliver mail into Request Tracker (rt-milter's drop-in)

SYNOPSIS
    rt-mailgate --url URL [--queue QUEUE] [--action ACTION]
                [--extension queue|action|ticket] [--timeout SECONDS]
                [--ca-file FILE] [--[no-]verify-ssl] [--debug] [--help]
                [--allow-redirect-host HOST]... [--strip-rt-headers]
                [--client-cert FILE --client-key FILE]
                [--header-file NAME=FILE]... < message

DESCRIPTION
    Reads one mail message on standard input and posts it to RT's mail
    gateway, URL/REST/1.0/NoAuth/mail-gateway, exactly as RT's own Perl
    rt-mailgate does, with the same options, environment and exit codes.
    The message is streamed from a spool (memory, then an unlinked temporary
    file), so memory stays flat for any message size.

    Typical /etc/aliases lines:
        rt:         "|/usr/bin/rt-mailgate --queue general --action correspond --url https://rt.example.com"
        rt-comment: "|/usr/bin/rt-mailgate --queue general --action comment --url https://rt.example.com"

OPTIONS
    --url URL        RT's base URL (required), e.g. https://rt.example.com
    --queue QUEUE    queue name or id; omitted: RT's default queue
    --action ACTION  correspond, comment, take, resolve, or a dash-separated
                     list such as take-comment; omitted: correspond
    --extension queue|action|ticket
                     take that field from $EXTENSION (set by Postfix local(8)
                     from an address extension such as rt+bugs@); without
                     $EXTENSION the field falls back to --queue / --action
                     (--extension ticket then sends an empty ticket)
    --timeout N      seconds of inactivity before giving up (default 180;
                     0 waits for ever)
    --ca-file FILE   verify RT's certificate against FILE instead of the
                     system's CA bundle
    --verify-ssl, --no-verify-ssl
                     verify RT's TLS certificate and host name (default on)
    --debug          print the URL and RT's answer on standard error
    --help           print this text on standard output, exit 1
    --jar FILE       accepted for compatibility and ignored (the mail
                     gateway keeps no session)
    --allow-redirect-host HOST
                     (not in the original) a redirect from RT may lead to
                     HOST too, on any port; repeat for more hosts. HOST is
                     a name or address as in the URL, compared exactly in
                     any case
    --strip-rt-headers
                     (not in the original) leave out of the posted copy the
                     header fields RT takes as its own (RT-Send-Cc,
                     RT-Send-Bcc, RT-Attach, RT-Message-ID,
                     RT-DetectedAutoGenerated, RT-Squelch-Replies-To, the
                     X-RT-* crypt status fields) and any X-RT-Mail-Extension
                     of the message: an RT older than 4.4.7 / 5.0.5 acts on
                     them (CVE-2023-41259). Whole fields, folded lines too,
                     any case, top-level header only; every other byte is
                     posted as read. Off by default, as the original posts
                     the message as it is
    --client-cert FILE, --client-key FILE
                     (not in the original) present this PEM certificate and
                     its private key to an https:// RT that asks for one
                     (mutual TLS), e.g. a web server that lets only
                     rt-mailgate reach the mail gateway. Both or neither;
                     the key file must be a secret file (see below)
    --header-file NAME=FILE
                     (not in the original) send the request header NAME
                     with the value read from FILE (one trailing newline
                     removed), e.g. a secret the web server in front of RT
                     compares: --header-file X-RT-Gateway-Secret=/etc/rt/
                     gateway.secret. Repeatable, https:// only. FILE must be
                     a secret file: a regular file owned by root or by the
                     user rt-mailgate runs as, mode 0600 or 0400; its value
                     one line without CR, LF or NUL, and never shown

    Options may be abbreviated and start with - or --, as Getopt::Long
    allows. An unknown option is reported on standard error and ignored; the
    message is still delivered, as with the original.

REDIRECTS
    A 3xx answer with an absolute Location is followed, up to three times,
    by posting the same request there, as the original does; but never from
    https to http, and never to a host other than --url's own unless
    allowed with --allow-redirect-host (the original follows any). Such a
    redirect is refused before anything is sent to it, as a temporary
    failure (exit 75) whose message says why. A relative Location is a
    temporary failure, as with the original. The client certificate and
    the --header-file headers go only to --url's own scheme, host and port:
    a redirect elsewhere is posted without them.

ENVIRONMENT
    EXTENSION  when set and not "0", added before the message as a header
               "X-RT-Mail-Extension: VALUE" (always, even without
               --extension), and used for the --extension field.
               Without it, --extension's own value is added as the header
               (a quirk of the original, kept).
    TMPDIR     where a large message is spooled (default /tmp).
    Proxy variables (http_proxy, ...) are ignored, as by the original.

EXIT STATUS
    0   RT took the message ("ok"), or refused it ("not ok": RT has already
        mailed the sender), or standard input was empty
    75  temporary failure (EX_TEMPFAIL): RT answered "temporary failure",
        anything unexpected, a non-2xx status, or could not be reached; the
        MTA keeps the message and retries
    1   usage error (no --url), or --help
    A problem with --client-cert, --client-key or --header-file (a file
    that cannot be read or is not a secret file, a bad header name) is a
    temporary failure (75), so that the MTA keeps the mail while the
    postmaster fixes it; the message names the option, the file and why.
)";

}  // namespace

bool perl_true(const std::optional<std::string>& value) {
    return value && !value->empty() && *value != "0";
}

namespace {

// The option `name` (lower-cased, without dashes) stands for: its exact
// spelling, else the one spelling it abbreviates. nullptr, with the warning
// Getopt::Long gives, when it is unknown or ambiguous.
const Spelling* find_spelling(const std::vector<Spelling>& all, const std::string& name,
                              std::vector<std::string>& warnings) {
    std::vector<const Spelling*> prefixed;
    for (const Spelling& s : all) {
        if (s.text == name) return &s;
        if (!name.empty() && s.text.starts_with(name)) prefixed.push_back(&s);
    }
    // An abbreviation the original takes keeps its meaning: "-a" is
    // still --action, although --allow-redirect-host starts alike.
    if (std::any_of(prefixed.begin(), prefixed.end(),
                    [](const Spelling* s) { return !s->spec->ours; })) {
        std::erase_if(prefixed, [](const Spelling* s) { return s->spec->ours; });
    }
    if (prefixed.empty()) {
        warnings.push_back("Unknown option: " + name);
        return nullptr;
    }
    const bool same = std::all_of(prefixed.begin(), prefixed.end(), [&](const Spelling* s) {
        return s->spec == prefixed[0]->spec && s->negated == prefixed[0]->negated;
    });
    if (!same) {
        const std::string names = join(prefixed, ", ", [](const Spelling* s) { return s->text; });
        warnings.push_back("Option " + name + " is ambiguous (" + names + ")");
        return nullptr;
    }
    return prefixed[0];
}

// A flag (--help, --debug, --strip-rt-headers, --[no-]verify-ssl) into `o`.
void set_flag(MailgateOptions& o, const Spelling& match, bool has_inline_value) {
    const std::string_view opt = match.spec->name;
    if (has_inline_value) {
        o.warnings.push_back("Option " + match.text + " does not take an argument");
    } else if (match.spec->kind == ArgKind::Negatable) {
        o.verify_ssl = !match.negated;
    } else if (opt == "help") {
        o.help = true;
    } else if (opt == "strip-rt-headers") {
        o.strip_rt_headers = true;
    } else {
        o.debug = true;
    }
}

// An option with a value: "=value", else the next word (args[i + 1], then
// taken: i moves past it).
void set_value(MailgateOptions& o, const OptionSpec& spec, std::optional<std::string> value,
               const std::vector<std::string>& args, std::size_t& i) {
    const std::string opt(spec.name);
    const bool inline_value = value.has_value();
    if (!value && i + 1 < args.size()) value = args[++i];
    if (!value || (value->empty() && inline_value)) {
        o.warnings.push_back("Option " + opt + " requires an argument");
        return;
    }
    if (spec.kind != ArgKind::Integer) {
        set_string(o, opt, std::move(*value));
    } else if (!is_integer(*value)) {
        o.warnings.push_back("Value \"" + *value + "\" invalid for option " + opt +
                             " (number expected)");
    } else {
        o.timeout = to_integer(*value);
    }
}

}  // namespace

MailgateOptions parse_mailgate_args(const std::vector<std::string>& args) {
    MailgateOptions o;
    const std::vector<Spelling> all = spellings();
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& arg = args[i];
        if (arg == "--") {
            o.arguments.insert(o.arguments.end(), args.begin() + static_cast<long>(i) + 1,
                               args.end());
            break;
        }
        if (arg.size() < 2 || arg[0] != '-') {
            o.arguments.push_back(arg);
            continue;
        }
        std::string_view body(arg);
        body.remove_prefix(body.starts_with("--") ? 2 : 1);
        std::optional<std::string> inline_value;
        if (auto eq = body.find('='); eq != std::string_view::npos) {
            inline_value = std::string(body.substr(eq + 1));
            body = body.substr(0, eq);
        }
        const Spelling* match = find_spelling(all, ascii_lower(body), o.warnings);
        if (!match) continue;
        if (match->spec->kind == ArgKind::Flag || match->spec->kind == ArgKind::Negatable) {
            set_flag(o, *match, inline_value.has_value());
        } else {
            set_value(o, *match->spec, std::move(inline_value), args, i);
        }
    }
    return o;
}

ExtensionPlan plan_extension(const MailgateOptions& o, const std::optional<std::string>& env) {
    ExtensionPlan plan;
    std::optional<std::string> queue = o.queue, action = o.action, ticket;
    const std::string mode = o.extension.value_or("");
    const std::string mode_lc = ascii_lower(mode);
    if (mode_lc == "queue" || mode_lc == "action" || mode_lc == "ticket") {
        // $ENV{EXTENSION} || $opts->{ $opts->{extension} }: the fallback looks
        // the option up by the mode exactly as written, so "Queue" finds none.
        std::optional<std::string> fallback;
        if (mode == "queue") fallback = o.queue;
        if (mode == "action") fallback = o.action;
        std::string value = perl_true(env) ? *env : fallback.value_or("");
        if (mode_lc == "queue") queue = value;
        if (mode_lc == "action") action = value;
        if (mode_lc == "ticket") ticket = value;
    } else if (perl_true(o.extension) && perl_true(env)) {
        plan.warning =
            "Value of the --extension argument is not action, queue or ticket, but environment "
            "variable "
            "EXTENSION is also defined. The former is ignored.";
    }
    if (queue) plan.fields.push_back({"queue", *queue});
    if (action) plan.fields.push_back({"action", *action});
    if (ticket) plan.fields.push_back({"ticket", *ticket});

    std::optional<std::string> header_value =
        perl_true(env) ? env : (perl_true(o.extension) ? o.extension : std::nullopt);
    if (header_value)
        plan.header = "X-RT-Mail-Extension: " + fold_extension_value(*header_value) + "\n";
    return plan;
}

namespace {

// --client-cert, --client-key and --header-file into `copts`, the files
// checked by the rules of credentials.h (a secret file owned by root or by
// whoever runs rt-mailgate). What is wrong, naming the option and the path;
// never a value read.
Status load_credentials(const MailgateOptions& o, ClientOptions& copts) {
    const bool https = o.url && istarts_with(*o.url, "https://");
    if (o.client_cert.has_value() != o.client_key.has_value())
        return Status::failure("--client-cert and --client-key go together: give both");
    if ((o.client_cert || !o.header_files.empty()) && !https)
        return Status::failure(
            std::string(o.client_cert ? "--client-cert" : "--header-file") +
            " needs an https:// --url: over http the credentials would travel in clear text");
    const std::vector<uid_t> owners = secret_owners(geteuid());
    if (o.client_cert) {
        if (Status s = check_readable_file(*o.client_cert); !s)
            return Status::failure("--client-cert: " + s.error());
        std::string key;
        if (Status s = read_secret_file(*o.client_key, owners, 1 << 20, key); !s)
            return Status::failure("--client-key: " + s.error());
        copts.client_cert = *o.client_cert;
        copts.client_key = *o.client_key;
    }
    for (const std::string& spec : o.header_files) {
        const auto eq = spec.find('=');
        const std::string name = spec.substr(0, eq);
        const std::string what = "--header-file " + name;
        if (eq == std::string::npos)
            return Status::failure("--header-file " + spec + ": give NAME=PATH");
        if (Status s = check_header_name(name); !s) return Status::failure(what + ": " + s.error());
        for (const ExtraHeader& h : copts.extra_headers)
            if (iequals(h.name, name)) return Status::failure(what + ": given twice");
        ExtraHeader header{name, ""};
        if (Status s = read_header_file(spec.substr(eq + 1), owners, header.value); !s)
            return Status::failure(what + ": " + s.error());
        copts.extra_headers.push_back(std::move(header));
    }
    return Status::ok();
}

}  // namespace

namespace {

// The message from in_fd into `message` (and, with --strip-rt-headers, RT's
// own fields found by `rt_headers`); `empty`: nothing but Perl's white space.
Status read_message(int in_fd, bool strip_rt_headers, Message& message, RtHeaderScanner& rt_headers,
                    bool& empty) {
    empty = true;
    char buf[64 * 1024];
    for (;;) {
        ssize_t n = ::read(in_fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            return Status::failure(std::string("couldn't read message: ") + std::strerror(errno));
        }
        if (n == 0) break;
        std::string_view chunk(buf, static_cast<std::size_t>(n));
        if (empty) empty = std::all_of(chunk.begin(), chunk.end(), is_perl_space);
        if (Status s = message.append(chunk); !s)
            return Status::failure("couldn't spool message: " + s.error());
        if (strip_rt_headers) rt_headers.feed(chunk);
    }
    rt_headers.finish();
    return Status::ok();
}

// The rest of the client's options, from the command line.
void set_client_options(const MailgateOptions& o, const std::string& self, std::FILE* err,
                        ClientOptions& copts) {
    copts.timeout_seconds =
        o.timeout ? static_cast<long>(std::clamp<long long>(*o.timeout, -1, 1'000'000'000)) : 180;
    copts.verify_tls = o.verify_ssl.value_or(true);
    if (perl_true(o.ca_file)) copts.ca_file = *o.ca_file;
    copts.redirect_hosts = o.redirect_hosts;
    copts.user_agent = "rt-mailgate/" RTM_VERSION " (rt-milter)";
    if (o.debug)
        copts.debug = [self, err](std::string_view text) {
            while (text.ends_with('\n') || text.ends_with('\r')) text.remove_suffix(1);
            std::fprintf(err, "%s: %.*s\n", self.c_str(), static_cast<int>(text.size()),
                         text.data());
        };
}

// POSTs the spooled message; the exit code, and what went wrong on err.
int post_message(const MailgateOptions& o, ClientOptions copts, const ExtensionPlan& plan,
                 const Message& message, const RtHeaderScanner& rt_headers, const std::string& self,
                 std::FILE* err) {
    try {
        http_global_init();
        RtClient client(std::move(copts));
        if (o.debug && !rt_headers.names().empty()) {
            std::fprintf(err, "%s: left out RT's own header fields: %s\n", self.c_str(),
                         join(rt_headers.names(), ", ").c_str());
        }
        MultipartBody body(plan.fields, plan.header, MessageView(message, rt_headers.ranges()));
        RtReply reply = client.post(Target{.url = *o.url}.gateway_url(), body);
        switch (reply.kind) {
            case RtReply::Kind::Delivered:
            case RtReply::Kind::Refused:  // RT has mailed the sender already
                return kExitOk;
            case RtReply::Kind::Temporary:
                break;
        }
        if (!reply.transport_error.empty() || reply.http_status < 200 || reply.http_status > 299) {
            std::fprintf(err,
                         "%s. Your webserver logs may have more information or there may be a "
                         "network problem.\n",
                         reply.summary().c_str());
        } else {
            std::fprintf(err,
                         "RT server error: the RT server which handled your email did not behave "
                         "as expected. %s\n",
                         reply.summary().c_str());
        }
    } catch (const std::exception& e) {
        std::fprintf(err, "%s: internal error: %s\n", self.c_str(), e.what());
    }
    return kExitTempfail;
}

}  // namespace

int run_mailgate(const std::vector<std::string>& argv,
                 const std::optional<std::string>& env_extension, int in_fd, std::FILE* out,
                 std::FILE* err) {
    const std::string self = argv.empty() ? "rt-mailgate" : argv[0];
    MailgateOptions o = parse_mailgate_args(
        std::vector<std::string>(argv.begin() + (argv.empty() ? 0 : 1), argv.end()));
    for (const std::string& w : o.warnings) std::fprintf(err, "%s\n", w.c_str());
    for (const std::string& a : o.arguments)
        std::fprintf(err, "%s: ignoring argument '%s'\n", self.c_str(), a.c_str());

    if (o.help) {
        std::fputs(kUsage, out);
        return kExitUsage;  // as the original: never "succeed" on what may be a mail
    }
    if (!perl_true(o.url)) {
        std::fprintf(err,
                     "%s invoked improperly: no 'url' provided to mail gateway (use --url URL)\n",
                     self.c_str());
        return kExitUsage;
    }

    // A locked gateway's credentials, before the message is read: a bad one
    // is the postmaster's to fix, and the MTA keeps the mail meanwhile.
    ClientOptions copts;
    if (Status s = load_credentials(o, copts); !s) {
        std::fprintf(err, "%s: %s\n", self.c_str(), s.error().c_str());
        return kExitTempfail;
    }

    ExtensionPlan plan = plan_extension(o, env_extension);
    if (plan.warning) std::fprintf(err, "%s\n", plan.warning->c_str());

    Message message;
    RtHeaderScanner rt_headers;
    bool empty = true;
    if (Status s = read_message(in_fd, o.strip_rt_headers, message, rt_headers, empty); !s) {
        std::fprintf(err, "%s: %s\n", self.c_str(), s.error().c_str());
        return kExitTempfail;
    }
    if (empty) {
        std::fprintf(err, "%s: no message passed on STDIN\n", self.c_str());
        return kExitOk;
    }
    if (o.debug) {
        std::fprintf(err, "%s: message of %llu bytes spooled %s\n", self.c_str(),
                     static_cast<unsigned long long>(message.size()),
                     message.on_disk() ? ("in an unlinked file in " + message.spool_dir()).c_str()
                                       : "in memory");
    }
    set_client_options(o, self, err, copts);
    return post_message(o, std::move(copts), plan, message, rt_headers, self, err);
}

}  // namespace rtm
