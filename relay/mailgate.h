// mailgate.h — the rt-mailgate drop-in, as testable pieces: command-line
// parsing with Getopt::Long's rules (long options with - or --, any case,
// unique abbreviations, "=value" or the next word, --[no-]verify-ssl,
// warnings for unknown options), the $EXTENSION / --extension logic with its
// documented quirks, and run_mailgate(), the whole program minus main().
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "multipart.h"

namespace rtm {

struct MailgateOptions {
    std::optional<std::string> url, queue, action, extension, ca_file, jar;
    std::optional<long long> timeout;
    std::optional<bool> verify_ssl;
    bool help = false;
    bool debug = false;
    std::vector<std::string> redirect_hosts;  // --allow-redirect-host, ours: in order given
    bool strip_rt_headers = false;            // --strip-rt-headers, ours (off: as the original)
    std::optional<std::string> client_cert, client_key;  // --client-cert, --client-key, ours
    std::vector<std::string> header_files;  // --header-file NAME=PATH, ours: in order given
    std::vector<std::string> warnings;      // as Getopt::Long words them
    std::vector<std::string> arguments;     // words that are not options (ignored)
};

MailgateOptions parse_mailgate_args(const std::vector<std::string>& args);

// What --extension and $EXTENSION make of the request.
struct ExtensionPlan {
    std::vector<FormField> fields;  // queue, action, ticket in that order, as sent
    std::string header;             // "X-RT-Mail-Extension: ...\n" or empty
    std::optional<std::string> warning;
};

// env_extension: the value of $EXTENSION, or nullopt when it is not set.
ExtensionPlan plan_extension(const MailgateOptions& options,
                             const std::optional<std::string>& env_extension);

// Perl's truth: undefined, "" and "0" are false.
bool perl_true(const std::optional<std::string>& value);

// The whole program: reads the message from in_fd, writes to out and err,
// returns the exit code (0 delivered or refused by RT, 75 temporary, 1 usage).
int run_mailgate(const std::vector<std::string>& argv,
                 const std::optional<std::string>& env_extension, int in_fd, std::FILE* out,
                 std::FILE* err);

constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;
constexpr int kExitTempfail = 75;  // EX_TEMPFAIL: the MTA keeps the mail and retries

}  // namespace rtm
