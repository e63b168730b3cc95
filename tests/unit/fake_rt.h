// fake_rt.h — FakeRt: a small HTTP/1.1 server on 127.0.0.1 for unit tests
// of code that posts to RT's mail gateway. It records each request (head
// and body) and answers what the test's handler returns, at once, late or
// dripping. One thread per connection, keep-alive honoured; stops and joins
// in its destructor.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace rtm::testing {

struct FakeRequest {
    std::string head;  // request line and headers
    std::string body;
    // The value of form field `name` in a multipart body ("" when absent).
    std::string field(const std::string& name) const;
};

struct FakeResponse {
    int status = 200;
    std::string body = "ok\n";
    std::chrono::milliseconds delay{0};
    std::vector<std::string> headers = {};  // extra "Name: value" lines
    // > 0: the answer goes out one byte at a time this far apart, status
    // line first, or from the body on (head at once) when !drip_head.
    std::chrono::milliseconds drip{0};
    bool drip_head = true;
};

class FakeRt {
  public:
    using Handler = std::function<FakeResponse(const FakeRequest&)>;

    explicit FakeRt(Handler handler);
    ~FakeRt();
    FakeRt(const FakeRt&) = delete;
    FakeRt& operator=(const FakeRt&) = delete;

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
    std::vector<FakeRequest> requests() const;

  private:
    void serve(int fd);

    Handler handler_;
    int listener_ = -1;
    int port_ = 0;
    std::atomic<bool> stopping_{false};
    std::thread acceptor_;
    mutable std::mutex mutex_;
    std::vector<FakeRequest> requests_;
    std::vector<std::thread> workers_;
    std::vector<int> connections_;
};

}  // namespace rtm::testing
