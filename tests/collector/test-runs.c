/* test-runs.c - the collector's registry of llmwrap runs. */
#include "runs.h"

#include <glib/gstdio.h>
#include <string.h>

/* The warnings logged (structured logging bypasses g_test_expect_message). */
static GString *warnings;

static GLogWriterOutput keep_warnings(GLogLevelFlags level, const GLogField *fields,
                                      gsize n_fields, gpointer data)
{
    if ((level & G_LOG_LEVEL_WARNING) == 0)
        return g_log_writer_default(level, fields, n_fields, data);
    for (gsize i = 0; i < n_fields; i++) {
        if (strcmp(fields[i].key, "MESSAGE") == 0)
            g_string_append_printf(warnings, "%s\n", (const char *)fields[i].value);
    }
    return G_LOG_WRITER_HANDLED;
}

static LwRuns *new_runs(void)
{
    return lw_runs_new(NULL, NULL);
}

static guint64 open_run(LwRuns *runs, guint64 parent)
{
    LwLedgerRun run = {.parent_id = parent, .budget_pusd = -1};
    g_autoptr(GError) error = NULL;
    guint64 id = lw_runs_open(runs, &run, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(id, !=, 0);
    return id;
}

/* A closed run leaves the registry: a long-lived collector does not keep
 * every run it ever saw, nor walk them on each IPC disconnect. */
static void test_closed_run_leaves(void)
{
    LwRuns *runs = new_runs();
    guint64 id = open_run(runs, 0);
    g_assert_nonnull(lw_runs_get(runs, id));
    g_assert_true(lw_runs_close(runs, id, 0, NULL));
    g_assert_null(lw_runs_get(runs, id));
    g_assert_false(lw_runs_set_owner(runs, id, 7));
    lw_runs_free(runs);
}

static void record_closed(guint64 run_id, void *data)
{
    g_array_append_val((GArray *)data, run_id);
}

/* Every run that ends is told, so that what the collector keeps per run
 * (the guards' history) goes with it: closed, killed then closed, or
 * abandoned by an llmwrap that went away. */
static void test_ended_runs_are_told(void)
{
    LwRuns *runs = new_runs();
    g_autoptr(GArray) closed = g_array_new(FALSE, FALSE, sizeof(guint64));
    lw_runs_set_closed_func(runs, record_closed, closed);
    guint64 plain = open_run(runs, 0);
    guint64 killed = open_run(runs, 0);
    guint64 abandoned = open_run(runs, 0);
    g_assert_true(lw_runs_set_owner(runs, abandoned, 7));
    g_assert_true(lw_runs_close(runs, plain, 0, NULL));
    g_assert_true(lw_runs_kill(runs, killed));
    g_assert_true(lw_runs_close(runs, killed, 137, NULL));
    lw_runs_abandon(runs, 7);
    g_assert_cmpuint(closed->len, ==, 3);
    g_assert_cmpuint(g_array_index(closed, guint64, 0), ==, plain);
    g_assert_cmpuint(g_array_index(closed, guint64, 1), ==, killed);
    g_assert_cmpuint(g_array_index(closed, guint64, 2), ==, abandoned);
    lw_runs_free(runs);
}

/* A killed run stays, closed, so that the runs nested in it stay killed. */
static void test_killed_run_stays_killed(void)
{
    LwRuns *runs = new_runs();
    guint64 outer = open_run(runs, 0);
    guint64 inner = open_run(runs, outer);
    g_assert_false(lw_runs_killed(runs, inner));
    g_assert_true(lw_runs_kill(runs, outer));
    g_assert_true(lw_runs_close(runs, outer, 137, NULL));
    g_assert_true(lw_runs_killed(runs, inner));
    g_assert_true(lw_runs_killed(runs, outer));
    g_assert_false(lw_runs_get(runs, outer)->open);
    lw_runs_free(runs);
}

/* A kill outlasts the collector: one that restarts on the same ledger (as
 * llmwrap restarts a collector that died) refuses the killed run and the
 * runs nested in it, and only those. It served them again. */
static void test_kill_outlasts_a_restart(void)
{
    g_autofree char *dir = g_dir_make_tmp("lw-runs-XXXXXX", NULL);
    g_assert_nonnull(dir);
    g_autofree char *path = g_build_filename(dir, "ledger.db", NULL);
    g_autoptr(GError) error = NULL;
    LwLedger *ledger = lw_ledger_open(path, FALSE, &error);
    g_assert_no_error(error);

    LwRuns *runs = lw_runs_new(ledger, NULL);
    guint64 outer = open_run(runs, 0);
    guint64 inner = open_run(runs, outer);
    guint64 other = open_run(runs, 0);
    g_assert_true(lw_runs_kill(runs, outer));
    g_assert_true(lw_runs_kill(runs, outer)); /* twice: still one kill */
    g_assert_true(lw_runs_close(runs, outer, 0, NULL));
    lw_runs_free(runs);

    runs = lw_runs_new(ledger, NULL); /* the restarted collector */
    g_assert_true(lw_runs_killed(runs, inner));
    g_assert_true(lw_runs_killed(runs, outer));
    g_assert_false(lw_runs_killed(runs, other));
    g_assert_false(lw_runs_killed(runs, open_run(runs, other)));
    g_assert_false(lw_runs_kill(runs, 999));
    lw_runs_free(runs);

    lw_ledger_close(ledger);
    const char *const files[] = {"ledger.db", "ledger.db-wal", "ledger.db-shm"};
    for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *f = g_build_filename(dir, files[i], NULL);
        g_unlink(f);
    }
    g_rmdir(dir);
}

/* An IPC client going away ends the open runs it owns, and only those. */
static void test_abandon_ends_the_owners_runs(void)
{
    LwRuns *runs = new_runs();
    guint64 a = open_run(runs, 0), b = open_run(runs, 0), c = open_run(runs, 0);
    g_assert_true(lw_runs_set_owner(runs, a, 1));
    g_assert_true(lw_runs_set_owner(runs, b, 2));
    g_assert_true(lw_runs_set_owner(runs, c, 1));
    g_assert_true(lw_runs_set_owner(runs, c, 3)); /* reattached elsewhere */
    g_string_truncate(warnings, 0);
    lw_runs_abandon(runs, 1);
    g_autofree char *want = g_strdup_printf(
        "run %" G_GUINT64_FORMAT ": its llmwrap went away without closing it; "
        "ended with an unknown exit status\n",
        a);
    g_assert_cmpstr(warnings->str, ==, want);
    g_assert_null(lw_runs_get(runs, a));
    g_assert_nonnull(lw_runs_get(runs, b));
    g_assert_nonnull(lw_runs_get(runs, c));
    lw_runs_abandon(runs, 0); /* no owner: nothing */
    g_assert_nonnull(lw_runs_get(runs, b));
    lw_runs_free(runs);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    warnings = g_string_new(NULL);
    g_log_set_writer_func(keep_warnings, NULL, NULL);
    g_test_add_func("/runs/closed-run-leaves", test_closed_run_leaves);
    g_test_add_func("/runs/ended-runs-are-told", test_ended_runs_are_told);
    g_test_add_func("/runs/killed-run-stays-killed", test_killed_run_stays_killed);
    g_test_add_func("/runs/kill-outlasts-a-restart", test_kill_outlasts_a_restart);
    g_test_add_func("/runs/abandon-ends-the-owners-runs", test_abandon_ends_the_owners_runs);
    return g_test_run();
}
