// session.cpp — the transaction logic: RCPT routing, capture, the trust
// policy, the POSTs at end of message (an in-doubt copy first checked with
// RT's REST2 when its server has a token), and RT's answers mapped to the
// SMTP verdict.
#include "session.h"

#include <algorithm>
#include <charconv>
#include <future>
#include <map>
#include <tuple>
#include <utility>

#include "log.h"
#include "metrics.h"
#include "multipart.h"
#include "rest2_client.h"
#include "text.h"
#include "url.h"

namespace rtm {
namespace {

using Clock = std::chrono::steady_clock;

// Seconds a journal claim outlives the longest a session can hold it.
constexpr long kClaimMargin = 60;

double seconds_between(Clock::time_point start, Clock::time_point end) {
    return std::chrono::duration<double>(end - start).count();
}

// V with two decimals ("0.25"), as a log line shows seconds. to_chars: an
// ostringstream here set up a locale and stream state for every message.
std::string fixed(double v) {
    char text[32];
    const auto r = std::to_chars(text, text + sizeof text, v, std::chars_format::fixed, 2);
    return r.ec == std::errc() ? std::string(text, r.ptr) : std::string("?");
}

std::string describe_target(const Delivery& d) {
    std::string s = d.server;
    if (d.target.queue) s += " queue=" + *d.target.queue;
    if (d.target.action) s += " action=" + *d.target.action;
    if (d.target.ticket) s += " ticket=" + *d.target.ticket;
    if (!d.downgraded_from.empty()) s += " (downgraded from " + d.downgraded_from + ")";
    return s;
}

// The answer to an unproven take or resolve under untrusted_action =
// "reject": what was refused, not what would have proved the sender.
std::string unproven_text(const std::string& rcpt) {
    return rcpt + ": this action needs an authenticated sender";
}

// A journal operation failed: logged and counted.
void journal_error(const std::string& what) {
    metrics::count_journal_error();
    log::error("duplicate journal: " + what);
}

}  // namespace

Session::InFlight::InFlight(std::shared_ptr<RuntimeFamily> f) : family(std::move(f)) {
    if (family) ++family->in_flight;
}
Session::InFlight::~InFlight() {
    if (family) --family->in_flight;
}
Session::InFlight::InFlight(InFlight&& other) noexcept : family(std::move(other.family)) {
    other.family.reset();
}
Session::InFlight& Session::InFlight::operator=(InFlight&& other) noexcept {
    if (this != &other) {
        if (family) --family->in_flight;
        family = std::move(other.family);
        other.family.reset();
    }
    return *this;
}

int Session::in_flight() {
    return RuntimeFamily::process()->in_flight.load();
}

Session::Session(RuntimeSource runtime, MtaApi& mta)
    : runtime_source_(std::move(runtime)), mta_(mta) {}

void Session::connect(std::string client_host, std::string client_addr,
                      std::optional<IpAddress> client_ip) {
    client_ip_ = client_ip;
    // An unverified name comes as "[addr]": say the address once.
    const bool no_name = client_host.empty() || client_host == "[" + client_addr + "]";
    client_ = no_name ? client_addr : client_host + "[" + client_addr + "]";
}

Verdict Session::reply(Verdict verdict, const std::string& rcode, const std::string& xcode,
                       const std::string& text) {
    mta_.set_reply(rcode, xcode, sanitize_reply_text(text));
    return verdict;
}

Verdict Session::mail(const std::vector<std::string>& args) {
    tx_.reset();  // abort is not always called between transactions
    Transaction tx;
    tx.runtime = runtime_source_();
    // Counted in its runtime's family; without one, in the process's.
    tx.in_flight = InFlight(tx.runtime ? tx.runtime->family_ptr() : RuntimeFamily::process());
    tx.started = tx.runtime ? tx.runtime->now() : Clock::now();
    if (!tx.runtime) {  // MAIL may be a "no reply" stage: RCPT repeats this
        tx_ = std::move(tx);
        return fail(Verdict::Tempfail, "451", "4.3.0", "rt-milter has no configuration loaded");
    }
    if (!args.empty()) {
        AddressParse parsed = parse_envelope_address(args[0]);
        if (parsed.address) {
            tx.sender = parsed.address->address();
            tx.sender_shown = tx.sender;
        } else {
            tx.sender_error = parsed.error;
            tx.sender_shown = "(unparsable: " + printable_line(args[0], 100) + ")";
        }
    }
    for (std::size_t i = 1; i < args.size(); ++i) {
        if (args[i].size() > 5 && istarts_with(args[i], "size=")) {
            tx.declared_size = std::strtoull(args[i].c_str() + 5, nullptr, 10);
        }
    }
    tx_ = std::move(tx);
    return Verdict::Continue;
}

Verdict Session::rcpt(const std::vector<std::string>& args) {
    const Verdict v = route_rcpt(args);
    if (v == Verdict::Tempfail || v == Verdict::Reject)
        metrics::count_rcpt_refusal(v == Verdict::Tempfail);
    return v;
}

Verdict Session::route_rcpt(const std::vector<std::string>& args) {
    if (std::optional<Verdict> v = repeat_failure()) return *v;
    if (!tx_ || args.empty()) return Verdict::Continue;
    const Config& config = tx_->runtime->config();
    AddressParse parsed = parse_envelope_address(args[0]);
    if (!parsed.address) {
        // Only our business when it names one of our domains; otherwise the
        // MTA decides, and a copy it keeps for it is another recipient's.
        const std::string lower = ascii_lower(args[0]);
        bool ours = std::any_of(config.routes.begin(), config.routes.end(), [&](const Route& r) {
            return lower.find("@" + r.domain) != std::string::npos;
        });
        if (!ours) {
            ++tx_->other_recipients;
            return Verdict::Continue;
        }
        return reply(Verdict::Reject, "501", "5.1.3",
                     "bad recipient address syntax: " + parsed.error);
    }
    RouteDecision decision =
        tx_->runtime->routes().route(*parsed.address, mta_.macro("{rcpt_addr}"));
    switch (decision.kind) {
        case RouteDecision::Kind::NotRt:
            ++tx_->other_recipients;
            return Verdict::Continue;
        case RouteDecision::Kind::Refused:
            log::info(rcpt_log_head("refused", *parsed.address) + decision.xcode + " " +
                      decision.text);
            return reply(Verdict::Reject, decision.rcode, decision.xcode, decision.text);
        case RouteDecision::Kind::Routed:
            break;
    }
    if (!tx_->sender_error.empty()) {
        log::info(rcpt_log_head("refused RT", *parsed.address) +
                  "5.1.7 the envelope sender does not parse: " + tx_->sender_error);
        return reply(Verdict::Reject, "550", "5.1.7",
                     "the envelope sender address is not valid (" + tx_->sender_error +
                         "); RT takes no mail from it");
    }
    // Take or resolve from an unproven sender, refused when nothing later
    // (no trusted Authentication-Results) could prove the sender; otherwise
    // decided at end of message (apply_trust_policy).
    if (decision.target.action && needs_proof(*decision.target.action) && !envelope_proof() &&
        config.untrusted_action_for(*decision.route) == UntrustedAction::Reject &&
        config.trusted_authserv_ids.empty()) {
        log::info(rcpt_log_head("refused RT", *parsed.address) + "5.7.1 action " +
                  *decision.target.action + " from an unproven sender, proof=none");
        return reply(Verdict::Reject, "550", "5.7.1",
                     unproven_text("<" + parsed.address->address() + ">"));
    }
    ServerPool& pool = tx_->runtime->pool(decision.route->server);
    if (!pool.circuit().allow(pool.server().circuit_failures,
                              std::chrono::seconds(pool.server().circuit_cooldown),
                              tx_->runtime->now())) {
        return reply(Verdict::Tempfail, "451", "4.4.1",
                     "RT is unavailable at the moment; try again later");
    }
    if (config.max_message_size > 0 && tx_->declared_size > config.max_message_size) {
        return reply(Verdict::Reject, "552", "5.3.4",
                     "message too big for RT (" + std::to_string(tx_->declared_size) +
                         " bytes declared, limit " + std::to_string(config.max_message_size) + ")");
    }
    std::string key = target_key(decision);
    auto& keys = tx_->target_keys;
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
        if (keys.size() >= static_cast<std::size_t>(config.max_rt_targets)) {
            log::info(rcpt_log_head("deferred RT", *parsed.address) + "4.5.3 more than " +
                      std::to_string(config.max_rt_targets) +
                      " RT targets in one message (max_rt_targets)");
            return reply(Verdict::Tempfail, "452", "4.5.3",
                         "too many RT recipients in one message; send the rest in another message");
        }
        keys.push_back(std::move(key));
    }
    tx_->rt.push_back({std::move(*parsed.address), std::move(decision), {}});
    return Verdict::Continue;
}

