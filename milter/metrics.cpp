// metrics.cpp — the process-wide counters of metrics.h and the Prometheus
// text exposition they are rendered in (HELP and TYPE for every family,
// histograms cumulative with _bucket{le}, _sum and _count), with the
// process's own CPU, memory and descriptors read from /proc/self.
#include "metrics.h"

#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#ifndef RTM_VERSION
#define RTM_VERSION "0"
#endif

namespace rtm::metrics {
namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;

double wall_now() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Registry {
    std::array<std::atomic<std::uint64_t>, 4> transactions{};  // by TxVerdict
    std::atomic<std::uint64_t> rcpt_temporary{0}, rcpt_permanent{0};
    std::atomic<std::uint64_t> duplicates{0}, journal_errors{0};
    std::array<std::atomic<std::uint64_t>, 5> in_doubt{};  // by InDoubtResolution
    std::atomic<std::uint64_t> generation{0};
    std::atomic<double> last_reload_ok_at{0};
    std::atomic<bool> last_reload_ok{true};
    Histogram<9> bytes{{1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864}};
    const double started_at = wall_now();
    std::mutex servers_mutex;
    std::map<std::string, std::unique_ptr<ServerCounters>> servers;
};

Registry& registry() {
    static Registry* r = new Registry;  // never destroyed: workers may count during exit
    return *r;
}

constexpr const char* kVerdicts[] = {"accepted", "tempfailed", "rejected", "not_ours"};
constexpr const char* kOutcomes[] = {"ok", "not_ok", "temporary_failure", "transport_error",
                                     "timeout"};
constexpr const char* kResolutions[] = {"found_in_rt", "not_in_rt", "rest2_failed",
                                        "counted_delivered", "posted_again"};

// A label value as the exposition format wants it: \, " and newline escaped.
std::string label(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

// The shortest text that reads back as v ("0.05", not "0.05000000000000000278").
std::string number(double v) {
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

class Writer {
  public:
    void family(const char* name, const char* type, const char* help) {
        out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
    }
    void sample(const std::string& name, const std::string& labels, double value) {
        out_ << name;
        if (!labels.empty()) out_ << '{' << labels << '}';
        out_ << ' ' << number(value) << '\n';
    }
    // A family of one sample without labels.
    void single(const char* name, const char* type, const char* help, double value) {
        family(name, type, help);
        sample(name, "", value);
    }
    // One sample per value of KEY, from the counters of that value; LABELS
    // (the series' other labels) come first.
    template <std::size_t N>
    void by_label(const char* name, const std::string& labels, const char* key,
                  const char* const (&values)[N],
                  const std::array<std::atomic<std::uint64_t>, N>& counts) {
        const std::string head = labels.empty() ? "" : labels + ",";
        for (std::size_t i = 0; i < N; ++i)
            sample(name, head + key + "=\"" + values[i] + "\"",
                   static_cast<double>(counts[i].load(kRelaxed)));
    }
    template <std::size_t N>
    void histogram(const std::string& name, const std::string& labels, const Histogram<N>& h) {
        const std::string sep = labels.empty() ? "" : labels + ",";
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < N; ++i) {
            cumulative += h.buckets[i].load(kRelaxed);
            sample(name + "_bucket", sep + "le=\"" + number(h.le[i]) + "\"",
                   static_cast<double>(cumulative));
        }
        cumulative += h.buckets[N].load(kRelaxed);
        sample(name + "_bucket", sep + "le=\"+Inf\"", static_cast<double>(cumulative));
        sample(name + "_sum", labels, h.sum.load(kRelaxed));
        sample(name + "_count", labels, static_cast<double>(cumulative));
    }
    std::string str() const { return out_.str(); }

  private:
    std::ostringstream out_;
};

// CPU seconds (user + system) and resident bytes of this process.
void read_proc_self(double& cpu_seconds, double& resident_bytes, double& open_fds) {
    cpu_seconds = resident_bytes = open_fds = 0;
    std::ifstream stat("/proc/self/stat");
    std::string line;
    if (std::getline(stat, line)) {
        // Fields after the command's closing parenthesis: state is field 3,
        // utime 14, stime 15, rss 24.
        std::istringstream rest(line.substr(line.rfind(')') + 2));
        std::string field;
        unsigned long long utime = 0, stime = 0;
        long long rss = 0;
        for (int i = 3; i <= 24 && rest >> field; ++i) {
            if (i == 14) utime = std::stoull(field);
            if (i == 15) stime = std::stoull(field);
            if (i == 24) rss = std::stoll(field);
        }
        const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
        cpu_seconds = static_cast<double>(utime + stime) / ticks;
        resident_bytes = static_cast<double>(rss) * static_cast<double>(sysconf(_SC_PAGESIZE));
    }
    if (DIR* dir = opendir("/proc/self/fd")) {
        while (dirent* e = readdir(dir))
            if (e->d_name[0] != '.') ++open_fds;
        closedir(dir);
        open_fds -= 1;  // the directory's own descriptor
    }
}

}  // namespace

template <std::size_t N>
void Histogram<N>::observe(double value) {
    std::size_t i = 0;
    while (i < N && value > le[i]) ++i;
    buckets[i].fetch_add(1, kRelaxed);
    sum.fetch_add(value, kRelaxed);
}

std::string ServerCounters::last_error() const {
    std::lock_guard lock(mutex_);
    return last_error_;
}

void ServerCounters::set_last_error(const std::string& text) {
    std::lock_guard lock(mutex_);
    last_error_ = text;
    last_error_at_.store(wall_now(), kRelaxed);
}

ServerCounters& server(const std::string& name) {
    Registry& r = registry();
    std::lock_guard lock(r.servers_mutex);
    auto& slot = r.servers[name];
    if (!slot) {
        slot = std::make_unique<ServerCounters>();
        slot->name = name;
    }
    return *slot;
}

std::vector<const ServerCounters*> servers() {
    Registry& r = registry();
    std::lock_guard lock(r.servers_mutex);
    std::vector<const ServerCounters*> out;
    for (const auto& [name, s] : r.servers) out.push_back(s.get());
    return out;
}

void count_transaction(TxVerdict verdict) {
    registry().transactions[static_cast<std::size_t>(verdict)].fetch_add(1, kRelaxed);
}

void count_rcpt_refusal(bool temporary) {
    (temporary ? registry().rcpt_temporary : registry().rcpt_permanent).fetch_add(1, kRelaxed);
}

PostOutcome outcome_of(const RtReply& reply) {
    switch (reply.kind) {
        case RtReply::Kind::Delivered:
            return PostOutcome::Ok;
        case RtReply::Kind::Refused:
            return PostOutcome::NotOk;
        case RtReply::Kind::Temporary:
            break;
    }
    if (reply.http_status > 0) return PostOutcome::TemporaryFailure;
    return reply.timed_out ? PostOutcome::Timeout : PostOutcome::TransportError;
}

void count_post(ServerCounters& server, const RtReply& reply, double seconds) {
    const PostOutcome outcome = outcome_of(reply);
    server.posts[static_cast<std::size_t>(outcome)].fetch_add(1, kRelaxed);
    server.seconds.observe(seconds);
    if (outcome != PostOutcome::Ok && outcome != PostOutcome::NotOk)
        server.set_last_error(reply.summary());
}

void count_posted_bytes(std::uint64_t bytes) {
    registry().bytes.observe(static_cast<double>(bytes));
}
void count_journal_duplicate() {
    registry().duplicates.fetch_add(1, kRelaxed);
}
void count_in_doubt(InDoubtResolution resolution) {
    registry().in_doubt[static_cast<std::size_t>(resolution)].fetch_add(1, kRelaxed);
}
void count_journal_error() {
    registry().journal_errors.fetch_add(1, kRelaxed);
}

void count_config_load(bool ok) {
    Registry& r = registry();
    r.last_reload_ok.store(ok, kRelaxed);
    if (!ok) return;
    r.generation.fetch_add(1, kRelaxed);
    r.last_reload_ok_at.store(wall_now(), kRelaxed);
}

const char* to_string(PostOutcome outcome) {
    return kOutcomes[static_cast<std::size_t>(outcome)];
}

Totals totals() {
    Registry& r = registry();
    Totals t;
    t.accepted = r.transactions[0].load(kRelaxed);
    t.tempfailed = r.transactions[1].load(kRelaxed);
    t.rejected = r.transactions[2].load(kRelaxed);
    t.not_ours = r.transactions[3].load(kRelaxed);
    t.rcpt_tempfailed = r.rcpt_temporary.load(kRelaxed);
    t.rcpt_rejected = r.rcpt_permanent.load(kRelaxed);
    t.duplicates = r.duplicates.load(kRelaxed);
    t.journal_errors = r.journal_errors.load(kRelaxed);
    for (const auto& n : r.in_doubt) t.in_doubt += n.load(kRelaxed);
    t.config_generation = r.generation.load(kRelaxed);
    t.last_reload_ok_at = r.last_reload_ok_at.load(kRelaxed);
    t.started_at = r.started_at;
    return t;
}

std::string render(const Present& present) {
    Registry& r = registry();
    Writer w;
    w.family("rt_milter_transactions_total", "counter",
             "Transactions (messages) by rt-milter's verdict; not_ours: no RT recipient.");
    w.by_label("rt_milter_transactions_total", "", "verdict", kVerdicts, r.transactions);
    w.family("rt_milter_rcpt_refusals_total", "counter",
             "RT recipients refused at RCPT, by reply class.");
    w.sample("rt_milter_rcpt_refusals_total", "class=\"temporary\"",
             static_cast<double>(r.rcpt_temporary.load(kRelaxed)));
    w.sample("rt_milter_rcpt_refusals_total", "class=\"permanent\"",
             static_cast<double>(r.rcpt_permanent.load(kRelaxed)));
    w.single("rt_milter_transactions_in_flight", "gauge",
             "Transactions between MAIL FROM and rt-milter's verdict.", present.in_flight);
    const std::vector<const ServerCounters*> counted = servers();
    w.family("rt_milter_posts_total", "counter",
             "POSTs to RT's mail gateway by RT server and outcome.");
    for (const ServerCounters* s : counted)
        w.by_label("rt_milter_posts_total", "server=\"" + label(s->name) + "\"", "outcome",
                   kOutcomes, s->posts);
    w.family("rt_milter_post_duration_seconds", "histogram",
             "Seconds from a POST's queueing to RT's answer, by RT server.");
    for (const ServerCounters* s : counted)
        w.histogram("rt_milter_post_duration_seconds", "server=\"" + label(s->name) + "\"",
                    s->seconds);
    w.family("rt_milter_posted_message_bytes", "histogram",
             "Sizes of the messages posted to RT, in bytes.");
    w.histogram("rt_milter_posted_message_bytes", "", r.bytes);

    w.family("rt_milter_posts_waiting", "gauge",
             "POSTs queued for a free connection (max_concurrent), by RT server.");
    for (const ServerPresent& s : present.servers)
        w.sample("rt_milter_posts_waiting", "server=\"" + label(s.name) + "\"",
                 static_cast<double>(s.waiting));
    w.family("rt_milter_posts_in_progress", "gauge", "POSTs under way, by RT server.");
    for (const ServerPresent& s : present.servers)
        w.sample("rt_milter_posts_in_progress", "server=\"" + label(s.name) + "\"",
                 static_cast<double>(s.in_progress));
    w.family("rt_milter_post_slots", "gauge",
             "Connections a server may have at once (max_concurrent).");
    for (const ServerPresent& s : present.servers)
        w.sample("rt_milter_post_slots", "server=\"" + label(s.name) + "\"",
                 static_cast<double>(s.slots));
    w.family("rt_milter_circuit_state", "gauge",
             "The circuit breaker of each RT server: 1 for its current state.");
    for (const ServerPresent& s : present.servers)
        for (const char* state : {"closed", "open", "half_open"})
            w.sample("rt_milter_circuit_state",
                     "server=\"" + label(s.name) + "\",state=\"" + state + "\"",
                     s.state == state ? 1 : 0);

    w.single("rt_milter_journal_duplicates_total", "counter",
             "Copies not posted because the duplicate journal says RT has them.",
             static_cast<double>(r.duplicates.load(kRelaxed)));
    w.family("rt_milter_journal_in_doubt_total", "counter",
             "Copies found in doubt (RT got them, never answered), by how each was settled.");
    w.by_label("rt_milter_journal_in_doubt_total", "", "resolution", kResolutions, r.in_doubt);
    w.single("rt_milter_journal_errors_total", "counter",
             "Duplicate journal operations that failed.",
             static_cast<double>(r.journal_errors.load(kRelaxed)));
    w.single("rt_milter_journal_usable", "gauge",
             "1 when the duplicate journal takes writes now (or is off).",
             present.journal_usable ? 1 : 0);
    w.single("rt_milter_config_generation", "gauge",
             "Configurations loaded since start (start and reloads).",
             static_cast<double>(r.generation.load(kRelaxed)));
    w.single("rt_milter_config_last_reload_successful", "gauge",
             "1 when the last load or reload succeeded.", r.last_reload_ok.load(kRelaxed) ? 1 : 0);
    w.single("rt_milter_config_last_reload_success_timestamp_seconds", "gauge",
             "When a configuration was last loaded successfully, in seconds since the epoch.",
             r.last_reload_ok_at.load(kRelaxed));
    w.family("rt_milter_build_info", "gauge", "rt-milter's version, as a label; always 1.");
    w.sample("rt_milter_build_info", "version=\"" RTM_VERSION "\"", 1);
    double cpu = 0, rss = 0, fds = 0;
    read_proc_self(cpu, rss, fds);
    w.single("process_start_time_seconds", "gauge",
             "Start time of the process since the epoch, in seconds.", r.started_at);
    w.single("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.",
             cpu);
    w.single("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", rss);
    w.single("process_open_fds", "gauge", "Number of open file descriptors.", fds);
    return w.str();
}

}  // namespace rtm::metrics
