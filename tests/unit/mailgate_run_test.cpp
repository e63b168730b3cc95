// mailgate_run_test.cpp — run_mailgate() paths that end before any HTTP:
// --help, missing --url, empty or whitespace-only input. (Everything that
// talks HTTP is tested against a live stub in tests/relay.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "mailgate.h"

namespace rtm {
namespace {

struct Outcome {
    int code;
    std::string out, err;
};

Outcome run(std::vector<std::string> args, const std::string& input) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    EXPECT_EQ(write(fds[1], input.data(), input.size()), static_cast<ssize_t>(input.size()));
    close(fds[1]);
    char *out_buf = nullptr, *err_buf = nullptr;
    size_t out_len = 0, err_len = 0;
    FILE* out = open_memstream(&out_buf, &out_len);
    FILE* err = open_memstream(&err_buf, &err_len);
    args.insert(args.begin(), "rt-mailgate");
    int code = run_mailgate(args, std::nullopt, fds[0], out, err);
    close(fds[0]);
    fclose(out);
    fclose(err);
    Outcome o{code, std::string(out_buf, out_len), std::string(err_buf, err_len)};
    free(out_buf);
    free(err_buf);
    return o;
}

TEST(MailgateRun, HelpPrintsUsageOnStdoutAndExitsOne) {
    Outcome o = run({"--help", "--url", "http://127.0.0.1:1"}, "From: a@b\n\nx\n");
    EXPECT_EQ(o.code, kExitUsage);
    EXPECT_NE(o.out.find("SYNOPSIS"), std::string::npos);
    EXPECT_NE(o.out.find("EXIT STATUS"), std::string::npos);
}

TEST(MailgateRun, MissingUrlIsAUsageError) {
    Outcome o = run({"--queue", "General"}, "From: a@b\n\nx\n");
    EXPECT_EQ(o.code, kExitUsage);
    EXPECT_NE(o.err.find("invoked improperly"), std::string::npos) << o.err;
    EXPECT_NE(o.err.find("url"), std::string::npos);
    EXPECT_EQ(run({"--url", "0"}, "x").code, kExitUsage);  // "0" is false, as in Perl
    EXPECT_EQ(run({"--url="}, "x").code, kExitUsage);
}

TEST(MailgateRun, MissingUrlBeatsEmptyInput) {
    EXPECT_EQ(run({}, "").code, kExitUsage);
}

TEST(MailgateRun, EmptyOrBlankInputSucceedsWithoutPosting) {
    // Port 1 refuses connections: a POST would end in 75, not 0.
    for (std::string input : {"", " \n\t\r\n\f\v"}) {
        Outcome o = run({"--url", "http://127.0.0.1:1"}, input);
        EXPECT_EQ(o.code, kExitOk);
        EXPECT_NE(o.err.find("no message passed on STDIN"), std::string::npos);
    }
}

TEST(MailgateRun, NonBlankInputIsPosted) {
    Outcome o = run({"--url", "http://127.0.0.1:1"}, "\xa0");  // not space to Perl's \s on bytes
    EXPECT_EQ(o.code, kExitTempfail);
    EXPECT_NE(o.err.find("HTTP request failed"), std::string::npos) << o.err;
    EXPECT_NE(o.err.find("Connection refused"), std::string::npos) << o.err;
}

TEST(MailgateRun, RelativeUrlIsATemporaryFailure) {
    Outcome o = run({"--url", "rt.example.com"}, "From: a@b\n\nx\n");
    EXPECT_EQ(o.code, kExitTempfail);
    EXPECT_NE(o.err.find("URL must be absolute"), std::string::npos) << o.err;
}

TEST(MailgateRun, UrlPasswordIsMaskedInErrors) {
    Outcome o = run({"--url", "ftp://rt:s3cret@rt.example.com"}, "From: a@b\n\nx\n");
    EXPECT_EQ(o.code, kExitTempfail);
    EXPECT_NE(o.err.find("'ftp://rt:***@rt.example.com/REST/1.0/NoAuth/mail-gateway'"),
              std::string::npos)
        << o.err;
    EXPECT_EQ(o.err.find("s3cret"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace rtm
