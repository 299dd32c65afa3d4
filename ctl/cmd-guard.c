/* cmd-guard.c - `llmctl guard set|list|rm`: guards against runaway
 * programs (loops, request storms, spend spikes, huge or growing inputs),
 * checked by the collector per run.
 *
 * Guards set here live in the ledger; config.ini [guard.NAME] groups
 * define more, which `list` shows but `set` and `rm` leave alone (edit the
 * file for those).
 *
 * Thresholds by type:
 *   loop        N identical requests within WINDOW       a count
 *   rate        more than N requests within WINDOW       a count
 *   spend-rate  N USD spent within WINDOW                USD, stored in pico-USD
 *   size        one request's input above N tokens       tokens
 *   growth      input N times the run's first request's  a factor (2.5), stored x1000
 *
 * --json of `list` (pinned) is an array of {name, type, threshold, unit,
 * window_ms, action, source}: threshold an exact number in the unit
 * ("requests", "USD", "tokens", "x"), window_ms null for size and growth,
 * source "ledger" or "config".
 */
#include <string.h>

#include "budget-def.h"
#include "config.h"
#include "ctl.h"
#include "json.h"
#include "ledger-budgets.h"
#include "output.h"

#define NAME              "guard"
#define DEFAULT_WINDOW_MS 60000
#define MAX_COUNT         G_GUINT64_CONSTANT(1000000000)
#define MAX_TOKENS        G_GUINT64_CONSTANT(100000000000)
#define GROWTH_SCALE      1000
#define MAX_GROWTH        (G_GINT64_CONSTANT(1000000) * GROWTH_SCALE)

static gboolean has_window(LwGuardKind k)
{
    return k == LW_GUARD_LOOP || k == LW_GUARD_RATE || k == LW_GUARD_SPEND_RATE;
}

static const char *unit_of(LwGuardKind k)
{
    switch (k) {
    case LW_GUARD_LOOP:
    case LW_GUARD_RATE:
        return "requests";
    case LW_GUARD_SPEND_RATE:
        return "USD";
    case LW_GUARD_SIZE:
        return "tokens";
    case LW_GUARD_GROWTH:
        return "x";
    }
    return "?";
}

/* "2.5" -> 2500: a factor with at most three decimals, exactly. */
static gboolean parse_factor(const char *s, gint64 *ret)
{
    if (s == NULL || !g_ascii_isdigit(s[0]))
        return FALSE;
    gint64 v = 0;
    const char *p = s;
    for (; g_ascii_isdigit(*p); p++) {
        v = v * 10 + (*p - '0');
        if (v > MAX_GROWTH / GROWTH_SCALE)
            return FALSE;
    }
    v *= GROWTH_SCALE;
    if (*p == '.') {
        p++;
        gint64 scale = GROWTH_SCALE / 10;
        if (!g_ascii_isdigit(*p))
            return FALSE;
        for (; g_ascii_isdigit(*p); p++, scale /= 10) {
            if (scale == 0)
                return FALSE;
            v += (*p - '0') * scale;
        }
    }
    if (*p != '\0')
        return FALSE;
    *ret = v;
    return TRUE;
}

/* The threshold of a guard of kind `k` from its command-line text. */
static gboolean parse_threshold(LwGuardKind k, const char *s, gint64 *ret,
                                const char **ret_expected)
{
    guint64 n = 0;
    switch (k) {
    case LW_GUARD_LOOP:
    case LW_GUARD_RATE:
        *ret_expected = "a number of requests, 1 or more";
        if (!g_ascii_string_to_unsigned(s, 10, 1, MAX_COUNT, &n, NULL))
            return FALSE;
        *ret = (gint64)n;
        return TRUE;
    case LW_GUARD_SPEND_RATE:
        *ret_expected = "an amount of USD above 0, like 2 or 0.5";
        return lw_usd_parse(s, ret) && *ret > 0;
    case LW_GUARD_SIZE:
        *ret_expected = "a number of input tokens, 1 or more";
        if (!g_ascii_string_to_unsigned(s, 10, 1, MAX_TOKENS, &n, NULL))
            return FALSE;
        *ret = (gint64)n;
        return TRUE;
    case LW_GUARD_GROWTH:
        *ret_expected = "a factor above 1 with at most 3 decimals, like 10 or 2.5";
        return parse_factor(s, ret) && *ret > GROWTH_SCALE;
    }
    return FALSE;
}

