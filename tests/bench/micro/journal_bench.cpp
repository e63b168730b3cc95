// journal_bench.cpp — the duplicate journal's share of one delivery: the
// lookup before the POST, the "in doubt" row when the request is written
// and the "delivered" row when RT answers, on a fresh SQLite file (WAL,
// synchronous=NORMAL, as rt-milter opens it), with a new key per message as
// in real traffic.
#include <benchmark/benchmark.h>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "journal.h"

namespace rtm {
namespace {

class TempJournal {
public:
    TempJournal() {
        char tmpl[] = "/tmp/rtm-journal-bench.XXXXXX";
        if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
        dir_ = tmpl;
        std::string error;
        journal_ = Journal::open(dir_ + "/journal.sqlite", 432000, error);
        if (!journal_) throw std::runtime_error(error);
    }
    ~TempJournal() {
        journal_.reset();
        std::filesystem::remove_all(dir_);
    }
    Journal& operator*() { return *journal_; }

private:
    std::string dir_;
    std::unique_ptr<Journal> journal_;
};

void BM_JournalOneDelivery(benchmark::State& state) {
    TempJournal journal;
    long n = 0;
    const std::string target = "http://127.0.0.1:8080|General|correspond|||<alice@example.org>|id:";
    for (auto _ : state) {
        const std::string key = target + "<" + std::to_string(++n) + ".bench@example.org>";
        Journal::State found;
        if (!(*journal).lookup(key, found)) state.SkipWithError("lookup");
        if (!(*journal).record(key, Journal::State::InDoubt, "uploaded, awaiting RT's answer"))
            state.SkipWithError("in doubt");
        if (!(*journal).record(key, Journal::State::Delivered, "RT said: ok"))
            state.SkipWithError("delivered");
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JournalOneDelivery)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace rtm
