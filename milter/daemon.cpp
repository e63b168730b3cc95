// daemon.cpp — start-up order (preflight, socket, privilege drop, journal),
// the service manager's notifications (sd_notify), signals, reload, drain.
// libmilter is reached through callbacks.h only.
#include "daemon.h"

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include "callbacks.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "metrics_server.h"
#include "online_check.h"
#include "preflight.h"
#include "privileges.h"
#include "rt_client.h"
#include "runtime.h"
#include "session.h"
#include "spool_dir.h"
#include "start_status.h"
#include "tcp_tuning.h"
#include "unique_fd.h"

namespace rtm {
namespace {

// The service manager's notification socket (systemd Type=notify): the
// state changes it waits for. Without $NOTIFY_SOCKET sd_notify does nothing.
void notify(const std::string& state) {
    sd_notify(0, state.c_str());
}

// A unix socket left by a dead process is removed; a live one is not stolen.
// Runs with the identity the socket is bound with (ActingAs), so it can
// remove nothing the service user could not.
StartStatus clear_stale_socket(const std::string& spec, const std::string& path) {
    auto fail = [&](const std::string& what) {
        return StartStatus::cant_create("socket " + spec + ": " + what);
    };
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0) return StartStatus::ok();
    if (!S_ISSOCK(st.st_mode)) return fail(path + " exists and is not a socket; not touching it");
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0)
        return fail("another process is listening on " + path + "; is rt-milter already running?");
    if (errno != ECONNREFUSED)  // nobody listening says ECONNREFUSED; anything else proves nothing
        return fail("cannot tell whether " + path + " is in use: " + std::strerror(errno));
    if (unlink(path.c_str()) != 0 && errno != ENOENT)
        return fail("cannot remove stale socket " + path + ": " + std::strerror(errno));
    log::info("removed stale socket " + path);
    return StartStatus::ok();
}

// The bound socket must have come out as configured: a set-group-ID bit or
// a default ACL on its directory would change group or mode behind us.
StartStatus check_bound_socket(const std::string& spec, const std::string& path, uid_t uid,
                               gid_t gid, unsigned mode) {
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode))
        return StartStatus::cant_create("socket " + spec + ": " + path + " is gone after bind");
    if (st.st_uid == uid && st.st_gid == gid && (st.st_mode & 07777) == mode)
        return StartStatus::ok();
    char want[64], got[64];
    std::snprintf(want, sizeof want, "%u:%u mode %04o", unsigned(uid), unsigned(gid), mode);
    std::snprintf(got, sizeof got, "%u:%u mode %04o", unsigned(st.st_uid), unsigned(st.st_gid),
                  unsigned(st.st_mode & 07777));
    return StartStatus::config("socket " + spec + ": " + path + " came out " + got + ", not " +
                               want + " (a set-group-ID bit or a default ACL on its directory?)");
}

// Binds the milter socket. A unix socket is bound with the service user's
// identity and the socket's group as effective group (ActingAs) under the
// umask that gives socket_mode, so owner, group and mode are right from the
// start and root never chowns or chmods a path the user could swap. A test
// bind first (try_bind) puts the reason of a failure into words: libmilter
// gives its own to syslog only.
StartStatus bind_milter_socket(const Config& config, const ServiceUser& user) {
    const std::string& spec = config.socket;
    const std::string path = unix_socket_path(spec);
    if (!milter::set_socket(spec))
        return StartStatus::config("socket " + spec + ": libmilter does not take it");
    if (path.empty()) {
        if (StartStatus s = try_bind(spec, geteuid() == 0 ? "root" : "user " + user.name); !s)
            return s;
        if (!milter::open_socket())
            return StartStatus::cant_create("socket " + spec + ": libmilter cannot listen there");
        enable_tcp_tuning(true);
        return StartStatus::ok();
    }
    gid_t group = 0;
    if (StartStatus s = socket_group_of(config, user, group); !s) return s;
    ActingAs acting(user, group);
    if (!acting.status())
        return StartStatus::os_error("socket " + spec + ": " + acting.status().error());
    if (StartStatus s = make_socket_directory(config, user, PreflightMode::Start); !s) return s;
    if (StartStatus s = clear_stale_socket(spec, path); !s) return s;
    if (StartStatus s = try_bind(spec, "user " + user.name); !s) return s;
    const mode_t old = umask(~config.socket_mode & 0777);
    const bool listening = milter::open_socket();
    umask(old);
    if (!listening)
        return StartStatus::cant_create("socket " + spec +
                                        ": libmilter cannot listen there as user " + user.name);
    // Not root, the effective group is our own (setegid to a supplementary
    // group needs root): the group is set by the path, with no privilege a
    // swap could borrow, and checked below like the rest.
    if (getegid() != group &&
        fchownat(AT_FDCWD, path.c_str(), static_cast<uid_t>(-1), group, AT_SYMLINK_NOFOLLOW) != 0) {
        return StartStatus::cant_create("socket " + spec + ": cannot give " + path + " to group " +
                                        config.socket_group + ": " + std::strerror(errno));
    }
    return check_bound_socket(spec, path, user.from_root ? user.uid : geteuid(), group,
                              config.socket_mode);
}

