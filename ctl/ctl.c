/* ctl.c - helpers shared by llmctl's subcommands. */
#include "ctl.h"

#include <errno.h>
#include <stdarg.h>

#include "ipc.h"
#include "ledger-query.h"
#include "ledger-spool.h"
#include "output.h"
#include "timespec.h"

GOptionContext *lw_ctl_options_new(const char *parameters, const GOptionEntry *entries,
                                   const char *description)
{
    GOptionContext *ctx = g_option_context_new(parameters);
    if (entries != NULL)
        g_option_context_add_main_entries(ctx, entries, NULL);
    if (description != NULL)
        g_option_context_set_description(ctx, description);
    return ctx;
}

gboolean lw_ctl_options_parse(GOptionContext *ctx, const char *name, int *argc, char ***argv)
{
    g_autoptr(GError) error = NULL;
    /* GOption prints "Usage: PRGNAME [OPTION…] PARAMETERS"; with the command
     * in PRGNAME, the options it lists read as the command's own. */
    g_autofree char *prgname = g_strconcat("llmctl ", name, NULL);
    g_set_prgname(prgname);
    if (!g_option_context_parse(ctx, argc, argv, &error)) {
        lw_ctl_usage_error(name, "%s", error->message);
        return FALSE;
    }
    return TRUE;
}

int lw_ctl_usage_error(const char *name, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    g_autofree char *msg = g_strdup_vprintf(format, ap);
    va_end(ap);
    fflush(stdout);
    if (name != NULL)
        fprintf(stderr, "llmctl %s: %s\nTry 'llmctl %s --help'.\n", name, msg, name);
    else
        fprintf(stderr, "llmctl: %s\nTry 'llmctl help'.\n", msg);
    return LW_CTL_EXIT_USAGE;
}

int lw_ctl_error(const char *name, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    g_autofree char *msg = g_strdup_vprintf(format, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "llmctl %s: %s\n", name, msg);
    return LW_CTL_EXIT_ERROR;
}

/* A collector that is starting opens its IPC socket after it has applied
 * its spool; it may be waiting for the ledger's lock meanwhile. */
#define SYNC_CONNECT_WAIT_US 5000000
#define SYNC_CONNECT_POLL_US 20000
/* A sync waits for one batch to commit. */
#define SYNC_TIMEOUT_MS 15000
/* While another process holds the ledger's write lock the collector
 * answers at once that it could not apply its rows (its loop does not
 * wait): llmctl asks again for this long, as SQLite's own busy timeout
 * would have waited. */
#define SYNC_LOCKED_WAIT_US 5000000
#define SYNC_LOCKED_POLL_US 50000

static gboolean ask_collector_to_sync(LwCtl *ctl, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + SYNC_CONNECT_WAIT_US;
    g_autoptr(LwIpcClient) client = NULL;
    while ((client = lw_ipc_client_connect(ctl->paths->ipc_socket, error)) == NULL) {
        if (g_get_monotonic_time() >= deadline)
            return FALSE;
        g_clear_error(error);
        g_usleep(SYNC_CONNECT_POLL_US);
    }
    deadline = g_get_monotonic_time() + SYNC_LOCKED_WAIT_US;
    GError *local = NULL;
    while (!lw_ipc_client_ledger_sync(client, SYNC_TIMEOUT_MS, &local)) {
        if (!g_error_matches(local, LW_IPC_ERROR, LW_IPC_ERROR_REMOTE) ||
            g_get_monotonic_time() >= deadline) {
            g_propagate_error(error, local);
            return FALSE;
        }
        g_clear_error(&local);
        g_usleep(SYNC_LOCKED_POLL_US);
    }
    return TRUE;
}

/* Every request a collector has recorded is in the SQLite file before
 * llmctl reads it: a running collector (it holds the spool) is asked to
 * apply its spool; with none running, llmctl applies what a stopped one
 * left. Failing both, the newest rows may be missing: said, not fatal. */
static void catch_up(LwCtl *ctl)
{
    /* A command that opens the ledger twice warns once. */
    if (ctl->caught_up)
        return;
    ctl->caught_up = TRUE;
    g_autoptr(GError) error = NULL;
    if (lw_spool_drain(ctl->paths->spool_file, ctl->paths->ledger_file, &error))
        return;
    if (g_error_matches(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_BUSY)) {
        g_clear_error(&error);
        if (ask_collector_to_sync(ctl, &error))
            return;
    }
    fflush(stdout);
    fprintf(stderr, "llmctl: warning: the newest requests may be missing: %s\n",
            error->message);
}

LwLedger *lw_ctl_open_ledger(LwCtl *ctl, gboolean readonly, GError **error)
{
    /* A read-write open would create it: a command that writes (reprice)
     * has nothing to do without one either. */
    if (!g_file_test(ctl->paths->ledger_file, G_FILE_TEST_EXISTS)) {
        if (!readonly)
            return NULL;
    } else {
        catch_up(ctl);
    }
    g_autoptr(GError) local = NULL;
    LwLedger *ledger = lw_ledger_open(ctl->paths->ledger_file, readonly, &local);
    if (ledger == NULL && !g_error_matches(local, LW_LEDGER_ERROR, LW_LEDGER_ERROR_NOT_FOUND))
        g_propagate_error(error, g_steal_pointer(&local));
    return ledger;
}

char *lw_ctl_state_dir(const LwCtl *ctl)
{
    if (ctl->paths->home != NULL)
        return g_strdup(ctl->paths->home);
    return g_path_get_dirname(ctl->paths->ledger_file);
}

