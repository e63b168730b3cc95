// session.h — Session: one SMTP connection's transactions as rt-milter sees
// them. It decides per recipient whether the address is an RT alias (and
// refuses bad extensions at RCPT), captures the message only when there is
// an RT recipient, POSTs one copy per distinct target at end of message
// (concurrently, keeping the MTA waiting with progress), and maps RT's
// answers to the SMTP verdict of the architecture's table. Take and resolve
// are carried out only for a proven sender (trust.h): an unproven one is
// refused at RCPT when nothing later could prove it, else at end of message
// the action is narrowed to its safe part or the message refused, as the
// route's untrusted_action says. It talks to the MTA only through MtaApi,
// to RT only through its Runtime's RtBackend (rt_poster.h), reads the time
// from there too, and never throws to its caller.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "address.h"
#include "message_builder.h"
#include "mta.h"
#include "rt_reply.h"
#include "runtime.h"
#include "trust.h"

namespace rtm {

// The outcome of one target's POST, for the verdict and the log line.
struct Delivery {
    std::string server;
    Target target;
    std::string extension;
    std::vector<std::string> recipients;  // raw RCPT arguments that share this target
    RtReply reply;
    double seconds = 0;
    std::uint64_t posted_size = 0;  // bytes of the message part
    std::string posted_head;        // its first lines (test mode only)
    std::string downgraded_from;    // the action asked for, when the trust policy narrowed it
    std::string journal_key;        // "" when the journal is off
    bool from_journal = false;      // delivered earlier: not posted again
    Journal::State journal_state =
        Journal::State::Unknown;  // what the journal said before the POST
    bool claimed = false;         // this session holds the journal's claim on the target
    bool attempted = false;       // a POST to RT was made (only those tell the circuit about RT)
    bool rt_headers_left_out = false;  // posted without RT's own header fields of the message
    std::string
        in_doubt_note;  // how an in-doubt copy was settled (asked RT, or the in_doubt policy)
};

class Session {
  public:
    using RuntimeSource = std::function<std::shared_ptr<const Runtime>()>;

    Session(RuntimeSource runtime, MtaApi& mta);

    // client_ip: the client's address as the MTA gave it (none for a unix
    // socket or an unknown family), for trusted_networks.
    void connect(std::string client_host, std::string client_addr,
                 std::optional<IpAddress> client_ip = std::nullopt);
    void set_lead_space_kept(bool kept) { lead_space_kept_ = kept; }
    // Test mode: record what is posted; with dry_run post nothing and take
    // every target as delivered.
    void set_test_mode(bool dry_run) {
        inspect_ = true;
        dry_run_ = dry_run;
    }

    Verdict mail(const std::vector<std::string>& args);
    Verdict rcpt(const std::vector<std::string>& args);
    Verdict data();
    Verdict header(std::string_view name, std::string_view value);
    Verdict end_of_headers();
    Verdict body(std::string_view chunk);
    Verdict end_of_message();
    void abort();
    // An internal error in a stage whose answer the MTA does not wait for
    // (negotiated "no reply"): the transaction is tempfailed at end of message.
    void fail_internal();

    // Transactions (MAIL to end of message or abort) in progress in the
    // process's RuntimeFamily (the daemon's): it drains them on stop. A
    // test's own family counts its sessions (RuntimeFamily::in_flight).
    static int in_flight();

    // The deliveries of the last end of message (tests and test mode read them).
    const std::vector<Delivery>& last_deliveries() const { return last_deliveries_; }

