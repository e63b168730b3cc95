// bench_data.h — the synthetic mail shared by message_bench.cpp and
// multipart_bench.cpp: a typical header block (trace headers, Message-ID
// optional) and a CRLF body of an exact size, fed to a MessageBuilder the way
// the milter's callbacks do (headers, end of headers, body in libmilter's
// chunks, finish).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "message_builder.h"

namespace rtm::bench {

// libmilter's MILTER_CHUNK_SIZE: the largest body chunk xxfi_body is handed
// (64 KiB - 1; being odd, chunk ends fall inside CRLF pairs now and then).
inline constexpr std::size_t kMilterChunk = 65535;

// The memory threshold Session::data() gives each message's spool.
inline constexpr std::size_t kSessionMemoryLimit = std::size_t{256} << 10;

inline constexpr std::int64_t kKiB = 1024;
inline constexpr std::int64_t kMiB = 1024 * 1024;

using Header = std::pair<std::string, std::string>;

// Values as the MTA passes them with SMFIP_HDR_LEADSPC: the space after the
// colon kept, continuation lines folded with CRLF + tab.
inline std::vector<Header> mail_headers(bool with_message_id) {
    std::vector<Header> h = {
        {"Received",
         " from mail.example.org (mail.example.org [192.0.2.10])\r\n\tby mx.example.com "
         "(Postfix) with ESMTPS id 4F3A21C0123\r\n\tfor <rt@example.com>; Tue, 4 Jun 2024 "
         "10:21:33 +0000 (UTC)"},
        {"Received",
         " from [10.0.0.7] (client.example.org [10.0.0.7])\r\n\tby mail.example.org with "
         "ESMTPSA id 9E2B7A\r\n\tfor <rt@example.com>; Tue, 4 Jun 2024 10:21:32 +0000"},
        {"DKIM-Signature",
         " v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=mail;\r\n\tt=1717496492; "
         "bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\th=From:To:Subject:Date;"
         " b=dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBqdXN0IGZpbGxlcg=="},
        {"From", " Alice Example <alice@example.org>"},
        {"To", " RT Support <rt@example.com>"},
        {"Subject", " Printer on the third floor keeps jamming [please help]"},
        {"Date", " Tue, 4 Jun 2024 12:21:31 +0200"},
        {"MIME-Version", " 1.0"},
        {"Content-Type", " text/plain; charset=utf-8; format=flowed"},
        {"Content-Transfer-Encoding", " 8bit"},
        {"User-Agent", " Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Thunderbird/115.11.0"},
    };
    if (with_message_id) {
        h.insert(h.begin() + 7,
                 {"Message-ID", " <3f1c9a2e-77b4-4c0e-9d1a-5b2e8f0c4d11@example.org>"});
    }
    return h;
}

// What the headers weigh as the MTA passes them ("Name:" value CRLF).
inline std::size_t header_bytes(const std::vector<Header>& headers) {
    std::size_t n = 2;  // the empty line ending the header block
    for (const auto& [name, value] : headers) n += name.size() + 1 + value.size() + 2;
    return n;
}

// Exactly n bytes of printable text in lines of 76 characters plus CRLF;
// deterministic, cached (the 10 MiB body is built once per process).
inline const std::string& crlf_body(std::size_t n) {
    static std::map<std::size_t, std::string> cache;
    auto it = cache.find(n);
    if (it != cache.end()) return it->second;
    std::string body;
    body.reserve(n);
    std::uint32_t x = 0x2545F491u;
    while (body.size() < n) {
        for (int i = 0; i < 76 && body.size() < n; ++i) {
            x = x * 1664525u + 1013904223u;
            const unsigned r = (x >> 24) % 64;
            body += r < 10 ? ' ' : static_cast<char>('!' + (r * 7) % 94);
        }
        if (body.size() < n) body += '\r';
        if (body.size() < n) body += '\n';
    }
    return cache.emplace(n, std::move(body)).first->second;
}

// The callbacks' sequence for one message; the first failure is returned.
inline Status feed(MessageBuilder& builder, const std::vector<Header>& headers,
                   std::string_view body) {
    for (const auto& [name, value] : headers) {
        if (Status s = builder.header(name, value); !s) return s;
    }
    if (Status s = builder.end_of_headers(); !s) return s;
    while (!body.empty()) {
        const std::string_view chunk = body.substr(0, kMilterChunk);
        if (Status s = builder.body(chunk); !s) return s;
        body.remove_prefix(chunk.size());
    }
    return builder.finish();
}

}  // namespace rtm::bench