Verdict Session::capture(Status status) {
    if (status) return Verdict::Continue;
    log::error(log_head() + ": cannot spool the message: " + status.error());
    return fail(Verdict::Tempfail, "451", "4.3.0",
                "rt-milter cannot spool the message; try again later");
}

Verdict Session::fail(Verdict verdict, std::string rcode, std::string xcode, std::string text) {
    tx_->failed =
        Transaction::Failure{verdict, std::move(rcode), std::move(xcode), std::move(text)};
    tx_->message.reset();  // nothing more is kept (and a spool file goes now)
    return *repeat_failure();
}

std::optional<Verdict> Session::repeat_failure() {
    if (!tx_ || !tx_->failed) return std::nullopt;
    const Transaction::Failure& f = *tx_->failed;
    return reply(f.verdict, f.rcode, f.xcode, f.text);
}

void Session::fail_internal() {
    if (!tx_) {          // MAIL itself failed: RCPT must still say so
        Transaction tx;  // (not tx_.emplace(): clang 14 rejects it for this nested type)
        tx.in_flight = InFlight(RuntimeFamily::process());
        tx.started = Clock::now();
        tx_ = std::move(tx);
    }
    if (tx_->failed) return;
    fail(Verdict::Tempfail, "451", "4.3.0", "rt-milter internal error; try again later");
}

