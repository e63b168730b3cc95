// config.cpp — load_config_*: toml++ parses the file; a table of key specs
// per TOML table (top level, [rt] / [servers.NAME], [[route]]) says which
// keys exist, which are required and how each is read and checked. Every
// problem is collected with its source position, and the rules that span
// tables (route.server names a server, no two routes share an address),
// the secret files of a locked gateway (their owners depend on `user`) and
// the one about the whole file (at least one [[route]]) run after the walk. Nothing here throws
// past load_config_*. config_keys() lists every key from the same tables, for the man page test.
#include "config.h"
#include "postgresql_conninfo.h"

#include <pwd.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <tuple>

#include "credentials.h"
#include "text.h"
#include "value_checks.h"

namespace rtm {
namespace {

// Every problem found in one file.
class Diagnostics {
  public:
    explicit Diagnostics(std::string file) : file_(std::move(file)) {}

    const std::string& file() const { return file_; }
    bool empty() const { return errors_.empty(); }

    void report(const toml::source_region& where, std::string key, std::string what) {
        errors_.push_back({file_, static_cast<int>(where.begin.line),
                           static_cast<int>(where.begin.column), std::move(key), std::move(what)});
    }

    // In file order; toml++ walks a table's keys sorted by name.
    std::vector<ConfigError> take() {
        std::stable_sort(errors_.begin(), errors_.end(),
                         [](const ConfigError& a, const ConfigError& b) {
                             return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                         });
        return std::move(errors_);
    }

  private:
    std::string file_;
    std::vector<ConfigError> errors_;
};

// One value in the file: its node, its dotted key, and where problems go.
struct Slot {
    const toml::node& node;
    std::string key;
    Diagnostics& diagnostics;

    void fail(std::string what) const { diagnostics.report(node.source(), key, std::move(what)); }

