/* main.c - llm-collector: start-up, signals, drain, shutdown.
 *
 * Exit status: 0 after a clean stop (SIGTERM/SIGINT drain), 1 on a start-up
 * failure, 2 on a bad configuration or command line, 3 when another
 * collector already runs for this state directory.
 */
#define G_LOG_DOMAIN "collector"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attrib.h"
#include "ca.h"
#include "conn.h"
#include "fds.h"
#include "budget.h"
#include "guard.h"
#include "heap-trim.h"
#include "ipc-budgets.h"
#include "ipc-runs.h"
#include "ipc-server.h"
#include "ledger.h"
#include "ledger-spool.h"
#include "listeners.h"
#include "log.h"
#include "pricing.h"
#include "runs.h"
#include "server.h"
#include "tls-server.h"
#include "upstream.h"


#define EXIT_CONFIG 2
#define EXIT_RUNNING 3

typedef struct {
    LwServer server;
    LwCa *ca;
    int signal_fd;
    int pid_fd;
    LwTimer drain_timer;
    gboolean port_given; /* --port: it, not the file's port, is the one wanted */
    gboolean daemon;     /* --daemon: stderr is the log file, rotated */
} Collector;

static Collector *the_collector;

/* ---- drain and signals ---- */

static void finish_if_drained(Collector *c)
{
    if (c->server.draining && c->server.conns.length == 0)
        lw_loop_quit(c->server.loop);
}

void lw_server_conn_closed(LwServer *server)
{
    if (the_collector != NULL && server->draining)
        finish_if_drained(the_collector);
}

/* What guards and budgets keep for a run goes with it: a collector
 * serving run after run would otherwise keep each one's until it stops. */
static void on_run_closed(guint64 run_id, void *data)
{
    LwServer *s = data;
    lw_guards_forget(s->guards, run_id);
    lw_budgets_forget_run(s->budgets, run_id);
}

/* Ends the drain: what is still in flight is closed (and booked as it
 * stands), and the loop stops. */
static void stop_now(Collector *c, const char *why)
{
    g_warning("%s: closing %u connections with requests still in flight", why,
              c->server.conns.length);
    lw_timer_stop(c->server.loop, &c->drain_timer);
    lw_conn_close_all(&c->server);
    lw_loop_quit(c->server.loop);
}

static void on_drain_timeout(LwLoop *loop, void *data)
{
    stop_now(data, "drain timeout");
}

static void start_drain(Collector *c)
{
    LwServer *s = &c->server;
    if (s->draining)
        return;
    s->draining = TRUE;
    s->drain_ends_us = lw_loop_now_us() + (guint64)s->config->drain_timeout_ms * 1000;
    g_info("draining: %u connections, %" G_GUINT64_FORMAT " requests in flight",
           s->conns.length, s->counters.requests_active);
    lw_listeners_close(s->listeners);
    lw_conn_drain_all(s);
    lw_timer_start(s->loop, &c->drain_timer, s->config->drain_timeout_ms, on_drain_timeout, c);
    finish_if_drained(c);
}

/* The listeners' addresses, as "127.0.0.1:41234, [::1]:8080" ("none"). */
static char *listen_addresses(const LwListeners *listeners)
{
    guint n = 0;
    const LwListenerInfo *info = lw_listeners_info(listeners, &n);
    GString *out = g_string_new(NULL);
    for (guint i = 0; i < n; i++) {
        if (info[i].provider != NULL)
            continue;
        gboolean v6 = strchr(info[i].address, ':') != NULL;
        g_string_append_printf(out, "%s%s%s%s:%u", out->len ? ", " : "", v6 ? "[" : "",
                               info[i].address, v6 ? "]" : "", info[i].port);
    }
    if (out->len == 0)
        g_string_append(out, "none");
    return g_string_free(out, FALSE);
}

