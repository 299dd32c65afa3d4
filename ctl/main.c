/* main.c - llmctl: global options and the command table.
 *
 * Adding a command: write cmd-NAME.c with `int lw_cmd_NAME(LwCtl *, int,
 * char **)`, declare it in ctl.h, list it below and in meson.build.
 */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "fds.h"
#include "log.h"

static int cmd_help(LwCtl *ctl, int argc, char **argv);

static const LwCtlCommand commands[] = {
    {"status", "whether the collector runs; its ports and counters", lw_cmd_status},
    {"usage", "tokens and cost by model, provider, run, day, hour or tag", lw_cmd_usage},
    {"requests", "recorded requests, newest first, with filters", lw_cmd_requests},
    {"runs", "llmwrap runs: command, duration, exit status, spend", lw_cmd_runs},
    {"tail", "print requests as they finish (needs the collector)", lw_cmd_tail},
    {"pricing", "the price table: `pricing list`, `pricing show MODEL`", lw_cmd_pricing},
    {"reprice", "recompute stored costs with the current prices", lw_cmd_reprice},
    {"budget", "spend limits: `budget set|list|rm|reset`", lw_cmd_budget},
    {"guard", "runaway-program guards: `guard set|list|rm`", lw_cmd_guard},
    {"kill", "refuse every further request of a run (needs the collector)", lw_cmd_kill},
    {"ca", "the local CA: `ca show`, `ca rotate`", lw_cmd_ca},
    {"help", "this overview, or `help COMMAND` for a command's options", cmd_help},
};

static const LwCtlCommand *find_command(const char *name)
{
    for (guint i = 0; i < G_N_ELEMENTS(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_overview(FILE *out)
{
    fprintf(out, "Usage: llmctl [--home DIR] COMMAND [OPTION…]\n\n"
                 "See and manage what programs spend on LLM APIs.\n\nCommands:\n");
    for (guint i = 0; i < G_N_ELEMENTS(commands); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nOptions:\n"
            "  --home DIR  keep all state under DIR (sets LLMWRAP_HOME for this call)\n"
            "  --version   print the version\n"
            "\nTimes (--since, --until) are durations back from now (30m, 2h, 7d, 4w) or\n"
            "dates (2026-11-21, 2026-11-21T13:00, 2026-11-21T13:00:00+01:00),\n"
            "UTC unless an offset is given.\n"
            "\nExit status: 0 ok, 1 error, 2 bad usage, 3 collector not running (status, kill).\n"
            "Environment: LLMWRAP_HOME (state directory), LLMWRAP_NOW (Unix seconds to use\n"
            "as \"now\"; a hook for tests and for replaying reports; LLMWRAP_NOW_FILE reads\n"
            "them from a file).\n");
}

static int cmd_help(LwCtl *ctl, int argc, char **argv)
{
    if (argc < 2) {
        print_overview(stdout);
        return LW_CTL_EXIT_OK;
    }
    const LwCtlCommand *cmd = find_command(argv[1]);
    if (cmd == NULL || cmd->run == cmd_help)
        return lw_ctl_usage_error("help", "unknown command '%s'", argv[1]);
    char *sub_argv[] = {argv[1], "--help", NULL};
    return cmd->run(ctl, 2, sub_argv);
}

int main(int argc, char **argv)
{
    /* Before anything is opened: with stderr closed, the IPC socket would
     * become descriptor 2 and an error message would go to the collector. */
    if (!lw_fds_ensure_std())
        return LW_CTL_EXIT_ERROR;
    setlocale(LC_ALL, "");
    g_set_prgname("llmctl");
    lw_log_init("llmctl", "warning");

    /* Global options come before the command; the command parses the rest. */
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--version") == 0) {
            printf("llmctl %s\n", LW_VERSION);
            return LW_CTL_EXIT_OK;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_overview(stdout);
            return LW_CTL_EXIT_OK;
        } else if (strcmp(a, "--home") == 0 || g_str_has_prefix(a, "--home=")) {
            const char *dir = a[6] == '=' ? a + 7 : (i + 1 < argc ? argv[++i] : NULL);
            if (dir == NULL || dir[0] == '\0')
                return lw_ctl_usage_error(NULL, "--home needs a directory");
            g_setenv("LLMWRAP_HOME", dir, TRUE);
        } else {
            return lw_ctl_usage_error(NULL, "unknown option '%s'", a);
        }
    }
    if (i >= argc) {
        print_overview(stderr);
        return LW_CTL_EXIT_USAGE;
    }
    const LwCtlCommand *cmd = find_command(argv[i]);
    if (cmd == NULL)
        return lw_ctl_usage_error(NULL, "unknown command '%s'", argv[i]);

    LwCtl ctl = {.paths = lw_paths_new()};
    int status = cmd->run(&ctl, argc - i, argv + i);
    lw_paths_free(ctl.paths);
    return status;
}
