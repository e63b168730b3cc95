// network.cpp — IpAddress and Network of network.h, on inet_pton/inet_ntop
// (which take only the plain forms: dotted-quad decimal IPv4, RFC 4291 IPv6).
#include "network.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace rtm {
namespace {

constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool is_mapped(const std::uint8_t (&octets)[16]) {
    return std::memcmp(octets, kMappedPrefix, sizeof kMappedPrefix) == 0;
}

// The address as typed, before IPv4-mapped addresses are folded into IPv4.
struct Parsed {
    IpAddress address;
    bool mapped = false;
};

std::optional<Parsed> parse_literal(std::string_view text) {
    if (text.empty() || text.size() > 64) return std::nullopt;
    const std::string copy(text);  // inet_pton wants a NUL-terminated string
    if (copy.find(':') == std::string::npos) {
        std::uint8_t octets[4];
        if (inet_pton(AF_INET, copy.c_str(), octets) != 1) return std::nullopt;
        return Parsed{IpAddress::v4(octets), false};
    }
    std::uint8_t octets[16];
    if (inet_pton(AF_INET6, copy.c_str(), octets) != 1) return std::nullopt;
    return Parsed{IpAddress::from_v6(octets), is_mapped(octets)};
}

bool host_bits_zero(const IpAddress& a, int prefix) {
    for (int bit = prefix; bit < a.bits(); ++bit)
        if (a.bytes[bit / 8] & (0x80 >> (bit % 8))) return false;
    return true;
}

IpAddress masked(IpAddress a, int prefix) {
    for (int bit = prefix; bit < a.bits(); ++bit)
        a.bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80 >> (bit % 8)));
    return a;
}

}  // namespace

IpAddress IpAddress::v4(const std::uint8_t (&octets)[4]) {
    IpAddress a;
    std::copy(octets, octets + 4, a.bytes.begin());
    return a;
}

IpAddress IpAddress::from_v6(const std::uint8_t (&octets)[16]) {
    IpAddress a;
    if (is_mapped(octets)) {
        std::copy(octets + 12, octets + 16, a.bytes.begin());
        return a;
    }
    a.v6 = true;
    std::copy(octets, octets + 16, a.bytes.begin());
    return a;
}

std::string IpAddress::to_string() const {
    char text[INET6_ADDRSTRLEN] = "";
    inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), text, sizeof text);
    return text;
}

std::optional<IpAddress> parse_ip_address(std::string_view text) {
    std::optional<Parsed> parsed = parse_literal(text);
    if (!parsed) return std::nullopt;
    return parsed->address;
}

bool Network::contains(const IpAddress& address) const {
    return address.v6 == base.v6 && masked(address, prefix) == base;
}

std::string Network::to_string() const {
    return base.to_string() + "/" + std::to_string(prefix);
}

Problem parse_network(std::string_view text, Network& out) {
    const std::size_t slash = text.find('/');
    const std::string_view address_text = text.substr(0, slash);
    std::optional<Parsed> parsed = parse_literal(address_text);
    if (!parsed) {
        return "must be an IP network such as \"192.0.2.0/24\" or \"2001:db8::/32\", or one "
               "address; got " +
               quoted(text);
    }
    if (parsed->mapped) {
        return "write an IPv4 network as IPv4 (IPv4-mapped clients are matched against it), got " +
               quoted(text);
    }
    Network network;
    network.base = parsed->address;
    network.prefix = network.base.bits();
    if (slash != std::string_view::npos) {
        const std::string_view digits = text.substr(slash + 1);
        int prefix = -1;
        const auto [end, error] =
            std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
        if (digits.empty() || error != std::errc() || end != digits.data() + digits.size() ||
            prefix < 0 || prefix > network.base.bits()) {
            return "the prefix length after '/' must be 0 to " +
                   std::to_string(network.base.bits()) + ", got " + quoted(text);
        }
        network.prefix = prefix;
    }
    if (!host_bits_zero(network.base, network.prefix)) {
        Network meant{masked(network.base, network.prefix), network.prefix};
        return "has bits set past the /" + std::to_string(network.prefix) +
               " prefix; the network is " + quoted(meant.to_string()) + ", got " + quoted(text);
    }
    out = network;
    return std::nullopt;
}

bool ListenAddress::loopback() const {
    if (!address.v6) return address.bytes[0] == 127;
    static const std::array<std::uint8_t, 16> kLoopback6{0, 0, 0, 0, 0, 0, 0, 0,
                                                         0, 0, 0, 0, 0, 0, 0, 1};
    return address.bytes == kLoopback6;
}

std::string ListenAddress::to_string() const {
    const std::string host = address.to_string();
    return (address.v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Problem parse_listen_address(std::string_view text, ListenAddress& out) {
    const std::string example =
        "give an address and a port, e.g. \"127.0.0.1:9731\" or \"[::1]:9731\"";
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return example + ", got " + quoted(text);
    std::string_view host = text.substr(0, colon);
    const std::string_view port = text.substr(colon + 1);
    const bool bracketed = host.front() == '[' && host.back() == ']' && host.size() > 2;
    if (bracketed) host = host.substr(1, host.size() - 2);
    unsigned number = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || number < 1 ||
        number > 65535)
        return "the port must be a number from 1 to 65535, got " + quoted(port);
    const std::optional<Parsed> parsed = parse_literal(host);
    if (!parsed)
        return "the host must be an IP address (a name could resolve to more than meant), got " +
               quoted(host);
    if ((host.find(':') != std::string_view::npos) != bracketed)
        return "write an IPv6 address in [brackets], e.g. \"[::1]:9731\", got " + quoted(text);
    out.address = parsed->address;
    out.port = number;
    return std::nullopt;
}

}  // namespace rtm
