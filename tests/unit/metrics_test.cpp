// metrics_test.cpp — the metrics listener's parts without a daemon: the
// `metrics` address as the loader takes or refuses it, the exposition's
// shape (families, labels, cumulative buckets) after counting, the POST
// outcome classes, the health verdict, and the HTTP answers of a
// MetricsServer bound to loopback and asked over a real socket.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "config.h"
#include "metrics.h"
#include "metrics_server.h"
#include "network.h"

namespace rtm {
namespace {

TEST(ListenAddress, TakesAddressesWithAPort) {
    ListenAddress a;
    ASSERT_FALSE(parse_listen_address("127.0.0.1:9731", a));
    EXPECT_EQ(a.port, 9731u);
    EXPECT_TRUE(a.loopback());
    EXPECT_EQ(a.to_string(), "127.0.0.1:9731");
    ASSERT_FALSE(parse_listen_address("[::1]:9731", a));
    EXPECT_TRUE(a.loopback());
    EXPECT_EQ(a.to_string(), "[::1]:9731");
    ASSERT_FALSE(parse_listen_address("192.0.2.7:80", a));
    EXPECT_FALSE(a.loopback());
}

TEST(ListenAddress, RefusesWithAReason) {
    ListenAddress a;
    EXPECT_NE(parse_listen_address("localhost:9731", a).value_or("").find("must be an IP address"),
              std::string::npos);
    EXPECT_NE(parse_listen_address("127.0.0.1", a).value_or("").find("give an address and a port"),
              std::string::npos);
    EXPECT_NE(parse_listen_address("127.0.0.1:0", a).value_or("").find("1 to 65535"),
              std::string::npos);
    EXPECT_NE(parse_listen_address("127.0.0.1:65536", a).value_or("").find("1 to 65535"),
              std::string::npos);
    EXPECT_NE(parse_listen_address("::1:9731", a).value_or("").find("[brackets]"),
              std::string::npos);
    EXPECT_NE(parse_listen_address("[127.0.0.1]:9731", a).value_or("").find("[brackets]"),
              std::string::npos);
    EXPECT_TRUE(parse_listen_address("", a));
}

TEST(ListenAddress, ConfigErrorNamesLineAndKey) {
    LoadResult r = load_config_string(
        "metrics = \"localhost:9731\"\n[rt]\nurl = \"https://rt.example.com\"\n"
        "[[route]]\naddress = \"rt@example.com\"\n",
        "t.toml");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(
        r.errors[0].to_string().rfind("t.toml:1:11: metrics: the host must be an IP address", 0),
        0u)
        << r.errors[0].to_string();
}

TEST(Metrics, OutcomeClasses) {
    RtReply r = classify_http(200, "OK", "ok\n");
    EXPECT_EQ(metrics::outcome_of(r), metrics::PostOutcome::Ok);
    r = classify_http(200, "OK", "not ok\n");
    EXPECT_EQ(metrics::outcome_of(r), metrics::PostOutcome::NotOk);
    r = classify_http(500, "Internal Server Error", "");
    EXPECT_EQ(metrics::outcome_of(r), metrics::PostOutcome::TemporaryFailure);
    r = classify_transport_failure("connection refused");
    EXPECT_EQ(metrics::outcome_of(r), metrics::PostOutcome::TransportError);
    r.timed_out = true;
    EXPECT_EQ(metrics::outcome_of(r), metrics::PostOutcome::Timeout);
}

// The value of one sample line "NAME{LABELS} VALUE" in an exposition.
double sample(const std::string& text, const std::string& series) {
    const std::size_t at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + series.size() + 2));
}

