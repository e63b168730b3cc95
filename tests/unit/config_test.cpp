// config_test.cpp — conf/: the defaults, every key read, every kind of
// error with its exact "file:line:col: key: what" (one table of cases),
// several errors at once, duplicate routes, no route at all (an error),
// case folding of addresses, and the annotated sample conf/rt-milter.toml
// (path from RTM_SAMPLE_CONFIG): as shipped it does not run, and its
// commented-out examples all load.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>

#include "config.h"

namespace rtm {
namespace {

const std::string kRt = "[rt]\nurl = \"https://rt.example.com\"\n";              // lines 1-2
const std::string kRoute = kRt + "[[route]]\naddress = \"bugs@example.com\"\n";  // lines 3-4

std::vector<std::string> errors_of(const std::string& text) {
    std::vector<std::string> out;
    for (const ConfigError& error : load_config_string(text, "t.toml").errors)
        out.push_back(error.to_string());
    return out;
}

Config load_good(const std::string& text) {
    LoadResult result = load_config_string(text, "t.toml");
    for (const ConfigError& error : result.errors) ADD_FAILURE() << error.to_string();
    return result.config.value_or(Config{});
}

// A file name in the temporary directory that no other test process uses.
std::string scratch_file(const std::string& name) {
    return std::filesystem::temp_directory_path() /
           ("rt-milter-config-test-" + std::to_string(::getpid()) + "-" + name);
}

// ---- Good configurations.

TEST(Config, Defaults) {
    const Config config = load_good(kRoute);
    EXPECT_EQ(config.path, "t.toml");
    EXPECT_EQ(config.socket, "unix:/run/rt-milter/rt-milter.sock");
    EXPECT_EQ(config.socket_mode, 0660u);
    EXPECT_EQ(config.socket_group, "");
    EXPECT_EQ(config.user, "");
    EXPECT_EQ(config.log_level, LogLevel::Info);
    EXPECT_EQ(config.recipient_delimiter, "+");
    EXPECT_EQ(config.on_refusal, OnRefusal::Reject);
    EXPECT_EQ(config.max_message_size, 0u);
    EXPECT_EQ(config.spool_dir, "/var/spool/rt-milter");
    EXPECT_EQ(config.journal, "/var/lib/rt-milter/journal.sqlite");
    ASSERT_EQ(config.servers.size(), 1u);
    const RtServer& rt = config.servers.at("rt");
    EXPECT_EQ(rt.name, "rt");
    EXPECT_EQ(rt.url, "https://rt.example.com");
    EXPECT_EQ(rt.timeout, 180);
    EXPECT_EQ(rt.ca_file, "");
    EXPECT_TRUE(rt.verify_tls);
    EXPECT_EQ(rt.max_concurrent, 16);
    EXPECT_EQ(config.routes.size(), 1u);
}

TEST(Config, RouteDefaults) {
    const Config config = load_good(kRoute);
    ASSERT_EQ(config.routes.size(), 1u);
    const Route& route = config.routes[0];
    EXPECT_EQ(route.address, "bugs@example.com");
    EXPECT_EQ(route.server, "rt");
    EXPECT_FALSE(route.queue);
    EXPECT_FALSE(route.action);
    EXPECT_EQ(route.extension, ExtensionMode::None);
    EXPECT_TRUE(route.queues.empty());
    EXPECT_TRUE(route.actions.empty());
    EXPECT_EQ(route.origin, "t.toml:3");
    EXPECT_EQ(config.server_for(route).url, "https://rt.example.com");
}

TEST(Config, EveryKeyRead) {
    const std::string ca_file = scratch_file("ca.pem");
    std::ofstream(ca_file) << "not checked for PEM\n";
    const Config config = load_good(R"(
socket = "inet:8890@127.0.0.1"
socket_mode = "0600"
socket_group = "postfix"
user = "rt-milter"
log_level = "debug"
recipient_delimiter = "+-"
on_refusal = "accept"
max_message_size = 10485760
spool_dir = "/srv/spool"
journal = ""

[rt]
url = "https://rt.example.com/rt/"
timeout = 30
ca_file = ")" + ca_file + R"("
verify_tls = false
max_concurrent = 4

[servers.legacy]
url = "HTTP://rt-old.example.com"
timeout = 3600
max_concurrent = 1024

[[route]]
address = "bugs@example.com"
queue = "Bugs"
action = "take-comment"
server = "legacy"
extension = "queue"
queues = ["Bugs", "Triage"]

[[route]]
address = "staff@example.com"
extension = "action"
actions = ["comment", "take-comment", "resolve"]
)");
    std::remove(ca_file.c_str());
    EXPECT_EQ(config.socket, "inet:8890@127.0.0.1");
    EXPECT_EQ(config.socket_mode, 0600u);
    EXPECT_EQ(config.socket_group, "postfix");
    EXPECT_EQ(config.user, "rt-milter");
    EXPECT_EQ(config.log_level, LogLevel::Debug);
    EXPECT_EQ(config.recipient_delimiter, "+-");
    EXPECT_EQ(config.on_refusal, OnRefusal::Accept);
    EXPECT_EQ(config.max_message_size, 10485760u);
    EXPECT_EQ(config.spool_dir, "/srv/spool");
    EXPECT_EQ(config.journal, "");

    ASSERT_EQ(config.servers.size(), 2u);
    const RtServer& rt = config.servers.at("rt");
    EXPECT_EQ(rt.url, "https://rt.example.com/rt");  // trailing '/' dropped
    EXPECT_EQ(rt.timeout, 30);
    EXPECT_EQ(rt.ca_file, ca_file);
    EXPECT_FALSE(rt.verify_tls);
    EXPECT_EQ(rt.max_concurrent, 4);
    const RtServer& legacy = config.servers.at("legacy");
    EXPECT_EQ(legacy.name, "legacy");
    EXPECT_EQ(legacy.url, "HTTP://rt-old.example.com");
    EXPECT_EQ(legacy.timeout, 3600);
    EXPECT_TRUE(legacy.verify_tls);
    EXPECT_EQ(legacy.max_concurrent, 1024);

    ASSERT_EQ(config.routes.size(), 2u);
    const Route& bugs = config.routes[0];
    EXPECT_EQ(bugs.queue, "Bugs");
    EXPECT_EQ(bugs.action, "take-comment");
    EXPECT_EQ(bugs.server, "legacy");
    EXPECT_EQ(config.server_for(bugs).url, "HTTP://rt-old.example.com");
    EXPECT_EQ(bugs.extension, ExtensionMode::Queue);
    EXPECT_EQ(bugs.queues, (std::vector<std::string>{"Bugs", "Triage"}));
    EXPECT_EQ(bugs.origin, "t.toml:25");
    const Route& staff = config.routes[1];
    EXPECT_EQ(staff.extension, ExtensionMode::Action);
    EXPECT_EQ(staff.actions, (std::vector<std::string>{"comment", "take-comment", "resolve"}));
}

TEST(Config, SocketForms) {
    for (const char* socket :
         {"unix:/run/rt.sock", "local:/run/rt.sock", "inet:8890@127.0.0.1", "inet:1@localhost",
          "inet:65535@mail.example.com", "inet6:8890@[::1]", "INET6:8890@::1", "Unix:/x"}) {
        SCOPED_TRACE(socket);
        EXPECT_EQ(load_good("socket = \"" + std::string(socket) + "\"\n" + kRoute).socket, socket);
    }
}

// A PostgreSQL journal in either of libpq's forms, its password in a passfile.
TEST(Config, PostgresqlJournalForms) {
    for (const char* journal :
         {"postgresql://rt_milter@db.example/rtmilter",
          "postgres://rt_milter@db.example:5433/rtmilter?sslmode=require",
          "host=db.example dbname=rtmilter user=rt_milter passfile=/etc/rt-milter/pgpass"}) {
        SCOPED_TRACE(journal);
        EXPECT_EQ(load_good("journal = \"" + std::string(journal) + "\"\n" + kRoute).journal,
                  journal);
    }
}

TEST(Config, ActionExtensionDefaultsToCorrespondAndComment) {
    const Config config = load_good(kRoute + "extension = \"action\"\n");
    EXPECT_EQ(config.routes[0].actions, (std::vector<std::string>{"correspond", "comment"}));
}

TEST(Config, QueueAndActionAllowedInEveryMode) {
    for (const char* mode : {"queue", "ticket", "action"}) {
        SCOPED_TRACE(mode);
        const Config config = load_good(kRoute + "extension = \"" + mode +
                                        "\"\nqueue = \"General\"\naction = \"comment\"\n");
        EXPECT_EQ(config.routes[0].queue, "General");
        EXPECT_EQ(config.routes[0].action, "comment");
        EXPECT_EQ(to_string(config.routes[0].extension), mode);
    }
}

TEST(Config, EmptyDelimiterTurnsExtensionsOff) {
    EXPECT_EQ(load_good("recipient_delimiter = \"\"\n" + kRoute).recipient_delimiter, "");
}

// No [[route]], no start: one error about the whole file, last, whatever
// else is wrong (a fresh install's sample has its routes commented out).
const std::string kNoRoute =
    "t.toml: no [[route]]: rt-milter has nothing to deliver; add your RT addresses (see "
    "rt-milter.toml(5))";

TEST(Config, NoRouteIsAnError) {
    EXPECT_EQ(errors_of(kRt), std::vector<std::string>{kNoRoute});
    EXPECT_EQ(errors_of("route = []\n" + kRt), std::vector<std::string>{kNoRoute});
    EXPECT_EQ(errors_of("# [rt]\n# url = \"https://rt.example.com\"\n# [[route]]\n"),
              (std::vector<std::string>{
                  "t.toml:1:1: rt: missing; add an [rt] table with the base URL of your RT, e.g. "
                  "url = \"https://rt.example.com\"",
                  kNoRoute}));
}

TEST(Config, AddressesAreCaseFolded) {
    const Config config = load_good(kRt + R"([[route]]
address = "Bugs@Example.COM"
[[route]]
address = "\"Help Desk\"@Example.com"
[[route]]
address = "\"a@b\"@example.com"
)");
    ASSERT_EQ(config.routes.size(), 3u);
    EXPECT_EQ(config.routes[0].address, "Bugs@Example.COM");
    EXPECT_EQ(config.routes[0].local_part, "bugs");
    EXPECT_EQ(config.routes[0].domain, "example.com");
    EXPECT_EQ(config.routes[1].address, "\"Help Desk\"@Example.com");
    EXPECT_EQ(config.routes[1].local_part, "help desk");
    EXPECT_EQ(config.routes[1].domain, "example.com");
    EXPECT_EQ(config.routes[2].local_part, "a@b");
}

TEST(Config, DuplicateRoutesNameBothLines) {
    EXPECT_EQ(errors_of(kRoute + R"(queue = "One"
[[route]]
address = "Bugs@EXAMPLE.com"
[[route]]
address = "\"bugs\"@example.com"
)"),
              (std::vector<std::string>{
                  "t.toml:7:11: route[2].address: \"Bugs@EXAMPLE.com\" is already the address of "
                  "route[1] (line 3); addresses are compared ignoring case",
                  "t.toml:9:11: route[3].address: \"\\\"bugs\\\"@example.com\" is already the "
                  "address of route[1] (line 3); addresses are compared ignoring case",
              }));
}

TEST(Config, AllErrorsReportedInFileOrder) {
    EXPECT_EQ(
        errors_of(R"(socket = "inet:8890"
log_level = "loud"
[rt]
timeout = "10"
verify_tls = 1
[servers.rt]
url = "https://rt2.example.com"
[[route]]
address = "<bugs@example.com>"
extension = "tickets"
colour = "blue"
[[route]]
queue = "General"
server = "nowhere"
)"),
        (std::vector<std::string>{
            "t.toml:1:10: socket: give the address to listen on, e.g. \"inet:8890@127.0.0.1\"; "
            "without one libmilter listens on all interfaces",
            "t.toml:2:13: log_level: must be one of \"error\", \"warning\", \"info\", \"debug\", "
            "got \"loud\"",
            "t.toml:3:1: rt.url: missing; every RT server needs the base URL of its RT, e.g. url = "
            "\"https://rt.example.com\"",
            "t.toml:4:11: rt.timeout: must be an integer, got a string (\"10\")",
            "t.toml:5:14: rt.verify_tls: must be true or false, got an integer",
            "t.toml:6:10: servers.rt: the name \"rt\" belongs to [rt], the default server; choose "
            "another",
            "t.toml:9:11: route[1].address: write the bare address, without angle brackets, e.g. "
            "\"bugs@example.com\", got \"<bugs@example.com>\"",
            "t.toml:10:13: route[1].extension: must be one of \"queue\", \"ticket\", \"action\", "
            "got \"tickets\"",
            "t.toml:11:1: route[1].colour: unknown key; allowed here: address, queue, action, "
            "server, extension, queues, actions, untrusted_action",
            "t.toml:12:1: route[2].address: missing; every [[route]] needs the RT address it "
            "handles, e.g. address = \"bugs@example.com\"",
            "t.toml:14:10: route[2].server: no RT server named \"nowhere\"; the servers are \"rt\"",
        }));
}

TEST(Config, SyntaxErrorIsOneError) {
    const LoadResult result =
        load_config_string("socket = \"unix:/x\"\nlog_level = = \"info\"\n", "t.toml");
    EXPECT_FALSE(result.config);
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].file, "t.toml");
    EXPECT_EQ(result.errors[0].line, 2);
    EXPECT_EQ(result.errors[0].column, 13);
    EXPECT_EQ(result.errors[0].key, "");
    EXPECT_EQ(result.errors[0].to_string(),
              "t.toml:2:13: Error while parsing value: could not determine value type");
}

