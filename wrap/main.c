/* main.c - llmwrap: run a command with its LLM API traffic metered.
 *
 *   llmwrap [options] [--] CMD [ARGS...]
 *   llmwrap --doctor [--] CMD
 *
 * Starts (or joins) the collector of this state directory, opens a run,
 * writes the trust files, runs CMD with the preload shim and the trust
 * variables, forwards signals, restarts the collector on the same port if
 * it dies mid-run, closes the run with CMD's status and prints what the run
 * spent.
 *
 * Exit status: CMD's (127 command not found; 126 not executable); when
 * CMD died of SIGINT, SIGQUIT, SIGTERM or SIGHUP, llmwrap ends itself by
 * the same signal after its summary, and exits 128+N for any other signal
 * N; 2 on a usage error (a malformed LLMWRAP_TLS_HOOK, LLMWRAP_PROPAGATE or
 * LLMWRAP_TEST_REAL_ADDR too); 125 when llmwrap could not start the run
 * (collector unreachable, binaries missing) and --fail-open was not given.
 * --doctor: 0 intercepted and trusted, 1 not, 2 usage.
 */
#define G_LOG_DOMAIN "llmwrap"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "childenv.h"
#include "doctor.h"
#include "fds.h"
#include "ipc.h"
#include "launch.h"
#include "options.h"
#include "paths.h"
#include "program.h"
#include "redact.h"
#include "shim-core.h"
#include "summary.h"
#include "trust.h"

#define EXIT_USAGE      2
#define EXIT_CANNOT_RUN 125
/* The program exited 0 but a budget (or guard, or llmctl kill) refused
 * some of its requests: a CI job must not pass on half its work. */
#define EXIT_REFUSED 86

/* Bounds of every wait on the collector. */
#define START_TIMEOUT_MS   10000
#define RESTART_TIMEOUT_MS 5000
#define IPC_TIMEOUT_MS     5000

typedef struct {
    GPtrArray *tag_keys;   /* char* */
    GPtrArray *tag_values; /* char* */
    char *json_summary;
    gboolean quiet;
    gboolean fail_open;
    gboolean has_budget;
    gint64 budget_pusd;
    gboolean doctor;
    char **cmd;       /* borrowed from argv */
    char **shown_cmd; /* cmd with its secrets redacted: what leaves llmwrap */
} Options;

typedef struct {
    const Options *opt;
    LwPaths *paths;
    LwLaunch *launch;
    LwIpcClient *client;
    guint64 run_id;
    guint16 port;
    gint64 restart_since;     /* monotonic us when the collector was found gone */
    gboolean restart_failing; /* said once per failing streak */
} App;

static void usage(FILE *out)
{
    fputs("Usage: llmwrap [OPTIONS] [--] CMD [ARGS...]\n"
          "       llmwrap --doctor [--] CMD\n"
          "\n"
          "Runs CMD with its LLM API traffic (OpenAI, Anthropic, Gemini, ...) sent through\n"
          "the local llmwrap collector, which records requests, tokens and cost.\n"
          "\n"
          "Options (they end at the first non-option or at --):\n"
          "  --tag KEY=VALUE       label the run (repeatable)\n"
          "  --budget USD          the run may spend at most USD (implies fail-closed)\n"
          "  --fail-open           if the collector is unreachable, let provider connections\n"
          "                        go to the providers directly, unmetered\n"
          "  --json-summary FILE   write the run's spend as JSON to FILE\n"
          "  --quiet               no summary on stderr\n"
          "  --doctor CMD          tell whether CMD's traffic can be intercepted, and why\n"
          "  --version             print the version\n"
          "  --help                print this help\n"
          "\n"
          "Exit status: CMD's own; if CMD died of SIGINT, SIGQUIT, SIGTERM or SIGHUP,\n"
          "llmwrap ends by that signal too (a shell shows 128+N), of another signal N it\n"
          "exits 128+N; 127 or 126 if CMD cannot be found or run; 125 if llmwrap cannot\n"
          "run it under the collector; 86 if CMD exited 0 but a budget, guard or llmctl\n"
          "kill refused some of its requests.\n"
          "\n"
          "Environment: LLMWRAP_HOME (state directory), LLMWRAP_COLLECTOR_BIN,\n"
          "LLMWRAP_PRELOAD_PATH; LLMWRAP_TLS_HOOK=0 (no SSL_new hook), LLMWRAP_PROPAGATE=0\n"
          "(programs CMD runs with a cleared environment are not covered);\n"
          "GITHUB_STEP_SUMMARY, when set, gets a spend table.\n",
          out);
}