// What a scrape or a health check reads of the present: the transactions
// in flight, and from the current runtime each RT server's circuit and
// slots and whether the journal takes writes (asked afresh).
metrics::Present present_now() {
    metrics::Present p;
    p.in_flight = Session::in_flight();
    const std::shared_ptr<const Runtime> runtime = milter::current_runtime();
    if (!runtime) return p;
    p.configured = true;
    p.journal_on = !runtime->config().journal.empty();
    if (p.journal_on) {
        Status s = runtime->journal() ? runtime->journal()->check_writable()
                                      : Status::failure(runtime->journal_error());
        p.journal_usable = s.is_ok();
        if (!s) p.journal_error = s.error();
    }
    for (const auto& [name, pool] : runtime->pools()) {
        const Circuit::State state = pool->circuit().state();
        p.servers.push_back({name,
                             state == Circuit::State::Closed ? "closed"
                             : state == Circuit::State::Open ? "open"
                                                             : "half_open",
                             pool->waiting(), pool->in_progress(),
                             static_cast<std::size_t>(pool->server().max_concurrent)});
    }
    return p;
}

// "" while libmilter listens on the socket (and a unix socket's file is
// still there: a cleaner of /run may have taken it).
std::string socket_problem(const std::string& spec) {
    if (milter::stop_state() != milter::StopState::Running)
        return "the milter listener is stopping";
    if (const std::string path = unix_socket_path(spec); !path.empty()) {
        struct stat st {};
        if (lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode))
            return "the milter socket " + path +
                   " is gone; the MTA cannot connect (restart rt-milter)";
    }
    return {};
}

// Returns what the service manager's STATUS= says afterwards.
std::string reload(const std::string& path) {
    LoadResult loaded = load_config_file(path);
    if (!loaded.config) {
        metrics::count_config_load(false);
        for (const ConfigError& e : loaded.errors) log::error("reload: " + e.to_string());
        const std::string failed = "reload of " + path + " failed; the running configuration stays";
        log::error(failed);
        return failed;
    }
    auto old = milter::current_runtime();
    if (old && (old->config().socket != loaded.config->socket ||
                old->config().user != loaded.config->user)) {
        log::warning("reload: socket and user changes take effect only at restart");
    }
    if (old && old->config().metrics != loaded.config->metrics) {
        log::warning("reload: a change of metrics takes effect only at restart");
    }
    log::set_level(loaded.config->log_level);
    const std::size_t routes = loaded.config->routes.size();
    auto runtime = std::make_shared<const Runtime>(std::move(*loaded.config));
    log_online_check(std::make_shared<const Config>(runtime->config()));  // warns, never blocks
    milter::set_runtime(std::move(runtime));
    metrics::count_config_load(true);
    const std::string reloaded = "reloaded " + path + ": " + std::to_string(routes) + " route(s)";
    log::info(reloaded);
    return reloaded;
}

}  // namespace