TEST(Config, UnreadableFile) {
    const LoadResult missing = load_config_file("/nonexistent/rt-milter.toml");
    EXPECT_FALSE(missing.config);
    ASSERT_EQ(missing.errors.size(), 1u);
    EXPECT_EQ(missing.errors[0].line, 0);
    EXPECT_EQ(missing.errors[0].to_string(),
              "/nonexistent/rt-milter.toml: No such file or directory");

    const std::string directory = std::filesystem::temp_directory_path();
    const LoadResult not_a_file = load_config_file(directory);
    ASSERT_EQ(not_a_file.errors.size(), 1u);
    EXPECT_EQ(not_a_file.errors[0].to_string(), directory + ": Is a directory");
}

TEST(Config, FileErrorsCarryItsPath) {
    const std::string path = scratch_file("rt-milter.toml");
    std::ofstream(path) << kRt << "[[route]]\naddress = \"bugs\"\n";
    const LoadResult result = load_config_file(path);
    std::remove(path.c_str());
    ASSERT_EQ(result.errors.size(), 1u);
    EXPECT_EQ(result.errors[0].to_string(),
              path +
                  ":4:11: route[1].address: must be local-part@domain, e.g. \"bugs@example.com\", "
                  "got \"bugs\"");
}

TEST(Config, ErrorToStringLeavesOutWhatIsUnknown) {
    EXPECT_EQ((ConfigError{"f.toml", 3, 7, "rt.url", "bad"}).to_string(),
              "f.toml:3:7: rt.url: bad");
    EXPECT_EQ((ConfigError{"f.toml", 3, 0, "", "bad"}).to_string(), "f.toml:3: bad");
    EXPECT_EQ((ConfigError{"f.toml", 0, 0, "", "bad"}).to_string(), "f.toml: bad");
    EXPECT_EQ((ConfigError{"", 0, 0, "rt", "bad"}).to_string(), "rt: bad");
}

