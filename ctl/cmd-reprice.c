/* cmd-reprice.c - `llmctl reprice`: recompute stored costs with the
 * current prices (after a price change or a new [price.MODEL] override).
 * Provider-reported costs, cache hits, requests nobody bills (refused,
 * failed) and calls llmwrap cannot price keep theirs. */
#include <stdio.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "ledger-query.h"
#include "ledger-reprice.h"
#include "output.h"
#include "pricing.h"

#define NAME "reprice"

/* A reprice of a large ledger takes seconds: on a terminal, say how far
 * it got. */
static void show_progress(const LwRepriceResult *so_far, void *data)
{
    (void)data;
    g_autofree char *examined = lw_output_count(so_far->examined);
    fprintf(stderr, "\r%s requests examined…", examined);
}

int lw_cmd_reprice(LwCtl *ctl, int argc, char **argv)
{
    g_autofree char *since = NULL;
    const GOptionEntry entries[] = {
        {"since", 0, 0, G_OPTION_ARG_STRING, &since, "Only requests from T on (default: all)",
         "T"},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = lw_ctl_options_new(
        NULL, entries,
        "T is a duration back from now (30m, 2h, 7d, 4w) or a date (2026-11-21,\n"
        "2026-11-21T13:00, 2026-11-21T13:00:00+01:00), UTC unless an offset is given.\n"
        "Costs the provider reported itself, cache hits and requests nobody bills\n"
        "(refused, failed) are kept, and calls llmwrap cannot price (images, audio,\n"
        "batches, ...) keep an unknown cost.");
    if (!lw_ctl_options_parse(ctx, NAME, &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc > 1)
        return lw_ctl_usage_error(NAME, "unexpected argument '%s'", argv[1]);
    gint64 since_ms = LW_LEDGER_NO_SINCE, until_ms = LW_LEDGER_NO_UNTIL;
    if (!lw_ctl_parse_range(NAME, since, NULL, &since_ms, &until_ms))
        return LW_CTL_EXIT_USAGE;

    g_autoptr(GError) error = NULL;
    g_autoptr(LwConfig) config = lw_config_load(ctl->paths->config_file, &error);
    if (config == NULL) {
        fprintf(stderr, "llmctl %s: %s\n", NAME, error->message);
        return LW_CTL_EXIT_USAGE;
    }
    g_autoptr(LwPricing) pricing = lw_pricing_load(NULL, config, &error);
    if (pricing == NULL && error->domain == LW_CONFIG_ERROR) { /* an override the table refuses */
        fprintf(stderr, "llmctl %s: %s\n", NAME, error->message);
        return LW_CTL_EXIT_USAGE;
    }
    if (pricing == NULL)
        return lw_ctl_error(NAME, "%s", error->message);
    g_autoptr(LwLedger) ledger = lw_ctl_open_ledger(ctl, FALSE, &error);
    if (ledger == NULL && error != NULL)
        return lw_ctl_error(NAME, "%s", error->message);
    if (ledger == NULL) {
        printf("No ledger yet at %s: nothing to reprice.\n", ctl->paths->ledger_file);
        return lw_ctl_flush(NAME) ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
    }

    LwRepriceResult res;
    gboolean tty = isatty(STDERR_FILENO);
    gboolean ok = lw_ledger_reprice(ledger, pricing, since_ms, tty ? show_progress : NULL, NULL,
                                    &res, &error);
    if (tty)
        fprintf(stderr, "\r\033[K");
    if (!ok && res.changed == 0)
        return lw_ctl_error(NAME, "%s", error->message);
    if (!ok) {
        g_autofree char *changed = lw_output_count(res.changed);
        lw_ctl_error(NAME, "%s (%s requests were repriced before that; run it again to finish)",
                     error->message, changed);
        lw_ctl_reload_collector(ctl, NAME); /* for the rows repriced: see below */
        return LW_CTL_EXIT_ERROR;
    }
    g_autofree char *examined = lw_output_count(res.examined);
    g_autofree char *changed = lw_output_count(res.changed);
    g_autofree char *delta = lw_output_usd_human(res.delta_pusd);
    printf("Repriced with the price table of %s: %s of %s requests changed, total %s%s.\n",
           lw_pricing_version(pricing), changed, examined, res.delta_pusd > 0 ? "+" : "", delta);
    if (res.now_unpriced > 0) {
        LwUsageQuery q = {.by = LW_USAGE_BY_MODEL, .since_ms = since_ms,
                          .until_ms = LW_LEDGER_NO_UNTIL};
        g_autoptr(LwUsageReport) rep = lw_ledger_usage(ledger, &q, &error);
        lw_ctl_print_unpriced(res.now_unpriced, rep != NULL ? rep->unpriced_models : NULL, 0,
                              NULL);
    }
    /* A running collector holds each budget's spend in memory: told, it
     * reads the new costs, or hard budgets would be held to the old ones. */
    if (res.changed > 0 && !lw_ctl_reload_collector(ctl, NAME))
        return LW_CTL_EXIT_ERROR;
    return lw_ctl_flush(NAME) ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}
