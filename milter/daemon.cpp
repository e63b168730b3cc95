// daemon.cpp — socket, privileges, signals, reload, drain.
#include "daemon.h"

#include <grp.h>
#include <libmilter/mfapi.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "callbacks.h"
#include "config.h"
#include "log.h"
#include "privileges.h"
#include "rt_client.h"
#include "runtime.h"
#include "session.h"
#include "tcp_tuning.h"

namespace rtm {
namespace {

std::string unix_path(const std::string& spec) {
    for (const char* prefix : {"unix:", "local:"}) {
        if (spec.starts_with(prefix)) return spec.substr(std::strlen(prefix));
    }
    return "";
}

// A unix socket left by a dead process is removed; a live one is not stolen.
bool clear_stale_socket(const std::string& path) {
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) return true;
    if (!S_ISSOCK(st.st_mode)) {
        log::error(path + " exists and is not a socket; not touching it");
        return false;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    bool live = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (live) {
        log::error("another process is listening on " + path + "; is rt-milter already running?");
        return false;
    }
    unlink(path.c_str());
    log::info("removed stale socket " + path);
    return true;
}

bool open_socket(const Config& config) {
    const std::string path = unix_path(config.socket);
    if (!path.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
        if (!clear_stale_socket(path)) return false;
    }
    if (smfi_setconn(const_cast<char*>(config.socket.c_str())) != MI_SUCCESS) {
        log::error("smfi_setconn(" + config.socket + ") failed");
        return false;
    }
    mode_t old = umask(0177);  // the socket is born private; mode and group come next
    int rc = smfi_opensocket(false);
    umask(old);
    if (rc != MI_SUCCESS) {
        log::error("cannot listen on " + config.socket + " (in use, or no permission?)");
        return false;
    }
    if (!path.empty()) {
        if (!config.socket_group.empty()) {
            group* g = getgrnam(config.socket_group.c_str());
            if (!g || chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
                log::error("cannot give " + path + " to group " + config.socket_group);
                return false;
            }
        }
        if (!config.user.empty()) {
            if (passwd* pw = getpwnam(config.user.c_str())) {
                if (chown(path.c_str(), pw->pw_uid, static_cast<gid_t>(-1)) != 0) {
                    log::warning("cannot give " + path + " to user " + config.user);
                }
            }
        }
        if (chmod(path.c_str(), config.socket_mode) != 0) {
            log::error("chmod " + path + ": " + std::strerror(errno));
            return false;
        }
    }
    enable_tcp_tuning(config.socket.starts_with("inet"));
    return true;
}

bool prepare_spool(const Config& config) {
    std::error_code ec;
    std::filesystem::create_directories(config.spool_dir, ec);
    if (ec) {
        log::error("cannot create spool_dir " + config.spool_dir + ": " + ec.message());
        return false;
    }
    // Spool files are created unlinked (O_TMPFILE); only the fallback for
    // file systems without it names them, and a crash could leave one.
    for (const auto& entry : std::filesystem::directory_iterator(config.spool_dir, ec)) {
        if (entry.path().filename().string().starts_with("rt-milter.") && entry.is_regular_file(ec)) {
            std::filesystem::remove(entry.path(), ec);
            log::info("removed stale spool file " + entry.path().string());
        }
    }
    if (!config.user.empty() && geteuid() == 0) {
        if (passwd* pw = getpwnam(config.user.c_str())) {
            if (chown(config.spool_dir.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
                log::warning("cannot give " + config.spool_dir + " to " + config.user);
            }
        }
    }
    return true;
}

bool drop_privileges(const Config& config) {
    if (config.user.empty()) return true;
    passwd* pw = getpwnam(config.user.c_str());
    if (!pw) {
        log::error("user " + config.user + " does not exist");
        return false;
    }
    if (geteuid() != 0) {
        if (geteuid() == pw->pw_uid) return true;
        log::error("user = \"" + config.user + "\" needs rt-milter started as root");
        return false;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        log::error("cannot switch to user " + config.user + ": " + std::strerror(errno));
        return false;
    }
    log::info("running as user " + config.user);
    return true;
}

void reload(const std::string& path) {
    LoadResult loaded = load_config_file(path);
    if (!loaded.config) {
        for (const ConfigError& e : loaded.errors) log::error("reload: " + e.to_string());
        log::error("reload of " + path + " failed; the running configuration stays");
        return;
    }
    auto old = milter::current_runtime();
    if (old && (old->config().socket != loaded.config->socket || old->config().user != loaded.config->user)) {
        log::warning("reload: socket and user changes take effect only at restart");
    }
    log::set_level(loaded.config->log_level);
    const std::size_t routes = loaded.config->routes.size();
    milter::set_runtime(std::make_shared<const Runtime>(std::move(*loaded.config)));
    log::info("reloaded " + path + ": " + std::to_string(routes) + " route(s)");
}

}  // namespace

int run_daemon(const DaemonOptions& options) {
    // Everything the daemon makes is its own alone: the journal, the spool,
    // a socket directory. The socket's mode comes from its own umask at bind.
    umask(077);
    LoadResult loaded = load_config_file(options.config_path);
    if (!loaded.config) {
        for (const ConfigError& e : loaded.errors) log::error(e.to_string());
        return 78;  // EX_CONFIG
    }
    Config config = std::move(*loaded.config);
    log::set_level(config.log_level);
    const UserCheck user = check_user_setting(config.user, geteuid() == 0 ? StartedAs::Root : StartedAs::NotRoot);
    if (user.fatal) {
        log::error(user.line);
        return 78;  // EX_CONFIG
    }
    if (!user.line.empty()) log::warning(user.line);

    // SIGUSR1 is ours; libmilter's signal thread sigwaits for HUP, TERM and
    // INT. All four are blocked here, before any thread starts, so every
    // thread inherits the mask and no signal's default action kills us.
    sigset_t usr1, all;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    all = usr1;
    for (int sig : {SIGHUP, SIGTERM, SIGINT}) sigaddset(&all, sig);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);

    http_global_init();
    if (!milter::register_filter() || !open_socket(config) || !prepare_spool(config) || !drop_privileges(config)) {
        return 71;  // EX_OSERR
    }
    const long drain_seconds = [&] {
        long t = 0;
        for (const auto& [name, server] : config.servers) t = std::max(t, server.timeout);
        return t + 30;
    }();
    const std::string socket = config.socket;
    const std::size_t routes = config.routes.size();
    milter::set_runtime(std::make_shared<const Runtime>(std::move(config)));

    std::thread([path = options.config_path, usr1] {
        for (;;) {
            int sig = 0;
            if (sigwait(&usr1, &sig) == 0 && sig == SIGUSR1) reload(path);
        }
    }).detach();

    log::info("listening on " + socket + " with " + std::to_string(routes) + " route(s)");
    int rc = smfi_main();
    // libmilter stops accepting but does not wait for sessions: wait for the
    // transactions in progress (a POST may be under way) up to a deadline.
    log::info("stopping: " + std::to_string(Session::in_flight()) + " transaction(s) in progress, " +
              std::to_string(milter::live_connections()) + " connection(s) open");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(drain_seconds);
    while (Session::in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (Session::in_flight() > 0) {
        log::warning("stopped with " + std::to_string(Session::in_flight()) + " transaction(s) unfinished");
    }
    if (const std::string path = unix_path(socket); !path.empty()) unlink(path.c_str());
    log::info("stopped");
    return rc == MI_SUCCESS ? 0 : 1;
}

}  // namespace rtm