/* The threshold as an exact decimal in the guard's unit. Transfer full. */
static char *threshold_exact(const LwGuardDef *g)
{
    if (g->kind == LW_GUARD_SPEND_RATE)
        return lw_output_usd_exact(g->threshold);
    if (g->kind == LW_GUARD_GROWTH) {
        gint64 whole = g->threshold / GROWTH_SCALE, frac = g->threshold % GROWTH_SCALE;
        if (frac == 0)
            return g_strdup_printf("%" G_GINT64_FORMAT, whole);
        char digits[8];
        g_snprintf(digits, sizeof digits, "%03" G_GINT64_FORMAT, frac);
        for (int i = 2; i > 0 && digits[i] == '0'; i--)
            digits[i] = '\0';
        return g_strdup_printf("%" G_GINT64_FORMAT ".%s", whole, digits);
    }
    return g_strdup_printf("%" G_GINT64_FORMAT, g->threshold);
}

/* For people: "5 identical", "100 requests", "$1.00", "100,000 tokens", "2.5x". */
static char *threshold_human(const LwGuardDef *g)
{
    switch (g->kind) {
    case LW_GUARD_LOOP: {
        g_autofree char *n = lw_output_count(g->threshold);
        return g_strdup_printf("%s identical", n);
    }
    case LW_GUARD_RATE: {
        g_autofree char *n = lw_output_count(g->threshold);
        return g_strdup_printf("%s requests", n);
    }
    case LW_GUARD_SPEND_RATE:
        return lw_output_usd_human(g->threshold);
    case LW_GUARD_SIZE: {
        g_autofree char *n = lw_output_count(g->threshold);
        return g_strdup_printf("%s tokens", n);
    }
    case LW_GUARD_GROWTH: {
        g_autofree char *f = threshold_exact(g);
        return g_strdup_printf("%sx", f);
    }
    }
    return g_strdup("?");
}

/* What trips the guard, for people: "the same request 5 times within 1m00s". */
static char *describe(const LwGuardDef *g)
{
    g_autofree char *span = lw_output_duration(g->window_ms);
    g_autofree char *n = lw_output_count(g->threshold);
    switch (g->kind) {
    case LW_GUARD_LOOP:
        return g_strdup_printf("the same request is sent %s times within %s", n, span);
    case LW_GUARD_RATE:
        return g_strdup_printf("more than %s requests are sent within %s", n, span);
    case LW_GUARD_SPEND_RATE: {
        g_autofree char *usd = lw_output_usd_human(g->threshold);
        return g_strdup_printf("more than %s is spent within %s", usd, span);
    }
    case LW_GUARD_SIZE:
        return g_strdup_printf("a request's input is above %s tokens", n);
    case LW_GUARD_GROWTH: {
        g_autofree char *f = threshold_exact(g);
        return g_strdup_printf("a request's input is %s times the run's first request's", f);
    }
    }
    return g_strdup("?");
}

/* config.ini's guards, or NULL when the configuration has none. Borrowed
 * from `config`. */
static const LwGuardDef *config_guard(const LwConfig *config, const char *name)
{
    for (guint i = 0; config->guards != NULL && i < config->guards->len; i++) {
        const LwGuardDef *g = g_ptr_array_index(config->guards, i);
        if (strcmp(g->name, name) == 0)
            return g;
    }
    return NULL;
}

static LwConfig *load_config(LwCtl *ctl, const char *cmd)
{
    g_autoptr(GError) error = NULL;
    LwConfig *config = lw_config_load(ctl->paths->config_file, &error);
    if (config == NULL)
        fprintf(stderr, "llmctl %s: %s\n", cmd, error->message);
    return config;
}

/* ---- set ---- */