/* [collector] listen, synthetic_net and port are bound into the listening
 * sockets at start, and llmwrap runs are told the synthetic addresses: a
 * reload cannot move them without breaking every run that talks to the
 * collector. It keeps the running values in `config` and says so. */
static void keep_bound_settings(Collector *c, LwConfig *config)
{
    LwServer *s = &c->server;
    const LwConfig *running = s->config;
    guint8 net = lw_listeners_synthetic_net(s->listeners);
    if (config->synthetic_net != net)
        g_warning("reload: [collector] synthetic_net = %u needs a restart; still using %u",
                  config->synthetic_net, net);
    config->synthetic_net = net;
    /* Port 0 means any port: the one bound satisfies it. */
    guint16 port = lw_listeners_synthetic_port(s->listeners);
    if (!c->port_given && config->port != 0 && config->port != port)
        g_warning("reload: [collector] port = %u needs a restart; still using %u", config->port,
                  port);
    config->port = running->port;
    if (!g_strv_equal((const char *const *)config->listen, (const char *const *)running->listen)) {
        g_autofree char *wanted =
            config->listen[0] != NULL ? g_strjoinv(", ", config->listen) : g_strdup("none");
        g_autofree char *bound = listen_addresses(s->listeners);
        g_warning("reload: [collector] listen = %s needs a restart; still using %s", wanted, bound);
        g_strfreev(config->listen);
        config->listen = g_strdupv(running->listen);
    }
}

static void reload(Collector *c)
{
    LwServer *s = &c->server;
    g_autoptr(GError) error = NULL;
    /* A missing file would load the defaults: the public provider hosts in
     * place of the configured upstreams, without a word. */
    if (!g_file_test(s->config->path, G_FILE_TEST_EXISTS)) {
        g_warning("reload: %s is missing; keeping the running configuration",
                  s->config->path);
        return;
    }
    LwConfig *config = lw_config_load(s->config->path, &error);
    /* Prices first: an override the table cannot take is a bad file too. */
    LwPricing *pricing = config != NULL ? lw_pricing_load(NULL, config, &error) : NULL;
    if (config == NULL || (pricing == NULL && error->domain == LW_CONFIG_ERROR)) {
        g_warning("reload failed, keeping the running configuration: %s", error->message);
        lw_config_free(config);
        return;
    }
    if (pricing != NULL) {
        lw_pricing_free(s->pricing);
        s->pricing = pricing;
    } else {
        g_warning("reload: prices not reloaded: %s", error->message);
        g_clear_error(&error);
    }
    keep_bound_settings(c, config);
    /* The host set is bound into listeners and the CA: it needs a restart.
     * Upstreams and formats apply now, to requests that start from now. */
    g_autofree char *old_hosts = lw_provider_table_env_hosts(s->providers);
    g_autofree char *new_hosts = lw_provider_table_env_hosts(config->providers);
    if (strcmp(old_hosts, new_hosts) != 0)
        g_warning("reload: providers were added or removed; restart the collector to apply");
    for (guint i = 0; i < lw_provider_table_count(config->providers); i++) {
        const LwProvider *np = lw_provider_table_nth(config->providers, i);
        LwProvider *p = (LwProvider *)lw_provider_table_by_host(s->providers, np->host);
        if (p != NULL) {
            g_free(p->upstream);
            p->upstream = g_strdup(np->upstream);
            p->format = np->format;
        }
    }
    if (!lw_upstream_reconfigure(s->upstream, config, &error)) {
        g_warning("reload: [upstream] not applied: %s", error->message);
        g_clear_error(&error);
    }
    lw_log_set_level(config->log_level);
    if (c->daemon)
        lw_log_rotate_at(s->paths->log_file, config->log_max_size);
    /* Modules read s->config when a request starts; nothing keeps a pointer
     * into the old one across loop iterations. */
    lw_config_free(s->config);
    s->config = config;
    if (s->guards != NULL && !lw_guards_reload(s->guards, &error)) {
        g_warning("reload: guards not reloaded: %s", error->message);
        g_clear_error(&error);
    }
    g_info("configuration reloaded from %s", config->path);
}