static int usage_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "llmwrap: %s\nTry 'llmwrap --help'.\n", msg);
    return EXIT_USAGE;
}

/* Returns -1 to continue, or an exit status. */
static int parse_options(int argc, char **argv, Options *opt)
{
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        /* --name=value or --name value */
        g_autofree char *name = NULL;
        const char *value = NULL;
        const char *eq = strchr(a, '=');
        if (g_str_has_prefix(a, "--") && eq != NULL) {
            name = g_strndup(a, (gsize)(eq - a));
            value = eq + 1;
        } else {
            name = g_strdup(a);
        }
        gboolean takes_value = strcmp(name, "--tag") == 0 || strcmp(name, "--json-summary") == 0 ||
                               strcmp(name, "--budget") == 0;
        if (takes_value && value == NULL) {
            if (i + 1 >= argc)
                return usage_error("%s needs a value", name);
            value = argv[++i];
        } else if (!takes_value && value != NULL) {
            return usage_error("%s takes no value", name);
        }

        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(name, "--version") == 0) {
            printf("llmwrap %s\n", LW_VERSION);
            return 0;
        } else if (strcmp(name, "--quiet") == 0 || strcmp(name, "-q") == 0) {
            opt->quiet = TRUE;
        } else if (strcmp(name, "--fail-open") == 0) {
            opt->fail_open = TRUE;
        } else if (strcmp(name, "--doctor") == 0) {
            opt->doctor = TRUE;
            i++;
            /* "llmwrap --doctor -- CMD", as "llmwrap -- CMD". */
            if (i < argc && strcmp(argv[i], "--") == 0)
                i++;
            break;
        } else if (strcmp(name, "--json-summary") == 0) {
            if (*value == '\0')
                return usage_error("--json-summary needs a file name");
            g_free(opt->json_summary);
            opt->json_summary = g_strdup(value);
        } else if (strcmp(name, "--budget") == 0) {
            if (!lw_options_parse_usd(value, &opt->budget_pusd))
                return usage_error("--budget %s: expected an amount in USD such as 5 or 0.25 "
                                   "(at most 12 decimals)",
                                   value);
            opt->has_budget = TRUE;
        } else if (strcmp(name, "--tag") == 0) {
            g_autoptr(GError) error = NULL;
            char *key = NULL, *val = NULL;
            if (!lw_options_parse_tag(value, &key, &val, &error))
                return usage_error("%s", error->message);
            for (guint k = 0; k < opt->tag_keys->len; k++) {
                if (strcmp(opt->tag_keys->pdata[k], key) == 0) {
                    int rc = usage_error("--tag %s given twice", key);
                    g_free(key);
                    g_free(val);
                    return rc;
                }
            }
            if (opt->tag_keys->len >= LW_TAG_MAX_COUNT) {
                g_free(key);
                g_free(val);
                return usage_error("at most %d --tag options", LW_TAG_MAX_COUNT);
            }
            g_ptr_array_add(opt->tag_keys, key);
            g_ptr_array_add(opt->tag_values, val);
        } else {
            return usage_error("unknown option %s", name);
        }
    }
    if (i >= argc)
        return usage_error(opt->doctor ? "--doctor needs a command" : "no command given");
    if (opt->doctor && i + 1 < argc)
        return usage_error("--doctor takes one command");
    if (opt->fail_open && opt->has_budget)
        return usage_error("--budget fails closed: it cannot be combined with --fail-open");
    /* The shim's knobs a user may set reach the program as they are: one
     * the shim cannot read is a mistake to say now, not a warning in every
     * process of the run. */
    for (guint k = 0; lw_shim_user_knobs[k] != NULL; k++) {
        const char *value = g_getenv(lw_shim_user_knobs[k]);
        const char *expected = NULL;
        if (value != NULL && !lw_shim_knob_valid(lw_shim_user_knobs[k], value, &expected))
            return usage_error("%s=%s: expected %s", lw_shim_user_knobs[k], value, expected);
    }
    opt->cmd = argv + i;
    opt->shown_cmd = lw_redact_argv(opt->cmd);
    return -1;
}

