// multipart_bench.cpp — the POST body, per delivery: MultipartBody framing
// a captured Message (built by MessageBuilder with Session's 1 MiB memory
// threshold, so the 10 MiB one is read back from its spool file with
// pread), read out whole from offset 0 the way RtClient's libcurl read
// callback does, for 1 KiB, 100 KiB and 10 MiB, in 64 KiB reads (libcurl's
// default CURLOPT_UPLOAD_BUFFERSIZE, which RtClient leaves alone) and 16 KiB
// (CURL_MAX_WRITE_SIZE); plus the per-POST setup (form fields, Return-Path
// prefix, random boundary).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench_data.h"
#include "multipart.h"
#include "routing.h"  // posted_prefix
#include "target.h"

namespace rtm::bench {
namespace {

Target bench_target() {
    return Target{.url = "https://rt.example.com",
                  .queue = "General",
                  .action = "correspond",
                  .ticket = "123"};
}

// Args: message body bytes, bytes asked for per read callback.
void BM_MultipartRead(benchmark::State& state) {
    const auto body_size = static_cast<std::size_t>(state.range(0));
    const auto read_size = static_cast<std::size_t>(state.range(1));
    MessageBuilder builder({.memory_limit = kSessionMemoryLimit, .dir = {}},
                           /*lead_space_kept=*/true);
    if (Status s = feed(builder, mail_headers(true), crlf_body(body_size)); !s) {
        state.SkipWithError(s.error().c_str());
        return;
    }
    const MultipartBody body(form_fields(bench_target()), posted_prefix("alice@example.org", "123"),
                             builder.message());
    std::vector<char> buf(read_size);
    for (auto _ : state) {
        std::uint64_t offset = 0;
        for (;;) {
            const long n = body.read_at(offset, buf.data(), buf.size());
            if (n <= 0) {
                if (n < 0) state.SkipWithError("spooled message unreadable");
                break;
            }
            benchmark::DoNotOptimize(buf.data());
            benchmark::ClobberMemory();
            offset += static_cast<std::uint64_t>(n);
        }
        if (offset != body.size()) {
            state.SkipWithError("read a different size than size() announces");
            break;
        }
    }
    state.SetLabel(builder.message().on_disk() ? "spool file" : "memory");
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_MultipartRead)
    ->ArgNames({"bytes", "read"})
    ->Args({1 * kKiB, 64 * kKiB})
    ->Args({100 * kKiB, 64 * kKiB})
    ->Args({100 * kKiB, 16 * kKiB})
    ->Args({10 * kMiB, 64 * kKiB})
    ->Args({10 * kMiB, 16 * kKiB})
    ->Unit(benchmark::kMicrosecond);

// What post_all does before each upload: fields, prefix, boundary (getrandom),
// the framing strings and the Content-Type header value.
void BM_MultipartSetup(benchmark::State& state) {
    MessageBuilder builder({.memory_limit = kSessionMemoryLimit, .dir = {}},
                           /*lead_space_kept=*/true);
    if (Status s = feed(builder, mail_headers(true), crlf_body(1 * kKiB)); !s) {
        state.SkipWithError(s.error().c_str());
        return;
    }
    const Target target = bench_target();
    for (auto _ : state) {
        MultipartBody body(form_fields(target), posted_prefix("alice@example.org", "123"),
                           builder.message());
        std::string content_type = body.content_type();
        benchmark::DoNotOptimize(content_type);
        benchmark::DoNotOptimize(body.size());
    }
}
BENCHMARK(BM_MultipartSetup);

}  // namespace
}  // namespace rtm::bench
