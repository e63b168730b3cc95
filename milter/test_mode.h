// test_mode.h — `rt-milter --test`: runs one message through the same
// Session a live connection uses (routing, capture, assembly, POST,
// verdict) with a stand-in MTA that prints every step, and prints the SMTP
// reply the client would get. For operators: no MTA needed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime.h"

namespace rtm {

struct TestModeOptions {
    std::string sender;                   // MAIL FROM address, without brackets ("" = null sender)
    std::vector<std::string> recipients;  // RCPT TO addresses, without brackets
    std::string message_path;             // "-" or "" = standard input
    bool dry_run = false;                 // show what would be posted; post nothing
    // The trust policy's inputs: the client's address (checked: an IP
    // address; "" = none, as an outside client seen through a unix socket)
    // and the SMTP AUTH user ("" = not authenticated).
    std::string client_addr;
    std::string auth_user;
};

// Exit status: 0 accepted, 1 rejected (5xx), 75 tempfailed (4xx), 66 input unreadable.
int run_test_mode(std::shared_ptr<const Runtime> runtime, const TestModeOptions& options);

}  // namespace rtm