/* ---- IPC ---- */

static Lw__Response *call(LwIpcClient *client, Lw__Request *req, GError **error)
{
    return lw_ipc_client_call(client, req, IPC_TIMEOUT_MS, error);
}

static Lw__Response *open_run(LwIpcClient *client, const Options *opt, guint64 parent,
                              GError **error)
{
    Lw__OpenRunRequest o = LW__OPEN_RUN_REQUEST__INIT;
    /* The ledger keeps the command line: never a credential in it. */
    o.n_argv = g_strv_length(opt->shown_cmd);
    o.argv = opt->shown_cmd;
    g_autofree char *cwd = g_get_current_dir();
    o.cwd = cwd;
    o.has_pid = TRUE;
    o.pid = (uint32_t)getpid();
    g_autofree Lw__Tag *tags = g_new0(Lw__Tag, opt->tag_keys->len + 1);
    g_autofree Lw__Tag **tag_ptrs = g_new0(Lw__Tag *, opt->tag_keys->len + 1);
    for (guint i = 0; i < opt->tag_keys->len; i++) {
        lw__tag__init(&tags[i]);
        tags[i].key = opt->tag_keys->pdata[i];
        tags[i].value = opt->tag_values->pdata[i];
        tag_ptrs[i] = &tags[i];
    }
    o.n_tags = opt->tag_keys->len;
    o.tags = tag_ptrs;
    if (parent != 0) {
        o.has_parent_run_id = TRUE;
        o.parent_run_id = parent;
    }
    if (opt->has_budget) {
        o.has_budget_pusd = TRUE;
        o.budget_pusd = opt->budget_pusd;
    }
    Lw__Request req = LW__REQUEST__INIT;
    req.body_case = LW__REQUEST__BODY_OPEN_RUN;
    req.open_run = &o;
    Lw__Response *resp = call(client, &req, error);
    gboolean stopping = resp != NULL && resp->body_case == LW__RESPONSE__BODY_OPEN_RUN &&
                        resp->open_run->has_stopping_within_ms;
    if (resp != NULL && !stopping &&
        (resp->body_case != LW__RESPONSE__BODY_OPEN_RUN || !resp->open_run->has_run_id ||
         resp->open_run->status == NULL || resp->open_run->status->hosts == NULL ||
         resp->open_run->status->ca_file == NULL || !resp->open_run->status->has_synthetic_port)) {
        lw__response__free_unpacked(resp, NULL);
        g_set_error(error, LW_IPC_ERROR, LW_IPC_ERROR_PROTOCOL,
                    "the collector's answer to opening a run is incomplete");
        return NULL;
    }
    return resp;
}

/* Opens the run. A collector draining to stop (SIGTERM) opens none: its
 * listeners are closed, so the program's connections would be refused.
 * Then waits for it to go (it closes this connection as it exits), starts
 * the next one and opens the run there. Replaces *client_inout. */