Verdict Session::data() {
    // Every content stage comes through here: a transaction that failed
    // (at MAIL or in an earlier content stage) keeps its answer.
    if (std::optional<Verdict> v = repeat_failure()) return *v;
    if (!tx_ || tx_->rt.empty()) {  // no RT recipient: not ours, stop here
        if (tx_) metrics::count_transaction(metrics::TxVerdict::NotOurs);
        if (tx_ && log::enabled(LogLevel::Debug))
            log::debug(log_head() + ": no RT recipient, not rt-milter's business");
        tx_.reset();
        return Verdict::Accept;
    }
    if (!tx_->message) {
        // 256 KiB per transaction in memory, the rest in an unlinked file:
        // ten 10 MB messages at once stay within 30 MB of RSS (benchmark).
        SpoolOptions spool{.memory_limit = 256 << 10, .dir = tx_->runtime->config().spool_dir};
        tx_->message.emplace(std::move(spool), lead_space_kept_);
    }
    return Verdict::Continue;
}

Verdict Session::header(std::string_view name, std::string_view value) {
    if (Verdict v = data(); v != Verdict::Continue) return v;
    tx_->headers.add(tx_->runtime->config(), name, value);
    return capture(tx_->message->header(name, value));
}

Verdict Session::end_of_headers() {
    if (Verdict v = data(); v != Verdict::Continue) return v;
    return capture(tx_->message->end_of_headers());
}

Verdict Session::body(std::string_view chunk) {
    if (Verdict v = data(); v != Verdict::Continue) return v;
    if (Verdict v = capture(tx_->message->body(chunk)); v != Verdict::Continue) return v;
    const std::uint64_t limit = tx_->runtime->config().max_message_size;
    if (limit > 0 && tx_->message->size() > limit) {
        return fail(Verdict::Reject, "552", "5.3.4",
                    "message too big for RT (over " + std::to_string(limit) + " bytes)");
    }
    return Verdict::Continue;
}

void Session::abort() {
    tx_.reset();
}

void Session::tick() {
    const auto now = tx_->runtime->now();
    if (now - last_progress_ >= std::chrono::seconds(2)) {
        last_progress_ = now;
        mta_.progress();
    }
}

const Proof& Session::envelope_proof() {
    // {auth_authen} comes with MAIL FROM (callbacks.cpp asks for it) and
    // stays readable until the end of the message.
    if (!tx_->envelope_proof)
        tx_->envelope_proof =
            prove_by_envelope(tx_->runtime->config(), mta_.macro("{auth_authen}"), client_ip_);
    return *tx_->envelope_proof;
}

