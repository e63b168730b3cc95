// mta.h — MtaApi: the few things a Session asks of the MTA, behind an
// interface so the transaction logic runs in tests with a fake and in the
// operator test mode without an MTA. The libmilter implementation lives in
// callbacks.cpp, the only file of rt-milter that calls libmilter (the
// daemon's socket and loop go through it too: callbacks.h).
#pragma once

#include <string>

namespace rtm {

enum class Verdict { Continue, Accept, Reject, Tempfail, Discard };

class MtaApi {
  public:
    virtual ~MtaApi() = default;
    virtual std::string macro(const char* name) = 0;  // "" when the MTA did not send it
    // The reply for the Reject/Tempfail about to be returned; text already sanitized.
    virtual void set_reply(const std::string& rcode, const std::string& xcode,
                           const std::string& text) = 0;
    virtual bool delete_recipient(const std::string& raw) = 0;  // at end of message only
    virtual void progress() = 0;                                // at end of message only
};

// Reply text an MTA will take: printable ASCII, no CR/LF, '%' doubled (for
// smfi_setreply's format), at most 980 bytes.
std::string sanitize_reply_text(const std::string& text);

}  // namespace rtm
