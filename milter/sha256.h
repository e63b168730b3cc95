// sha256.h — Sha256: an incremental SHA-256 for the duplicate journal's
// digest of messages without a Message-ID, computed by libcrypto's EVP
// digest (OpenSSL, which libcurl loads already). Checked against the FIPS
// 180-4 examples in tests/unit (journal_test.cpp).
#pragma once

#include <memory>
#include <string>
#include <string_view>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX, kept out of this header

namespace rtm {

// Movable, not copyable. A failure inside libcrypto (no memory, a provider
// without SHA-256) throws: a callback turns that into a tempfail.
class Sha256 {
  public:
    Sha256();
    void update(std::string_view bytes);
    std::string hex();  // finishes; call once

  private:
    struct Free {
        void operator()(evp_md_ctx_st* ctx) const;
    };
    std::unique_ptr<evp_md_ctx_st, Free> ctx_;
};

}  // namespace rtm