std::optional<Verdict> Session::apply_trust_policy(std::string& summary) {
    const Config& config = tx_->runtime->config();
    std::vector<RtRecipient*> unproven;
    for (RtRecipient& r : tx_->rt)
        if (r.decision.target.action && needs_proof(*r.decision.target.action))
            unproven.push_back(&r);
    if (unproven.empty()) return std::nullopt;
    Proof proof = envelope_proof();
    if (!proof) {
        std::vector<TrustNote> notes;
        proof = tx_->headers.prove(config, mta_.macro("i"), notes);
        for (const TrustNote& note : notes)
            log::write(note.warning ? LogLevel::Warning : LogLevel::Info,
                       queue_id() + ": trust: " + note.text);
    }
    tx_->proof_text = proof.text;
    if (proof) return std::nullopt;
    // One refusing route refuses the message: the end of DATA has one
    // answer for all (nothing is posted then, so nothing is half done).
    for (const RtRecipient* r : unproven) {
        if (config.untrusted_action_for(*r->decision.route) == UntrustedAction::Reject) {
            summary = "550 5.7.1 " + r->address.raw + ": action " + *r->decision.target.action +
                      " from an unproven sender";
            return reply(Verdict::Reject, "550", "5.7.1", unproven_text(r->address.raw));
        }
    }
    for (RtRecipient* r : unproven) {
        r->downgraded_from = *r->decision.target.action;
        r->decision.target.action = safe_part(r->downgraded_from);
    }
    return std::nullopt;
}

std::vector<Delivery> Session::plan_deliveries() const {
    std::vector<Delivery> deliveries;
    std::map<std::string, std::size_t> index;  // target_key -> deliveries[]
    for (const RtRecipient& r : tx_->rt) {
        const RouteDecision& d = r.decision;
        auto [it, fresh] = index.emplace(target_key(d), deliveries.size());
        if (fresh) {
            // Recipients of one target that differ only in an extension the
            // route does not use share one POST; the first one's extension
            // fills X-RT-Mail-Extension.
            Delivery fresh_delivery;
            fresh_delivery.server = d.route->server;
            fresh_delivery.target = d.target;
            fresh_delivery.extension = d.extension;
            deliveries.push_back(std::move(fresh_delivery));
        }
        Delivery& delivery = deliveries[it->second];
        delivery.recipients.push_back(r.address.raw);
        if (delivery.downgraded_from.empty()) delivery.downgraded_from = r.downgraded_from;
    }
    return deliveries;
}

namespace {

// One target's POST with POSTER (nullptr: RT is not asked, for the reason
// the time tells), its outcome into d. tick: while it lasts (a session
// posting in its own thread keeps the MTA waiting with it).
void post_one(const Runtime& runtime, Delivery& d, const std::string& prefix,
              const MessageView& message, RtPoster* poster, const RtPoster::Tick& tick,
              RtBackend::Clock::time_point queued, RtBackend::Clock::time_point start_by) {
    const ServerPool& pool = runtime.pool(d.server);
    try {
        if (!poster) {
            d.reply = classify_transport_failure(
                runtime.now() >= start_by
                    ? "RT server " + d.server + " busy: all " +
                          std::to_string(pool.server().max_concurrent) +
                          " connections (max_concurrent) in use for " +
                          std::to_string(pool.server().timeout) + " s"
                    : "RT server " + d.server + ": no HTTP client could be made",
                false);
        } else {
            d.attempted = true;
            MultipartBody body(form_fields(d.target), prefix, message);
            // Once RT has the whole request, a crash before its answer
            // must not lead to a second copy on the retry: in doubt. Noted
            // only where in doubt is handled otherwise than never posted
            // (asked of RT through REST2, or counted as delivered): with
            // in_doubt = "retry" and no REST2 token both are posted again,
            // and the write (a third of the journal's per message) is saved.
            RtPoster::Tick uploaded;
            if (!d.journal_key.empty() && runtime.journal() &&
                (runtime.config().in_doubt == InDoubt::Delivered ||
                 !pool.server().rest2_token.empty())) {
                uploaded = [&d, &runtime] {
                    if (Status s = runtime.journal()->uploaded(d.journal_key); !s) {
                        journal_error(s.error());
                    }
                };
            }
            d.reply = poster->post(d.target.gateway_url(), body, tick, uploaded);
        }
    } catch (const std::exception& e) {
        d.reply = classify_transport_failure(std::string("internal error: ") + e.what(), false);
    }
    d.seconds = seconds_between(queued, runtime.now());
}

}  // namespace