static Lw__Response *open_run_on_a_running_collector(LwIpcClient **client_inout, LwLaunch *launch,
                                                     const Options *opt, guint64 parent,
                                                     GError **error)
{
    Lw__Response *resp = open_run(*client_inout, opt, parent, error);
    if (resp == NULL || !resp->open_run->has_stopping_within_ms)
        return resp;
    guint32 within_ms = resp->open_run->stopping_within_ms;
    lw__response__free_unpacked(resp, NULL);
    fprintf(stderr,
            "llmwrap: the collector is stopping; waiting for its requests in flight (at most "
            "%u s), then starting a new one\n",
            (within_ms + 999) / 1000);
    gint64 deadline = g_get_monotonic_time() / 1000 + within_ms + START_TIMEOUT_MS;
    for (;;) {
        g_autoptr(GError) wait_error = NULL;
        gint64 left = deadline - g_get_monotonic_time() / 1000;
        Lw__Response *pushed = lw_ipc_client_next(*client_inout, (int)MAX(left, 0), &wait_error);
        if (pushed == NULL)
            break; /* closed: it has stopped; or the time is up, and the next open says so */
        lw__response__free_unpacked(pushed, NULL);
    }
    g_clear_pointer(client_inout, lw_ipc_client_free);
    *client_inout = lw_launch_connect(launch, 0, START_TIMEOUT_MS, NULL, error);
    if (*client_inout == NULL)
        return NULL;
    resp = open_run(*client_inout, opt, parent, error);
    if (resp != NULL && resp->open_run->has_stopping_within_ms) {
        lw__response__free_unpacked(resp, NULL);
        g_set_error(error, LW_IPC_ERROR, LW_IPC_ERROR_TIMEOUT,
                    "the collector is stopping and did not stop in time");
        return NULL;
    }
    return resp;
}

static gboolean close_run(LwIpcClient *client, guint64 run_id, int status, GError **error)
{
    Lw__CloseRunRequest c = LW__CLOSE_RUN_REQUEST__INIT;
    c.has_run_id = TRUE;
    c.run_id = run_id;
    c.has_exit_status = TRUE;
    c.exit_status = status;
    Lw__Request req = LW__REQUEST__INIT;
    req.body_case = LW__REQUEST__BODY_CLOSE_RUN;
    req.close_run = &c;
    return lw_ipc_client_call_ok(client, &req, IPC_TIMEOUT_MS, error);
}

/* Ties the run to this connection of a restarted collector, so that the
 * run ends if llmwrap dies without closing it. */
static gboolean attach_run(LwIpcClient *client, guint64 run_id, GError **error)
{
    Lw__AttachRunRequest a = LW__ATTACH_RUN_REQUEST__INIT;
    a.has_run_id = TRUE;
    a.run_id = run_id;
    Lw__Request req = LW__REQUEST__INIT;
    req.body_case = LW__REQUEST__BODY_ATTACH_RUN;
    req.attach_run = &a;
    return lw_ipc_client_call_ok(client, &req, IPC_TIMEOUT_MS, error);
}

/* ---- the collector dying mid-run ---- */

/* The collector's IPC connection became readable, or (fd -1) a restart is
 * due again. A dead collector is restarted on the same port; while that
 * fails, the program's provider connections fail closed and llmwrap keeps
 * trying every LW_CHILD_WATCH_RETRY_MS. */