TEST(Config, EnumNames) {
    EXPECT_EQ(to_string(ExtensionMode::None), "none");
    EXPECT_EQ(to_string(ExtensionMode::Queue), "queue");
    EXPECT_EQ(to_string(ExtensionMode::Ticket), "ticket");
    EXPECT_EQ(to_string(ExtensionMode::Action), "action");
    EXPECT_EQ(to_string(OnRefusal::Reject), "reject");
    EXPECT_EQ(to_string(OnRefusal::Accept), "accept");
    EXPECT_EQ(to_string(LogLevel::Error), "error");
    EXPECT_EQ(to_string(LogLevel::Warning), "warning");
    EXPECT_EQ(to_string(LogLevel::Info), "info");
    EXPECT_EQ(to_string(LogLevel::Debug), "debug");
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The sample's examples: a line that is "#" directly followed by a table
// header or a key ("#url = ...", "#[[route]]"), as its header explains;
// plain explanations start with "# ".
std::string uncomment_examples(const std::string& text) {
    static const std::regex example(R"(^#(\[|[a-z_]+ = ))", std::regex::multiline);
    return std::regex_replace(text, example, "$1");
}

// As installed, the sample must not run: no RT URL and no route, so a fresh
// package install refuses to start instead of posting to rt.example.com.
TEST(Config, SampleAsShippedDoesNotRun) {
    const LoadResult result = load_config_file(RTM_SAMPLE_CONFIG);
    EXPECT_FALSE(result.config);
    bool url_missing = false;
    for (const ConfigError& error : result.errors) {
        // rt.url, or the want of a [[route]] (however the loader names it)
        EXPECT_TRUE(error.key == "rt.url" || error.to_string().find("route") != std::string::npos)
            << error.to_string();
        url_missing = url_missing || error.key == "rt.url";
    }
    EXPECT_TRUE(url_missing);
}

// Every example in the sample is valid: with the "#" taken off them, the
// sample loads, with the defaults it shows and the routes it explains.
TEST(Config, SampleExamplesLoad) {
    const std::string text = uncomment_examples(read_file(RTM_SAMPLE_CONFIG));
    const LoadResult result = load_config_string(text, "sample.toml");
    for (const ConfigError& error : result.errors) ADD_FAILURE() << error.to_string();
    ASSERT_TRUE(result.config);
    const Config& config = *result.config;
    const Config defaults;
    // The socket is the one inside Debian's Postfix chroot; the sample's
    // comment names the built-in default.
    EXPECT_EQ(config.socket, "unix:/var/spool/postfix/rt-milter/rt-milter.sock");
    EXPECT_EQ(defaults.socket, "unix:/run/rt-milter/rt-milter.sock");
    EXPECT_NE(text.find('"' + defaults.socket + '"'), std::string::npos);
    EXPECT_EQ(config.socket_mode, defaults.socket_mode);
    EXPECT_EQ(config.socket_group, defaults.socket_group);
    EXPECT_EQ(config.user, defaults.user);
    EXPECT_EQ(config.recipient_delimiter, defaults.recipient_delimiter);
    EXPECT_EQ(config.spool_dir, defaults.spool_dir);
    EXPECT_EQ(config.journal, defaults.journal);
    EXPECT_EQ(config.servers.at("rt").url, "https://rt.example.com");
    EXPECT_EQ(config.servers.at("rt").timeout, 180);
    EXPECT_EQ(config.servers.at("legacy").url, "http://rt-old.example.com");

    ASSERT_EQ(config.routes.size(), 5u);
    const auto& r = config.routes;
    EXPECT_EQ(r[0].address, "support@example.com");
    EXPECT_EQ(r[0].queue, "General");
    EXPECT_EQ(r[0].action, "correspond");
    EXPECT_EQ(r[0].extension, ExtensionMode::None);
    EXPECT_EQ(r[1].address, "support-comment@example.com");
    EXPECT_EQ(r[1].action, "comment");
    EXPECT_EQ(r[2].address, "ticket@example.com");
    EXPECT_EQ(r[2].extension, ExtensionMode::Ticket);
    EXPECT_EQ(r[3].address, "sales@example.com");
    EXPECT_EQ(r[3].extension, ExtensionMode::Queue);
    EXPECT_EQ(r[3].queues, (std::vector<std::string>{"Sales", "Europe", "Americas"}));
    EXPECT_EQ(r[4].address, "staff@example.com");
    EXPECT_EQ(r[4].server, "legacy");
    EXPECT_EQ(r[4].extension, ExtensionMode::Action);
    EXPECT_EQ(r[4].actions, (std::vector<std::string>{"correspond", "comment", "take-comment"}));
    for (const Route& route : r)
        EXPECT_EQ(route.origin.rfind("sample.toml:", 0), 0u) << route.origin;
}

// ---- One error each, exactly as reported.

struct ErrorCase {
    std::string name;
    std::string text;
    std::string error;
};

std::string long_socket() {
    return "socket = \"unix:/" + std::string(107, 'a') + "\"\n" + kRt;
}

const std::string kAllowedTopLevel =
    "socket, socket_mode, socket_group, user, log_level, recipient_delimiter, on_refusal, "
    "max_rt_targets, max_message_size, spool_dir, journal, journal_expiry, on_journal_error, "
    "in_doubt, "
    "untrusted_action, trusted_networks, trusted_authserv_ids, authserv_id_with_job_id, metrics, "
    "rt, servers, route";
const std::string kAllowedServer =
    "url, timeout, ca_file, verify_tls, max_concurrent, circuit_failures, circuit_cooldown, "
    "deadline, redirect_hosts, "
    "strip_rt_headers, client_cert, client_key, header_files, rest2_token_file";
const std::string kNoSuchFile = std::strerror(ENOENT);
const std::string kBadAction =
    "must be correspond, comment, take or resolve, or several joined by '-' such as "
    "\"take-comment\" (lower-case, as RT wants them), got ";

const ErrorCase kErrorCases[] = {
    // Structure: unknown keys, missing keys, tables of the wrong kind.
    {"UnknownTopLevelKey", "sockets = \"unix:/x\"\n" + kRt,
     "t.toml:1:1: sockets: unknown key; allowed here: " + kAllowedTopLevel},
    {"UnknownServerKey", kRt + "timout = 5\n",
     "t.toml:3:1: rt.timout: unknown key; allowed here: " + kAllowedServer},
    {"UnknownRouteKey", kRoute + "queu = \"x\"\n",
     "t.toml:5:1: route[1].queu: unknown key; allowed here: address, queue, action, server, "
     "extension, queues, actions, untrusted_action"},
    {"UnknownQuotedKey", kRt + "\"time out\" = 5\n",
     "t.toml:3:1: rt.\"time out\": unknown key; allowed here: " + kAllowedServer},
    {"MissingRt", "log_level = \"info\"\n",
     "t.toml:1:1: rt: missing; add an [rt] table with the base URL of your RT, e.g. url = "
     "\"https://rt.example.com\""},
    {"MissingUrl", "[rt]\ntimeout = 5\n",
     "t.toml:1:1: rt.url: missing; every RT server needs the base URL of its RT, e.g. url = "
     "\"https://rt.example.com\""},
    {"MissingServerUrl", kRt + "[servers.legacy]\ntimeout = 5\n",
     "t.toml:3:1: servers.legacy.url: missing; every RT server needs the base URL of its RT, e.g. "
     "url = \"https://rt.example.com\""},
    {"MissingAddress", kRt + "[[route]]\nqueue = \"General\"\n",
     "t.toml:3:1: route[1].address: missing; every [[route]] needs the RT address it handles, e.g. "
     "address = \"bugs@example.com\""},
    {"RtNotATable", "rt = \"https://rt.example.com\"\n",
     "t.toml:1:6: rt: must be a table, got a string (\"https://rt.example.com\")"},
    {"ServersNotATable", "servers = 5\n" + kRt,
     "t.toml:1:11: servers: must be a table of [servers.NAME] tables, got an integer"},
    {"ServerNotATable", kRt + "[servers]\nlegacy = \"http://rt-old\"\n",
     "t.toml:4:10: servers.legacy: must be a table, got a string (\"http://rt-old\")"},
    {"ServerNamedRt", kRt + "[servers.rt]\nurl = \"https://rt2.example.com\"\n",
     "t.toml:3:10: servers.rt: the name \"rt\" belongs to [rt], the default server; choose "
     "another"},
    {"RouteNotAnArrayOfTables", kRt + "[route]\naddress = \"bugs@example.com\"\n",
     "t.toml:3:1: route: must be an array of tables, each written [[route]], got a table"},
    {"RouteEntryNotATable", "route = [\"bugs@example.com\"]\n" + kRt,
     "t.toml:1:10: route[1]: must be a table, written [[route]], got a string "
     "(\"bugs@example.com\")"},

    // Types and ranges.
    {"TimeoutAsString", kRt + "timeout = \"10\"\n",
     "t.toml:3:11: rt.timeout: must be an integer, got a string (\"10\")"},
    {"TimeoutAsFloat", kRt + "timeout = 1.5\n",
     "t.toml:3:11: rt.timeout: must be an integer, got a floating-point number"},
    {"TimeoutZero", kRt + "timeout = 0\n",
     "t.toml:3:11: rt.timeout: must be from 1 to 3600, got 0"},
    {"TimeoutTooLong", kRt + "timeout = 3601\n",
     "t.toml:3:11: rt.timeout: must be from 1 to 3600, got 3601"},
    {"ServerTimeoutAsString", kRt + "[servers.legacy]\nurl = \"http://rt-old\"\ntimeout = \"60\"\n",
     "t.toml:5:11: servers.legacy.timeout: must be an integer, got a string (\"60\")"},
    {"MaxConcurrentZero", kRt + "max_concurrent = 0\n",
     "t.toml:3:18: rt.max_concurrent: must be from 1 to 1024, got 0"},
    {"MaxConcurrentTooHigh", kRt + "max_concurrent = 1025\n",
     "t.toml:3:18: rt.max_concurrent: must be from 1 to 1024, got 1025"},
    {"VerifyTlsAsString", kRt + "verify_tls = \"yes\"\n",
     "t.toml:3:14: rt.verify_tls: must be true or false, got a string (\"yes\")"},
    {"MaxMessageSizeNegative", "max_message_size = -1\n" + kRt,
     "t.toml:1:20: max_message_size: must be at least 0, got -1"},
    {"UserAsArray", "user = [\"rt\"]\n" + kRt, "t.toml:1:8: user: must be a string, got an array"},

    // The milter socket.
    {"SocketUnknownType", "socket = \"tcp:8890\"\n" + kRt,
     "t.toml:1:10: socket: must be \"unix:/path\", \"inet:PORT@HOST\" or \"inet6:PORT@HOST\", got "
     "\"tcp:8890\""},
    {"SocketWithoutType", "socket = \"/run/rt.sock\"\n" + kRt,
     "t.toml:1:10: socket: must be \"unix:/path\", \"inet:PORT@HOST\" or \"inet6:PORT@HOST\", got "
     "\"/run/rt.sock\""},
    {"SocketRelativePath", "socket = \"unix:run/rt.sock\"\n" + kRt,
     "t.toml:1:10: socket: the socket path must be absolute, e.g. "
     "\"unix:/run/rt-milter/rt-milter.sock\", got \"unix:run/rt.sock\""},
    {"SocketPathTooLong", long_socket(),
     "t.toml:1:10: socket: the socket path is 108 bytes long; a unix socket path can be at most "
     "107"},
    {"SocketInetWithoutHost", "socket = \"inet:8890\"\n" + kRt,
     "t.toml:1:10: socket: give the address to listen on, e.g. \"inet:8890@127.0.0.1\"; without "
     "one libmilter listens on all interfaces"},
    {"SocketInet6WithoutHost", "socket = \"inet6:8890@\"\n" + kRt,
     "t.toml:1:10: socket: give the address to listen on, e.g. \"inet6:8890@[::1]\"; without one "
     "libmilter listens on all interfaces"},
    {"SocketPortTooHigh", "socket = \"inet:65536@127.0.0.1\"\n" + kRt,
     "t.toml:1:10: socket: the port must be a number from 1 to 65535, got \"65536\""},
    {"SocketPortZero", "socket = \"inet:0@127.0.0.1\"\n" + kRt,
     "t.toml:1:10: socket: the port must be a number from 1 to 65535, got \"0\""},
    {"SocketPortName", "socket = \"inet:milter@127.0.0.1\"\n" + kRt,
     "t.toml:1:10: socket: the port must be a number from 1 to 65535, got \"milter\""},
    {"SocketUnclosedBracket", "socket = \"inet6:8890@[::1\"\n" + kRt,
     "t.toml:1:10: socket: the host must be a name, an address or an address in [brackets], got "
     "\"[::1\""},
    {"SocketModeNotOctal", "socket_mode = \"0986\"\n" + kRt,
     "t.toml:1:15: socket_mode: must be a file mode in octal digits, at most \"0777\", e.g. "
     "\"0660\", got \"0986\""},
    {"SocketModeTooBig", "socket_mode = \"1777\"\n" + kRt,
     "t.toml:1:15: socket_mode: must be a file mode in octal digits, at most \"0777\", e.g. "
     "\"0660\", got \"1777\""},
    {"SocketModeEmpty", "socket_mode = \"\"\n" + kRt,
     "t.toml:1:15: socket_mode: must be a file mode in octal digits, at most \"0777\", e.g. "
     "\"0660\", got \"\""},
    {"SocketModeAsInteger", "socket_mode = 660\n" + kRt,
     "t.toml:1:15: socket_mode: must be a string, got an integer"},

    // Words from a fixed list.
    {"LogLevelUnknown", "log_level = \"verbose\"\n" + kRt,
     "t.toml:1:13: log_level: must be one of \"error\", \"warning\", \"info\", \"debug\", got "
     "\"verbose\""},
    {"LogLevelWrongCase", "log_level = \"INFO\"\n" + kRt,
     "t.toml:1:13: log_level: must be one of \"error\", \"warning\", \"info\", \"debug\", got "
     "\"INFO\""},
    {"LogLevelAsInteger", "log_level = 3\n" + kRt,
     "t.toml:1:13: log_level: must be one of \"error\", \"warning\", \"info\", \"debug\", got an "
     "integer"},
    {"OnRefusalUnknown", "on_refusal = \"bounce\"\n" + kRt,
     "t.toml:1:14: on_refusal: must be one of \"reject\", \"accept\", got \"bounce\""},
    {"ExtensionUnknown", kRoute + "extension = \"tickets\"\n",
     "t.toml:5:13: route[1].extension: must be one of \"queue\", \"ticket\", \"action\", got "
     "\"tickets\""},

    // The recipient delimiter.
    {"DelimiterWithAt", "recipient_delimiter = \"+@\"\n" + kRt,
     "t.toml:1:23: recipient_delimiter: must be printable ASCII characters other than '@', '<', "
     "'>', '\"' and space, got \"+@\""},
    {"DelimiterWithSpace", "recipient_delimiter = \"+ \"\n" + kRt,
     "t.toml:1:23: recipient_delimiter: must be printable ASCII characters other than '@', '<', "
     "'>', '\"' and space, got \"+ \""},
    {"DelimiterWithControl", "recipient_delimiter = \"\\t\"\n" + kRt,
     "t.toml:1:23: recipient_delimiter: must be printable ASCII characters other than '@', '<', "
     "'>', '\"' and space, got \"\\x09\""},
    {"DelimiterNotAscii", "recipient_delimiter = \"\xc2\xa7\"\n" + kRt,
     "t.toml:1:23: recipient_delimiter: must be printable ASCII characters other than '@', '<', "
     "'>', '\"' and space, got \"\xc2\xa7\""},

    // RT URLs and files.
    {"UrlNotHttp", "[rt]\nurl = \"ftp://rt.example.com\"\n",
     "t.toml:2:7: rt.url: must start with http:// or https://, e.g. \"https://rt.example.com\", "
     "got \"ftp://rt.example.com\""},
    {"UrlWithoutScheme", "[rt]\nurl = \"rt.example.com\"\n",
     "t.toml:2:7: rt.url: must start with http:// or https://, e.g. \"https://rt.example.com\", "
     "got \"rt.example.com\""},
    {"UrlWithoutHost", "[rt]\nurl = \"https:///rt\"\n",
     "t.toml:2:7: rt.url: has no host name, got \"https:///rt\""},
    {"UrlWithGatewayPath", "[rt]\nurl = \"https://rt.example.com/REST/1.0/NoAuth/mail-gateway\"\n",
     "t.toml:2:7: rt.url: give RT's base URL, e.g. \"https://rt.example.com\", without "
     "/REST/1.0/NoAuth/mail-gateway (rt-milter adds that path), got "
     "\"https://rt.example.com/REST/1.0/NoAuth/mail-gateway\""},
    {"UrlWithSpace", "[rt]\nurl = \"https://rt.example.com/my rt\"\n",
     "t.toml:2:7: rt.url: must not contain spaces or control characters, got "
     "\"https://rt.example.com/my rt\""},
    {"CaFileMissing", kRt + "ca_file = \"/nonexistent/ca.pem\"\n",
     "t.toml:3:11: rt.ca_file: cannot read \"/nonexistent/ca.pem\": " + kNoSuchFile},
    {"CaFileRelative", kRt + "ca_file = \"ca.pem\"\n",
     "t.toml:3:11: rt.ca_file: must be an absolute path, got \"ca.pem\""},
    {"CaFileDirectory", kRt + "ca_file = \"/\"\n",
     "t.toml:3:11: rt.ca_file: \"/\" is a directory; give the CA bundle file"},
    {"SpoolDirRelative", "spool_dir = \"spool\"\n" + kRt,
     "t.toml:1:13: spool_dir: must be an absolute path, got \"spool\""},
    {"JournalRelative", "journal = \"journal.sqlite\"\n" + kRt,
     "t.toml:1:11: journal: must be an absolute path, got \"journal.sqlite\""},
    // A PostgreSQL journal's password never sits in the configuration.
    {"JournalUriWithPassword",
     "journal = \"postgresql://rt_milter:s3cret@db.example/rtmilter\"\n" + kRt,
     "t.toml:1:11: journal: a password in the connection string; put it in a passfile (passfile=… "
     "in the "
     "string, PGPASSFILE, or ~/.pgpass of the service user), mode 0600"},
    {"JournalKeywordsWithPassword",
     "journal = \"host=db.example dbname=rtmilter password=s3cret\"\n" + kRt,
     "t.toml:1:11: journal: a password in the connection string; put it in a passfile (passfile=… "
     "in the "
     "string, PGPASSFILE, or ~/.pgpass of the service user), mode 0600"},
    {"JournalKeywordsUnknown", "journal = \"host=db.example colour=blue\"\n" + kRt,
     "t.toml:1:11: journal: not a PostgreSQL connection string libpq understands: invalid "
     "connection option "
     "\"colour\""},

    // Route addresses.
    {"AddressWithoutAt", kRt + "[[route]]\naddress = \"bugs\"\n",
     "t.toml:4:11: route[1].address: must be local-part@domain, e.g. \"bugs@example.com\", got "
     "\"bugs\""},
    {"AddressInAngleBrackets", kRt + "[[route]]\naddress = \"Bugs <bugs@example.com>\"\n",
     "t.toml:4:11: route[1].address: write the bare address, without angle brackets, e.g. "
     "\"bugs@example.com\", got \"Bugs <bugs@example.com>\""},
    {"AddressWithSpace", kRt + "[[route]]\naddress = \"bugs @example.com\"\n",
     "t.toml:4:11: route[1].address: must not contain spaces (a local part with spaces is written "
     "quoted: \"\\\"a b\\\"@example.com\"), got \"bugs @example.com\""},
    {"AddressEmptyLocalPart", kRt + "[[route]]\naddress = \"@example.com\"\n",
     "t.toml:4:11: route[1].address: the local part, before the '@', is empty, e.g. "
     "\"bugs@example.com\", got \"@example.com\""},
    {"AddressEmptyDomain", kRt + "[[route]]\naddress = \"bugs@\"\n",
     "t.toml:4:11: route[1].address: the domain, after the '@', is empty, e.g. "
     "\"bugs@example.com\", got \"bugs@\""},
    {"AddressTwoAts", kRt + "[[route]]\naddress = \"bugs@rt@example.com\"\n",
     "t.toml:4:11: route[1].address: the domain may not contain '@' or '\"' (quote a local part "
     "that has them), e.g. \"bugs@example.com\", got \"bugs@rt@example.com\""},
    {"AddressUnclosedQuote", kRt + "[[route]]\naddress = '\"bugs@example.com'\n",
     "t.toml:4:11: route[1].address: the quoted local part has no closing '\"', e.g. "
     "\"bugs@example.com\", got \"\\\"bugs@example.com\""},
    {"AddressStrayQuote", kRt + "[[route]]\naddress = 'bu\"gs@example.com'\n",
     "t.toml:4:11: route[1].address: a '\"' may only quote the whole local part, e.g. "
     "\"bugs@example.com\", got \"bu\\\"gs@example.com\""},

    // Route fields.
    {"QueueEmpty", kRoute + "queue = \"\"\n", "t.toml:5:9: route[1].queue: must not be empty"},
    {"ActionUnknown", kRoute + "action = \"close\"\n",
     "t.toml:5:10: route[1].action: " + kBadAction + "\"close\""},
    {"ActionWrongCase", kRoute + "action = \"Comment\"\n",
     "t.toml:5:10: route[1].action: " + kBadAction + "\"Comment\""},
    {"ActionEmptyPart", kRoute + "action = \"take-\"\n",
     "t.toml:5:10: route[1].action: " + kBadAction + "\"take-\""},
    {"ActionsEntryUnknown", kRoute + "extension = \"action\"\nactions = [\"comment\", \"bogus\"]\n",
     "t.toml:6:23: route[1].actions[2]: " + kBadAction + "\"bogus\""},
    {"QueuesEntryEmpty", kRoute + "extension = \"queue\"\nqueues = [\"\"]\n",
     "t.toml:6:11: route[1].queues[1]: must not be empty"},
    {"QueuesNotAnArray", kRoute + "extension = \"queue\"\nqueues = \"Sales\"\n",
     "t.toml:6:10: route[1].queues: must be an array of strings, e.g. [\"a\", \"b\"], got a string "
     "(\"Sales\")"},
    {"QueuesWithTicketExtension", kRoute + "extension = \"ticket\"\nqueues = [\"Sales\"]\n",
     "t.toml:6:10: route[1].queues: only allowed with extension = \"queue\"; this route has "
     "extension = \"ticket\""},
    {"QueuesWithoutExtension", kRoute + "queues = [\"Sales\"]\n",
     "t.toml:5:10: route[1].queues: only allowed with extension = \"queue\"; this route has no "
     "extension"},
    {"ActionsWithQueueExtension", kRoute + "extension = \"queue\"\nactions = [\"comment\"]\n",
     "t.toml:6:11: route[1].actions: only allowed with extension = \"action\"; this route has "
     "extension = \"queue\""},
    {"ActionsEmpty", kRoute + "extension = \"action\"\nactions = []\n",
     "t.toml:6:11: route[1].actions: must list at least one action; leave it out for "
     "[\"correspond\", \"comment\"]"},
    {"ServerUnknown", kRoute + "server = \"legcy\"\n",
     "t.toml:5:10: route[1].server: no RT server named \"legcy\"; the servers are \"rt\""},
    {"ServerEmpty", kRoute + "server = \"\"\n", "t.toml:5:10: route[1].server: must not be empty"},
};

void PrintTo(const ErrorCase& c, std::ostream* os) {
    *os << c.name;
}

class ConfigErrors : public ::testing::TestWithParam<ErrorCase> {};

// A case whose file has no `route` key at all is also told it has no
// [[route]] (see NoRouteIsAnError): that error comes last.
TEST_P(ConfigErrors, ReportedExactly) {
    std::vector<std::string> expected{GetParam().error};
    if (GetParam().text.find("route") == std::string::npos) expected.push_back(kNoRoute);
    EXPECT_EQ(errors_of(GetParam().text), expected) << GetParam().text;
}

INSTANTIATE_TEST_SUITE_P(Config, ConfigErrors, ::testing::ValuesIn(kErrorCases),
                         [](const ::testing::TestParamInfo<ErrorCase>& info) {
                             return info.param.name;
                         });

}  // namespace
}  // namespace rtm