static int guard_set(LwCtl *ctl, int argc, char **argv)
{
    const char *cmd = NAME " set";
    g_autofree char *type = NULL, *threshold = NULL, *window = NULL, *action = NULL;
    const GOptionEntry entries[] = {
        {"type", 0, 0, G_OPTION_ARG_STRING, &type, "loop, rate, spend-rate, size or growth",
         "TYPE"},
        {"threshold", 0, 0, G_OPTION_ARG_STRING, &threshold,
         "Requests (loop, rate), USD (spend-rate), input tokens (size) or a factor (growth)", "N"},
        {"window", 0, 0, G_OPTION_ARG_STRING, &window,
         "For loop, rate and spend-rate: the sliding window (default 60s; 250ms, 30s, 5m, 1h)",
         "DURATION"},
        {"action", 0, 0, G_OPTION_ARG_STRING, &action,
         "block (default: refuse the request) or warn (forward it, log and add a header)",
         "ACTION"},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = lw_ctl_options_new(
        "NAME", entries,
        "Creates guard NAME, or replaces it. Guards apply to each llmwrap run separately.");
    if (!lw_ctl_options_parse(ctx, cmd, &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc < 2)
        return lw_ctl_usage_error(cmd, "which guard? (llmctl guard set NAME --type TYPE "
                                       "--threshold N)");
    if (argc > 2)
        return lw_ctl_usage_error(cmd, "unexpected argument '%s'", argv[2]);
    LwGuardDef def = {.name = argv[1], .block = TRUE};
    if (!lw_budget_name_is_valid(def.name))
        return lw_ctl_usage_error(cmd,
                                  "bad guard name '%s': use 1 to %d letters, digits, '_', '.' "
                                  "or '-'",
                                  def.name, LW_BUDGET_NAME_MAX);
    if (type == NULL)
        return lw_ctl_usage_error(cmd, "missing --type loop|rate|spend-rate|size|growth");
    if (!lw_guard_kind_parse(type, &def.kind))
        return lw_ctl_usage_error(
            cmd, "bad --type '%s': expected loop, rate, spend-rate, size or growth", type);
    const char *expected = NULL;
    if (threshold == NULL)
        return lw_ctl_usage_error(cmd, "missing --threshold");
    if (!parse_threshold(def.kind, threshold, &def.threshold, &expected))
        return lw_ctl_usage_error(cmd, "bad --threshold '%s' for a %s guard: expected %s",
                                  threshold, type, expected);
    if (has_window(def.kind)) {
        def.window_ms = DEFAULT_WINDOW_MS;
        if (window != NULL &&
            (!lw_config_parse_duration_ms(window, &def.window_ms) || def.window_ms == 0))
            return lw_ctl_usage_error(cmd,
                                      "bad --window '%s': expected a duration above 0 like "
                                      "30s, 5m or 1h",
                                      window);
    } else if (window != NULL) {
        return lw_ctl_usage_error(cmd, "--window '%s': a %s guard has no window", window, type);
    }
    if (action != NULL && strcmp(action, "block") != 0 && strcmp(action, "warn") != 0)
        return lw_ctl_usage_error(cmd, "bad --action '%s': expected block or warn", action);
    def.block = action == NULL || strcmp(action, "block") == 0;

    g_autoptr(LwConfig) config = load_config(ctl, cmd);
    if (config == NULL)
        return LW_CTL_EXIT_USAGE;
    if (config_guard(config, def.name) != NULL)
        return lw_ctl_usage_error(cmd,
                                  "guard '%s' is defined in %s; change it there, or pick "
                                  "another name",
                                  def.name, ctl->paths->config_file);

    g_autoptr(GError) error = NULL;
    g_autoptr(LwLedger) ledger = lw_ctl_open_ledger_for_definitions(ctl, &error);
    if (ledger == NULL)
        return lw_ctl_error(cmd, "%s", error->message);
    g_autoptr(GPtrArray) existing = lw_ledger_guard_list(ledger, &error);
    if (existing == NULL)
        return lw_ctl_error(cmd, "%s", error->message);
    gboolean replaced = FALSE;
    for (guint i = 0; i < existing->len && !replaced; i++)
        replaced =
            strcmp(((const LwGuardDef *)g_ptr_array_index(existing, i))->name, def.name) == 0;
    if (!lw_ledger_guard_put(ledger, &def, &error))
        return lw_ctl_error(cmd, "%s", error->message);
    g_clear_pointer(&ledger, lw_ledger_close);

    g_autofree char *what = describe(&def);
    printf("Guard '%s' %s: %s %s, in each run.\n", def.name, replaced ? "updated" : "created",
           def.block ? "block when" : "warn when", what);
    gboolean reloaded = lw_ctl_reload_collector(ctl, cmd);
    if (!lw_ctl_flush(NAME))
        return LW_CTL_EXIT_ERROR;
    return reloaded ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}

/* ---- list ---- */

static void append_json(GString *out, const LwGuardDef *g)
{
    g_string_append(out, "{\"name\": ");
    lw_json_append_string(out, g->name, -1);
    g_string_append(out, ", \"type\": ");
    lw_json_append_string(out, lw_guard_kind_to_string(g->kind), -1);
    g_autofree char *t = threshold_exact(g);
    g_string_append_printf(out, ", \"threshold\": %s, \"unit\": ", t);
    lw_json_append_string(out, unit_of(g->kind), -1);
    if (has_window(g->kind))
        g_string_append_printf(out, ", \"window_ms\": %u", g->window_ms);
    else
        g_string_append(out, ", \"window_ms\": null");
    g_string_append_printf(out, ", \"action\": \"%s\", \"source\": \"%s\"}",
                           g->block ? "block" : "warn", g->from_config ? "config" : "ledger");
}

static int guard_list(LwCtl *ctl, int argc, char **argv)
{
    const char *cmd = NAME " list";
    gboolean json = FALSE;
    const GOptionEntry entries[] = {
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx =
        lw_ctl_options_new(NULL, entries, "Guards from the ledger, then from config.ini.");
    if (!lw_ctl_options_parse(ctx, cmd, &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc > 1)
        return lw_ctl_usage_error(cmd, "unexpected argument '%s'", argv[1]);
    g_autoptr(LwConfig) config = load_config(ctl, cmd);
    if (config == NULL)
        return LW_CTL_EXIT_USAGE;
    g_autoptr(GError) error = NULL;
    g_autoptr(LwLedger) ledger = lw_ctl_open_ledger_any(ctl, &error);
    if (ledger == NULL && error != NULL)
        return lw_ctl_error(cmd, "%s", error->message);
    g_autoptr(GPtrArray) stored = NULL;
    if (ledger != NULL && (stored = lw_ledger_guard_list(ledger, &error)) == NULL)
        return lw_ctl_error(cmd, "%s", error->message);

    g_autoptr(GPtrArray) all = g_ptr_array_new();
    for (guint i = 0; stored != NULL && i < stored->len; i++)
        g_ptr_array_add(all, g_ptr_array_index(stored, i));
    for (guint i = 0; config->guards != NULL && i < config->guards->len; i++)
        g_ptr_array_add(all, g_ptr_array_index(config->guards, i));

    if (json) {
        g_autoptr(GString) out = g_string_new("[");
        for (guint i = 0; i < all->len; i++) {
            g_string_append(out, i > 0 ? ",\n " : "\n ");
            append_json(out, g_ptr_array_index(all, i));
        }
        g_string_append(out, all->len > 0 ? "\n]\n" : "]\n");
        fputs(out->str, stdout);
    } else if (all->len == 0) {
        printf("No guards. Set one with: llmctl guard set NAME --type loop --threshold 5\n");
    } else {
        const char *headers[] = {"NAME", "TYPE", "THRESHOLD", "WINDOW", "ACTION", "SOURCE"};
        const LwOutputAlign align[] = {LW_OUTPUT_LEFT,  LW_OUTPUT_LEFT, LW_OUTPUT_RIGHT,
                                       LW_OUTPUT_RIGHT, LW_OUTPUT_LEFT, LW_OUTPUT_LEFT};
        g_autoptr(LwOutputTable) t = lw_output_table_new(G_N_ELEMENTS(headers), headers, align);
        for (guint i = 0; i < all->len; i++) {
            const LwGuardDef *g = g_ptr_array_index(all, i);
            g_autofree char *name = lw_output_printable(g->name);
            g_autofree char *threshold = threshold_human(g);
            g_autofree char *window =
                has_window(g->kind) ? lw_output_duration(g->window_ms) : g_strdup("-");
            const char *cells[] = {
                name,   lw_guard_kind_to_string(g->kind), threshold,
                window, g->block ? "block" : "warn",      g->from_config ? "config.ini" : "ledger"};
            lw_output_table_add(t, cells);
        }
        lw_output_table_print(t, stdout);
    }
    return lw_ctl_flush(NAME) ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}

/* ---- rm ---- */

static int guard_rm(LwCtl *ctl, int argc, char **argv)
{
    const char *cmd = NAME " rm";
    g_autoptr(GOptionContext) ctx = lw_ctl_options_new(
        "NAME", NULL, "Removes guard NAME. A running collector stops checking it at once.");
    if (!lw_ctl_options_parse(ctx, cmd, &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc < 2)
        return lw_ctl_usage_error(cmd, "which guard?");
    if (argc > 2)
        return lw_ctl_usage_error(cmd, "unexpected argument '%s'", argv[2]);
    const char *name = argv[1];
    if (!lw_budget_name_is_valid(name))
        return lw_ctl_usage_error(cmd, "bad guard name '%s'", name);
    g_autoptr(LwConfig) config = load_config(ctl, cmd);
    if (config == NULL)
        return LW_CTL_EXIT_USAGE;

    g_autoptr(GError) error = NULL;
    g_autoptr(LwLedger) ledger = lw_ctl_open_ledger(ctl, FALSE, &error);
    if (ledger == NULL && error != NULL)
        return lw_ctl_error(cmd, "%s", error->message);
    gboolean removed = ledger != NULL && lw_ledger_guard_remove(ledger, name, &error);
    if (!removed) {
        if (error != NULL && !g_error_matches(error, LW_LEDGER_ERROR, LW_LEDGER_ERROR_NOT_FOUND))
            return lw_ctl_error(cmd, "%s", error->message);
        if (config_guard(config, name) != NULL)
            return lw_ctl_error(cmd, "guard '%s' is defined in %s: remove it there", name,
                                ctl->paths->config_file);
        return lw_ctl_error(cmd, "no guard named '%s' (see llmctl guard list)", name);
    }
    g_clear_pointer(&ledger, lw_ledger_close);
    printf("Guard '%s' removed.\n", name);
    gboolean reloaded = lw_ctl_reload_collector(ctl, cmd);
    if (!lw_ctl_flush(NAME))
        return LW_CTL_EXIT_ERROR;
    return reloaded ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}

int lw_cmd_guard(LwCtl *ctl, int argc, char **argv)
{
    static const char usage[] =
        "Usage:\n"
        "  llmctl guard set NAME --type loop|rate|spend-rate|size|growth --threshold N\n"
        "        [--window 60s] [--action block|warn]\n"
        "  llmctl guard list [--json]\n"
        "  llmctl guard rm NAME\n\n"
        "Guards stop runaway programs, per llmwrap run (with the runs nested in it): the\n"
        "same request N times within WINDOW (loop), more than N requests (rate) or N USD\n"
        "(spend-rate) within WINDOW, one request's input above N tokens (size), or an\n"
        "input N times the run's first (growth). config.ini [guard.NAME] groups define\n"
        "more.\n";
    if (argc >= 2) {
        if (strcmp(argv[1], "set") == 0)
            return guard_set(ctl, argc - 1, argv + 1);
        if (strcmp(argv[1], "list") == 0)
            return guard_list(ctl, argc - 1, argv + 1);
        if (strcmp(argv[1], "rm") == 0)
            return guard_rm(ctl, argc - 1, argv + 1);
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
            fputs(usage, stdout);
            return LW_CTL_EXIT_OK;
        }
        return lw_ctl_usage_error(NAME, "unknown subcommand '%s': expected set, list or rm",
                                  argv[1]);
    }
    return lw_ctl_usage_error(NAME, "expected set, list or rm");
}
