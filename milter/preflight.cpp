// preflight.cpp — the checks, the child process that runs them as the
// service user, and the socket's test bind.
#include "preflight.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>

#include "journal.h"
#include "message.h"
#include "spool_dir.h"

namespace rtm {
namespace {

std::string errno_text(int error) {
    return std::strerror(error);
}

std::string lower(std::string text) {
    for (char& c : text)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return text;
}

std::string parent_of(const std::string& path) {
    return std::filesystem::path(path).parent_path().string();
}

// Where a socket spec binds: a unix path, or an inet address resolved.
struct Endpoint {
    sockaddr_storage address{};
    socklen_t length = 0;
    std::string unix_path;  // "" for inet; what a test bind removes again
    std::string where;      // for messages: the path, or "HOST port PORT"
};

StartStatus endpoint_of(const std::string& spec, Endpoint& out) {
    out.unix_path = unix_socket_path(spec);
    if (!out.unix_path.empty()) {
        auto* un = reinterpret_cast<sockaddr_un*>(&out.address);
        un->sun_family = AF_UNIX;
        std::strncpy(un->sun_path, out.unix_path.c_str(), sizeof un->sun_path - 1);
        out.length = sizeof(sockaddr_un);
        out.where = out.unix_path;
        return StartStatus::ok();
    }
    // inet:PORT@HOST or inet6:PORT@HOST, HOST possibly in [brackets] (the
    // loader has checked the form).
    const std::string rest = spec.substr(spec.find(':') + 1);
    const std::string port = rest.substr(0, rest.find('@'));
    std::string host = rest.substr(rest.find('@') + 1);
    if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
    addrinfo hints{}, *found = nullptr;
    hints.ai_family = lower(spec).starts_with("inet6:") ? AF_INET6 : AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0)
        return StartStatus::config("socket " + spec + ": cannot resolve " + host + ": " +
                                   gai_strerror(rc));
    std::memcpy(&out.address, found->ai_addr, found->ai_addrlen);
    out.length = found->ai_addrlen;
    freeaddrinfo(found);
    out.where = host + " port " + port;
    return StartStatus::ok();
}

// Binds and lets go at once (a unix socket's file, made this instant by
// the same identity, is removed): 0, or bind's errno.
int bind_error(const Endpoint& endpoint) {
    UniqueFd fd(socket(endpoint.address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return errno;
    const int one = 1;
    if (endpoint.unix_path.empty())
        setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as libmilter
    if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&endpoint.address), endpoint.length) != 0)
        return errno;
    if (!endpoint.unix_path.empty()) unlink(endpoint.unix_path.c_str());
    return 0;
}

StartStatus cannot_bind(const std::string& spec, const Endpoint& endpoint,
                        const std::string& identity, int error) {
    return StartStatus::cant_create("socket " + spec + ": cannot bind " + endpoint.where + " as " +
                                    identity + ": " + errno_text(error));
}

