// config.h — Config: rt-milter's configuration as plain values, and the
// loader that reads it from TOML (toml++). Every problem is reported as
// "file:line:col: key: what is wrong", all of them at once, and a config
// with any error is refused whole; a file without a [[route]] is one (it
// would start a daemon with nothing to deliver). Knows nothing of libmilter
// or libcurl.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "network.h"

namespace rtm {

// An extra request header for a locked gateway, its value read at load
// from a secret file (relay/credentials.h). The value is shown nowhere.
struct HeaderFile {
    std::string name;
    std::string path;
    std::string value;
};

// ---- trust policy (who may take and resolve) --------------------------------
// What an action that changes a ticket's owner or status (take, resolve, and
// any dash list with one of them) becomes when its sender is not proven:
// Downgrade — only its safe part is carried out (comment, correspond);
// Reject — 550 5.7.1.
enum class UntrustedAction { Downgrade, Reject };
// ---- end of trust policy ----------------------------------------------------

// One RT server: [rt] is the default, [servers.NAME] are further ones.
struct RtServer {
    std::string name;     // "rt" for the default, else the NAME of [servers.NAME]
    std::string url;      // base URL, http:// or https://, no trailing /REST path
    long timeout = 180;   // seconds of inactivity per POST (1..3600)
    std::string ca_file;  // "" = the system's CA bundle
    bool verify_tls = true;
    int max_concurrent = 16;     // POSTs in flight to this server at once (1..1024)
    int circuit_failures = 5;    // consecutive transport failures that open the circuit; 0 = never
    long circuit_cooldown = 30;  // seconds the circuit stays open before one probe (1..3600)
    long deadline = 240;         // seconds one POST may take in all, redirects included (1..7200):
                                 // a dripping RT cannot hold a message past it
    std::vector<std::string> redirect_hosts;  // other hosts a redirect may lead to (lower case)
    // Leave RT's own header fields (RT-Send-Cc, RT-Attach, ..., a sender's
    // X-RT-Mail-Extension: relay/rt_headers.h) out of the copy posted here.
    bool strip_rt_headers = true;
    // A locked gateway (https only): a client certificate and key for
    // mutual TLS, and extra headers whose values come from secret files.
    // Sent only to url's own scheme, host and port, never after a redirect
    // to another one.
    std::string client_cert;               // "" = none; client_key then too
    std::string client_key;                // a secret file
    std::vector<HeaderFile> header_files;  // in the file's order
    // RT 5's REST2 API, to ask RT whether it has an in-doubt message (and,
    // with --check-config --online, whether the routes' queues exist): an
    // authentication token read from a secret file (checked as the
    // header_files are), https only but for a loopback RT. Never shown.
    std::string rest2_token_file;  // "" = no token: in doubt, the in_doubt policy decides
    std::string rest2_token;       // its value, once read
};

enum class ExtensionMode { None, Queue, Ticket, Action };

// One [[route]]: an RT address and where its mail goes.
struct Route {
    std::string address;        // as written in the file
    std::string local_part;     // lower-cased
    std::string domain;         // lower-cased
    std::string server = "rt";  // key of Config::servers
    std::optional<std::string> queue;
    std::optional<std::string> action;  // validated: dash list of correspond|comment|take|resolve
    ExtensionMode extension = ExtensionMode::None;
    std::vector<std::string> queues;   // allow-list for extension = "queue" (empty: any)
    std::vector<std::string> actions;  // allow-list for extension = "action"
                                       // (default when omitted: correspond, comment)
    std::optional<UntrustedAction> untrusted_action;  // unset: Config::untrusted_action
    std::string origin;                               // "file:line" of the [[route]], for messages
};

enum class OnRefusal { Reject, Accept };
enum class OnJournalError { Tempfail, Continue };
// A POST whose request RT received whole but never answered (timeout, or
// rt-milter killed mid-POST), on the client's retry, when RT cannot be
// asked (no rest2_token_file for its server, no Message-ID in the message):
// Retry — post it again (the default: a duplicate ticket can be merged, a
// lost message cannot be found); Delivered — count it as delivered.
enum class InDoubt { Delivered, Retry };
enum class LogLevel { Error, Warning, Info, Debug };

struct Config {
    std::string path;  // the file it was read from
    std::string socket = "unix:/run/rt-milter/rt-milter.sock";
    unsigned socket_mode = 0660;  // from the string "0660" (octal)
    std::string socket_group;     // "" = the process's group
    std::string user;             // "" = do not change user
    LogLevel log_level = LogLevel::Info;
    std::string recipient_delimiter = "+";  // a set of characters; "" = no extensions
    OnRefusal on_refusal = OnRefusal::Reject;
    std::uint64_t max_message_size = 0;  // bytes; 0 = no limit of our own
    int max_rt_targets = 10;             // distinct RT targets one message may have (1..1000);
                                         // past it, RCPT gets 452 4.5.3
    std::string spool_dir = "/var/spool/rt-milter";
    std::string journal = "/var/lib/rt-milter/journal.sqlite";  // duplicate journal; "" = off
    long journal_expiry = 432000;  // seconds an entry is kept (5 days, the MTA's queue life)
    OnJournalError on_journal_error = OnJournalError::Tempfail;
    InDoubt in_doubt = InDoubt::Retry;
    // Trust policy: what proves a sender for take and resolve (any one):
    // SMTP AUTH; a client address in trusted_networks; an
    // Authentication-Results header from one of trusted_authserv_ids
    // (lower case) with dmarc=pass or aligned dkim=pass for the From:
    // domain. authserv_id_with_job_id: such a header counts only when its
    // authserv-id carries this message's queue id ("mx.example.com/4ABC12",
    // OpenDKIM's and OpenDMARC's AuthservIDWithJobID).
    UntrustedAction untrusted_action = UntrustedAction::Downgrade;
    std::vector<Network> trusted_networks;
    std::vector<std::string> trusted_authserv_ids;
    bool authserv_id_with_job_id = true;
    // The metrics listener (/metrics, /healthz, /status): "ADDRESS:PORT";
    // "" = off. Read at start only (a reload that changes it says so).
    std::string metrics;
    std::map<std::string, RtServer> servers;  // "rt" = [rt], the default; others by name
    std::vector<Route> routes;

    const RtServer& server_for(const Route& route) const { return servers.at(route.server); }
    UntrustedAction untrusted_action_for(const Route& route) const {
        return route.untrusted_action.value_or(untrusted_action);
    }
};

struct ConfigError {
    std::string file;
    int line = 0;  // 0: not tied to a place (e.g. the file cannot be read)
    int column = 0;
    std::string key;  // dotted path, e.g. "route[2].extension" or "rt.url"; may be empty
    std::string what;
    std::string to_string() const;  // "file:line:col: key: what" (parts that are unknown left out)
};

struct LoadResult {
    std::optional<Config> config;  // set only when errors is empty
    std::vector<ConfigError> errors;
};

LoadResult load_config_file(const std::string& path);
LoadResult load_config_string(std::string_view text, const std::string& path);

// Every key the loader knows, as a dotted path built from its key tables:
// "socket", "rt.url", "servers.NAME.url", "route.address". The names of
// the tables themselves ("rt", "servers", "route") are not listed. For the
// test that keeps rt-milter.toml(5) complete.
std::vector<std::string> config_keys();

std::string_view to_string(ExtensionMode mode);
std::string_view to_string(OnRefusal policy);
std::string_view to_string(OnJournalError policy);
std::string_view to_string(InDoubt policy);
std::string_view to_string(LogLevel level);
std::string_view to_string(UntrustedAction policy);

}  // namespace rtm