  private:
    Verdict route_rcpt(const std::vector<std::string>& args);
    Verdict finish_message();
    struct RtRecipient {
        EnvelopeAddress address;
        RouteDecision decision;
        std::string downgraded_from;  // set when the trust policy narrowed decision.target.action
    };
    struct InFlight {          // counts this transaction in its family while it lives
        InFlight() = default;  // counts nothing
        explicit InFlight(std::shared_ptr<RuntimeFamily> family);
        ~InFlight();
        InFlight(InFlight&&) noexcept;
        InFlight& operator=(InFlight&&) noexcept;
        std::shared_ptr<RuntimeFamily> family;  // null: not counted
    };
    struct Transaction {
        InFlight in_flight;
        std::shared_ptr<const Runtime> runtime;
        std::string sender;  // envelope sender as parsed, without angle brackets
        // Why the envelope sender does not parse ("" when it does): such a
        // sender never reaches RT (nor a Return-Path line), and the MTA's
        // argument is only ever shown through printable_line().
        std::string sender_error;
        std::string sender_shown;  // for log lines
        std::uint64_t declared_size = 0;
        std::vector<RtRecipient> rt;
        std::vector<std::string> target_keys;  // distinct RT targets so far (max_rt_targets)
        int other_recipients = 0;
        // Trust policy: what the envelope proves ({auth_authen}, the client
        // address; worked out when an action first needs it), what the
        // headers may, and the proof= of the log line ("" when no
        // recipient's action needed one).
        std::optional<Proof> envelope_proof;
        HeaderEvidence headers;
        std::string proof_text;
        std::optional<MessageBuilder> message;
        // The first failure of the content stages (spool error, message too
        // big, internal error). Headers, end of headers and body are "no
        // reply" stages where the MTA allows it (fewer round trips), so their
        // answer may never reach the MTA: every later stage, and end of
        // message, repeat it, and nothing more is captured.
        struct Failure {
            Verdict verdict;
            std::string rcode, xcode, text;
        };
        std::optional<Failure> failed;
        std::chrono::steady_clock::time_point started;
    };

    Verdict reply(Verdict verdict, const std::string& rcode, const std::string& xcode,
                  const std::string& text);
    Verdict capture(Status status);
    Verdict fail(Verdict verdict, std::string rcode, std::string xcode, std::string text);
    std::optional<Verdict> repeat_failure();
    // Decides the trust policy for the RT recipients at end of message:
    // narrows unproven actions, or answers the refusal.
    std::optional<Verdict> apply_trust_policy(std::string& summary);
    const Proof& envelope_proof();
    std::vector<Delivery> plan_deliveries() const;
    // Consults the duplicate journal, claiming each new target as it goes; a
    // reply when the transaction must stop.
    std::optional<Verdict> consult_journal(std::vector<Delivery>& deliveries, std::string& summary);
    // How long a claim holds: longer than this session can take on D.
    long claim_seconds(const Delivery& d) const;
    // Claims every target about to be posted that consult_journal did not
    // claim at once; "" when all were taken (or
    // found delivered meanwhile), else why not (after releasing the claims
    // taken), with held set when another session or host holds one.
    std::string claim_targets(std::vector<Delivery>& deliveries, bool& held);
    void release_claims(std::vector<Delivery>& deliveries);
    // A copy the journal has in doubt: asks RT (REST2) whether it has it when
    // the server has a token and the message a Message-ID, else applies
    // in_doubt. Found: delivered, recorded so; not found: posted again; RT
    // not answering: 451, still in doubt.
    void settle_in_doubt(Delivery& d, Journal& journal);
    void record_outcomes(const std::vector<Delivery>& deliveries);
    void post_all(std::vector<Delivery>& deliveries);
    Verdict decide(const std::vector<Delivery>& deliveries, std::string& summary);
    std::string queue_id() const;  // the MTA's, or NOQUEUE
    std::string log_head()
        const;  // "QUEUEID: from=<sender>", the start of a transaction's log lines
    // "QUEUEID: WHAT recipient <rcpt> from=<sender>: ", a line about one RCPT
    std::string rcpt_log_head(const char* what, const EnvelopeAddress& rcpt) const;
    void log_transaction(const std::vector<Delivery>& deliveries, const std::string& verdict) const;
    void tick();

    RuntimeSource runtime_source_;
    MtaApi& mta_;
    bool lead_space_kept_ = false;
    bool inspect_ = false;
    bool dry_run_ = false;
    std::string client_;
    std::optional<IpAddress> client_ip_;
    std::optional<Transaction> tx_;
    std::vector<Delivery> last_deliveries_;
    std::chrono::steady_clock::time_point last_progress_{};
};

}  // namespace rtm