TEST(Metrics, ExpositionCountsAndCumulativeBuckets) {
    // The counters are the process's: a server name of its own per run keeps
    // repeated runs (--gtest_repeat) apart.
    static int run = 0;
    const std::string name = "unit-test-server-" + std::to_string(++run);
    metrics::ServerCounters& s = metrics::server(name);
    metrics::count_post(s, classify_http(200, "OK", "ok\n"), 0.07);
    metrics::count_post(s, classify_http(200, "OK", "ok\n"), 3.0);
    metrics::count_post(s, classify_http(503, "Service Unavailable", "busy"), 0.2);
    metrics::Present present;
    present.configured = true;
    present.in_flight = 3;
    present.servers.push_back({name, "open", 2, 1, 4});
    const std::string text = metrics::render(present);
    EXPECT_EQ(sample(text, "rt_milter_posts_total{server=\"" + name + "\",outcome=\"ok\"}"), 2);
    EXPECT_GE(sample(text, "rt_milter_posts_total{server=\"" + name +
                               "\",outcome=\"temporary_failure\"}"),
              1);
    // cumulative: 0.07 in le=0.1, 0.2 in le=0.25, 3.0 in le=5 and every bucket after
    const std::string b = "rt_milter_post_duration_seconds_bucket{server=\"" + name + "\",le=";
    EXPECT_EQ(sample(text, b + "\"0.05\"}"), 0);
    EXPECT_EQ(sample(text, b + "\"0.1\"}"), 1);
    EXPECT_EQ(sample(text, b + "\"0.25\"}"), 2);
    EXPECT_EQ(sample(text, b + "\"5\"}"), 3);
    EXPECT_EQ(sample(text, b + "\"+Inf\"}"), 3);
    EXPECT_EQ(sample(text, "rt_milter_post_duration_seconds_count{server=\"" + name + "\"}"), 3);
    EXPECT_NEAR(sample(text, "rt_milter_post_duration_seconds_sum{server=\"" + name + "\"}"), 3.27,
                1e-9);
    EXPECT_EQ(sample(text, "rt_milter_transactions_in_flight"), 3);
    EXPECT_EQ(sample(text, "rt_milter_circuit_state{server=\"" + name + "\",state=\"open\"}"), 1);
    EXPECT_EQ(sample(text, "rt_milter_circuit_state{server=\"" + name + "\",state=\"closed\"}"), 0);
    EXPECT_EQ(sample(text, "rt_milter_posts_waiting{server=\"" + name + "\"}"), 2);
    EXPECT_NE(s.last_error().find("503 Service Unavailable"), std::string::npos) << s.last_error();
    // every family announced once, before its samples
    EXPECT_NE(text.find("# TYPE rt_milter_post_duration_seconds histogram\n"), std::string::npos);
    EXPECT_EQ(text.find("# TYPE rt_milter_posts_total counter"),
              text.rfind("# TYPE rt_milter_posts_total counter"));
}

TEST(Metrics, HealthVerdict) {
    metrics::Present p;
    EXPECT_EQ(health_problem(p, ""), "no configuration loaded");
    p.configured = true;
    EXPECT_EQ(health_problem(p, ""), "");
    EXPECT_EQ(health_problem(p, "the milter socket /x is gone"), "the milter socket /x is gone");
    p.journal_on = true;
    p.journal_usable = false;
    p.journal_error = "database is locked";
    EXPECT_EQ(health_problem(p, ""), "journal unusable: database is locked");
    p.journal_usable = true;
    p.servers.push_back({"rt", "open", 0, 0, 16});
    EXPECT_EQ(health_problem(p, ""), "") << "an open circuit is RT's trouble, not rt-milter's";
}

// GET PATH over a real socket: the status line and the body.
std::string get(unsigned port, const std::string& request) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(static_cast<uint16_t>(port));
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&in), sizeof in) != 0) {
        close(fd);
        return "connect failed";
    }
    const std::string req = request + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    (void)write(fd, req.data(), req.size());
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;)
        out.append(buf, static_cast<std::size_t>(n));
    close(fd);
    return out;
}

TEST(MetricsServer, AnswersOverLoopback) {
    ListenAddress listen;
    ASSERT_FALSE(parse_listen_address("127.0.0.1:1", listen));
    std::unique_ptr<MetricsServer> server;
    std::string error;
    for (unsigned port = 39731; port < 39831 && !server; ++port) {  // a free one
        listen.port = port;
        server = MetricsServer::bind(listen, error);
    }
    ASSERT_TRUE(server) << error;
    bool journal_ok = true;
    MetricsProbe probe{
        [&] {
            metrics::Present p;
            p.configured = true;
            p.journal_on = true;
            p.journal_usable = journal_ok;
            p.journal_error = journal_ok ? "" : "/j.sqlite takes no writes: database is locked";
            return p;
        },
        [] { return std::string(); }, "/etc/rt-milter/rt-milter.toml", "unix:/run/x.sock"};
    ASSERT_TRUE(server->start(probe, error)) << error;
    const unsigned port = server->address().port;
    std::string r = get(port, "GET /healthz");
    EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
    EXPECT_NE(r.find("ok: configuration loaded, socket listening, journal usable"),
              std::string::npos)
        << r;
    journal_ok = false;
    r = get(port, "GET /healthz");
    EXPECT_EQ(r.rfind("HTTP/1.1 503", 0), 0u) << r;
    EXPECT_NE(r.find("unhealthy: journal unusable: /j.sqlite takes no writes: database is locked"),
              std::string::npos);
    r = get(port, "GET /metrics");
    EXPECT_NE(r.find("text/plain; version=0.0.4"), std::string::npos) << r;
    EXPECT_NE(r.find("\nrt_milter_journal_usable 0\n"), std::string::npos);
    r = get(port, "GET /status");
    EXPECT_NE(r.find("\"config_file\": \"/etc/rt-milter/rt-milter.toml\""), std::string::npos) << r;
    EXPECT_EQ(get(port, "POST /metrics").rfind("HTTP/1.1 405", 0), 0u);
    EXPECT_EQ(get(port, "GET /etc/passwd").rfind("HTTP/1.1 404", 0), 0u);
    // the same port again: refused, with the reason
    std::string again;
    EXPECT_FALSE(MetricsServer::bind(server->address(), again));
    EXPECT_NE(again.find("cannot listen there: Address already in use"), std::string::npos)
        << again;
}

}  // namespace
}  // namespace rtm
