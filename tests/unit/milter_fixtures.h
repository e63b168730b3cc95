// milter_fixtures.h — shared pieces for the milter unit tests: a Config
// built in code (no TOML) with one route of each kind, and FakeMta, an
// MtaApi that records what the Session asked of the MTA (and can act when
// it is told of progress). RT's side is fake_poster.h (no socket) or
// fake_rt.h (loopback HTTP, for what goes on the wire).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "config.h"
#include "mta.h"

namespace rtm::testing {

inline Route make_route(const std::string& local, const std::string& domain,
                        ExtensionMode mode = ExtensionMode::None) {
    Route r;
    r.address = local + "@" + domain;
    r.local_part = local;
    r.domain = domain;
    r.extension = mode;
    r.origin = "test:1";
    return r;
}

// rt@ (queue General), rt-comment@ (action comment), ticket@ (extension
// ticket), q@ (extension queue, Sales/Support), a@ (extension action:
// correspond, comment), all @example.com, on server "rt" at url.
inline Config make_config(const std::string& url) {
    Config c;
    c.path = "test.toml";
    c.spool_dir = "/tmp";
    c.journal = "";  // tests that want the journal set it
    RtServer rt;
    rt.name = "rt";
    rt.url = url;
    rt.timeout = 5;
    c.servers["rt"] = rt;
    Route general = make_route("rt", "example.com");
    general.queue = "General";
    general.action = "correspond";
    Route comment = make_route("rt-comment", "example.com");
    comment.action = "comment";
    Route ticket = make_route("ticket", "example.com", ExtensionMode::Ticket);
    Route queue = make_route("q", "example.com", ExtensionMode::Queue);
    queue.queues = {"Sales", "Support"};
    Route action = make_route("a", "example.com", ExtensionMode::Action);
    action.actions = {"correspond", "comment"};
    c.routes = {general, comment, ticket, queue, action};
    return c;
}

struct FakeMta : MtaApi {
    std::string version = "Postfix 3.7.11";
    std::string rcode, xcode, text;
    std::vector<std::string> deleted;
    int progress_calls = 0;
    bool delete_fails = false;
    std::map<std::string, std::string> macros;  // further ones, e.g. {"{auth_authen}", "alice"}
    std::function<void()> on_progress;          // e.g. release a held RT answer

    std::string macro(const char* name) override {
        if (auto it = macros.find(name); it != macros.end()) return it->second;
        if (std::string(name) == "v") return version;
        if (std::string(name) == "i") return "4ABC123";
        return "";
    }
    void set_reply(const std::string& r, const std::string& x, const std::string& t) override {
        rcode = r;
        xcode = x;
        text = t;
    }
    bool delete_recipient(const std::string& raw) override {
        deleted.push_back(raw);
        return !delete_fails;
    }
    void progress() override {
        ++progress_calls;
        if (on_progress) on_progress();
    }
};

}  // namespace rtm::testing