bool connects(const sockaddr* address, socklen_t length) {
    UniqueFd fd(socket(address->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    return fd.valid() && connect(fd.get(), address, length) == 0;
}

// Every file the daemon reads besides its configuration: the TLS files of
// each RT server and the secret files of a locked gateway (read again at
// every reload, by the service user), by their dotted keys.
std::vector<std::pair<std::string, std::string>> files_read(const Config& config) {
    std::vector<std::pair<std::string, std::string>> files;
    for (const auto& [name, server] : config.servers) {
        const std::string prefix = name == "rt" ? "rt." : "servers." + name + ".";
        if (!server.ca_file.empty()) files.emplace_back(prefix + "ca_file", server.ca_file);
        if (!server.client_cert.empty())
            files.emplace_back(prefix + "client_cert", server.client_cert);
        if (!server.client_key.empty())
            files.emplace_back(prefix + "client_key", server.client_key);
        for (const HeaderFile& h : server.header_files)
            files.emplace_back(prefix + "header_files." + h.name, h.path);
        if (!server.rest2_token_file.empty())
            files.emplace_back(prefix + "rest2_token_file", server.rest2_token_file);
    }
    return files;
}

void check_files_read(const Config& config, const std::string& as, PreflightReport& report) {
    for (const auto& [key, path] : files_read(config)) {
        UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
        if (!fd.valid()) {
            report.failures.push_back(StartStatus::config(
                key + " " + path + ": cannot read it as " + as + ": " + errno_text(errno)));
        } else {
            report.passed.push_back(key + " " + path + ": readable");
        }
    }
}

void check_spool(const Config& config, bool dir_exists, const std::string& as,
                 PreflightReport& report) {
    const std::string& dir = config.spool_dir;
    if (!dir_exists) return;  // made at start, the service user's: it will take files
    UniqueFd file;
    if (Status s = open_anonymous_file(dir, file); !s) {
        report.failures.push_back(
            StartStatus::cant_create("spool_dir " + dir + ": " + s.error() + " (as " + as + ")"));
    } else {
        report.passed.push_back("spool_dir " + dir + ": takes a file");
    }
}

// Start: opens the journal as the daemon will (creating it: the service
// user's file). Check: creates nothing, so the file and its directory are
// looked at: the file (and a -wal or -shm beside it) opens for writing, the
// directory takes the files SQLite adds.
// A PostgreSQL journal, either mode: connects as the service user (its
// passfile), makes the table when missing and takes a write (a claim,
// released). Down at start is a note, not a failure: the daemon answers 451
// until the server is back, and connects then.
void check_postgresql_journal(const Config& config, PreflightMode mode, const std::string& as,
                              PreflightReport& report) {
    std::string error;
    std::unique_ptr<Journal> journal = Journal::open(config.journal, config.journal_expiry, error);
    Status s = journal ? Status::ok() : Status::failure(error);
    if (journal) {
        const std::string probe = "rt-milter preflight " + journal->owner();
        Journal::Claim claim;
        s = journal->claim(probe, Journal::State::Unknown, 60, claim);
        if (s) s = journal->forget(probe);
        if (!s) s = Status::failure("journal " + journal->where() + ": cannot write: " + s.error());
    }
    const std::string what = s ? "" : s.error() + " (as " + as + ")";
    if (s) {
        report.passed.push_back("journal " + journal->where() +
                                ": connects, has its table, takes a write");
    } else if (mode == PreflightMode::Start) {
        report.notes.push_back(what + "; answering 451 until it can be used");
    } else {
        report.failures.push_back(StartStatus::config(what));
    }
}

void check_journal(const Config& config, PreflightMode mode, bool dir_exists, const std::string& as,
                   PreflightReport& report) {
    const std::string& path = config.journal;
    if (Journal::is_postgresql(path)) return check_postgresql_journal(config, mode, as, report);
    if (path.empty() || !dir_exists) return;
    auto fail = [&](const std::string& what) {
        report.failures.push_back(StartStatus::cant_create("journal " + path + ": " + what));
    };
    if (mode == PreflightMode::Start) {
        std::string error;
        if (!Journal::open(path, config.journal_expiry, error)) {
            fail(error + " (as " + as + ")");
        } else {
            report.passed.push_back("journal " + path + ": opens and takes a write");
        }
        return;
    }
    const std::string dir = parent_of(path);
    for (const std::string& name : {path, path + "-wal", path + "-shm"}) {
        UniqueFd fd(open(name.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW));
        if (!fd.valid() && errno != ENOENT) {
            fail("cannot open " + name + " for writing as " + as + ": " + errno_text(errno));
            return;
        }
    }
    if (faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
        fail("cannot create files in " + dir + " as " + as + ": " + errno_text(errno));
    } else {
        report.passed.push_back("journal " + path + ": can be opened for writing");
    }
}

std::string in_use_note(const std::string& spec) {
    return "socket " + spec +
           ": in use: a process answers on it (a running rt-milter?); the daemon will not " +
           "start while it does";
}

// --check-config's look at a unix socket, as the identity that binds it:
// a failure, a note, or what passed.
StartStatus look_at_unix_socket(const Config& config, const ServiceUser& user,
                                const std::string& as, std::string& note, std::string& passed) {
    const std::string& spec = config.socket;
    const std::string path = unix_socket_path(spec);
    gid_t group = 0;
    if (StartStatus s = socket_group_of(config, user, group); !s) return s;
    struct stat st {};
    if (lstat(parent_of(path).c_str(), &st) != 0) {
        passed = "socket " + spec + ": its directory can be made at start";
        return make_socket_directory(config, user, PreflightMode::Check);
    }
    if (lstat(path.c_str(), &st) != 0) {
        // A bind beside it, not at the path itself: a daemon starting this
        // moment would take a file at the path for a stale socket, and our
        // unlink would then remove its live one.
        Endpoint endpoint;
        if (StartStatus s = endpoint_of(spec, endpoint); !s) return s;
        const std::string probe = parent_of(path) + "/.rt-milter-check." + std::to_string(getpid());
        if (probe.size() < sizeof(sockaddr_un::sun_path)) {
            auto* un = reinterpret_cast<sockaddr_un*>(&endpoint.address);
            std::snprintf(un->sun_path, sizeof un->sun_path, "%s", probe.c_str());
            endpoint.unix_path = probe;
        }
        passed = "socket " + spec + ": a bind works";
        if (const int error = bind_error(endpoint); error != 0)
            return cannot_bind(spec, endpoint, as, error);
        return StartStatus::ok();
    }
    if (!S_ISSOCK(st.st_mode))
        return StartStatus::cant_create("socket " + spec + ": " + path +
                                        " exists and is not a socket");
    Endpoint endpoint;
    if (StartStatus s = endpoint_of(spec, endpoint); !s) return s;
    if (connects(reinterpret_cast<const sockaddr*>(&endpoint.address), endpoint.length)) {
        note = in_use_note(spec);
        return StartStatus::ok();
    }
    // Nobody answers: the daemon removes the stale socket and binds there.
    if (faccessat(AT_FDCWD, parent_of(path).c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
        return StartStatus::cant_create("socket " + spec + ": cannot replace the stale socket " +
                                        path + " as " + as + ": " + errno_text(errno));
    }
    passed = "socket " + spec + ": a stale socket, replaced at start";
    return StartStatus::ok();
}

// --check-config's look at an inet socket, bound as the started identity
// (the daemon binds before it drops privileges).
StartStatus look_at_inet_socket(const Config& config, const std::string& as, std::string& note,
                                std::string& passed) {
    Endpoint endpoint;
    if (StartStatus s = endpoint_of(config.socket, endpoint); !s) return s;
    const int error = bind_error(endpoint);
    if (error == EADDRINUSE &&
        connects(reinterpret_cast<const sockaddr*>(&endpoint.address), endpoint.length)) {
        note = in_use_note(config.socket);
        return StartStatus::ok();
    }
    if (error != 0) return cannot_bind(config.socket, endpoint, as, error);
    passed = "socket " + config.socket + ": a bind works";
    return StartStatus::ok();
}

// --check-config's look at the metrics listener, bound as the started
// identity (the daemon binds it before it drops privileges).
StartStatus look_at_metrics(const Config& config, const std::string& as, std::string& note,
                            std::string& passed) {
    ListenAddress listen;
    parse_listen_address(config.metrics, listen);  // the loader has checked it
    const std::string host = listen.address.to_string();
    const std::string spec = listen.address.v6
                                 ? "inet6:" + std::to_string(listen.port) + "@[" + host + "]"
                                 : "inet:" + std::to_string(listen.port) + "@" + host;
    Endpoint endpoint;
    if (StartStatus s = endpoint_of(spec, endpoint); !s) return s;
    const int error = bind_error(endpoint);
    if (error == EADDRINUSE &&
        connects(reinterpret_cast<const sockaddr*>(&endpoint.address), endpoint.length)) {
        note = "metrics " + config.metrics +
               ": in use: a process answers on it (a running rt-milter?); the " +
               "daemon will not start while it does";
        return StartStatus::ok();
    }
    if (error != 0)
        return StartStatus::cant_create("metrics " + config.metrics + ": cannot bind " +
                                        endpoint.where + " as " + as + ": " + errno_text(error));
    passed = "metrics " + config.metrics + ": a bind works";
    return StartStatus::ok();
}

void add(StartStatus status, std::string note, std::string passed, PreflightReport& report) {
    if (!status) {
        report.failures.push_back(std::move(status));
    } else if (!note.empty()) {
        report.notes.push_back(std::move(note));
    } else if (!passed.empty()) {
        report.passed.push_back(std::move(passed));
    }
}

// One report line through the pipe: a kind letter, the status, the text.
std::string encode(char kind, int status, std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    return std::string(1, kind) + std::to_string(status) + " " + text + "\n";
}

void decode(const std::string& all, PreflightReport& report) {
    std::size_t start = 0;
    while (start < all.size()) {
        std::size_t end = all.find('\n', start);
        if (end == std::string::npos) end = all.size();
        const std::string line = all.substr(start, end - start);
        start = end + 1;
        const std::size_t space = line.find(' ');
        if (line.empty() || space == std::string::npos) continue;
        const std::string text = line.substr(space + 1);
        if (line[0] == 'P')
            report.passed.push_back(text);
        else if (line[0] == 'N')
            report.notes.push_back(text);
        else if (line[0] == 'F') {
            const int status = std::atoi(line.substr(1, space - 1).c_str());
            report.failures.push_back(
                StartStatus::failure(status != 0 ? status : exit_status::kOsError, text));
        }
    }
}

// Runs `checks` in a child process that has become `user` (when rt-milter
// was started as root) and adds what it found to `report`. The child writes
// its findings to a pipe and exits; nothing it holds outlives it.
void run_as(const ServiceUser& user, const std::function<void(PreflightReport&)>& checks,
            PreflightReport& report) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        report.failures.push_back(
            StartStatus::os_error("preflight: cannot make a pipe: " + errno_text(errno)));
        return;
    }
    UniqueFd read_end(fds[0]), write_end(fds[1]);
    const pid_t pid = fork();
    if (pid < 0) {
        report.failures.push_back(
            StartStatus::os_error("preflight: cannot fork: " + errno_text(errno)));
        return;
    }
    if (pid == 0) {
        read_end.reset();
        PreflightReport found;
        if (Status s = drop_privileges(user); !s) {
            found.failures.push_back(StartStatus::os_error(s.error()));
        } else {
            checks(found);
        }
        std::string out;
        for (const std::string& p : found.passed) out += encode('P', 0, p);
        for (const std::string& n : found.notes) out += encode('N', 0, n);
        for (const StartStatus& f : found.failures) out += encode('F', f.exit_status(), f.error());
        for (std::size_t done = 0; done < out.size();) {
            const ssize_t n = write(write_end.get(), out.data() + done, out.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) _exit(1);
            done += static_cast<std::size_t>(n);
        }
        _exit(0);
    }
    write_end.reset();
    std::string all;
    char buffer[4096];
    for (;;) {
        const ssize_t n = read(read_end.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        all.append(buffer, static_cast<std::size_t>(n));
    }
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
        report.failures.push_back(StartStatus::os_error(
            "preflight: the check process (as user " + user.name + ") " +
            (WIFSIGNALED(wstatus) ? "was killed by signal " + std::to_string(WTERMSIG(wstatus))
                                  : "exited " + std::to_string(WEXITSTATUS(wstatus)))));
    }
    decode(all, report);
}

}  // namespace