void Session::post_all(std::vector<Delivery>& deliveries) {
    const std::shared_ptr<const Runtime> runtime = tx_->runtime;
    const Message& message = tx_->message->message();
    struct Post {
        Delivery* d;
        std::string prefix;
        MessageView message;
    };
    std::vector<Post> todo;
    for (Delivery& d : deliveries) {
        if (d.from_journal) continue;
        std::string prefix = posted_prefix(tx_->sender, d.extension);
        // RT's own fields from the sender: out, unless this server is told to keep them.
        d.rt_headers_left_out = runtime->pool(d.server).server().strip_rt_headers &&
                                !tx_->message->rt_header_names().empty();
        MessageView posted =
            d.rt_headers_left_out ? tx_->message->without_rt_headers() : MessageView(message);
        d.posted_size = prefix.size() + posted.size();
        if (inspect_) {
            std::string head(static_cast<std::size_t>(std::min<std::uint64_t>(posted.size(), 600)),
                             '\0');
            head.resize(static_cast<std::size_t>(
                std::max(0L, posted.read_at(0, head.data(), head.size()))));
            d.posted_head = prefix + head.substr(0, head.rfind('\n') + 1);
        }
        if (dry_run_) {
            d.reply = classify_http(200, "OK", "ok (dry run: nothing was posted)");
            continue;
        }
        todo.push_back({&d, std::move(prefix), std::move(posted)});
    }
    // Every target but the last goes to a worker of its RT server, so that
    // they run at once; the last (for most messages the only one) is posted
    // by this thread when its server has a free slot and no job waits for
    // one. Either way at most max_concurrent POSTs run per server, and this
    // thread keeps the MTA waiting.
    std::vector<std::future<void>> posts;
    for (std::size_t i = 0; i < todo.size(); ++i) {
        Delivery& d = *todo[i].d;
        ServerPool& pool = runtime->pool(d.server);
        const auto queued = runtime->now();
        const auto start_by = queued + std::chrono::seconds(pool.server().timeout);
        if (i + 1 == todo.size()) {
            if (std::optional<ServerPool::Lease> lease = pool.try_lease()) {
                post_one(
                    *runtime, d, todo[i].prefix, todo[i].message, lease->poster(),
                    [this] { tick(); }, queued, start_by);
                continue;
            }
        }
        try {
            posts.push_back(pool.submit(
                [&runtime, &d, &post = todo[i], queued, start_by](RtPoster* poster) {
                    post_one(*runtime, d, post.prefix, post.message, poster, {}, queued, start_by);
                },
                start_by));
        } catch (const std::exception& e) {  // no worker could be started: RT was not asked
            d.reply = classify_transport_failure(std::string("internal error: ") + e.what(), false);
        }
    }
    for (auto& f : posts) {
        while (f.wait_for(runtime->backend().progress_poll) != std::future_status::ready) tick();
        f.get();
    }
}

std::optional<Verdict> Session::consult_journal(std::vector<Delivery>& deliveries,
                                                std::string& summary) {
    const Runtime& runtime = *tx_->runtime;
    const Config& config = runtime.config();
    if (config.journal.empty() || inspect_) return std::nullopt;  // off, or test mode
    Journal* journal = runtime.journal();
    auto journal_failed = [&](const std::string& why) -> std::optional<Verdict> {
        if (config.on_journal_error == OnJournalError::Continue) {
            journal_error(why + "; delivering without it (on_journal_error = continue)");
            for (Delivery& d : deliveries) d.journal_key.clear();
            return std::nullopt;
        }
        journal_error(why + "; answering 451 rather than risking duplicates");
        summary = "451 4.3.0 duplicate journal unavailable";
        return reply(Verdict::Tempfail, "451", "4.3.0",
                     "rt-milter cannot check for duplicates; try again later");
    };
    if (!journal) return journal_failed(runtime.journal_error());
    const std::string identity = tx_->message->identity();
    for (Delivery& d : deliveries) {
        // (the journal file is no place for a password in the URL)
        const std::string url = redact_url(runtime.pool(d.server).server().url);
        auto field = [](const std::optional<std::string>& f) { return f ? *f : std::string("-"); };
        // The same message (its content, not only its Message-ID) from the
        // same sender for the same target: what a retry looks like.
        d.journal_key = url + " queue=" + field(d.target.queue) +
                        " action=" + field(d.target.action) + " ticket=" + field(d.target.ticket) +
                        "\nfrom=" + tx_->sender + "\n" + identity;
        // A new key (the usual case) is claimed here, in one statement;
        // otherwise what the journal holds for it decides.
        Journal::Claim claim;
        if (Status s =
                journal->claim(d.journal_key, Journal::State::Unknown, claim_seconds(d), claim);
            !s) {
            release_claims(deliveries);
            return journal_failed(s.error());
        }
        if (claim.taken) {
            d.claimed = true;
            continue;
        }
        const Journal::State state = d.journal_state = claim.found;
        if (state == Journal::State::Delivered) {
            metrics::count_journal_duplicate();
            d.from_journal = true;
            d.reply = classify_http(200, "OK", "ok (delivered earlier: duplicate journal)");
        } else if (state == Journal::State::InDoubt) {
            settle_in_doubt(d, *journal);
        }
    }
    bool held = false;
    if (const std::string why = claim_targets(deliveries, held); !why.empty()) {
        if (!held) return journal_failed(why);
        log::warning(log_head() + ": " + why + "; answering 451");
        summary = "451 4.3.0 being delivered by another session";
        return reply(Verdict::Tempfail, "451", "4.3.0",
                     "this message is being delivered right now; try again later");
    }
    return std::nullopt;
}