static void on_signal(LwLoop *loop, int fd, uint32_t events, void *data)
{
    Collector *c = data;
    struct signalfd_siginfo si;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
            if (!c->server.draining) {
                start_drain(c);
            } else {
                /* A second one (Ctrl-C again): stop now, as the drain's
                 * timeout would, rather than make the user wait it out. */
                stop_now(c, "a second stop signal");
            }
            break;
        case SIGHUP:
            reload(c);
            break;
        default:
            break;
        }
    }
}

/* Every client connection, upstream connection and llmwrap run holds a
 * descriptor, and Debian's soft limit is 1024: raise it to the hard limit,
 * as servers do (the loop uses epoll, so high descriptors are fine). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        g_debug("open files limit stays %lu: %s", (unsigned long)was, g_strerror(errno));
}

static int setup_signals(GError **error)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "signalfd: %s", g_strerror(e));
    }
    return fd;
}

/* ---- pid file: one collector per state directory ---- */

/* Locks the pid file. Returns the fd, or -1 with *ret_running_pid set when
 * another collector holds it. `ret_last_port` gets the port the previous
 * collector used (0 if unknown), so a restart keeps the same port. */
static int lock_pid_file(const char *path, pid_t *ret_running_pid, guint16 *ret_last_port,
                         GError **error)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "cannot open %s: %s", path,
                    g_strerror(e));
        return -1;
    }
    char buf[64] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    char *end = NULL;
    guint64 pid = g_ascii_strtoull(buf, &end, 10);
    guint64 port = (end != NULL && *end == '\n') ? g_ascii_strtoull(end + 1, NULL, 10) : 0;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        *ret_running_pid = (pid_t)pid;
        close(fd);
        return -1;
    }
    *ret_last_port = port <= 65535 ? (guint16)port : 0;
    return fd;
}

/* Writes "PID\nPORT\n" once the collector serves; while it starts (port
 * 0), "PID\n" alone. A starting collector is named as soon as it holds
 * the lock: an llmwrap that finds the lock held waits while the process
 * the file names lives, and gave up at once, for want of a live pid, on
 * one still starting. */
static void write_pid_file(int fd, guint16 port)
{
    char buf[64];
    int n = port != 0 ? g_snprintf(buf, sizeof buf, "%d\n%u\n", (int)getpid(), port)
                      : g_snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n)
        g_warning("cannot write the pid file: %s", g_strerror(errno));
}

/* ---- daemon mode ---- */

/* Forks into the background. The parent waits until the child reports
 * ready (or failed) on a pipe, so `llm-collector --daemon` returns only once
 * the collector serves. Returns the pipe's write end in the child. */
static int daemonize(void)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        perror("llm-collector: pipe");
        exit(1);
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("llm-collector: fork");
        exit(1);
    }
    if (pid > 0) {
        /* The parent only relays the child's verdict. It leaves with
         * _exit: its copy of the configuration is not worth freeing, and a
         * leak checker would report it. */
        close(pipefd[1]);
        char msg[1024];
        ssize_t n = read(pipefd[0], msg, sizeof msg - 1);
        if (n > 0 && msg[0] == 'R')
            _exit(0);
        if (n > 1) {
            msg[n] = '\0';
            fprintf(stderr, "llm-collector: %s\n", msg + 1);
            _exit(msg[0] == 'C' ? EXIT_CONFIG : msg[0] == 'P' ? EXIT_RUNNING : 1);
        }
        fprintf(stderr, "llm-collector: the daemon exited during start-up\n");
        _exit(1);
    }
    close(pipefd[0]);
    setsid();
    if (fork() > 0)
        _exit(0);
    return pipefd[1];
}

