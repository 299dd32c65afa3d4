/* cmd-pricing.c - `llmctl pricing list|show`: the prices costs are
 * computed with (the shipped table with config.ini's overrides applied). */
#include <string.h>

#include "config.h"
#include "ctl.h"
#include "json.h"
#include "output.h"
#include "pricing.h"

#define NAME "pricing"

/* Loads config.ini and the table. A bad config.ini is a usage error (2),
 * as for every command that reads it; a bad table a runtime error (1). */
static int load_pricing(LwCtl *ctl, LwPricing **ret)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(LwConfig) config = lw_config_load(ctl->paths->config_file, &error);
    if (config == NULL) {
        fprintf(stderr, "llmctl %s: %s\n", NAME, error->message);
        return LW_CTL_EXIT_USAGE;
    }
    *ret = lw_pricing_load(NULL, config, &error);
    if (*ret == NULL && error->domain == LW_CONFIG_ERROR) { /* an override the table refuses */
        fprintf(stderr, "llmctl %s: %s\n", NAME, error->message);
        return LW_CTL_EXIT_USAGE;
    }
    if (*ret == NULL)
        return lw_ctl_error(NAME, "%s", error->message);
    return LW_CTL_EXIT_OK;
}

static const char *const rate_names[] = {"input", "output", "cached_input", "cache_write",
                                         "cache_write_1h"};

static gint64 rate_at(const LwRates *r, guint i)
{
    const gint64 v[] = {r->input, r->output, r->cached_input, r->cache_write, r->cache_write_1h};
    return v[i];
}

static void append_json_rates(GString *out, const LwRates *r)
{
    for (guint i = 0; i < G_N_ELEMENTS(rate_names); i++) {
        g_autofree char *v = lw_output_rate_exact(rate_at(r, i));
        g_string_append_printf(out, "%s\"%s\": %s", i > 0 ? ", " : "", rate_names[i],
                               v != NULL ? v : "null");
    }
}

static void append_json_price(GString *out, const LwPrice *p)
{
    g_string_append(out, "{\"provider\": ");
    lw_json_append_string(out, p->provider, -1);
    g_string_append(out, ", \"model\": ");
    lw_json_append_string(out, p->model, -1);
    g_string_append(out, ", \"unit\": \"USD per 1M tokens\", ");
    append_json_rates(out, &p->rates);
    g_string_append(out, ", \"tiers\": [");
    for (guint i = 0; i < p->n_tiers; i++) {
        g_string_append_printf(out, "%s{\"above_input_tokens\": %" G_GINT64_FORMAT ", ",
                               i > 0 ? ", " : "", p->tiers[i].above_input_tokens);
        append_json_rates(out, &p->tiers[i].rates);
        g_string_append_c(out, '}');
    }
    g_string_append(out, "], \"max_input_tokens\": ");
    if (p->max_input_tokens >= 0)
        g_string_append_printf(out, "%" G_GINT64_FORMAT, p->max_input_tokens);
    else
        g_string_append(out, "null");
    g_string_append(out, ", \"max_output_tokens\": ");
    if (p->max_output_tokens >= 0)
        g_string_append_printf(out, "%" G_GINT64_FORMAT, p->max_output_tokens);
    else
        g_string_append(out, "null");
    g_string_append_printf(out, ", \"overridden\": %s}", p->overridden ? "true" : "false");
}

/* "$2.50", "-" when not listed. */
static char *rate_cell(gint64 micro)
{
    return micro >= 0 ? lw_output_usd_human(micro * 1000000) : g_strdup("-");
}

static void add_rates_row(LwOutputTable *t, const char *provider, const char *model,
                          const LwRates *r, const char *note)
{
    char *c[5];
    for (guint i = 0; i < 5; i++)
        c[i] = rate_cell(rate_at(r, i));
    const char *cells[] = {provider, model, c[0], c[1], c[2], c[3], c[4], note};
    lw_output_table_add(t, cells);
    for (guint i = 0; i < 5; i++)
        g_free(c[i]);
}

static LwOutputTable *rates_table(void)
{
    const char *headers[] = {"PROVIDER", "MODEL", "INPUT", "OUTPUT", "CACHED", "CACHE WRITE",
                             "WRITE 1H", "NOTE"};
    const LwOutputAlign align[] = {LW_OUTPUT_LEFT,  LW_OUTPUT_LEFT,  LW_OUTPUT_RIGHT,
                                   LW_OUTPUT_RIGHT, LW_OUTPUT_RIGHT, LW_OUTPUT_RIGHT,
                                   LW_OUTPUT_RIGHT, LW_OUTPUT_LEFT};
    return lw_output_table_new(G_N_ELEMENTS(headers), headers, align);
}

static void add_price_rows(LwOutputTable *t, const LwPrice *p)
{
    GString *note = g_string_new(p->overridden ? "config.ini" : "");
    if (p->n_tiers > 0)
        g_string_append_printf(note, "%slong-context tier%s below", note->len > 0 ? ", " : "",
                               p->n_tiers > 1 ? "s" : "");
    add_rates_row(t, p->provider, p->model, &p->rates, note->str);
    g_string_free(note, TRUE);
    for (guint i = 0; i < p->n_tiers; i++) {
        g_autofree char *above = lw_output_count(p->tiers[i].above_input_tokens);
        g_autofree char *label = g_strdup_printf("  input > %s tokens", above);
        add_rates_row(t, "", label, &p->tiers[i].rates, "");
    }
}

