// message_bench.cpp — message capture, per message: MessageBuilder fed as
// the milter's header/body callbacks feed it (body in libmilter's 64 KiB
// chunks, CRLF line ends), through finish() and identity() (the duplicate
// journal's key: the Message-ID, or SHA-256 of the message without one),
// for 1 KiB, 100 KiB and 10 MiB, with Session's 1 MiB memory threshold (the
// 10 MiB message spills to an unlinked file in $TMPDIR, else /tmp). Two
// baselines split the cost: plain Message::append of the same bytes (the
// storage alone, so builder minus baseline is CRLF→LF and header handling)
// and rt-milter's Sha256 alone (what a message without Message-ID adds).
// No all-in-memory 10 MiB variant: a 10 MiB std::string grown by doubling
// measures glibc's heap state and page faults more than the builder (plain
// appends of it took 2 ms in one run, 22 ms in another), and Session never
// keeps more than 1 MiB in memory.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "bench_data.h"
#include "message.h"
#include "message_builder.h"
#include "sha256.h"

namespace rtm::bench {
namespace {

const SpoolOptions kSessionSpool{.memory_limit = kSessionMemoryLimit, .dir = {}};

// Args: message body bytes; Message-ID present (1) or not (0: the SHA-256 path).
void BM_MessageBuilder(benchmark::State& state) {
    const bool with_id = state.range(1) != 0;
    const std::vector<Header> headers = mail_headers(with_id);
    const std::string& body = crlf_body(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        MessageBuilder builder(kSessionSpool, /*lead_space_kept=*/true);
        if (Status s = feed(builder, headers, body); !s) {
            state.SkipWithError(s.error().c_str());
            break;
        }
        std::string identity = builder.identity();
        benchmark::DoNotOptimize(identity);
        benchmark::DoNotOptimize(builder.size());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() *
                            static_cast<std::int64_t>(header_bytes(headers) + body.size()));
}
BENCHMARK(BM_MessageBuilder)
    ->ArgNames({"bytes", "msgid"})
    ->ArgsProduct({{1 * kKiB, 100 * kKiB, 10 * kMiB}, {1, 0}})
    ->Unit(benchmark::kMicrosecond);

// Baseline: the same body bytes into a Message, same threshold and chunks,
// no conversion (memcpy below 1 MiB, write(2) to the spool file past it).
void BM_MessageAppendRaw(benchmark::State& state) {
    const std::string& body = crlf_body(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        Message message(kSessionSpool);
        for (std::size_t off = 0; off < body.size(); off += kMilterChunk) {
            if (Status s = message.append(std::string_view(body).substr(off, kMilterChunk)); !s) {
                state.SkipWithError(s.error().c_str());
                break;
            }
        }
        benchmark::DoNotOptimize(message.size());
        benchmark::ClobberMemory();
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_MessageAppendRaw)
    ->ArgName("bytes")
    ->Arg(100 * kKiB)
    ->Arg(10 * kMiB)
    ->Unit(benchmark::kMicrosecond);

// Baseline: rt-milter's own SHA-256 over 1 MiB in the same chunks.
void BM_Sha256(benchmark::State& state) {
    const std::string& data = crlf_body(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
        Sha256 digest;
        for (std::size_t off = 0; off < data.size(); off += kMilterChunk) {
            digest.update(std::string_view(data).substr(off, kMilterChunk));
        }
        std::string hex = digest.hex();
        benchmark::DoNotOptimize(hex);
    }
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(data.size()));
}
BENCHMARK(BM_Sha256)->ArgName("bytes")->Arg(1 * kMiB)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace rtm::bench
