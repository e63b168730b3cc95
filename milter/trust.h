// trust.h — the trust policy, as pure functions over what a Session saw:
// which RT actions need a proven sender (take, resolve: they change a
// ticket's owner or status; correspond and comment stay open to anyone),
// what an unproven one is narrowed to (its safe part), and what proves a
// sender — SMTP AUTH, a client address in trusted_networks, or an
// Authentication-Results header of this host's own verifiers (an authserv-id
// in trusted_authserv_ids, with this message's queue id when
// authserv_id_with_job_id) that says dmarc=pass for the author's domain, or
// dkim=pass with a signing domain aligned with it. The policy only ever
// narrows an action. No libmilter, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth_results.h"
#include "config.h"
#include "network.h"

namespace rtm {

// ---- actions

// Whether an RT action (a dash list, e.g. "take-comment") changes a
// ticket's owner or status: any take or resolve in it.
bool needs_proof(std::string_view action);

// What an unproven sender gets: the list without take and resolve
// ("take-comment" -> "comment", "correspond-resolve" -> "correspond"). Where
// nothing is left (take, resolve, take-resolve) it is "comment": RT records
// nothing of the message for a take or resolve alone, and a comment keeps it
// for the staff (an attempt to take the ticket, visible as such) without
// mailing the requestors what a correspond would send them.
std::string safe_part(std::string_view action);

// ---- domains

// DKIM alignment without a public-suffix list: the signing domain d is the
// author's domain or a parent of it (d=example.org signs for
// news.example.org), and has at least two labels. Not the other way round:
// whoever holds a subdomain (dyndns-style hosting) cannot speak for its
// parent. Stricter than DMARC's relaxed mode (d=mail.example.org for
// example.org is not aligned here): a false "no" only downgrades.
bool dkim_aligned(std::string_view signing_domain, std::string_view author_domain);

// Every domain named after an '@' in a header value, lower case, trailing
// dot dropped, with RFC 2047 encoded words decoded first (a display name
// "=?utf-8?q?boss=40example.org?=" names example.org). A '@' with no domain
// after it gives "".
std::vector<std::string> at_domains(std::string_view header_value);

// ---- proof

struct Proof {
    enum class Kind { None, Auth, Network, Dmarc, Dkim };
    Kind kind = Kind::None;
    // For the log line: "auth:USER", "network:CIDR", "dmarc:AUTHSERV",
    // "dkim:AUTHSERV:d=DOMAIN", "none".
    std::string text = "none";
    explicit operator bool() const { return kind != Kind::None; }
};

// What the envelope proves: SMTP AUTH ({auth_authen}, any user) first, then
// the client's address in trusted_networks.
Proof prove_by_envelope(const Config& config, std::string_view auth_user,
                        const std::optional<IpAddress>& client);

// Something worth a log line about why a header proved nothing.
struct TrustNote {
    bool warning = false;  // a forged-looking header (wrong queue id), not just a setup matter
    std::string text;
};

// What the message's headers may prove, gathered header by header (bounded:
// a few kilobytes per header that matters, whatever the message holds).
class HeaderEvidence {
  public:
    // Every header of the message, in order; keeps what the proof reads.
    void add(const Config& config, std::string_view name, std::string_view value);

    // The address RT acts for is the first of Reply-To, From, Sender (RT's
    // Auth::MailFrom). A DKIM or DMARC result speaks for the From: domain,
    // so it proves a sender only when exactly one From: names exactly one
    // domain and no Reply-To: or Sender: names another (or is ambiguous):
    // that domain, or why there is none.
    std::optional<std::string> author_domain(std::string& why) const;

    // queue_id: this message's ("" when the MTA gave none): with
    // authserv_id_with_job_id, or when a header names one, it must match.
    Proof prove(const Config& config, std::string_view queue_id,
                std::vector<TrustNote>& notes) const;

    static constexpr std::size_t max_kept_results = 16;  // trusted A-R headers kept
    static constexpr std::size_t max_identity_bytes =
        8192;  // a longer From:/Reply-To:/Sender: proves nothing

  private:
    struct Identity {
        int count = 0;
        std::string first;  // the first one's value
        bool too_long = false;
    };
    bool check_identity(const Identity& header, std::string_view name,
                        const std::string* from_domain, std::string& domain,
                        std::string& why) const;

    Identity from_, reply_to_, sender_;
    std::vector<AuthResults> trusted_;  // those whose authserv-id (less "/job") is trusted
    int trusted_dropped_ = 0;           // past max_kept_results
};

}  // namespace rtm