gboolean lw_ctl_flush(const char *name)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "llmctl %s: cannot write the output: %s\n", name, g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

gboolean lw_ctl_parse_range(const char *name, const char *since, const char *until,
                            gint64 *ret_since_ms, gint64 *ret_until_ms)
{
    g_autoptr(GError) error = NULL;
    gint64 now = 0, s = LW_LEDGER_NO_SINCE, u = LW_LEDGER_NO_UNTIL;
    if ((since != NULL || until != NULL) && !lw_timespec_now_ms(&now, &error)) {
        lw_ctl_usage_error(name, "%s", error->message);
        return FALSE;
    }
    if (since != NULL && !lw_timespec_parse(since, now, &s, &error)) {
        lw_ctl_usage_error(name, "--since: %s", error->message);
        return FALSE;
    }
    if (until != NULL && !lw_timespec_parse(until, now, &u, &error)) {
        lw_ctl_usage_error(name, "--until: %s", error->message);
        return FALSE;
    }
    *ret_since_ms = s;
    *ret_until_ms = u;
    return TRUE;
}

/* At most this many paths in the footer: a thread's runs have one each. */
#define FOOTER_PATHS 3

void lw_ctl_print_unpriced(gint64 n_models, const GPtrArray *models, gint64 n_calls,
                           const GPtrArray *paths)
{
    if (n_models > 0 || n_calls > 0)
        printf("\n");
    if (n_models > 0) {
        g_autoptr(GString) names = g_string_new(NULL);
        for (guint i = 0; models != NULL && i < models->len; i++) {
            const char *m = g_ptr_array_index(models, i);
            if (i > 0)
                g_string_append(names, ", ");
            g_autofree char *shown =
                lw_output_printable(m != NULL && m[0] != '\0' ? m : "(none)");
            g_string_append(names, shown);
        }
        g_autofree char *count = lw_output_count(n_models);
        printf("%s request%s %s no price (unknown model: %s) — see llmctl pricing\n", count,
               n_models == 1 ? "" : "s", n_models == 1 ? "has" : "have", names->str);
    }
    if (n_calls > 0) {
        /* Named as the rows' warnings name them (llmwrap cannot price POST
         * PATH): not a model's price that is missing, so `llmctl pricing`
         * cannot help. */
        g_autoptr(GString) named = g_string_new(NULL);
        guint n_paths = paths != NULL ? paths->len : 0;
        for (guint i = 0; i < MIN(n_paths, FOOTER_PATHS); i++) {
            g_autofree char *shown = lw_output_printable(g_ptr_array_index(paths, i));
            g_string_append_printf(named, "%sPOST %s", i > 0 ? ", " : " (", shown);
        }
        if (n_paths > FOOTER_PATHS)
            g_string_append_printf(named, " and %u other path%s", n_paths - FOOTER_PATHS,
                                   n_paths - FOOTER_PATHS == 1 ? "" : "s");
        if (n_paths > 0)
            g_string_append_c(named, ')');
        g_autofree char *count = lw_output_count(n_calls);
        printf("%s request%s %s call%s llmwrap cannot price%s: cost unknown\n", count,
               n_calls == 1 ? "" : "s", n_calls == 1 ? "is a" : "are", n_calls == 1 ? "" : "s",
               named->str);
    }
}

LwLedger *lw_ctl_open_ledger_for_definitions(LwCtl *ctl, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(ctl->paths->ledger_file);
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        int e = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot create %s: %s",
                    dir, g_strerror(e));
        return NULL;
    }
    return lw_ledger_open(ctl->paths->ledger_file, FALSE, error);
}

LwLedger *lw_ctl_open_ledger_any(LwCtl *ctl, GError **error)
{
    g_autoptr(GError) local = NULL;
    LwLedger *ledger = lw_ctl_open_ledger(ctl, TRUE, &local);
    if (ledger != NULL || local == NULL)
        return ledger;
    /* A read-only open refuses an older schema rather than migrate it; a
     * newer one is refused either way. */
    if (g_error_matches(local, LW_LEDGER_ERROR, LW_LEDGER_ERROR_TOO_NEW)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    return lw_ctl_open_ledger(ctl, FALSE, error);
}

#define RELOAD_TIMEOUT_MS 5000

gboolean lw_ctl_reload_collector(LwCtl *ctl, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(LwIpcClient) client = lw_ipc_client_connect(ctl->paths->ipc_socket, &error);
    if (client == NULL && g_error_matches(error, LW_IPC_ERROR, LW_IPC_ERROR_UNREACHABLE)) {
        printf("No collector is running: it applies the change when it starts.\n");
        return TRUE;
    }
    Lw__ReloadRequest reload = LW__RELOAD_REQUEST__INIT;
    Lw__Request req = LW__REQUEST__INIT;
    req.body_case = LW__REQUEST__BODY_RELOAD;
    req.reload = &reload;
    Lw__Response *resp =
        client != NULL ? lw_ipc_client_call(client, &req, RELOAD_TIMEOUT_MS, &error) : NULL;
    if (resp == NULL) {
        lw_ctl_error(name,
                     "saved, but the running collector did not reload: %s. It applies the "
                     "change when it restarts",
                     error->message);
        return FALSE;
    }
    lw__response__free_unpacked(resp, NULL);
    printf("The running collector applied it.\n");
    return TRUE;
}
