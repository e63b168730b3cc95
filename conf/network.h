// network.h — IP addresses and networks as trusted_networks names them and
// the milter meets them (the SMTP client's address): parsing, with what is
// wrong worded for the postmaster; canonical text; matching. An IPv4-mapped
// IPv6 address (::ffff:a.b.c.d) is the IPv4 address it maps, so a client
// that reaches an IPv6 socket over IPv4 matches the IPv4 networks. Pure
// value logic: no sockets, no name lookups.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "value_checks.h"  // Problem

namespace rtm {

struct IpAddress {
    bool v6 = false;
    std::array<std::uint8_t, 16> bytes{};  // IPv4: the first 4, network order

    static IpAddress v4(const std::uint8_t (&octets)[4]);
    // IPv4-mapped addresses come out as IPv4.
    static IpAddress from_v6(const std::uint8_t (&octets)[16]);
    std::string to_string() const;
    int bits() const { return v6 ? 128 : 32; }
    bool operator==(const IpAddress&) const = default;
};

// "192.0.2.10", "2001:db8::25", "::ffff:192.0.2.10" (taken as IPv4).
std::optional<IpAddress> parse_ip_address(std::string_view text);

struct Network {
    IpAddress base;  // host bits zero
    int prefix = 0;

    bool contains(const IpAddress& address) const;
    std::string to_string() const;  // "192.0.2.0/24", "2001:db8::/32"
};

// "192.0.2.0/24", "2001:db8::/32", or a single address ("192.0.2.7" is
// 192.0.2.7/32). Refused: host bits set past the prefix (a typo for the
// network, or for a longer prefix), IPv4-mapped networks (write IPv4),
// names, and anything inet_pton would not take.
Problem parse_network(std::string_view text, Network& out);

// Where a listener of ours (the metrics listener) binds: an address and a
// port, "127.0.0.1:9731" or "[::1]:9731". Addresses only: a name could
// resolve to more than was meant.
struct ListenAddress {
    IpAddress address;
    unsigned port = 0;
    bool loopback() const;          // 127.0.0.0/8 or ::1
    std::string to_string() const;  // as written: "127.0.0.1:9731", "[::1]:9731"
};
Problem parse_listen_address(std::string_view text, ListenAddress& out);

}  // namespace rtm
