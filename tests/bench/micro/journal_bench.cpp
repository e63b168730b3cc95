// journal_bench.cpp — the duplicate journal's share of one delivery as
// rt-milter ships it: the claim before the POST and the "delivered" row when
// RT answers, with a new key per message as in real traffic: on a fresh SQLite file (WAL,
// synchronous=NORMAL, as rt-milter opens it), and, when $RTM_PG_CONNINFO
// names a PostgreSQL database, there (one journal shared by 1 and 8
// threads: the pool of 4 connections under load).
#include <benchmark/benchmark.h>

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
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

void one_delivery(Journal& journal, const std::string& key, benchmark::State& state) {
    Journal::Claim claim;
    if (!journal.claim(key, Journal::State::Unknown, 480, claim) || !claim.taken)
        state.SkipWithError("claim");
    if (!journal.record(key, Journal::State::Delivered, "RT said: ok"))
        state.SkipWithError("delivered");
}

const std::string kTarget = "http://127.0.0.1:8080|General|correspond|||<alice@example.org>|id:";

void BM_JournalOneDelivery(benchmark::State& state) {
    TempJournal journal;
    long n = 0;
    for (auto _ : state)
        one_delivery(*journal, kTarget + "<" + std::to_string(++n) + ".bench@example.org>", state);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_JournalOneDelivery)->Unit(benchmark::kMicrosecond);

void BM_PostgresqlJournalOneDelivery(benchmark::State& state) {
    static std::unique_ptr<Journal> journal;
    static std::atomic<long> n{0};
    const char* conninfo = std::getenv("RTM_PG_CONNINFO");
    if (state.thread_index() == 0 && conninfo && !journal) {
        std::string error;
        journal = Journal::open(conninfo, 432000, error);
    }
    if (!journal) {
        state.SkipWithError("no PostgreSQL journal ($RTM_PG_CONNINFO)");
        for (auto _ : state) {
        }
        return;
    }
    const std::string run = std::to_string(getpid()) + "." + std::to_string(time(nullptr)) + ".";
    for (auto _ : state)
        one_delivery(*journal, kTarget + "<" + run + std::to_string(++n) + ".bench@example.org>",
                     state);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PostgresqlJournalOneDelivery)
    ->Unit(benchmark::kMicrosecond)
    ->Threads(1)
    ->Threads(8)
    ->UseRealTime();

}  // namespace
}  // namespace rtm
