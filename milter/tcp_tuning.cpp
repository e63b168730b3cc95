// tcp_tuning.cpp — accept()/read() interposition for libmilter's sockets.
// The executable's definitions win over libc's for libmilter's calls (ELF
// symbol interposition); the real functions are reached with RTLD_NEXT.
#include "tcp_tuning.h"

#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>

// Sanitizer runtimes intercept accept/read/close themselves: under ASan or
// TSan these definitions would shadow their interceptors, so the whole
// interposition (and the TCP tuning with it) is left out of such builds.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RTM_NO_INTERPOSITION 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RTM_NO_INTERPOSITION 1
#endif
#endif

#ifdef RTM_NO_INTERPOSITION
namespace rtm {
void enable_tcp_tuning(bool) {}
}  // namespace rtm
#else
namespace rtm {
namespace {

std::atomic<bool> g_enabled{false};
constexpr int kMaxFd = 65536;
std::array<std::atomic<bool>, kMaxFd> g_tuned{};  // accepted TCP sockets we tune

using AcceptFn = int (*)(int, sockaddr*, socklen_t*);
using ReadFn = ssize_t (*)(int, void*, size_t);

AcceptFn real_accept() {
    static AcceptFn fn = reinterpret_cast<AcceptFn>(dlsym(RTLD_NEXT, "accept"));
    return fn;
}
ReadFn real_read() {
    static ReadFn fn = reinterpret_cast<ReadFn>(dlsym(RTLD_NEXT, "read"));
    return fn;
}

void quickack(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

}  // namespace

void enable_tcp_tuning(bool on) {
    g_enabled = on;
}

}  // namespace rtm

extern "C" int accept(int fd, sockaddr* addr, socklen_t* len) {
    int conn = rtm::real_accept()(fd, addr, len);
    if (conn < 0 || conn >= rtm::kMaxFd) return conn;
    rtm::g_tuned[conn] = false;
    if (!rtm::g_enabled) return conn;
    int domain = 0, protocol = 0;
    socklen_t size = sizeof domain;
    if (getsockopt(conn, SOL_SOCKET, SO_DOMAIN, &domain, &size) != 0) return conn;
    size = sizeof protocol;
    if (getsockopt(conn, SOL_SOCKET, SO_PROTOCOL, &protocol, &size) != 0) return conn;
    if ((domain == AF_INET || domain == AF_INET6) && protocol == IPPROTO_TCP) {
        int one = 1;
        setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        rtm::quickack(conn);
        rtm::g_tuned[conn] = true;
    }
    return conn;
}

extern "C" ssize_t read(int fd, void* buf, size_t count) {
    if (fd >= 0 && fd < rtm::kMaxFd && rtm::g_tuned[fd].load(std::memory_order_relaxed))
        rtm::quickack(fd);
    return rtm::real_read()(fd, buf, count);
}

extern "C" int close(int fd) {
    using CloseFn = int (*)(int);
    static CloseFn real = reinterpret_cast<CloseFn>(dlsym(RTLD_NEXT, "close"));
    if (fd >= 0 && fd < rtm::kMaxFd) rtm::g_tuned[fd].store(false, std::memory_order_relaxed);
    return real(fd);
}
#endif  // RTM_NO_INTERPOSITION
