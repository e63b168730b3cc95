// fake_rt.cpp — the unit tests' stand-in RT server. It writes with
// MSG_NOSIGNAL: a client that hangs up mid-answer (a timeout test) must end
// that connection, never the test process by SIGPIPE.
#include "fake_rt.h"

#include <arpa/inet.h>
#include <poll.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace rtm::testing {
namespace {

// All of data, or false once the peer is gone.
bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

}  // namespace

std::string FakeRequest::field(const std::string& name) const {
    auto at = body.find("name=\"" + name + "\"\r\n");
    if (at == std::string::npos) return "";
    at = body.find("\r\n\r\n", at);  // past the part's headers
    if (at == std::string::npos) return "";
    at += 4;
    auto end = body.find("\r\n--", at);
    return body.substr(at, end - at);
}

FakeRt::FakeRt(Handler handler) : handler_(std::move(handler)) {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listener_, 64) != 0 ||
        getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        throw std::runtime_error("FakeRt: cannot listen on 127.0.0.1");
    }
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] {
        while (!stopping_) {
            pollfd p{listener_, POLLIN, 0};
            if (poll(&p, 1, 100) <= 0) continue;
            int fd = accept(listener_, nullptr, nullptr);
            if (fd < 0) continue;
            std::lock_guard lock(mutex_);
            connections_.push_back(fd);
            workers_.emplace_back([this, fd] { serve(fd); });
        }
    });
}

FakeRt::~FakeRt() {
    stopping_ = true;
    acceptor_.join();
    {
        std::lock_guard lock(mutex_);
        for (int fd : connections_) shutdown(fd, SHUT_RDWR);
    }
    for (auto& w : workers_) w.join();
    for (int fd : connections_) close(fd);
    close(listener_);
}

std::vector<FakeRequest> FakeRt::requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
}

void FakeRt::serve(int fd) {
    std::string buffer;
    char chunk[65536];
    for (;;) {
        std::size_t head_end;
        while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
            ssize_t n = read(fd, chunk, sizeof chunk);
            if (n <= 0) return;
            buffer.append(chunk, static_cast<std::size_t>(n));
        }
        FakeRequest request;
        request.head = buffer.substr(0, head_end);
        std::size_t length = 0;
        if (auto cl = request.head.find("Content-Length: "); cl != std::string::npos) {
            length = std::stoul(request.head.substr(cl + 16));
        }
        buffer.erase(0, head_end + 4);
        while (buffer.size() < length) {
            ssize_t n = read(fd, chunk, sizeof chunk);
            if (n <= 0) return;
            buffer.append(chunk, static_cast<std::size_t>(n));
        }
        request.body = buffer.substr(0, length);
        buffer.erase(0, length);
        FakeResponse response = handler_(request);
        {
            std::lock_guard lock(mutex_);
            requests_.push_back(request);
        }
        auto until = std::chrono::steady_clock::now() + response.delay;
        while (std::chrono::steady_clock::now() < until && !stopping_) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        std::string reply = "HTTP/1.1 " + std::to_string(response.status) +
                            " Status\r\nContent-Length: " + std::to_string(response.body.size()) +
                            "\r\nContent-Type: text/plain\r\n";
        for (const std::string& h : response.headers) reply += h + "\r\n";
        reply += "\r\n" + response.body;
        if (response.drip.count() <= 0) {
            if (!send_all(fd, reply)) return;
            continue;
        }
        std::string_view rest(reply);
        if (!response.drip_head) {
            const std::size_t head = reply.size() - response.body.size();
            if (!send_all(fd, rest.substr(0, head))) return;
            rest.remove_prefix(head);
        }
        for (char c : rest) {
            if (stopping_ || !send_all(fd, std::string_view(&c, 1))) return;
            std::this_thread::sleep_for(response.drip);
        }
    }
}

}  // namespace rtm::testing