static int on_collector_event(int fd, void *data)
{
    App *app = data;
    g_autoptr(GError) error = NULL;
    if (fd >= 0) {
        Lw__Response *pushed = lw_ipc_client_next(app->client, 100, &error);
        if (pushed != NULL) {
            /* Nothing is pushed to llmwrap today; tolerate it. */
            lw__response__free_unpacked(pushed, NULL);
            return fd;
        }
        if (g_error_matches(error, LW_IPC_ERROR, LW_IPC_ERROR_TIMEOUT))
            return fd;
        g_clear_pointer(&app->client, lw_ipc_client_free);
        fprintf(stderr, "llmwrap: the collector stopped; restarting it on port %u\n", app->port);
        app->restart_since = g_get_monotonic_time();
        app->restart_failing = FALSE;
    }
    gboolean started = FALSE;
    g_clear_error(&error);
    app->client = lw_launch_connect(app->launch, app->port, RESTART_TIMEOUT_MS, &started, &error);
    if (app->client == NULL) {
        if (!app->restart_failing)
            fprintf(stderr,
                    "llmwrap: cannot restart the collector yet: %s; connections to LLM providers "
                    "fail until it runs (still trying)\n",
                    error->message);
        app->restart_failing = TRUE;
        return LW_CHILD_WATCH_RETRY;
    }
    g_clear_error(&error);
    Lw__Response *st = lw_ipc_client_status(app->client, IPC_TIMEOUT_MS, &error);
    if (st == NULL) {
        /* It went away again right after answering: the next event restarts it. */
        fprintf(stderr, "llmwrap: the restarted collector does not answer: %s\n", error->message);
        return lw_ipc_client_fd(app->client);
    }
    guint port = st->status->has_synthetic_port ? st->status->synthetic_port : 0;
    guint pid = st->status->pid;
    lw__response__free_unpacked(st, NULL);
    if (!attach_run(app->client, app->run_id, &error)) {
        /* The run's requests are still booked; only an unannounced end of
         * llmwrap would leave the run open. */
        fprintf(stderr, "llmwrap: the restarted collector does not know run %" G_GUINT64_FORMAT
                        ": %s\n",
                app->run_id, error->message);
        g_clear_error(&error);
    }
    if (port != app->port)
        fprintf(stderr,
                "llmwrap: the collector now listens on port %u instead of %u: this program's "
                "connections to LLM providers will fail\n",
                port, app->port);
    else
        fprintf(stderr, "llmwrap: collector %s (pid %u, port %u) after %" G_GINT64_FORMAT " ms\n",
                started ? "restarted" : "back", pid, port,
                (g_get_monotonic_time() - app->restart_since) / 1000);
    app->restart_failing = FALSE;
    return lw_ipc_client_fd(app->client);
}

/* ---- the pieces of a run ---- */

/* The run this one nests in: the outer llmwrap's, when the environment
 * says we run under one that uses the same state directory. */
static guint64 outer_run(const LwPaths *paths)
{
    const char *id = g_getenv("LLMWRAP_RUN_ID");
    const char *sock = g_getenv("LLMWRAP_ATTRIB_SOCK");
    guint64 run = 0;
    if (id == NULL || sock == NULL || strcmp(sock, paths->attrib_socket) != 0 ||
        !g_ascii_string_to_unsigned(id, 10, 1, G_MAXUINT64, &run, NULL))
        return 0;
    return run;
}

/* Warns about what cannot be intercepted; returns the warnings for the
 * summary. */
static GPtrArray *check_program(const char *cmd, const char *path)
{
    GPtrArray *warnings = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(LwProgram) p = lw_program_inspect(path, g_getenv("PATH"));
    g_autoptr(LwVerdict) v = lw_doctor_assess(p, cmd, FALSE);
    if (v->warning != NULL) {
        fprintf(stderr, "llmwrap: warning: %s (see llmwrap --doctor %s)\n", v->warning, cmd);
        g_ptr_array_add(warnings, g_strdup(v->warning));
    }
    return warnings;
}