std::string unix_socket_path(const std::string& spec) {
    const std::string type = lower(spec.substr(0, spec.find(':')));
    if ((type == "unix" || type == "local") && spec.size() > type.size())
        return spec.substr(type.size() + 1);
    return "";
}

StartStatus socket_group_of(const Config& config, const ServiceUser& user, gid_t& group) {
    group = user.from_root ? user.gid : getegid();
    if (config.socket_group.empty()) return StartStatus::ok();
    const std::optional<gid_t> gid = group_id(config.socket_group);
    if (!gid)
        return StartStatus::config("socket_group = \"" + config.socket_group + "\": no such group");
    const bool member = *gid == group || std::find(user.groups.begin(), user.groups.end(), *gid) !=
                                             user.groups.end();
    if (!user.from_root && !member) {
        return StartStatus::config("socket_group = \"" + config.socket_group +
                                   "\": rt-milter runs as " + user.name +
                                   ", who is not a member of that group");
    }
    group = *gid;
    return StartStatus::ok();
}

StartStatus make_socket_directory(const Config& config, const ServiceUser& user,
                                  PreflightMode mode) {
    const std::string dir = parent_of(unix_socket_path(config.socket));
    struct stat st {};
    if (dir.empty() || lstat(dir.c_str(), &st) == 0 || errno != ENOENT)
        return StartStatus::ok();  // bind says the rest
    const unsigned socket_mode = config.socket_mode;
    const mode_t dir_mode =
        0700 | ((socket_mode & 0060) ? 0050 : 0) | ((socket_mode & 0006) ? 0005 : 0);
    int rc = 0;
    if (mode == PreflightMode::Check) {
        const std::string above = parent_of(dir);
        rc = faccessat(AT_FDCWD, above.c_str(), W_OK | X_OK, AT_EACCESS);
    } else {
        const mode_t old = umask(~dir_mode & 0777);
        rc = mkdir(dir.c_str(), dir_mode);
        const int error = errno;
        umask(old);
        errno = error;
        if (rc != 0 && error == EEXIST) rc = 0;
    }
    if (rc != 0) {
        return StartStatus::cant_create("socket " + config.socket + ": cannot create directory " +
                                        dir + " as user " + user.name + ": " + errno_text(errno) +
                                        "; create it, owned by " + user.name +
                                        " (systemd: RuntimeDirectory=)");
    }
    return StartStatus::ok();
}

