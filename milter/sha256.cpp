// sha256.cpp — Sha256 over libcrypto's EVP digest interface (the digest
// fetched from the default provider once per process).
#include "sha256.h"

#include <openssl/evp.h>

#include <new>
#include <stdexcept>

#include "text.h"

namespace rtm {
namespace {

void check(int ok, const char* what) {
    if (ok != 1) throw std::runtime_error(std::string("SHA-256: libcrypto's ") + what + " failed");
}

}  // namespace

void Sha256::Free::operator()(evp_md_ctx_st* ctx) const {
    EVP_MD_CTX_free(ctx);
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_) throw std::bad_alloc();
    // Fetched once: EVP_sha256() would have libcrypto look the
    // implementation up again (locks, a provider query) at every message.
    static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
    if (!sha256) throw std::runtime_error("SHA-256: libcrypto has no SHA2-256");
    check(EVP_DigestInit_ex(ctx_.get(), sha256, nullptr), "EVP_DigestInit_ex");
}

void Sha256::update(std::string_view bytes) {
    check(EVP_DigestUpdate(ctx_.get(), bytes.data(), bytes.size()), "EVP_DigestUpdate");
}

std::string Sha256::hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    check(EVP_DigestFinal_ex(ctx_.get(), digest, &size), "EVP_DigestFinal_ex");
    return to_hex(std::string_view(reinterpret_cast<const char*>(digest), size));
}

}  // namespace rtm