static int pricing_list(LwCtl *ctl, int argc, char **argv)
{
    g_autofree char *provider = NULL;
    gboolean json = FALSE;
    const GOptionEntry entries[] = {
        {"provider", 0, 0, G_OPTION_ARG_STRING, &provider, "Only this provider", "NAME"},
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx =
        lw_ctl_options_new(NULL, entries, "Prices are USD per 1M tokens; '-' means not listed.");
    if (!lw_ctl_options_parse(ctx, NAME " list", &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc > 1)
        return lw_ctl_usage_error(NAME " list", "unexpected argument '%s'", argv[1]);
    g_autoptr(LwPricing) pricing = NULL;
    int status = load_pricing(ctl, &pricing);
    if (status != LW_CTL_EXIT_OK)
        return status;
    g_autoptr(GPtrArray) prices = lw_pricing_list(pricing);

    if (json) {
        g_autoptr(GString) out = g_string_new("[");
        guint n = 0;
        for (guint i = 0; i < prices->len; i++) {
            const LwPrice *p = g_ptr_array_index(prices, i);
            if (provider != NULL && g_strcmp0(p->provider, provider) != 0)
                continue;
            g_string_append(out, n++ > 0 ? ",\n " : "\n ");
            append_json_price(out, p);
        }
        g_string_append(out, n > 0 ? "\n]\n" : "]\n");
        fputs(out->str, stdout);
    } else {
        g_autoptr(LwOutputTable) t = rates_table();
        guint n = 0;
        for (guint i = 0; i < prices->len; i++) {
            const LwPrice *p = g_ptr_array_index(prices, i);
            if (provider != NULL && g_strcmp0(p->provider, provider) != 0)
                continue;
            add_price_rows(t, p);
            n++;
        }
        if (n == 0) {
            printf("No prices%s%s.\n", provider != NULL ? " for provider " : "",
                   provider != NULL ? provider : "");
        } else {
            printf("USD per 1M tokens, price table of %s; override in config.ini [price.MODEL].\n\n",
                   lw_pricing_version(pricing));
            lw_output_table_print(t, stdout);
        }
    }
    return lw_ctl_flush(NAME) ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}

static int pricing_show(LwCtl *ctl, int argc, char **argv)
{
    g_autofree char *provider = NULL;
    gboolean json = FALSE;
    const GOptionEntry entries[] = {
        {"provider", 0, 0, G_OPTION_ARG_STRING, &provider, "The provider serving it", "NAME"},
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = lw_ctl_options_new(
        "MODEL", entries,
        "Shows what MODEL costs with every provider that prices it (dated snapshots\n"
        "resolve to their family where the table says they are priced alike).");
    if (!lw_ctl_options_parse(ctx, NAME " show", &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc != 2)
        return lw_ctl_usage_error(NAME " show", argc < 2 ? "which model?" : "one model at a time");
    const char *model = argv[1];
    g_autoptr(LwPricing) pricing = NULL;
    int status = load_pricing(ctl, &pricing);
    if (status != LW_CTL_EXIT_OK)
        return status;

    /* Every provider the table knows, asked through the same lookup the
     * collector uses, so fallbacks show as they apply. */
    g_autoptr(GPtrArray) prices = lw_pricing_list(pricing);
    g_autoptr(GPtrArray) found = g_ptr_array_new();
    const char *last = NULL;
    for (guint i = 0; i < prices->len; i++) {
        const LwPrice *p = g_ptr_array_index(prices, i);
        if (g_strcmp0(p->provider, last) == 0)
            continue;
        last = p->provider;
        if (provider != NULL && g_strcmp0(p->provider, provider) != 0)
            continue;
        const LwPrice *hit = lw_pricing_lookup(pricing, p->provider, model);
        if (hit != NULL)
            g_ptr_array_add(found, (gpointer)hit);
    }
    if (found->len == 0) {
        if (json) {
            fputs("[]\n", stdout);
            lw_ctl_flush(NAME);
        }
        return lw_ctl_error(NAME " show",
                            "no price for '%s'%s%s: its cost is recorded as unknown. Add "
                            "[price.%s] to %s to price it",
                            model, provider != NULL ? " with provider " : "",
                            provider != NULL ? provider : "", model, ctl->paths->config_file);
    }
    if (json) {
        g_autoptr(GString) out = g_string_new("[");
        for (guint i = 0; i < found->len; i++) {
            g_string_append(out, i > 0 ? ",\n " : "\n ");
            append_json_price(out, g_ptr_array_index(found, i));
        }
        g_string_append(out, "\n]\n");
        fputs(out->str, stdout);
    } else {
        g_autoptr(LwOutputTable) t = rates_table();
        for (guint i = 0; i < found->len; i++)
            add_price_rows(t, g_ptr_array_index(found, i));
        printf("%s — USD per 1M tokens, price table of %s\n\n", model,
               lw_pricing_version(pricing));
        lw_output_table_print(t, stdout);
        for (guint i = 0; i < found->len; i++) {
            const LwPrice *p = g_ptr_array_index(found, i);
            if (strcmp(p->model, model) != 0)
                printf("\n%s is priced as %s (%s).\n", model, p->model, p->provider);
        }
    }
    return lw_ctl_flush(NAME) ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}

int lw_cmd_pricing(LwCtl *ctl, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "list") == 0)
        return pricing_list(ctl, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "show") == 0)
        return pricing_show(ctl, argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("Usage:\n  llmctl pricing list [--provider NAME] [--json]\n"
               "  llmctl pricing show MODEL [--provider NAME] [--json]\n\n"
               "The prices costs are computed with: the shipped table, with the\n"
               "[price.MODEL] overrides of config.ini applied.\n");
        return LW_CTL_EXIT_OK;
    }
    if (argc < 2)
        return lw_ctl_usage_error(NAME, "expected 'list' or 'show MODEL'");
    return lw_ctl_usage_error(NAME, "unknown subcommand '%s': expected 'list' or 'show MODEL'",
                              argv[1]);
}