// Connects once to the daemon's own socket: a wildcard inet address is
// reached on loopback. What libmilter's listener, waiting in poll() for up
// to 5 s while it holds the lock a stop needs, wakes up to at once.
bool wake_listener(const std::string& spec) {
    Endpoint endpoint;
    if (!endpoint_of(spec, endpoint)) return false;
    if (endpoint.address.ss_family == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&endpoint.address);
        if (in->sin_addr.s_addr == htonl(INADDR_ANY)) in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (endpoint.address.ss_family == AF_INET6) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&endpoint.address);
        if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)) in6->sin6_addr = in6addr_loopback;
    }
    return connects(reinterpret_cast<const sockaddr*>(&endpoint.address), endpoint.length);
}

StartStatus try_bind(const std::string& spec, const std::string& identity) {
    Endpoint endpoint;
    if (StartStatus s = endpoint_of(spec, endpoint); !s) return s;
    if (const int error = bind_error(endpoint); error != 0)
        return cannot_bind(spec, endpoint, identity, error);
    return StartStatus::ok();
}

PreflightReport preflight(const Config& config, const ServiceUser& user, PreflightMode mode,
                          UniqueFd* spool) {
    PreflightReport report;
    const DirAction action = mode == PreflightMode::Start ? DirAction::Create : DirAction::Check;
    // The directories, by the identity rt-milter was started with.
    DirState spool_dir, journal_dir;
    // A PostgreSQL journal has no directory here.
    const bool journal_file = !config.journal.empty() && !Journal::is_postgresql(config.journal);
    bool spool_ok = false, journal_ok = !journal_file;
    if (StartStatus s = open_spool_dir(config.spool_dir, user, action, spool_dir); !s) {
        report.failures.push_back(s);
    } else {
        spool_ok = true;
        if (!spool_dir.made_by.empty())
            report.passed.push_back("spool_dir " + config.spool_dir + ": made at start by " +
                                    spool_dir.made_by);
    }
    if (journal_file) {
        if (StartStatus s = make_journal_dir(config.journal, user, action, journal_dir); !s) {
            report.failures.push_back(s);
        } else {
            journal_ok = true;
            if (!journal_dir.made_by.empty())
                report.passed.push_back("journal " + config.journal +
                                        ": its directory is made at start by " +
                                        journal_dir.made_by);
        }
    }
    const bool spool_exists = spool_ok && spool_dir.made_by.empty();
    const bool journal_dir_exists = journal_ok && journal_dir.made_by.empty();
    const bool unix_socket = !unix_socket_path(config.socket).empty();
    // The rest as the service user.
    const std::string as = "user " + user.name;
    run_as(
        user,
        [&](PreflightReport& found) {
            check_files_read(config, as, found);
            if (spool_ok) check_spool(config, spool_exists, as, found);
            if (journal_ok) check_journal(config, mode, journal_dir_exists, as, found);
            if (mode == PreflightMode::Check && unix_socket) {
                std::string note, passed;
                StartStatus s = look_at_unix_socket(config, user, as, note, passed);
                add(std::move(s), note, passed, found);
            }
        },
        report);
    if (mode == PreflightMode::Check && !unix_socket) {
        std::string note, passed;
        StartStatus s = look_at_inet_socket(config, geteuid() == 0 ? "root" : as, note, passed);
        add(std::move(s), note, passed, report);
    }
    if (mode == PreflightMode::Check && !config.metrics.empty()) {
        std::string note, passed;
        StartStatus s = look_at_metrics(config, geteuid() == 0 ? "root" : as, note, passed);
        add(std::move(s), note, passed, report);
    }
    if (spool && spool_exists) *spool = std::move(spool_dir.fd);
    return report;
}

}  // namespace rtm