/* Runs CMD outside any run: --fail-open with no collector. */
static int run_unmetered(const Options *opt, const LwPaths *paths, const char *why,
                         int *ret_termsig)
{
    fprintf(stderr, "llmwrap: warning: %s; running %s unmetered (--fail-open)\n", why, opt->cmd[0]);
    g_autofree char *trust_dir = lw_trust_dir(paths->run_dir);
    g_auto(GStrv) base = g_get_environ();
    g_auto(GStrv) env = lw_childenv_for_collector(base, trust_dir, NULL);
    g_autoptr(GError) error = NULL;
    int status = lw_child_run(opt->cmd, env, NULL, ret_termsig, &error);
    if (status < 0) {
        fprintf(stderr, "llmwrap: cannot run %s: %s\n", opt->cmd[0], error->message);
        return EXIT_CANNOT_RUN;
    }
    return status;
}

static int cannot_run(const Options *opt, const LwPaths *paths, const char *what, int *ret_termsig)
{
    if (opt->fail_open)
        return run_unmetered(opt, paths, what, ret_termsig);
    fprintf(stderr, "llmwrap: %s\n", what);
    return EXIT_CANNOT_RUN;
}

/* "NAME=path" for each trust variable the user set to a bundle or a CA
 * directory llmwrap can add its root to (lw_trust_combined_for), so the
 * program keeps trusting what the user told it to trust (a corporate CA
 * for other hosts) and trusts the collector too. NULL with error set when
 * a file cannot be written. */
static char **user_trust_files(const LwTrust *trust, char **env, GError **error)
{
    char **out = g_new0(char *, 1);
    const char *const *const *lists = lw_childenv_trust_lists;
    for (guint l = 0; l < LW_CHILDENV_TRUST_LISTS; l++) {
        for (guint i = 0; lists[l][i] != NULL; i++) {
            GError *err = NULL;
            g_autofree char *file =
                lw_trust_combined_for(trust, g_environ_getenv(env, lists[l][i]), &err);
            if (err != NULL) {
                g_propagate_error(error, err);
                g_strfreev(out);
                return NULL;
            }
            if (file != NULL)
                out = g_environ_setenv(out, lists[l][i], file, TRUE);
        }
    }
    return out;
}

/* Reports the run's spend (stderr, --json-summary, a GitHub step summary)
 * and returns the exit status: the program's, or EXIT_REFUSED when it
 * exited 0 although requests were refused. */
static int report(const App *app, int status, GPtrArray *warnings)
{
    const Options *opt = app->opt;
    LwRunSummary spend = {0};
    g_autoptr(GError) error = NULL;
    g_autoptr(LwIpcClient) fresh = NULL;
    LwIpcClient *client = app->client;
    if (client == NULL)
        client = fresh = lw_ipc_client_connect(app->paths->ipc_socket, &error);
    gboolean have = client != NULL && lw_summary_load(client, app->run_id, &spend, &error);
    const char *why = have ? NULL : error->message;
    if (!opt->quiet) {
        g_autofree char *text = lw_summary_text(app->run_id, have ? &spend : NULL, why, warnings);
        fputs(text, stderr);
    }
    if (opt->json_summary != NULL) {
        g_autofree char *json =
            lw_summary_json(app->run_id, status, have ? &spend : NULL, why, warnings);
        g_autoptr(GError) werr = NULL;
        if (!lw_summary_write_file(opt->json_summary, json, &werr))
            fprintf(stderr, "llmwrap: --json-summary: %s\n", werr->message);
    }
    const char *step_summary = g_getenv("GITHUB_STEP_SUMMARY");
    if (step_summary != NULL && step_summary[0] != '\0') {
        g_autofree char *md =
            lw_summary_markdown(app->run_id, opt->shown_cmd, status, have ? &spend : NULL, why);
        FILE *f = fopen(step_summary, "ae");
        if (f == NULL || fputs(md, f) < 0)
            fprintf(stderr, "llmwrap: GITHUB_STEP_SUMMARY: %s\n", g_strerror(errno));
        if (f != NULL)
            fclose(f);
    }
    if (have && spend.refused > 0 && status == 0) {
        /* Said even with --quiet: this is why the job fails. */
        g_autoptr(GString) who = g_string_new(NULL);
        for (guint i = 0; i < spend.refused_by->len; i++)
            g_string_append_printf(who, "%s%s", i > 0 ? ", " : "",
                                   (const char *)g_ptr_array_index(spend.refused_by, i));
        fprintf(stderr,
                "llmwrap: %" G_GINT64_FORMAT " request%s refused by %s; %s exited 0, llmwrap "
                "exits %d\n",
                spend.refused, spend.refused == 1 ? " was" : "s were", who->str, opt->cmd[0],
                EXIT_REFUSED);
        status = EXIT_REFUSED;
    }
    if (have)
        lw_summary_clear(&spend);
    return status;
}