    // Reports the problem, if there is one; true when there is none.
    bool accept(const Problem& problem) const {
        if (problem) fail(*problem);
        return !problem;
    }
};

// Keys that TOML allows bare are shown bare, others quoted.
std::string key_text(std::string_view name) {
    const bool bare = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
    return bare ? std::string(name) : quoted(name);
}

std::string child_key(std::string_view parent, std::string_view name) {
    return parent.empty() ? key_text(name) : std::string(parent) + "." + key_text(name);
}

// 1-based, as a postmaster counts the [[route]] tables in the file.
std::string element_key(std::string_view parent, std::size_t index) {
    return std::string(parent) + "[" + std::to_string(index + 1) + "]";
}

std::string describe(const toml::node& node) {
    switch (node.type()) {
        case toml::node_type::string:
            return "a string (" + quoted(node.as_string()->get()) + ")";
        case toml::node_type::integer:
            return "an integer";
        case toml::node_type::floating_point:
            return "a floating-point number";
        case toml::node_type::boolean:
            return "a boolean";
        case toml::node_type::table:
            return "a table";
        case toml::node_type::array:
            return "an array";
        case toml::node_type::date:
            return "a date";
        case toml::node_type::time:
            return "a time";
        case toml::node_type::date_time:
            return "a date-time";
        case toml::node_type::none:
            break;
    }
    return "nothing";
}

void wrong_type(const Slot& slot, std::string_view expected) {
    slot.fail("must be " + std::string(expected) + ", got " + describe(slot.node));
}

// ---- Typed readers. Each reports what is wrong and then leaves `out` alone.

using Check = Problem (*)(std::string_view);

bool read_string(const Slot& slot, std::string& out, Check check = nullptr) {
    const auto* value = slot.node.as_string();
    if (value == nullptr) {
        wrong_type(slot, "a string");
        return false;
    }
    if (check != nullptr && !slot.accept(check(value->get()))) return false;
    out = value->get();
    return true;
}

void read_string(const Slot& slot, std::optional<std::string>& out, Check check) {
    std::string value;
    if (read_string(slot, value, check)) out = std::move(value);
}

template <class Integer>
void read_integer(const Slot& slot, std::int64_t min, std::int64_t max, Integer& out) {
    const auto* value = slot.node.as_integer();
    if (value == nullptr) return wrong_type(slot, "an integer");
    const std::int64_t number = value->get();
    if (number >= min && number <= max) {
        out = static_cast<Integer>(number);
    } else if (max == std::numeric_limits<std::int64_t>::max()) {
        slot.fail("must be at least " + std::to_string(min) + ", got " + std::to_string(number));
    } else {
        slot.fail("must be from " + std::to_string(min) + " to " + std::to_string(max) + ", got " +
                  std::to_string(number));
    }
}

void read_bool(const Slot& slot, bool& out) {
    if (const auto* value = slot.node.as_boolean()) {
        out = value->get();
    } else {
        wrong_type(slot, "true or false");
    }
}

// Every entry is checked (and reported) on its own; `out` is set only when all are good.
bool read_string_list(const Slot& slot, std::vector<std::string>& out, Check check) {
    const auto* array = slot.node.as_array();
    if (array == nullptr) {
        wrong_type(slot, "an array of strings, e.g. [\"a\", \"b\"]");
        return false;
    }
    std::vector<std::string> values(array->size());
    bool good = true;
    for (std::size_t i = 0; i < array->size(); ++i) {
        const Slot entry{(*array)[i], element_key(slot.key, i), slot.diagnostics};
        if (!read_string(entry, values[i], check)) good = false;
    }
    if (good) out = std::move(values);
    return good;
}

// The words of an enumerated key, shared by the reader and to_string().
template <class Enum>
struct Named {
    std::string_view name;
    Enum value;
};

constexpr Named<LogLevel> kLogLevels[] = {{"error", LogLevel::Error},
                                          {"warning", LogLevel::Warning},
                                          {"info", LogLevel::Info},
                                          {"debug", LogLevel::Debug}};
constexpr Named<OnRefusal> kOnRefusal[] = {{"reject", OnRefusal::Reject},
                                           {"accept", OnRefusal::Accept}};
constexpr Named<OnJournalError> kOnJournalError[] = {{"tempfail", OnJournalError::Tempfail},
                                                     {"continue", OnJournalError::Continue}};
constexpr Named<InDoubt> kInDoubt[] = {{"delivered", InDoubt::Delivered},
                                       {"retry", InDoubt::Retry}};
constexpr Named<UntrustedAction> kUntrustedAction[] = {{"downgrade", UntrustedAction::Downgrade},
                                                       {"reject", UntrustedAction::Reject}};
constexpr Named<ExtensionMode> kExtensionModes[] = {{"queue", ExtensionMode::Queue},
                                                    {"ticket", ExtensionMode::Ticket},
                                                    {"action", ExtensionMode::Action}};

template <class Enum, std::size_t N>
bool read_choice(const Slot& slot, const Named<Enum> (&choices)[N], Enum& out) {
    const std::string allowed =
        "one of " + join(choices, ", ", [](const auto& choice) { return quoted(choice.name); });
    const auto* value = slot.node.as_string();
    if (value == nullptr) {
        wrong_type(slot, allowed);
        return false;
    }
    for (const auto& choice : choices) {
        if (choice.name == value->get()) {
            out = choice.value;
            return true;
        }
    }
    slot.fail("must be " + allowed + ", got " + quoted(value->get()));
    return false;
}

template <class Enum, std::size_t N>
std::string_view name_of(const Named<Enum> (&choices)[N], Enum value, std::string_view otherwise) {
    for (const auto& choice : choices)
        if (choice.value == value) return choice.name;
    return otherwise;
}

// ---- Key specs: one table of fields per kind of TOML table.

template <class Target>
struct Field {
    std::string_view name;
    void (*read)(const Slot&, Target&);
    // Set: the key is required, and this is the message when it is missing.
    std::string_view if_missing = {};
};

template <class Target, std::size_t N>
void read_table(const toml::table& table, std::string_view key, const Field<Target> (&fields)[N],
                Target& out, Diagnostics& diagnostics) {
    for (auto&& [name, node] : table) {
        const auto* field =
            std::find_if(std::begin(fields), std::end(fields),
                         [&name = name](const Field<Target>& f) { return f.name == name.str(); });
        if (field == std::end(fields)) {
            diagnostics.report(name.source(), child_key(key, name.str()),
                               "unknown key; allowed here: " +
                                   join(fields, ", ", [](const auto& f) { return f.name; }));
        } else {
            field->read(Slot{node, child_key(key, name.str()), diagnostics}, out);
        }
    }
    for (const auto& field : fields)
        if (!field.if_missing.empty() && !table.contains(field.name))
            diagnostics.report(table.source(), child_key(key, field.name),
                               std::string(field.if_missing));
}

// header_files = { "NAME" = "/path", ... }: names and paths now; the
// values once `user` is known (check_secret_files).
void read_header_files(const Slot& slot, RtServer& server) {
    const auto* table = slot.node.as_table();
    if (table == nullptr) {
        return wrong_type(slot,
                          "a table of header names and files, e.g. { \"X-RT-Gateway-Secret\" = "
                          "\"/etc/rt-milter/gateway.secret\" }");
    }
    std::vector<HeaderFile> files;
    bool good = true;
    for (auto&& [name, node] : *table) {
        const Slot entry{node, child_key(slot.key, name.str()), slot.diagnostics};
        HeaderFile file{std::string(name.str()), "", ""};
        Status named = check_header_name(file.name);
        const bool twice = std::any_of(files.begin(), files.end(), [&file](const HeaderFile& f) {
            return iequals(f.name, file.name);
        });
        if (!named || twice) {
            slot.diagnostics.report(
                name.source(), entry.key,
                twice ? "the same header twice (names compare ignoring case)" : named.error());
            good = false;
        } else if (read_string(entry, file.path, check_absolute_path)) {
            files.push_back(std::move(file));
        } else {
            good = false;
        }
    }
    if (good) server.header_files = std::move(files);
}

constexpr Field<RtServer> kServerFields[] = {
    {"url",
     [](const Slot& s, RtServer& server) {
         if (read_string(s, server.url, check_rt_url)) server.url = base_url(server.url);
     },
     "missing; every RT server needs the base URL of its RT, e.g. url = "
     "\"https://rt.example.com\""},
    {"timeout", [](const Slot& s, RtServer& server) { read_integer(s, 1, 3600, server.timeout); }},
    {"ca_file",
     [](const Slot& s, RtServer& server) { read_string(s, server.ca_file, check_ca_file); }},
    {"verify_tls", [](const Slot& s, RtServer& server) { read_bool(s, server.verify_tls); }},
    {"max_concurrent",
     [](const Slot& s, RtServer& server) { read_integer(s, 1, 1024, server.max_concurrent); }},
    {"circuit_failures",
     [](const Slot& s, RtServer& server) { read_integer(s, 0, 1000, server.circuit_failures); }},
    {"circuit_cooldown",
     [](const Slot& s, RtServer& server) { read_integer(s, 1, 3600, server.circuit_cooldown); }},
    {"deadline",
     [](const Slot& s, RtServer& server) { read_integer(s, 1, 7200, server.deadline); }},
    {"redirect_hosts",
     [](const Slot& s, RtServer& server) {
         if (read_string_list(s, server.redirect_hosts, check_host_name))
             for (std::string& host : server.redirect_hosts) host = ascii_lower(host);
     }},
    {"strip_rt_headers",
     [](const Slot& s, RtServer& server) { read_bool(s, server.strip_rt_headers); }},
    {"client_cert",
     [](const Slot& s, RtServer& server) {
         read_string(s, server.client_cert, check_client_cert);
     }},
    {"client_key",
     [](const Slot& s, RtServer& server) {
         read_string(s, server.client_key, check_optional_absolute_path);
     }},
    {"header_files", read_header_files},
    {"rest2_token_file",
     [](const Slot& s, RtServer& server) {
         read_string(s, server.rest2_token_file, check_optional_absolute_path);
     }},
};

void read_server(const Slot& slot, const std::string& name, Config& config) {
    const auto* table = slot.node.as_table();
    if (table == nullptr) return wrong_type(slot, "a table");
    RtServer server;
    server.name = name;
    read_table(*table, slot.key, kServerFields, server, slot.diagnostics);
    config.servers[name] = std::move(server);
}

// Why take and resolve are not in the default: with extension = "action" the
// sender picks the action, and those two change a ticket's owner or status
// on the word of anyone who can send mail. A route lists them to allow them.
const std::vector<std::string> kDefaultActionAllowList = {"correspond", "comment"};

constexpr Field<Route> kRouteFields[] = {
    {"address",
     [](const Slot& s, Route& route) {
         std::string text;
         if (read_string(s, text) && s.accept(parse_address(text, route.local_part, route.domain)))
             route.address = std::move(text);
     },
     "missing; every [[route]] needs the RT address it handles, e.g. address = "
     "\"bugs@example.com\""},
    {"queue", [](const Slot& s, Route& route) { read_string(s, route.queue, check_not_empty); }},
    {"action", [](const Slot& s, Route& route) { read_string(s, route.action, check_action); }},
    {"server", [](const Slot& s, Route& route) { read_string(s, route.server, check_not_empty); }},
    {"extension",
     [](const Slot& s, Route& route) { read_choice(s, kExtensionModes, route.extension); }},
    {"queues",
     [](const Slot& s, Route& route) { read_string_list(s, route.queues, check_not_empty); }},
    {"actions",
     [](const Slot& s, Route& route) { read_string_list(s, route.actions, check_action); }},
    // trust policy: this route's answer to an unproven take or resolve
    {"untrusted_action",
     [](const Slot& s, Route& route) {
         UntrustedAction policy{};
         if (read_choice(s, kUntrustedAction, policy)) route.untrusted_action = policy;
     }},
};

// An allow-list only means something in its own extension mode.
void check_allow_list(const toml::table& table, const Slot& entry, std::string_view list,
                      ExtensionMode mode, const Route& route) {
    const toml::node* node = table.get(list);
    const bool extension_was_bad =
        route.extension == ExtensionMode::None && table.contains("extension");
    if (node == nullptr || extension_was_bad) return;
    const Slot slot{*node, child_key(entry.key, list), entry.diagnostics};
    const std::string wanted = "extension = " + quoted(to_string(mode));
    if (route.extension != mode) {
        slot.fail("only allowed with " + wanted + "; this route has " +
                  (route.extension == ExtensionMode::None
                       ? std::string("no extension")
                       : "extension = " + quoted(to_string(route.extension))));
    } else if (mode == ExtensionMode::Action && node->is_array() && node->as_array()->empty()) {
        slot.fail("must list at least one action; leave it out for [\"correspond\", \"comment\"]");
    }
}

Route read_route(const toml::table& table, const Slot& entry) {
    Route route;
    route.origin = entry.diagnostics.file() + ":" + std::to_string(table.source().begin.line);
    read_table(table, entry.key, kRouteFields, route, entry.diagnostics);
    check_allow_list(table, entry, "queues", ExtensionMode::Queue, route);
    check_allow_list(table, entry, "actions", ExtensionMode::Action, route);
    if (route.extension == ExtensionMode::Action && !table.contains("actions"))
        route.actions = kDefaultActionAllowList;
    return route;
}

// ---- trust policy keys ----

void read_networks(const Slot& slot, std::vector<Network>& out) {
    const auto* array = slot.node.as_array();
    if (array == nullptr)
        return wrong_type(slot, "an array of networks, e.g. [\"192.0.2.0/24\", \"2001:db8::/32\"]");
    std::vector<Network> networks(array->size());
    bool good = true;
    for (std::size_t i = 0; i < array->size(); ++i) {
        const Slot entry{(*array)[i], element_key(slot.key, i), slot.diagnostics};
        std::string text;
        if (!read_string(entry, text) || !entry.accept(parse_network(text, networks[i])))
            good = false;
    }
    if (good) out = std::move(networks);
}

void read_authserv_ids(const Slot& slot, std::vector<std::string>& out) {
    if (read_string_list(slot, out, check_authserv_id))
        for (std::string& id : out) id = ascii_lower(id);
}

// ---- end of trust policy keys ----

// What the walk of the top level fills: the config, and for each route the
// TOML table and key it came from, for the checks across routes.
struct TopLevel {
    struct RouteSource {
        const toml::table* table;
        std::string key;
    };
    Config config;
    std::vector<RouteSource> route_sources;  // parallel to config.routes
};

void read_servers(const Slot& slot, TopLevel& top) {
    const auto* table = slot.node.as_table();
    if (table == nullptr) return wrong_type(slot, "a table of [servers.NAME] tables");
    for (auto&& [name, node] : *table) {
        const Slot server{node, child_key(slot.key, name.str()), slot.diagnostics};
        if (name.str() == "rt" || name.str().empty()) {
            slot.diagnostics.report(
                name.source(), server.key,
                name.str().empty()
                    ? "a server needs a name"
                    : "the name \"rt\" belongs to [rt], the default server; choose another");
        } else {
            read_server(server, std::string(name.str()), top.config);
        }
    }
}

void read_routes(const Slot& slot, TopLevel& top) {
    const auto* array = slot.node.as_array();
    if (array == nullptr) return wrong_type(slot, "an array of tables, each written [[route]]");
    for (std::size_t i = 0; i < array->size(); ++i) {
        const Slot entry{(*array)[i], element_key(slot.key, i), slot.diagnostics};
        const auto* table = entry.node.as_table();
        if (table == nullptr) {
            wrong_type(entry, "a table, written [[route]]");
            continue;
        }
        top.config.routes.push_back(read_route(*table, entry));
        top.route_sources.push_back({table, entry.key});
    }
}

constexpr Field<TopLevel> kTopLevelFields[] = {
    {"socket", [](const Slot& s, TopLevel& t) { read_string(s, t.config.socket, check_socket); }},
    {"socket_mode",
     [](const Slot& s, TopLevel& t) {
         std::string text;
         if (read_string(s, text)) s.accept(parse_socket_mode(text, t.config.socket_mode));
     }},
    {"socket_group", [](const Slot& s, TopLevel& t) { read_string(s, t.config.socket_group); }},
    {"user", [](const Slot& s, TopLevel& t) { read_string(s, t.config.user); }},
    {"log_level",
     [](const Slot& s, TopLevel& t) { read_choice(s, kLogLevels, t.config.log_level); }},
    {"recipient_delimiter",
     [](const Slot& s, TopLevel& t) {
         read_string(s, t.config.recipient_delimiter, check_recipient_delimiter);
     }},
    {"on_refusal",
     [](const Slot& s, TopLevel& t) { read_choice(s, kOnRefusal, t.config.on_refusal); }},
    {"max_rt_targets",
     [](const Slot& s, TopLevel& t) { read_integer(s, 1, 1000, t.config.max_rt_targets); }},
    {"max_message_size",
     [](const Slot& s, TopLevel& t) {
         read_integer(s, 0, std::numeric_limits<std::int64_t>::max(), t.config.max_message_size);
     }},
    {"spool_dir",
     [](const Slot& s, TopLevel& t) { read_string(s, t.config.spool_dir, check_absolute_path); }},
    {"journal",
     [](const Slot& s, TopLevel& t) {
         read_string(s, t.config.journal, [](std::string_view v) {
             return is_postgresql_conninfo(v) ? check_postgresql_conninfo(v)
                                              : check_optional_absolute_path(v);
         });
     }},
    {"journal_expiry",
     [](const Slot& s, TopLevel& t) { read_integer(s, 60, 31536000, t.config.journal_expiry); }},
    {"on_journal_error",
     [](const Slot& s, TopLevel& t) {
         read_choice(s, kOnJournalError, t.config.on_journal_error);
     }},
    {"in_doubt", [](const Slot& s, TopLevel& t) { read_choice(s, kInDoubt, t.config.in_doubt); }},
    // trust policy
    {"untrusted_action",
     [](const Slot& s, TopLevel& t) {
         read_choice(s, kUntrustedAction, t.config.untrusted_action);
     }},
    {"trusted_networks",
     [](const Slot& s, TopLevel& t) { read_networks(s, t.config.trusted_networks); }},
    {"trusted_authserv_ids",
     [](const Slot& s, TopLevel& t) { read_authserv_ids(s, t.config.trusted_authserv_ids); }},
    {"authserv_id_with_job_id",
     [](const Slot& s, TopLevel& t) { read_bool(s, t.config.authserv_id_with_job_id); }},
    {"metrics",
     [](const Slot& s, TopLevel& t) {
         read_string(s, t.config.metrics, [](std::string_view v) -> Problem {
             if (v.empty()) return std::nullopt;
             ListenAddress listen;
             return parse_listen_address(v, listen);
         });
     }},
    {"rt", [](const Slot& s, TopLevel& t) { read_server(s, "rt", t.config); },
     "missing; add an [rt] table with the base URL of your RT, e.g. url = "
     "\"https://rt.example.com\""},
    {"servers", read_servers},
    {"route", read_routes},
};

// The rules across tables: each route's server exists, no address twice.
void check_routes(const TopLevel& top, Diagnostics& diagnostics) {
    const Config& config = top.config;
    std::map<std::string, std::size_t> first_route_with;  // "local@domain" -> index
    for (std::size_t i = 0; i < config.routes.size(); ++i) {
        const Route& route = config.routes[i];
        const auto& source = top.route_sources[i];
        // A missing [rt] is reported once, not once per route.
        if (route.server != "rt" && !config.servers.contains(route.server)) {
            diagnostics.report(source.table->get("server")->source(),
                               child_key(source.key, "server"),
                               "no RT server named " + quoted(route.server) + "; the servers are " +
                                   join(config.servers, ", ",
                                        [](const auto& entry) { return quoted(entry.first); }));
        }
        if (route.local_part.empty()) continue;  // its bad address is reported already
        const auto [first, inserted] =
            first_route_with.emplace(route.local_part + "@" + route.domain, i);
        if (!inserted) {
            const auto& earlier = top.route_sources[first->second];
            diagnostics.report(source.table->get("address")->source(),
                               child_key(source.key, "address"),
                               quoted(route.address) + " is already the address of " + earlier.key +
                                   " (line " + std::to_string(earlier.table->source().begin.line) +
                                   "); addresses are compared ignoring case");
        }
    }
}

// Who may own a secret file: root and the user rt-milter runs as (`user`,
// else whoever loads the file: the daemon that has become its user).
std::vector<uid_t> secret_file_owners(const Config& config) {
    uid_t service = geteuid();
    if (!config.user.empty())
        if (const passwd* pw = getpwnam(config.user.c_str())) service = pw->pw_uid;
    return secret_owners(service);
}

// http://localhost..., http://127.x.y.z..., http://[::1]...: an RT on this
// host, where a token does not cross the network.
bool loopback_url(const std::string& url) {
    const auto start = url.find("://");
    if (start == std::string::npos) return false;
    std::string host =
        ascii_lower(url.substr(start + 3, url.find_first_of("/?#", start + 3) - start - 3));
    if (const auto at = host.rfind('@'); at != std::string::npos) host.erase(0, at + 1);
    if (host.starts_with("[::1]")) return true;
    host = host.substr(0, host.find(':'));
    return host == "localhost" ||
           (host.starts_with("127.") && host.find_first_not_of("0123456789.") == std::string::npos);
}

// A locked gateway's settings of each server: client_cert and client_key
// together, https only, and the secret files read: the key checked as one,
// each header value read into its HeaderFile.
void check_secret_files(const toml::table& root, TopLevel& top, Diagnostics& diagnostics) {
    const std::vector<uid_t> owners = secret_file_owners(top.config);
    for (auto& [name, server] : top.config.servers) {
        const std::string prefix = name == "rt" ? "rt" : "servers." + key_text(name);
        const toml::table* table =
            name == "rt" ? root["rt"].as_table() : root["servers"][name].as_table();
        if (table == nullptr) continue;
        auto report = [&](std::string_view key, std::string what) {
            diagnostics.report(table->get(key)->source(), prefix + "." + std::string(key),
                               std::move(what));
        };
        // As written (a value that was refused already still counts as
        // given; "" and {} are the defaults, none).
        auto given = [table](std::string_view key) {
            const toml::node* node = table->get(key);
            return node && !(node->is_string() && node->as_string()->get().empty()) &&
                   !(node->is_table() && node->as_table()->empty());
        };
        const bool cert = given("client_cert"), key = given("client_key");
        if (cert != key) {
            report(cert ? "client_cert" : "client_key",
                   "client_cert and client_key go together: set both (the certificate and its "
                   "private key), or "
                   "neither");
        }
        const bool http = istarts_with(server.url, "http://");
        for (std::string_view credential : {"client_cert", "header_files"}) {
            if (http && given(credential)) {
                report(credential, "needs an https:// url: over " + quoted(server.url) +
                                       " the credentials would travel in clear text");
            }
        }
        if (!server.client_key.empty()) {
            std::string ignored;
            if (Status s = read_secret_file(server.client_key, owners, 1 << 20, ignored); !s)
                report("client_key", s.error());
        }
        if (!server.rest2_token_file.empty()) {
            if (http && !loopback_url(server.url)) {
                report("rest2_token_file", "needs an https:// url (or an RT on this host): over " +
                                               quoted(server.url) +
                                               " the token would travel in clear text");
            } else if (Status s =
                           read_header_file(server.rest2_token_file, owners, server.rest2_token);
                       !s) {
                report("rest2_token_file", s.error());
            }
        }
        const toml::table* headers = table->get_as<toml::table>("header_files");
        for (HeaderFile& file : server.header_files) {
            if (Status s = read_header_file(file.path, owners, file.value); !s) {
                diagnostics.report(headers->get(file.name)->source(),
                                   prefix + ".header_files." + key_text(file.name), s.error());
            }
        }
    }
}

constexpr std::string_view kNoRoute =
    "no [[route]]: rt-milter has nothing to deliver; add your RT addresses (see rt-milter.toml(5))";

struct CloseFile {
    void operator()(std::FILE* file) const { std::fclose(file); }
};

LoadResult unreadable(const std::string& path, int error_number) {
    return {std::nullopt, {ConfigError{path, 0, 0, "", std::strerror(error_number)}}};
}

}  // namespace

std::string ConfigError::to_string() const {
    std::string place = file;
    for (int number : {line, column}) {
        if (number <= 0) break;
        place += (place.empty() ? "" : ":") + std::to_string(number);
    }
    std::string out;
    for (std::string_view part :
         {std::string_view(place), std::string_view(key), std::string_view(what)})
        if (!part.empty()) out += (out.empty() ? "" : ": ") + std::string(part);
    return out;
}

LoadResult load_config_file(const std::string& path) {
    const std::unique_ptr<std::FILE, CloseFile> file(std::fopen(path.c_str(), "rb"));
    if (!file) return unreadable(path, errno);
    std::string text;
    char buffer[1 << 16];
    while (const std::size_t got = std::fread(buffer, 1, sizeof buffer, file.get()))
        text.append(buffer, got);
    if (std::ferror(file.get())) return unreadable(path, errno);
    return load_config_string(text, path);
}

LoadResult load_config_string(std::string_view text, const std::string& path) {
    Diagnostics diagnostics(path);
    toml::table root;
    try {
        root = toml::parse(text, path);
    } catch (const toml::parse_error& error) {
        diagnostics.report(error.source(), "", std::string(error.description()));
        return {std::nullopt, diagnostics.take()};
    }
    TopLevel top;
    top.config.path = path;
    read_table(root, "", kTopLevelFields, top, diagnostics);
    check_routes(top, diagnostics);
    check_secret_files(root, top, diagnostics);
    std::vector<ConfigError> errors = diagnostics.take();
    // A file with no [[route]] is valid TOML for the schema, but rt-milter
    // would start and deliver nothing: the one error about the whole file
    // comes last. (A `route` key of the wrong type has its own error.)
    const toml::node* route = root.get("route");
    const toml::array* routes = route ? route->as_array() : nullptr;
    if (!route || (routes && routes->empty()))
        errors.push_back(ConfigError{path, 0, 0, "", std::string(kNoRoute)});
    if (!errors.empty()) return {std::nullopt, std::move(errors)};
    return {std::move(top.config), {}};
}

std::vector<std::string> config_keys() {
    std::vector<std::string> keys;
    auto add = [&keys](std::string_view prefix, const auto& fields) {
        for (const auto& field : fields)
            keys.push_back(std::string(prefix) + std::string(field.name));
    };
    for (const auto& field : kTopLevelFields) {
        if (field.name == "rt")
            add("rt.", kServerFields);
        else if (field.name == "servers")
            add("servers.NAME.", kServerFields);
        else if (field.name == "route")
            add("route.", kRouteFields);
        else
            keys.push_back(std::string(field.name));
    }
    return keys;
}

std::string_view to_string(ExtensionMode mode) {
    return name_of(kExtensionModes, mode, "none");
}
std::string_view to_string(OnRefusal policy) {
    return name_of(kOnRefusal, policy, "?");
}
std::string_view to_string(OnJournalError policy) {
    return name_of(kOnJournalError, policy, "?");
}
std::string_view to_string(InDoubt policy) {
    return name_of(kInDoubt, policy, "?");
}
std::string_view to_string(LogLevel level) {
    return name_of(kLogLevels, level, "?");
}
std::string_view to_string(UntrustedAction policy) {
    return name_of(kUntrustedAction, policy, "?");
}

}  // namespace rtm
