// reply_bench.cpp — RT's answer, per delivery: classify_http on typical
// mail-gateway answers ("ok" with RT's ticket lines, "not ok" with its
// reason, a 500 error page, a 200 with unexpected text, a 200 flooding past
// RtReply::max_body, a 200 whose body is one long line), the summary() line
// Session logs, journals and puts in SMTP replies (up to three per delivery), and
// printable_line on short, control-laden, overlong and multi-line text.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "rt_reply.h"

namespace rtm {
namespace {

struct Answer {
    const char* label;
    long status;
    std::string reason;
    std::string body;
    RtReply::Kind expected;
};

const std::vector<Answer>& answers() {
    static const std::vector<Answer> list = [] {
        std::string error_page =
            "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n"
            "<title>500 Internal Server Error</title>\n</head><body>\n<h1>Internal Server "
            "Error</h1>\n"
            "<p>The server encountered an internal error or\nmisconfiguration and was unable to "
            "complete\n"
            "your request.</p>\n";
        while (error_page.size() < 2048)
            error_page += "<p>More information about this error may be available.</p>\n";
        error_page += "</body></html>\n";
        std::string flood(RtReply::max_body + 16 * 1024, 'x');
        flood.replace(0, 3, "ok\n");
        return std::vector<Answer>{
            {"ok", 200, "OK",
             "ok\nTicket: 4711\nQueue: General\nOwner: Nobody\nStatus: new\n"
             "Subject: Printer on the third floor keeps jamming\nRequestor: alice@example.org\n",
             RtReply::Kind::Delivered},
            {"not ok", 200, "OK",
             "not ok\nCould not record email: Permission Denied (queue General: CreateTicket)\n",
             RtReply::Kind::Refused},
            {"500 error page", 500, "Internal Server Error", error_page, RtReply::Kind::Temporary},
            {"200 garbage", 200, "OK", "<html><body>Login required</body></html>\n",
             RtReply::Kind::Temporary},
            {"200 ok, 80 KiB body", 200, "OK", flood, RtReply::Kind::Delivered},
            {"200, one 80 KiB line", 200, "OK", std::string(80 * 1024, 'x'),
             RtReply::Kind::Temporary},
        };
    }();
    return list;
}

void BM_ClassifyHttp(benchmark::State& state) {
    const Answer& a = answers()[static_cast<std::size_t>(state.range(0))];
    state.SetLabel(a.label);
    if (classify_http(a.status, a.reason, a.body).kind != a.expected) {
        state.SkipWithError("classified differently than the case expects");
        return;
    }
    for (auto _ : state) {
        RtReply r = classify_http(a.status, a.reason, a.body);
        benchmark::DoNotOptimize(r);
    }
}
BENCHMARK(BM_ClassifyHttp)->DenseRange(0, 5);

// classify_http and the one line logged for it, as a delivery ends.
void BM_ClassifyAndSummary(benchmark::State& state) {
    const Answer& a = answers()[static_cast<std::size_t>(state.range(0))];
    state.SetLabel(a.label);
    for (auto _ : state) {
        RtReply r = classify_http(a.status, a.reason, a.body);
        std::string line = r.summary();
        benchmark::DoNotOptimize(line);
    }
}
BENCHMARK(BM_ClassifyAndSummary)->Arg(0)->Arg(2)->Arg(5);

void BM_PrintableLine(benchmark::State& state) {
    static const std::string texts[] = {
        "ok",
        "not ok\tCould not\x01record\x7f email: \xc3\xa9l\xc3\xa8ve \x1b[31mdenied\r\nmore",
        std::string(4096, 'a'),
        "Could not record email\n" + std::string(64 * 1024, '\n'),
    };
    static const char* labels[] = {"short", "control and 8-bit", "4 KiB line (cut at 200)",
                                   "line + 64 KiB of newlines"};
    const auto i = static_cast<std::size_t>(state.range(0));
    state.SetLabel(labels[i]);
    for (auto _ : state) {
        std::string line = printable_line(texts[i]);
        benchmark::DoNotOptimize(line);
    }
}
BENCHMARK(BM_PrintableLine)->DenseRange(0, 3);

}  // namespace
}  // namespace rtm