static void report(int ready_fd, char kind, const char *message)
{
    if (ready_fd < 0)
        return;
    g_autofree char *msg = g_strdup_printf("%c%s", kind, message != NULL ? message : "");
    if (write(ready_fd, msg, strlen(msg)) < 0) {
        /* The parent is gone; nothing to tell. */
    }
    close(ready_fd);
}

static void redirect_output(const char *log_file)
{
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int log = open(log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (devnull >= 0)
        dup2(devnull, STDIN_FILENO);
    if (log >= 0) {
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
    }
    if (devnull >= 0)
        close(devnull);
    if (log >= 0)
        close(log);
}

/* ---- main ---- */

/* GnuTLS is loaded only because libcurl's LDAP and RTMP support link it; the
 * collector never uses either (its transfers are limited to https and http)
 * and does its own TLS with OpenSSL. GnuTLS's library constructor would
 * initialise it anyway, before main(): it builds its ASN.1 tables and reads
 * the system's GnuTLS configuration, about 1 MiB of resident memory (its own
 * pages and those of the libraries it calls) that is never used. This
 * symbol is GnuTLS's documented opt-out (GNUTLS_SKIP_GLOBAL_INIT in
 * <gnutls/gnutls.h>, spelled out here so the build needs no GnuTLS
 * headers); meson exports it from the executable so the library's
 * constructor finds it. */
int _gnutls_global_init_skip(void);
int _gnutls_global_init_skip(void)
{
    return 1;
}

static void fail(int ready_fd, char kind, const char *message)
{
    report(ready_fd, kind, message);
    g_printerr("llm-collector: %s\n", message);
}

int main(int argc, char **argv)
{
    /* Before anything is opened: with stderr closed, the pid file would
     * become descriptor 2, which daemon mode replaces with the log (the lock
     * that keeps the collector unique released, the pid written into the
     * log); in the foreground, messages would go into a socket or file. */
    if (!lw_fds_ensure_std())
        return 1;

    gboolean daemon_mode = FALSE, version = FALSE, check_config = FALSE;
    gint port_opt = -1;
    g_autofree char *config_path = NULL;
    GOptionEntry entries[] = {
        {"daemon", 0, 0, G_OPTION_ARG_NONE, &daemon_mode,
         "Run in the background (log to the state directory)", NULL},
        {"port", 0, 0, G_OPTION_ARG_INT, &port_opt, "Port of the synthetic listeners", "PORT"},
        {"config", 0, 0, G_OPTION_ARG_FILENAME, &config_path, "Configuration file", "FILE"},
        {"check-config", 0, 0, G_OPTION_ARG_NONE, &check_config,
         "Validate the configuration and exit", NULL},
        {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version", NULL},
        {NULL, 0, 0, 0, NULL, NULL, NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_option_context_set_summary(ctx, "The llmwrap collector: terminates TLS for LLM provider "
                                      "hosts, forwards upstream and records usage.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_autoptr(GError) error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        g_printerr("llm-collector: %s\n", error->message);
        return EXIT_CONFIG;
    }
    if (version) {
        g_print("llm-collector %s\n", LW_VERSION);
        return 0;
    }
    if (port_opt > 65535) {
        g_printerr("llm-collector: --port must be 0..65535\n");
        return EXIT_CONFIG;
    }

    /* A daemon must not keep what its starter left open without
     * close-on-exec (a `flock 9` around a cron job would stay locked, a pipe
     * would never reach EOF); everything it needs it opens from here on. */
    if (daemon_mode)
        closefrom(STDERR_FILENO + 1);

    /* Never intercept ourselves, nor let our children inherit the shim. */
    g_unsetenv("LD_PRELOAD");
    g_setenv("LLMWRAP_COLLECTOR", "1", TRUE);

    lw_log_init("llm-collector", "info");
    raise_fd_limit();
    g_autoptr(LwPaths) paths = lw_paths_new();
    LwConfig *config = lw_config_load(config_path, &error);
    if (config == NULL) {
        g_printerr("llm-collector: %s\n", error->message);
        return EXIT_CONFIG;
    }
    /* Before --check-config answers: [price.MODEL] overrides are checked
     * against the price table, and the collector would refuse to start. */
    LwPricing *pricing = lw_pricing_load(NULL, config, &error);
    if (pricing == NULL) {
        g_printerr("llm-collector: %s\n", error->message);
        lw_config_free(config);
        return error->domain == LW_CONFIG_ERROR ? EXIT_CONFIG : 1;
    }
    if (check_config) {
        g_print("%s: OK\n", config->path);
        lw_pricing_free(pricing);
        lw_config_free(config);
        return 0;
    }
    lw_log_set_level(config->log_level);
    if (!lw_paths_ensure(paths, &error)) {
        g_printerr("llm-collector: %s\n", error->message);
        lw_pricing_free(pricing);
        lw_config_free(config);
        return 1;
    }

    pid_t running = 0;
    guint16 last_port = 0;
    int pid_fd = lock_pid_file(paths->pid_file, &running, &last_port, &error);
    if (pid_fd < 0) {
        lw_pricing_free(pricing);
        lw_config_free(config);
        if (error != NULL) {
            g_printerr("llm-collector: %s\n", error->message);
            return 1;
        }
        g_printerr("llm-collector: already running (pid %d) for %s\n", (int)running,
                   paths->run_dir);
        return EXIT_RUNNING;
    }

    /* Until the daemon's own pid replaces it, this process's: it waits for
     * the daemon to be ready. */
    write_pid_file(pid_fd, 0);
    int ready_fd = -1;
    if (daemon_mode) {
        ready_fd = daemonize();
        write_pid_file(pid_fd, 0);
        redirect_output(paths->log_file);
        lw_log_rotate_at(paths->log_file, config->log_max_size);
    }

    Collector c = {
        .signal_fd = -1, .pid_fd = pid_fd, .port_given = port_opt >= 0, .daemon = daemon_mode};
    the_collector = &c;
    LwServer *s = &c.server;
    s->paths = paths;
    s->config = config;
    s->pricing = pricing;
    s->providers = config->providers;
    config->providers = lw_provider_table_new(); /* the server keeps the startup table */
    lw_provider_table_seal(config->providers);
    s->started_us = lw_loop_now_us();
    g_queue_init(&s->conns);
    lw_timer_init(&c.drain_timer);
    lw_timer_init(&s->trim_timer);

    int status = 1;
    /* Declared before the first goto: cleanup variables must not be jumped over. */
    LwCaOrigin origin = LW_CA_LOADED;
    g_autofree char *ca_detail = NULL;
    s->loop = lw_loop_new(&error);
    if (s->loop == NULL)
        goto out;
    c.signal_fd = setup_signals(&error);
    if (c.signal_fd < 0 || !lw_loop_watch(s->loop, c.signal_fd, EPOLLIN, on_signal, &c, &error))
        goto out;

    const char **hosts = lw_provider_table_hosts(s->providers);
    c.ca = lw_ca_open(paths->ca_dir, hosts, &origin, &ca_detail, &error);
    g_free(hosts);
    if (c.ca == NULL)
        goto out;
    if (origin != LW_CA_LOADED)
        g_info("CA %s%s%s", lw_ca_origin_to_string(origin), ca_detail ? ": " : "",
               ca_detail ? ca_detail : "");
    s->ca_root_file = g_strdup(lw_ca_get_root_path(c.ca));
    s->tls = lw_tls_new(c.ca, s->providers, &error);
    if (s->tls == NULL)
        goto out;
    s->upstream = lw_upstream_new(s->loop, config, paths->run_dir, &error);
    if (s->upstream == NULL)
        goto out;
    s->ledger = lw_ledger_open(paths->ledger_file, FALSE, &error);
    if (s->ledger == NULL)
        goto out;
    /* Before anything reads the ledger: it applies what a collector that
     * was killed left in the spool. */
    s->spool = lw_spool_open(paths->spool_file, paths->ledger_file, &error);
    if (s->spool == NULL)
        goto out;
    s->runs = lw_runs_new(s->ledger, s->spool);
    s->budgets = lw_budgets_new(s);
    s->guards = lw_guards_new(s);
    lw_runs_set_closed_func(s->runs, on_run_closed, s);

    guint16 port = port_opt >= 0 ? (guint16)port_opt : config->port;
    gboolean fallback = port_opt < 0 && config->port == 0;
    if (port == 0)
        port = last_port;
    s->listeners = lw_listeners_new(s, port, fallback, &error);
    if (s->listeners == NULL)
        goto out;
    s->attrib = lw_attrib_new(s, paths->attrib_socket, &error);
    if (s->attrib == NULL)
        goto out;
    s->ipc = lw_ipc_server_new(s, paths->ipc_socket, &error);
    if (s->ipc == NULL)
        goto out;
    lw_ipc_runs_register(s->ipc, s->runs);
    lw_ipc_budgets_register(s->ipc);

    write_pid_file(pid_fd, lw_listeners_synthetic_port(s->listeners));
    {
        guint n = 0;
        const LwListenerInfo *info = lw_listeners_info(s->listeners, &n);
        GString *extra = g_string_new(NULL);
        for (guint i = 0; i < n; i++) {
            if (info[i].provider == NULL)
                g_string_append_printf(extra, " %s:%u", info[i].address, info[i].port);
        }
        g_info("llm-collector %s ready: %u providers on 127.%u.0.x:%u, listen%s, state %s",
               LW_VERSION, lw_provider_table_count(s->providers), config->synthetic_net,
               lw_listeners_synthetic_port(s->listeners), extra->len ? extra->str : " none",
               paths->home != NULL ? paths->home : paths->run_dir);
        g_string_free(extra, TRUE);
    }
    report(ready_fd, 'R', NULL);
    ready_fd = -1;

    lw_loop_run(s->loop);
    g_info("stopped after %" G_GUINT64_FORMAT " requests", s->counters.requests_total);
    status = 0;

out:
    if (status != 0 && error != NULL) {
        gboolean is_config = error->domain == LW_CONFIG_ERROR;
        fail(ready_fd, is_config ? 'C' : 'E', error->message);
        if (is_config)
            status = EXIT_CONFIG;
    }
    lw_timer_stop(s->loop, &c.drain_timer);
    lw_heap_trim_stop(s);
    if (s->loop != NULL) {
        lw_conn_close_all(s);
        lw_loop_run_due(s->loop);
    }
    lw_ipc_server_free(s->ipc);
    lw_guards_free(s->guards);
    lw_budgets_free(s->budgets);
    lw_runs_free(s->runs);
    lw_spool_close(s->spool);
    lw_ledger_close(s->ledger);
    lw_pricing_free(s->pricing);
    lw_attrib_free(s->attrib);
    lw_listeners_free(s->listeners);
    lw_upstream_free(s->upstream);
    lw_tls_free(s->tls);
    lw_ca_free(c.ca);
    if (c.signal_fd >= 0) {
        lw_loop_unwatch(s->loop, c.signal_fd);
        close(c.signal_fd);
    }
    lw_loop_free(s->loop);
    lw_provider_table_free(s->providers);
    lw_config_free(s->config);
    g_free(s->ca_root_file);
    /* Emptied, not removed: a collector starting now may have opened the
     * file already, and would lock a removed file while a third one, which
     * finds none, made and locked another: two collectors on one state
     * directory. */
    if (status == 0 && ftruncate(pid_fd, 0) != 0)
        g_warning("cannot empty the pid file: %s", g_strerror(errno));
    close(pid_fd);
    the_collector = NULL;
    return status;
}