/* Runs CMD under a run of the collector; *ret_termsig is the signal that
 * ended CMD, 0 if none. Returns the exit status. */
static int run(const Options *opt, int *ret_termsig)
{
    const char *cmd = opt->cmd[0];
    g_autofree char *path = NULL;
    int err = 0;
    switch (lw_program_lookup(cmd, g_getenv("PATH"), &path, &err)) {
    case LW_LOOKUP_NOT_FOUND:
        if (strchr(cmd, '/') != NULL)
            fprintf(stderr, "llmwrap: %s: %s\n", cmd, g_strerror(err));
        else
            fprintf(stderr, "llmwrap: %s: command not found\n", cmd);
        return 127;
    case LW_LOOKUP_NOT_EXECUTABLE:
        fprintf(stderr, "llmwrap: %s: %s\n", cmd, g_strerror(err));
        return 126;
    case LW_LOOKUP_FOUND:
    default:
        break;
    }
    g_autoptr(GPtrArray) warnings = check_program(cmd, path);

    App app = {.opt = opt};
    g_autoptr(LwPaths) paths = lw_paths_new();
    app.paths = paths;
    g_autoptr(GError) error = NULL;
    g_autofree char *collector_bin = lw_launch_find_collector(&error);
    if (collector_bin == NULL)
        return cannot_run(opt, paths, error->message, ret_termsig);
    g_autofree char *preload = lw_launch_find_preload(&error);
    if (preload == NULL)
        return cannot_run(opt, paths, error->message, ret_termsig);

    g_autofree char *trust_dir = lw_trust_dir(paths->run_dir);
    g_auto(GStrv) environ_copy = g_get_environ();
    g_auto(GStrv) collector_env = lw_childenv_for_collector(environ_copy, trust_dir, paths->home);
    g_autoptr(LwLaunch) launch =
        lw_launch_new(paths, collector_bin, collector_env, lw_child_original_mask());
    app.launch = launch;
    /* Also when a collector runs: the sockets of a directory another user
     * can change may be that user's, who would then serve the program. */
    if (!lw_paths_ensure(paths, &error))
        return cannot_run(opt, paths, error->message, ret_termsig);
    app.client = lw_ipc_client_connect(paths->ipc_socket, NULL);
    if (app.client == NULL) {
        app.client = lw_launch_connect(launch, 0, START_TIMEOUT_MS, NULL, &error);
        if (app.client == NULL)
            return cannot_run(opt, paths, error->message, ret_termsig);
    }

    guint64 parent = outer_run(paths);
    Lw__Response *opened =
        open_run_on_a_running_collector(&app.client, launch, opt, parent, &error);
    if (opened == NULL) {
        g_autofree char *msg = g_strdup_printf("cannot open a run: %s", error->message);
        g_clear_pointer(&app.client, lw_ipc_client_free);
        return cannot_run(opt, paths, msg, ret_termsig);
    }
    const Lw__StatusReply *st = opened->open_run->status;
    app.run_id = opened->open_run->run_id;
    app.port = (guint16)st->synthetic_port;

    g_autoptr(LwTrust) trust =
        lw_trust_prepare(paths->run_dir, st->ca_file, g_getenv("SSL_CERT_FILE"), &error);
    g_auto(GStrv) user_trust =
        trust != NULL ? user_trust_files(trust, environ_copy, &error) : NULL;
    if (error != NULL) {
        /* Without trust files every TLS handshake with the collector would
         * fail: do not run the program half-configured. */
        fprintf(stderr, "llmwrap: cannot prepare the trust files: %s\n", error->message);
        g_clear_error(&error);
        close_run(app.client, app.run_id, EXIT_CANNOT_RUN, NULL);
        lw__response__free_unpacked(opened, NULL);
        lw_ipc_client_free(app.client);
        return EXIT_CANNOT_RUN;
    }

    g_autoptr(GString) listen = g_string_new(NULL);
    for (size_t i = 0; i < st->n_listeners; i++) {
        const Lw__Listener *l = st->listeners[i];
        if ((l->provider == NULL || l->provider[0] == '\0') && l->address != NULL && l->has_port)
            lw_childenv_listen_append(listen, l->address, l->port);
    }
    LwChildEnv ce = {
        .preload = preload,
        .hosts = st->hosts,
        .net = st->has_synthetic_net ? st->synthetic_net : 241,
        .port = st->synthetic_port,
        .listen = listen->str,
        .run_id = app.run_id,
        .attrib_sock = paths->attrib_socket,
        .home = paths->home,
        .ca_der_b64 = trust->ca_der_b64,
        .combined_pem = trust->combined_file,
        .ca_pem = trust->ca_file,
        .user_trust = user_trust,
        .fail_open = opt->fail_open,
    };
    g_auto(GStrv) child_env = lw_childenv_build(environ_copy, &ce);
    lw__response__free_unpacked(opened, NULL);

    LwChildWatch watch = {
        .fd = lw_ipc_client_fd(app.client),
        .on_ready = on_collector_event,
        .data = &app,
    };
    int status = lw_child_run(opt->cmd, child_env, &watch, ret_termsig, &error);
    if (status < 0) {
        fprintf(stderr, "llmwrap: cannot run %s: %s\n", cmd, error->message);
        g_clear_error(&error);
        status = EXIT_CANNOT_RUN;
    }

    if (app.client == NULL)
        app.client = lw_ipc_client_connect(paths->ipc_socket, NULL);
    if (app.client == NULL || !close_run(app.client, app.run_id, status, &error))
        fprintf(stderr, "llmwrap: could not close run %" G_GUINT64_FORMAT ": %s\n", app.run_id,
                error != NULL ? error->message : "the collector is not running");
    g_clear_pointer(&app.client, lw_ipc_client_free);
    return report(&app, status, warnings);
}

