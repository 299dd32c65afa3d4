/* cmd-kill.c - `llmctl kill RUN`: the collector refuses every further
 * provider request of a run and of the runs nested in it, whatever their
 * budgets say, and ends their streams in flight. The program itself is not
 * signalled: it sees refusals in its provider's own error shape and
 * decides what to do. */
#include "ctl.h"
#include "ipc.h"

#define NAME            "kill"
#define KILL_TIMEOUT_MS 5000

int lw_cmd_kill(LwCtl *ctl, int argc, char **argv)
{
    g_autoptr(GOptionContext) ctx = lw_ctl_options_new(
        "RUN", NULL,
        "Makes the running collector refuse every further request of run RUN (see\n"
        "`llmctl runs`) and end its streams in flight; a collector that restarts\n"
        "refuses them too. Exit status 3 when no collector runs.");
    if (!lw_ctl_options_parse(ctx, NAME, &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc < 2)
        return lw_ctl_usage_error(NAME, "which run? (llmctl kill RUN, ids from llmctl runs)");
    if (argc > 2)
        return lw_ctl_usage_error(NAME, "unexpected argument '%s'", argv[2]);
    guint64 run = 0;
    if (!g_ascii_string_to_unsigned(argv[1], 10, 1, G_MAXINT64, &run, NULL))
        return lw_ctl_usage_error(NAME,
                                  "bad run '%s': expected a run id (a number from "
                                  "llmctl runs)",
                                  argv[1]);

    g_autoptr(GError) error = NULL;
    g_autoptr(LwIpcClient) client = lw_ipc_client_connect(ctl->paths->ipc_socket, &error);
    /* Only "nothing listens" means not running (status 3, which scripts
     * read as "nothing to kill"); a socket this user may not use is an
     * error, as llmctl status says. */
    if (client == NULL && !g_error_matches(error, LW_IPC_ERROR, LW_IPC_ERROR_UNREACHABLE))
        return lw_ctl_error(NAME, "%s", error->message);
    if (client == NULL) {
        fflush(stdout);
        fprintf(stderr,
                "llmctl %s: the collector is not running (no collector listens on %s), so no "
                "run is making requests\n",
                NAME, ctl->paths->ipc_socket);
        return LW_CTL_EXIT_NOT_RUNNING;
    }
    Lw__KillRunRequest kill = LW__KILL_RUN_REQUEST__INIT;
    kill.has_run_id = TRUE;
    kill.run_id = run;
    Lw__Request req = LW__REQUEST__INIT;
    req.body_case = LW__REQUEST__BODY_KILL_RUN;
    req.kill_run = &kill;
    if (!lw_ipc_client_call_ok(client, &req, KILL_TIMEOUT_MS, &error)) {
        if (g_error_matches(error, LW_IPC_ERROR, LW_IPC_ERROR_REMOTE))
            return lw_ctl_error(NAME, "run %" G_GUINT64_FORMAT ": %s", run, error->message);
        return lw_ctl_error(NAME, "the collector at %s did not answer: %s", ctl->paths->ipc_socket,
                            error->message);
    }
    printf("Run %" G_GUINT64_FORMAT " killed: the collector refuses its further requests.\n", run);
    return lw_ctl_flush(NAME) ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}
