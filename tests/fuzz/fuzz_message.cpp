// fuzz_message.cpp — message assembly: MessageBuilder fed with the headers
// and body chunks of a message taken from the input (NUL, bare CR, 8-bit,
// long lines all pass through), then MultipartBody over the result.
//
// Input: one control byte, then the message as an MTA would see it: header
// lines "Name:value" (continuation lines that start with a space or tab are
// folded into the value, line ends kept) up to the first empty line, then
// the body. Control byte: bit 0 lead_space_kept (SMFIP_HDR_LEADSPC), bit 1
// spill to disk after 64 bytes, bits 2+5+6 all set: repeat the body past
// 1 MiB (spills with the default limit; slow, so 1 input in 8), bit 3 a
// ticket field, bit 4 an extension header, bits 3-7 seed the chunk sizes.
//
// Checks (abort on mismatch): the Message equals what the callbacks were
// given with every CRLF made LF (whatever the chunking), Message::read_at
// at random offsets and sizes, and MultipartBody: size() == to_string()
// .size(), streamed read_at() at random chunk sizes == to_string(), and the
// message sits intact just before the closing delimiter.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "message_builder.h"
#include "multipart.h"
#include "routing.h"

namespace {

struct Rng {  // xorshift: chunk sizes, reproducible from the input
    std::uint64_t s;
    std::size_t next(std::size_t bound) {  // 1..bound
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        return bound ? 1 + s % bound : 1;
    }
};

// CRLF -> LF over the whole stream; a bare CR stays.
std::string crlf_to_lf(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
        out += s[i];
    }
    return out;
}

// Read sizes: mostly small (many segment boundaries), large for big messages.
std::size_t read_size(Rng& rng, std::uint64_t total, std::size_t small) {
    return rng.next(total > 100000 || rng.next(4) == 1 ? 65536 : small);
}

std::string read_all(const rtm::Message& m, Rng& rng) {
    std::string out;
    std::vector<char> buf(70000);
    std::uint64_t off = 0;
    for (;;) {
        const std::size_t want = read_size(rng, m.size(), 97);
        const long n = m.read_at(off, buf.data(), want);
        FUZZ_CHECK(n >= 0, "Message::read_at works");
        if (n == 0) break;
        out.append(buf.data(), static_cast<std::size_t>(n));
        off += static_cast<std::uint64_t>(n);
    }
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const unsigned control = data[0];
    const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
    const bool lead_space_kept = control & 1;
    rtm::SpoolOptions spool;
    if (control & 2) spool.memory_limit = 64;
    Rng rng{0x9e3779b97f4a7c15ULL ^ (control >> 3) ^ (std::uint64_t{size} << 32)};

    rtm::MessageBuilder builder(spool, lead_space_kept);
    std::string given;  // what the callbacks were given, as one stream
    std::size_t pos = 0;
    // Headers: one per line, continuation lines folded in, until an empty line.
    while (pos < text.size()) {
        std::size_t eol = text.find('\n', pos);
        std::size_t next = eol == std::string_view::npos ? text.size() : eol + 1;
        std::string_view line = text.substr(pos, next - pos);
        if (line == "\n" || line == "\r\n") {
            pos = next;
            break;
        }
        while (next < text.size() && (text[next] == ' ' || text[next] == '\t')) {  // folding
            std::size_t e = text.find('\n', next);
            next = e == std::string_view::npos ? text.size() : e + 1;
        }
        std::string_view whole = text.substr(pos, next - pos);
        if (whole.ends_with("\r\n"))
            whole.remove_suffix(2);
        else if (whole.ends_with('\n'))
            whole.remove_suffix(1);
        const std::size_t colon = whole.find(':');
        const std::string_view name = whole.substr(0, colon);
        const std::string_view value =
            colon == std::string_view::npos ? std::string_view() : whole.substr(colon + 1);
        FUZZ_CHECK(builder.header(name, value).is_ok(), "header()");
        given.append(name)
            .append(":")
            .append(lead_space_kept ? "" : " ")
            .append(value)
            .append("\r\n");
        pos = next;
    }
    FUZZ_CHECK(builder.end_of_headers().is_ok(), "end_of_headers()");
    given += "\r\n";

    // The body, in chunks of random size .
    const std::string_view body = text.substr(std::min(pos, text.size()));
    if ((control & 0x64) == 0x64 && !body.empty()) {
        // Past 1 MiB: the body repeated into one chunk of >= 64 KiB, fed whole.
        std::string chunk;
        while (chunk.size() < 65536) chunk.append(body);
        for (std::size_t total = 0; total < (1 << 20) + 65536; total += chunk.size()) {
            FUZZ_CHECK(builder.body(chunk).is_ok(), "body()");
            given.append(chunk);
        }
    } else {
        for (std::size_t off = 0; off < body.size();) {  // chunks of random size
            const std::size_t n = std::min(body.size() - off, rng.next(64));
            FUZZ_CHECK(builder.body(body.substr(off, n)).is_ok(), "body()");
            off += n;
        }
        given.append(body);
    }
    FUZZ_CHECK(builder.finish().is_ok(), "finish()");

    const rtm::Message& m = builder.message();
    const std::string expected = crlf_to_lf(given);
    FUZZ_CHECK(m.size() == expected.size() && builder.size() == m.size(), "message size");
    FUZZ_CHECK(read_all(m, rng) == expected, "message bytes are the given ones, CRLF -> LF");
    if (spool.memory_limit == 64 && expected.size() > 64)
        FUZZ_CHECK(m.on_disk(), "spilled past the limit");

    // The POST body: fields of a Target, the prefix rt-milter puts before it.
    rtm::Target target{"http://rt.example.com", "General", "correspond", std::nullopt};
    if (control & 8) target.ticket = "42";
    const std::vector<rtm::FormField> fields = rtm::form_fields(target);
    const std::string prefix =
        rtm::posted_prefix("sender@example.org", (control & 16) ? "ext" : "");
    const rtm::MultipartBody mp(fields, prefix, m);
    const std::string whole = mp.to_string();
    FUZZ_CHECK(mp.size() == whole.size(), "size() is the body's size");
    const std::string tail = "\r\n--" + mp.boundary() + "--\r\n";
    FUZZ_CHECK(whole.size() >= tail.size() + expected.size() + prefix.size(),
               "body holds the message");
    FUZZ_CHECK(whole.ends_with(tail), "closing delimiter last");
    FUZZ_CHECK(std::string_view(whole).substr(whole.size() - tail.size() - expected.size(),
                                              expected.size()) == expected,
               "message intact before the closing delimiter");
    FUZZ_CHECK(
        std::string_view(whole).substr(whole.size() - tail.size() - expected.size() - prefix.size(),
                                       prefix.size()) == prefix,
        "prefix just before the message");

    std::string streamed;
    std::vector<char> buf(70000);
    for (std::uint64_t off = 0;;) {
        const std::size_t want = read_size(rng, mp.size(), 131);
        const long n = mp.read_at(off, buf.data(), want);
        FUZZ_CHECK(n >= 0 && static_cast<std::size_t>(n) <= want, "MultipartBody::read_at count");
        if (n == 0) break;
        streamed.append(buf.data(), static_cast<std::size_t>(n));
        off += static_cast<std::uint64_t>(n);
    }
    FUZZ_CHECK(streamed == whole, "streamed read_at() == to_string()");
    FUZZ_CHECK(mp.read_at(mp.size() + 5, buf.data(), 10) == 0, "reading past the end gives 0");
    return 0;
}