std::string Session::claim_targets(std::vector<Delivery>& deliveries, bool& held) {
    const Runtime& runtime = *tx_->runtime;
    for (Delivery& d : deliveries) {
        if (d.from_journal || d.claimed) continue;
        Journal::Claim claim;
        Status s =
            runtime.journal()->claim(d.journal_key, d.journal_state, claim_seconds(d), claim);
        if (s && claim.taken) {
            d.claimed = true;
        } else if (s && claim.found == Journal::State::Delivered) {  // by another session, just now
            metrics::count_journal_duplicate();
            d.from_journal = true;
            d.reply = classify_http(200, "OK", "ok (delivered earlier: duplicate journal)");
        } else {
            release_claims(deliveries);
            held = s.is_ok();
            if (!s) return s.error();
            return join(d.recipients, ",") + " -> " + describe_target(d) +
                   ": being delivered by another session/host" +
                   (claim.holder.empty() ? "" : " (" + claim.holder + ")");
        }
    }
    return {};
}

long Session::claim_seconds(const Delivery& d) const {
    // Longer than this session can take: a queued job's wait for a
    // connection (timeout) and the POST itself (deadline), and a margin.
    const RtServer& server = tx_->runtime->pool(d.server).server();
    return server.timeout + server.deadline + kClaimMargin;
}

void Session::release_claims(std::vector<Delivery>& deliveries) {
    Journal& journal = *tx_->runtime->journal();
    for (Delivery& d : deliveries) {
        if (!d.claimed) continue;
        d.claimed = false;
        Status s = d.journal_state == Journal::State::InDoubt
                       ? journal.record(d.journal_key, Journal::State::InDoubt,
                                        "claim released, not posted")
                       : journal.forget(d.journal_key);
        if (!s) log::error("duplicate journal: cannot release a claim: " + s.error());
    }
}

void Session::settle_in_doubt(Delivery& d, Journal& journal) {
    const Config& config = tx_->runtime->config();
    const RtServer& server = tx_->runtime->pool(d.server).server();
    const std::optional<std::string> message_id = message_id_of(tx_->message->message());
    // RT can be asked: it says whether it has the message.
    if (!server.rest2_token.empty() && message_id) {
        Rest2Finding finding;
        try {
            // Bounded (curl_backend: at most 60 s): the MTA waits, kept alive by tick().
            finding = tx_->runtime->backend().find_message(server, d.target, *message_id,
                                                           [this] { tick(); });
        } catch (const std::exception& e) {
            finding = {Rest2Finding::Kind::Failed, std::string("internal error: ") + e.what()};
        }
        switch (finding.kind) {
            case Rest2Finding::Kind::Found:
                metrics::count_in_doubt(metrics::InDoubtResolution::FoundInRt);
                d.from_journal = true;
                d.in_doubt_note = "in doubt: RT has it (" + finding.detail + ")";
                d.reply = classify_http(200, "OK", "ok (" + d.in_doubt_note + ")");
                if (Status s =
                        journal.record(d.journal_key, Journal::State::Delivered, d.in_doubt_note);
                    !s)
                    log::error("duplicate journal: cannot record an outcome: " + s.error());
                return;
            case Rest2Finding::Kind::NotFound:
                metrics::count_in_doubt(metrics::InDoubtResolution::NotInRt);
                d.in_doubt_note = "in doubt: not in RT (" + finding.detail + "), posting again";
                return;
            case Rest2Finding::Kind::Failed:
                metrics::count_in_doubt(metrics::InDoubtResolution::Rest2Failed);
                // Not posted and still in doubt: the next retry asks again.
                d.from_journal = true;
                d.in_doubt_note = "in doubt: RT REST2 did not answer (" + finding.detail + ")";
                d.reply = classify_transport_failure(d.in_doubt_note, false);
                return;
        }
    }
    const std::string why =
        message_id ? "no rest2_token_file for server " + d.server : "no Message-ID to ask RT";
    if (config.in_doubt == InDoubt::Delivered) {
        metrics::count_in_doubt(metrics::InDoubtResolution::CountedDelivered);
        d.from_journal = true;
        d.in_doubt_note = "in doubt: " + why + ", counted as delivered (in_doubt = delivered)";
        d.reply = classify_http(200, "OK",
                                "ok (posted earlier, RT never answered: counted as delivered)");
        log::warning(log_head() + " " + join(d.recipients, ",") +
                     ": RT received this message earlier and never answered; counted as delivered "
                     "(in_doubt = delivered, " +
                     why + "), not posted again");
    } else {
        metrics::count_in_doubt(metrics::InDoubtResolution::PostedAgain);
        d.in_doubt_note = "in doubt: " + why + ", posting again (in_doubt = retry)";
    }
}