int main(int argc, char **argv)
{
    /* Before anything is opened: with stderr closed, the collector's IPC
     * socket would become descriptor 2 and every message llmwrap prints
     * would be written into the collector's protocol stream. */
    if (!lw_fds_ensure_std())
        return EXIT_CANNOT_RUN;

    /* Before anything can spawn: the forwarded signals are read from a
     * signalfd, never delivered asynchronously. */
    lw_child_prepare_signals();

    Options opt = {
        .tag_keys = g_ptr_array_new_with_free_func(g_free),
        .tag_values = g_ptr_array_new_with_free_func(g_free),
    };
    int termsig = 0;
    int rc = parse_options(argc, argv, &opt);
    if (rc < 0) {
        if (opt.doctor)
            rc = lw_doctor_run(opt.cmd[0], g_getenv("PATH"), stdout);
        else
            rc = run(&opt, &termsig);
    }
    fflush(stdout);
    g_ptr_array_unref(opt.tag_keys);
    g_ptr_array_unref(opt.tag_values);
    g_free(opt.json_summary);
    g_strfreev(opt.shown_cmd);
    /* After the summary: a program ended by Ctrl-C ends llmwrap by SIGINT
     * too, so a shell running llmwrap in a loop stops. */
    lw_child_end_like(termsig);
    return rc;
}