int run_daemon(const DaemonOptions& options) {
    // Everything the daemon makes is its own alone: the journal, the spool,
    // a socket directory. The socket's mode comes from its own umask at bind.
    umask(077);
    // glibc hands a thread arena's free top back to the kernel once 128 KiB
    // lie there, so every message's buffers (64 KiB blocks of the message,
    // libmilter's 64 KiB body chunks, SQLite's pages) were faulted in afresh
    // (perf record -e page-faults under tests/bench, 100 KB messages). Up to
    // 1 MiB is kept per arena (glibc makes at most 8 per core); blocks of
    // 512 KiB or more are still mapped on their own and given back at once.
    mallopt(M_MMAP_THRESHOLD, 512 * 1024);
    mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
    LoadResult loaded = load_config_file(options.config_path);
    if (!loaded.config) {
        for (const ConfigError& e : loaded.errors) log::error(e.to_string());
        return exit_status::kConfig;
    }
    Config config = std::move(*loaded.config);
    log::set_level(config.log_level);
    const UserCheck user =
        check_user_setting(config.user, geteuid() == 0 ? StartedAs::Root : StartedAs::NotRoot);
    if (user.fatal) {
        log::error(user.line);
        return exit_status::kConfig;
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
    std::string error;
    const std::optional<ServiceUser> user_or = resolve_service_user(config.user, error);
    if (!user_or) {
        log::error(error);
        return exit_status::kConfig;
    }
    const ServiceUser& service = *user_or;

    // Before the socket exists: everything a delivery needs, as the service
    // user (preflight.h). Nothing listens until it has all passed.
    UniqueFd spool;
    const PreflightReport report = preflight(config, service, PreflightMode::Start, &spool);
    for (const std::string& note : report.notes) log::info(note);
    for (const StartStatus& failure : report.failures) log::error(failure.error());
    if (!report.failures.empty()) return report.exit_status();

    if (!milter::register_filter()) return exit_status::kOsError;
    if (StartStatus s = bind_milter_socket(config, service); !s) {
        log::error(s.error());
        return s.exit_status();
    }
    const std::string socket = config.socket;
    auto not_started = [&socket](int status) {
        if (const std::string path = unix_socket_path(socket); !path.empty()) unlink(path.c_str());
        return status;
    };
    // The metrics listener, bound before the drop (so any port works).
    std::unique_ptr<MetricsServer> metrics_server;
    if (!config.metrics.empty()) {
        ListenAddress listen;
        parse_listen_address(config.metrics, listen);  // the loader has checked it
        std::string error;
        metrics_server = MetricsServer::bind(listen, error);
        if (!metrics_server) {
            log::error(error);
            return not_started(exit_status::kCantCreate);
        }
        if (!listen.loopback())
            log::warning(
                "metrics " + listen.to_string() +
                ": not a loopback address; anyone who reaches it reads the counters and /status");
    }
    if (Status s = drop_privileges(service); !s) {
        log::error(s.error());
        return not_started(exit_status::kOsError);
    }
    if (service.from_root) log::info("running as user " + service.name);
    remove_stale_spool_files(spool.get(), config.spool_dir);
    spool.reset();
    const long drain_seconds = [&] {
        long t = 0;
        for (const auto& [name, server] : config.servers) t = std::max(t, server.timeout);
        return t + 30;
    }();
    const std::size_t routes = config.routes.size();
    auto runtime = std::make_shared<const Runtime>(std::move(config));
    // The preflight opened it as this user a moment ago; only a change in
    // between (a full disk, an operator) gets here.
    if (!runtime->config().journal.empty() && !runtime->journal()) {
        log::error("journal " + runtime->config().journal + ": " + runtime->journal_error() +
                   "; not starting");
        return not_started(exit_status::kCantCreate);
    }
    // What RT says of the routes' queues (servers with a token): warnings only.
    log_online_check(std::make_shared<const Config>(runtime->config()));
    milter::set_runtime(std::move(runtime));
    metrics::count_config_load(true);
    if (metrics_server) {
        std::string error;
        if (!metrics_server->start({present_now, [socket] { return socket_problem(socket); },
                                    options.config_path, socket},
                                   error)) {
            log::error(error);
            return not_started(exit_status::kCantCreate);
        }
        log::info("metrics on http://" + metrics_server->address().to_string() +
                  "/metrics (also /healthz, /status)");
    }

    std::thread([path = options.config_path, usr1] {
        for (;;) {
            int sig = 0;
            if (sigwait(&usr1, &sig) != 0 || sig != SIGUSR1) continue;
            timespec now{};
            clock_gettime(CLOCK_MONOTONIC, &now);
            notify("RELOADING=1\nSTATUS=reloading " + path + "\nMONOTONIC_USEC=" +
                   std::to_string(now.tv_sec * 1000000LL + now.tv_nsec / 1000));
            notify("READY=1\nSTATUS=" + reload(path));
        }
    }).detach();

    const std::string listening =
        "listening on " + socket + " with " + std::to_string(routes) + " route(s)";
    log::info(listening);
    notify("READY=1\nSTATUS=" + listening);
    // libmilter's signal thread marks the stop (milter::stop_state) and then
    // waits for the lock its listener holds through a poll of up to 5 s: one
    // connection of our own ends that poll, so a stop takes milliseconds
    // (systemctl stop, tests). The watcher looks at the flag 20 times a
    // second and ends with libmilter's loop.
    std::atomic<bool> main_done{false};
    std::thread stop_watcher([&main_done, socket] {
        while (!main_done.load()) {
            if (milter::stop_state() != milter::StopState::Running) {
                wake_listener(socket);
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    });
    const bool ran_well = milter::run();
    main_done = true;
    stop_watcher.join();
    // libmilter stops accepting but does not wait for sessions: wait for the
    // transactions in progress (a POST may be under way) up to a deadline.
    const std::string stopping = "stopping: " + std::to_string(Session::in_flight()) +
                                 " transaction(s) in progress, " +
                                 std::to_string(milter::live_connections()) + " connection(s) open";
    notify("STOPPING=1\nSTATUS=" + stopping);
    log::info(stopping);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(drain_seconds);
    while (Session::in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (Session::in_flight() > 0) {
        log::warning("stopped with " + std::to_string(Session::in_flight()) +
                     " transaction(s) unfinished");
    }
    if (const std::string path = unix_socket_path(socket); !path.empty()) unlink(path.c_str());
    // The posting threads end now, not in the global runtime's destructor,
    // which runs after OpenSSL's atexit cleanup: what OpenSSL keeps per
    // thread would leak (LeakSanitizer saw it with an https RT). A late
    // transaction gets 451 (RT not asked).
    if (auto runtime = milter::current_runtime()) runtime->stop_posting();
    // libmilter's loop reports failure when a stop lands between its
    // listener's check of the stop flag and its look at the socket that the
    // stop has just closed ("listenfd=-1 corrupted"): a SIGTERM right after
    // start is a clean stop.
    if (!ran_well && milter::stop_state() != milter::StopState::Stop) {
        log::error("libmilter's listener failed (its reason is in the mail log); stopped");
        return 1;
    }
    log::info("stopped");
    return 0;
}

}  // namespace rtm