void Session::record_outcomes(const std::vector<Delivery>& deliveries) {
    const Runtime& runtime = *tx_->runtime;
    for (const Delivery& d : deliveries) {
        if (d.from_journal) continue;
        const ServerPool& pool = runtime.pool(d.server);
        // Only what happened on the way to RT says whether RT is reachable: a
        // POST that never left (no free connection for a while, an internal
        // error) must not let one sender's fan-out open the circuit for all.
        if (d.attempted) {
            pool.circuit().record(d.reply.http_status > 0, pool.server().circuit_failures,
                                  runtime.now());
            metrics::count_post(pool.counters(), d.reply, d.seconds);
            metrics::count_posted_bytes(d.posted_size);
        }
        if (d.journal_key.empty() || !runtime.journal()) continue;
        Journal& journal = *runtime.journal();
        Status s = Status::ok();
        if (d.reply.kind != RtReply::Kind::Temporary) {
            s = journal.record(d.journal_key, Journal::State::Delivered, d.reply.summary());
        } else if (d.reply.in_doubt) {
            s = journal.record(d.journal_key, Journal::State::InDoubt, d.reply.summary());
        } else {
            s = journal.forget(
                d.journal_key);  // RT answered "not now" (or nothing arrived): post again
        }
        if (!s) log::error("duplicate journal: cannot record an outcome: " + s.error());
    }
}

Verdict Session::decide(const std::vector<Delivery>& deliveries, std::string& summary) {
    std::vector<const Delivery*> temporary, refused, delivered;
    for (const Delivery& d : deliveries) {
        switch (d.reply.kind) {
            case RtReply::Kind::Temporary:
                temporary.push_back(&d);
                break;
            case RtReply::Kind::Refused:
                refused.push_back(&d);
                break;
            case RtReply::Kind::Delivered:
                delivered.push_back(&d);
                break;
        }
    }
    // The sender learns what happened, not how we are built: RT's own words,
    // curl's errors and host names stay in the log line.
    if (!temporary.empty()) {
        const bool unreachable =
            std::all_of(temporary.begin(), temporary.end(),
                        [](const Delivery* d) { return d->reply.unreachable; });
        const Delivery& first = *temporary.front();
        const std::string why = unreachable ? "RT could not be reached"
                                : first.reply.http_status == 0 && first.attempted
                                    ? "RT did not answer in time"
                                : first.reply.http_status == 0 ? "RT is busy"
                                                               : "RT did not take it";
        std::string text = "message for " + first.recipients.front() + " not delivered: " + why +
                           "; try again later";
        summary = "451 " + std::string(unreachable ? "4.4.1 " : "4.3.0 ") + text;
        return reply(Verdict::Tempfail, "451", unreachable ? "4.4.1" : "4.3.0", text);
    }
    const Config& config = tx_->runtime->config();
    if (!refused.empty() && delivered.empty() && tx_->other_recipients == 0 &&
        config.on_refusal == OnRefusal::Reject) {
        const Delivery& first = *refused.front();
        std::string text = "RT refused the message for " + first.recipients.front();
        summary = "550 5.7.1 " + text;
        return reply(Verdict::Reject, "550", "5.7.1", text);
    }
    // Accepted: RT has every RT copy (or refused it and told the sender).
    const bool postfix = mta_.macro("v").find("Postfix") != std::string::npos;
    if (!postfix && tx_->other_recipients == 0) {
        // Sendmail: nothing left to deliver; discarding is clean there (on
        // Postfix it would throttle new mail, so recipients are removed).
        summary = "accepted, discarded (every recipient delivered to RT)";
        return Verdict::Discard;
    }
    for (const RtRecipient& r : tx_->rt) {
        if (!mta_.delete_recipient(r.address.raw)) {
            summary = "451 4.3.0 cannot remove recipient " + r.address.raw;
            log::error("smfi_delrcpt(" + r.address.raw + ") failed");
            return reply(Verdict::Tempfail, "451", "4.3.0",
                         "rt-milter could not update the recipients; try again later");
        }
    }
    summary = "accepted, " + std::to_string(tx_->rt.size()) + " RT recipient(s) removed";
    if (tx_->other_recipients > 0)
        summary += ", " + std::to_string(tx_->other_recipients) + " other(s) kept";
    return Verdict::Accept;
}

