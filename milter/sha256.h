// sha256.h — Sha256: a small incremental SHA-256 (FIPS 180-4), for the
// duplicate journal's digest of messages without a Message-ID. No outside
// dependency; tested against the FIPS examples in tests/unit.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace rtm {

class Sha256 {
public:
    Sha256();
    void update(std::string_view bytes);
    std::string hex();  // finishes; call once

private:
    void block(const unsigned char* p);

    std::array<std::uint32_t, 8> h_;
    std::array<unsigned char, 64> buffer_{};
    std::size_t used_ = 0;
    std::uint64_t length_ = 0;
};

}  // namespace rtm
