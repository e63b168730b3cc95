// trust_config_test.cpp — the trust policy's configuration (conf/): IP
// addresses and networks (network.h: parsing, IPv4-mapped clients, host
// bits, matching), and the keys untrusted_action (top level and per
// route), trusted_networks, trusted_authserv_ids and
// authserv_id_with_job_id: defaults, values read, and each error exactly
// as reported ("file:line:col: key: what").
#include <gtest/gtest.h>

#include "config.h"
#include "network.h"

namespace rtm {
namespace {

const std::string kRoute =
    "[rt]\nurl = \"https://rt.example.com\"\n[[route]]\naddress = \"bugs@example.com\"\n";

IpAddress ip(const std::string& text) {
    std::optional<IpAddress> a = parse_ip_address(text);
    EXPECT_TRUE(a) << text;
    return a.value_or(IpAddress{});
}

Network net(const std::string& text) {
    Network n;
    Problem p = parse_network(text, n);
    EXPECT_FALSE(p) << text << ": " << p.value_or("");
    return n;
}

std::vector<std::string> errors_of(const std::string& text) {
    std::vector<std::string> out;
    for (const ConfigError& error : load_config_string(text, "t.toml").errors)
        out.push_back(error.to_string());
    return out;
}

TEST(Network, AddressesParseAndPrint) {
    EXPECT_EQ(ip("192.0.2.10").to_string(), "192.0.2.10");
    EXPECT_FALSE(ip("192.0.2.10").v6);
    EXPECT_EQ(ip("2001:DB8::25").to_string(), "2001:db8::25");
    EXPECT_TRUE(ip("2001:db8::25").v6);
    for (const char* bad : {"", "192.0.2", "192.0.2.256", "0x7f.0.0.1", "192.0.2.1 ",
                            "host.example", "2001:db8:::1", "[::1]", "1.2.3.4/32"}) {
        EXPECT_FALSE(parse_ip_address(bad)) << bad;
    }
}

TEST(Network, Ipv4MappedAddressIsTheIpv4Address) {
    const IpAddress mapped = ip("::ffff:192.0.2.10");
    EXPECT_FALSE(mapped.v6);
    EXPECT_EQ(mapped, ip("192.0.2.10"));
    EXPECT_TRUE(net("192.0.2.0/24").contains(mapped));
    EXPECT_FALSE(net("::/0").contains(mapped));  // an IPv4 client is in no IPv6 network
}

TEST(Network, Matching) {
    EXPECT_TRUE(net("192.0.2.0/24").contains(ip("192.0.2.255")));
    EXPECT_FALSE(net("192.0.2.0/24").contains(ip("192.0.3.0")));
    EXPECT_TRUE(net("192.0.2.7").contains(ip("192.0.2.7")));
    EXPECT_FALSE(net("192.0.2.7").contains(ip("192.0.2.6")));
    EXPECT_TRUE(net("0.0.0.0/0").contains(ip("203.0.113.1")));
    EXPECT_FALSE(net("0.0.0.0/0").contains(ip("2001:db8::1")));
    EXPECT_TRUE(net("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
    EXPECT_FALSE(net("2001:db8::/32").contains(ip("2001:db9::1")));
    EXPECT_TRUE(net("10.0.0.0/9").contains(ip("10.127.255.255")));
    EXPECT_FALSE(net("10.0.0.0/9").contains(ip("10.128.0.0")));
    EXPECT_TRUE(net("::1").contains(ip("::1")));
    EXPECT_EQ(net("2001:DB8::/32").to_string(), "2001:db8::/32");
    EXPECT_EQ(net("192.0.2.7").to_string(), "192.0.2.7/32");
}

TEST(Network, BadNetworksSayWhy) {
    Network n;
    EXPECT_EQ(
        parse_network("192.0.2.1/24", n),
        "has bits set past the /24 prefix; the network is \"192.0.2.0/24\", got \"192.0.2.1/24\"");
    EXPECT_EQ(parse_network("192.0.2.0/33", n),
              "the prefix length after '/' must be 0 to 32, got \"192.0.2.0/33\"");
    EXPECT_EQ(parse_network("2001:db8::/129", n),
              "the prefix length after '/' must be 0 to 128, got \"2001:db8::/129\"");
    EXPECT_EQ(parse_network("192.0.2.0/", n),
              "the prefix length after '/' must be 0 to 32, got \"192.0.2.0/\"");
    EXPECT_EQ(parse_network("192.0.2.0/+8", n),
              "the prefix length after '/' must be 0 to 32, got \"192.0.2.0/+8\"");
    EXPECT_EQ(parse_network("::ffff:192.0.2.0/120", n),
              "write an IPv4 network as IPv4 (IPv4-mapped clients are matched against it), got "
              "\"::ffff:192.0.2.0/120\"");
    EXPECT_EQ(
        parse_network("localhost", n),
        "must be an IP network such as \"192.0.2.0/24\" or \"2001:db8::/32\", or one address; got "
        "\"localhost\"");
}

TEST(TrustConfig, Defaults) {
    const Config config = load_config_string(kRoute, "t.toml").config.value();
    EXPECT_EQ(config.untrusted_action, UntrustedAction::Downgrade);
    EXPECT_TRUE(config.trusted_networks.empty());
    EXPECT_TRUE(config.trusted_authserv_ids.empty());
    EXPECT_TRUE(config.authserv_id_with_job_id);
    EXPECT_FALSE(config.routes[0].untrusted_action);
    EXPECT_EQ(config.untrusted_action_for(config.routes[0]), UntrustedAction::Downgrade);
    EXPECT_EQ(to_string(UntrustedAction::Downgrade), "downgrade");
    EXPECT_EQ(to_string(UntrustedAction::Reject), "reject");
}

TEST(TrustConfig, EveryKeyRead) {
    const LoadResult result = load_config_string(R"(
untrusted_action = "reject"
trusted_networks = ["127.0.0.0/8", "::1", "2001:DB8::/32"]
trusted_authserv_ids = ["MX.Example.com", "mx2.example.com"]
authserv_id_with_job_id = false
[rt]
url = "https://rt.example.com"
[[route]]
address = "bugs@example.com"
untrusted_action = "downgrade"
[[route]]
address = "staff@example.com"
)",
                                                 "t.toml");
    for (const ConfigError& e : result.errors) ADD_FAILURE() << e.to_string();
    ASSERT_TRUE(result.config);
    const Config& config = *result.config;
    EXPECT_EQ(config.untrusted_action, UntrustedAction::Reject);
    ASSERT_EQ(config.trusted_networks.size(), 3u);
    EXPECT_EQ(config.trusted_networks[0].to_string(), "127.0.0.0/8");
    EXPECT_EQ(config.trusted_networks[1].to_string(), "::1/128");
    EXPECT_EQ(config.trusted_networks[2].to_string(), "2001:db8::/32");
    EXPECT_EQ(config.trusted_authserv_ids,
              (std::vector<std::string>{"mx.example.com", "mx2.example.com"}));
    EXPECT_FALSE(config.authserv_id_with_job_id);
    EXPECT_EQ(config.untrusted_action_for(config.routes[0]), UntrustedAction::Downgrade);
    EXPECT_EQ(config.untrusted_action_for(config.routes[1]), UntrustedAction::Reject);
}

TEST(TrustConfig, ErrorsNameFileLineAndKey) {
    EXPECT_EQ(errors_of("untrusted_action = \"drop\"\n" + kRoute),
              (std::vector<std::string>{"t.toml:1:20: untrusted_action: must be one of "
                                        "\"downgrade\", \"reject\", got \"drop\""}));
    EXPECT_EQ(errors_of(kRoute + "untrusted_action = true\n"),
              (std::vector<std::string>{
                  "t.toml:5:20: route[1].untrusted_action: must be one of \"downgrade\", "
                  "\"reject\", got a boolean"}));
    EXPECT_EQ(
        errors_of("trusted_networks = [\"192.0.2.0/24\", \"192.0.2.1/24\", 7]\n" + kRoute),
        (std::vector<std::string>{
            "t.toml:1:37: trusted_networks[2]: has bits set past the /24 prefix; the network is "
            "\"192.0.2.0/24\", got \"192.0.2.1/24\"",
            "t.toml:1:53: trusted_networks[3]: must be a string, got an integer"}));
    EXPECT_EQ(errors_of("trusted_networks = \"127.0.0.1\"\n" + kRoute),
              (std::vector<std::string>{
                  "t.toml:1:20: trusted_networks: must be an array of networks, e.g. "
                  "[\"192.0.2.0/24\", \"2001:db8::/32\"], got a string (\"127.0.0.1\")"}));
    EXPECT_EQ(
        errors_of("trusted_authserv_ids = [\"mx.example.com/4ABC12\"]\n" + kRoute),
        (std::vector<std::string>{
            "t.toml:1:25: trusted_authserv_ids[1]: must be an authserv-id your verifiers write "
            "(OpenDKIM's "
            "and OpenDMARC's AuthservID, by default the host name), such as \"mx.example.com\": "
            "letters, "
            "digits, '.', '-' and '_', without the \"/queue-id\" AuthservIDWithJobID adds; got "
            "\"mx.example.com/4ABC12\""}));
    EXPECT_EQ(errors_of("authserv_id_with_job_id = \"yes\"\n" + kRoute),
              (std::vector<std::string>{"t.toml:1:27: authserv_id_with_job_id: must be true or "
                                        "false, got a string (\"yes\")"}));
}

}  // namespace
}  // namespace rtm