Verdict Session::end_of_message() {
    const bool ours = tx_ && !tx_->rt.empty();
    const Verdict v = finish_message();
    if (ours) {
        metrics::count_transaction(v == Verdict::Tempfail ? metrics::TxVerdict::Tempfailed
                                   : v == Verdict::Reject ? metrics::TxVerdict::Rejected
                                                          : metrics::TxVerdict::Accepted);
    }
    return v;
}

Verdict Session::finish_message() {
    last_deliveries_.clear();
    if (!tx_ || tx_->rt.empty()) return Verdict::Continue;
    if (std::optional<Verdict> v = repeat_failure()) {
        const Transaction::Failure& f = *tx_->failed;
        log::info(log_head() + ": not posted to RT: " + f.rcode + " " + f.xcode + " " + f.text);
        tx_.reset();
        return *v;
    }
    if (!tx_->message) data();
    if (Verdict v = capture(tx_->message->finish()); v != Verdict::Continue) return v;
    last_progress_ = tx_->runtime->now();

    std::string summary;
    if (std::optional<Verdict> refused = apply_trust_policy(summary)) {
        log_transaction({}, summary);
        tx_.reset();
        return *refused;
    }
    std::vector<Delivery> deliveries = plan_deliveries();
    if (std::optional<Verdict> stop = consult_journal(deliveries, summary)) {
        log_transaction(deliveries, summary);
        tx_.reset();
        return *stop;
    }
    post_all(deliveries);
    record_outcomes(deliveries);
    Verdict verdict = decide(deliveries, summary);
    log_transaction(deliveries, summary);
    last_deliveries_ = std::move(deliveries);
    tx_.reset();
    return verdict;
}

std::string Session::queue_id() const {
    std::string qid = mta_.macro("i");
    return qid.empty() ? std::string("NOQUEUE") : qid;
}

std::string Session::log_head() const {
    return queue_id() + ": from=<" + tx_->sender_shown + ">";
}

std::string Session::rcpt_log_head(const char* what, const EnvelopeAddress& rcpt) const {
    return queue_id() + ": " + what + " recipient <" + rcpt.address() + "> from=<" +
           tx_->sender_shown + ">: ";
}

void Session::log_transaction(const std::vector<Delivery>& deliveries,
                              const std::string& verdict) const {
    std::string line = log_head();
    if (!client_.empty()) line += ", client=" + client_;
    line += ", size=" + std::to_string(tx_->message->size());
    if (!tx_->proof_text.empty()) line += ", proof=" + tx_->proof_text;
    if (std::any_of(deliveries.begin(), deliveries.end(),
                    [](const Delivery& d) { return d.rt_headers_left_out; })) {
        // RT's spelling of each field, once: never the sender's bytes.
        std::vector<std::string> names;
        for (const std::string& name : tx_->message->rt_header_names())
            if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
        line += ", rt_headers_removed=" + join(names, ",");
    }
    for (const Delivery& d : deliveries) {
        line += ", rt=" + join(d.recipients, ",") + " -> " + describe_target(d) + " (" +
                std::string(to_string(d.reply.kind)) + ", " + d.reply.summary();
        if (!d.in_doubt_note.empty() && !d.from_journal) line += ", " + d.in_doubt_note;
        // RT's own gateway never says 403: a web server in front of it does.
        if (d.reply.http_status == 403)
            line +=
                ": refused before RT, a locked gateway? see client_cert, client_key, header_files "
                "of server " +
                d.server;
        line += ", " + fixed(d.seconds) + "s)";
    }
    line += ", verdict=\"" + verdict +
            "\", delay=" + fixed(seconds_between(tx_->started, tx_->runtime->now()));
    log::info(line);
}

}  // namespace rtm
