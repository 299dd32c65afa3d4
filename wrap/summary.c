/* summary.c - the exit summary and the --json-summary file. */
#include "summary.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "options.h"

gboolean lw_summary_load(LwIpcClient *client, guint64 run_id, LwRunSummary *ret, GError **error)
{
    return lw_ipc_client_run_summary(client, run_id, LW_SUMMARY_TIMEOUT_MS, ret, error);
}

void lw_summary_clear(LwRunSummary *s)
{
    lw_run_summary_clear(s);
}

/* The most of a command a job summary's heading shows, in bytes. */
#define SUMMARY_MAX_COMMAND 200

static const char *plural(gint64 n)
{
    return n == 1 ? "" : "s";
}

/* A request without a model (a file upload, a model listing) is still spend
 * to show: named as llmctl usage names it. */
static const char *model_name(const LwRunModelSpend *m)
{
    return m->model != NULL && m->model[0] != '\0' ? m->model : "(no model)";
}

static void append_cost(GString *out, gint64 pusd, gint64 unpriced, gint64 requests)
{
    if (unpriced > 0 && unpriced == requests) {
        g_string_append(out, "cost unknown (no price)");
        return;
    }
    g_autofree char *usd = lw_options_format_usd(pusd);
    g_string_append_printf(out, "$%s", usd);
    if (unpriced > 0)
        g_string_append_printf(out, " + %" G_GINT64_FORMAT " unpriced", unpriced);
}

char *lw_summary_text(guint64 run_id, const LwRunSummary *spend, const char *unavailable,
                      GPtrArray *warnings)
{
    GString *out = g_string_new(NULL);
    if (spend == NULL) {
        g_string_append_printf(out, "llmwrap: run %" G_GUINT64_FORMAT ": spend unavailable: %s\n",
                               run_id, unavailable != NULL ? unavailable : "unknown error");
    } else if (spend->requests == 0) {
        g_string_append_printf(out, "llmwrap: run %" G_GUINT64_FORMAT ": no LLM requests\n",
                               run_id);
    } else {
        g_string_append_printf(
            out, "llmwrap: run %" G_GUINT64_FORMAT ": %" G_GINT64_FORMAT " request%s, ", run_id,
            spend->requests, plural(spend->requests));
        append_cost(out, spend->cost_pusd, spend->unpriced, spend->requests);
        g_string_append_c(out, '\n');
        for (guint i = 0; spend->models != NULL && i < spend->models->len; i++) {
            const LwRunModelSpend *m = spend->models->pdata[i];
            g_string_append_printf(
                out, "llmwrap:   %s %s: %" G_GINT64_FORMAT " request%s, %" G_GINT64_FORMAT " in",
                m->provider, model_name(m), m->requests, plural(m->requests), m->input_tokens);
            if (m->cached_input_tokens > 0)
                g_string_append_printf(out, " (%" G_GINT64_FORMAT " cached)",
                                       m->cached_input_tokens);
            g_string_append_printf(out, " / %" G_GINT64_FORMAT " out", m->output_tokens);
            if (m->reasoning_tokens > 0)
                g_string_append_printf(out, " (%" G_GINT64_FORMAT " reasoning)",
                                       m->reasoning_tokens);
            g_string_append(out, " tokens, ");
            append_cost(out, m->cost_pusd, m->unpriced, m->requests);
            g_string_append_c(out, '\n');
        }
        if (spend->partial > 0)
            g_string_append_printf(out,
                                   "llmwrap:   %" G_GINT64_FORMAT
                                   " request%s cut short (tokens partly estimated)\n",
                                   spend->partial, plural(spend->partial));
        if (spend->refused > 0)
            g_string_append_printf(out, "llmwrap:   %" G_GINT64_FORMAT " request%s refused\n",
                                   spend->refused, plural(spend->refused));
        for (guint i = 0; spend->warnings != NULL && i < spend->warnings->len; i++)
            g_string_append_printf(out, "llmwrap:   warning: %s\n",
                                   (const char *)spend->warnings->pdata[i]);
    }
    for (guint i = 0; warnings != NULL && i < warnings->len; i++)
        g_string_append_printf(out, "llmwrap: warning: %s\n", (const char *)warnings->pdata[i]);
    return g_string_free(out, FALSE);
}

static void append_usd(GString *out, gint64 pusd)
{
    g_autofree char *usd = lw_options_format_usd(pusd);
    g_string_append(out, usd);
}

char *lw_summary_json(guint64 run_id, int exit_status, const LwRunSummary *spend,
                      const char *unavailable, GPtrArray *warnings)
{
    GString *out = g_string_new(NULL);
    g_string_append_printf(out, "{\"run_id\": %" G_GUINT64_FORMAT ", \"exit_status\": %d, ", run_id,
                           exit_status);
    if (spend != NULL) {
        g_string_append_printf(
            out, "\"requests\": %" G_GINT64_FORMAT ", \"cost_usd\": ", spend->requests);
        append_usd(out, spend->cost_pusd);
    } else {
        g_string_append(out, "\"requests\": null, \"cost_usd\": null");
    }
    g_string_append(out, ", \"models\": [");
    for (guint i = 0; spend != NULL && spend->models != NULL && i < spend->models->len; i++) {
        const LwRunModelSpend *m = spend->models->pdata[i];
        g_string_append(out, i > 0 ? ", {\"provider\": " : "{\"provider\": ");
        lw_json_append_string(out, m->provider, -1);
        g_string_append(out, ", \"model\": ");
        lw_json_append_string(out, m->model, -1);
        g_string_append_printf(
            out,
            ", \"requests\": %" G_GINT64_FORMAT ", \"input_tokens\": %" G_GINT64_FORMAT
            ", \"output_tokens\": %" G_GINT64_FORMAT ", \"cached_input_tokens\": %" G_GINT64_FORMAT
            ", \"reasoning_tokens\": %" G_GINT64_FORMAT ", \"cost_usd\": ",
            m->requests, m->input_tokens, m->output_tokens, m->cached_input_tokens,
            m->reasoning_tokens);
        append_usd(out, m->cost_pusd);
        g_string_append_printf(out, ", \"unpriced\": %" G_GINT64_FORMAT "}", m->unpriced);
    }
    g_string_append(out, "], \"warnings\": [");
    guint n = 0;
    for (guint i = 0; warnings != NULL && i < warnings->len; i++, n++) {
        if (n > 0)
            g_string_append(out, ", ");
        lw_json_append_string(out, warnings->pdata[i], -1);
    }
    for (guint i = 0; spend != NULL && spend->warnings != NULL && i < spend->warnings->len;
         i++, n++) {
        if (n > 0)
            g_string_append(out, ", ");
        lw_json_append_string(out, spend->warnings->pdata[i], -1);
    }
    if (spend == NULL) {
        if (n > 0)
            g_string_append(out, ", ");
        g_autofree char *w = g_strdup_printf("spend unavailable: %s",
                                             unavailable != NULL ? unavailable : "unknown error");
        lw_json_append_string(out, w, -1);
    }
    g_string_append(out, "]}\n");
    return g_string_free(out, FALSE);
}

/* Markdown table cells must not break the table. */
static void append_cell(GString *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            g_string_append(out, "\\|");
        else if (*s == '\n' || *s == '\r')
            g_string_append_c(out, ' ');
        else
            g_string_append_c(out, *s);
    }
}

char *lw_summary_markdown(guint64 run_id, char *const *argv, int exit_status,
                          const LwRunSummary *spend, const char *unavailable)
{
    GString *out = g_string_new(NULL);
    g_string_append_printf(out, "### llmwrap run %" G_GUINT64_FORMAT ": `", run_id);
    /* A heading is one line, and its code span holds no backtick: a
     * multi-line `sh -c` script (as CI files write them) would otherwise
     * end the heading at its first line and turn the rest, its # comments
     * included, into markdown of its own. */
    gsize start = out->len;
    for (int i = 0; argv != NULL && argv[i] != NULL && i < 8; i++) {
        if (i > 0)
            g_string_append_c(out, ' ');
        for (const char *p = argv[i]; *p != '\0'; p++)
            g_string_append_c(out, *p == '`' ? '\'' : g_ascii_iscntrl(*p) ? ' ' : *p);
    }
    if (out->len - start > SUMMARY_MAX_COMMAND) {
        gsize cut = start + SUMMARY_MAX_COMMAND;
        while (cut > start && ((guchar)out->str[cut] & 0xc0) == 0x80)
            cut--;
        g_string_truncate(out, cut);
        g_string_append(out, " ...");
    }
    g_string_append_printf(out, "` (exit %d)\n\n", exit_status);
    if (spend == NULL) {
        g_string_append_printf(out, "Spend unavailable: %s\n\n",
                               unavailable != NULL ? unavailable : "unknown error");
        return g_string_free(out, FALSE);
    }
    g_string_append(out, "| provider | model | requests | input tokens | output tokens | cost (USD) "
                         "|\n|---|---|---:|---:|---:|---:|\n");
    for (guint i = 0; spend->models != NULL && i < spend->models->len; i++) {
        const LwRunModelSpend *m = spend->models->pdata[i];
        g_string_append(out, "| ");
        append_cell(out, m->provider);
        g_string_append(out, " | ");
        append_cell(out, model_name(m));
        g_string_append_printf(out,
                               " | %" G_GINT64_FORMAT " | %" G_GINT64_FORMAT " | %" G_GINT64_FORMAT
                               " | ",
                               m->requests, m->input_tokens, m->output_tokens);
        append_cost(out, m->cost_pusd, m->unpriced, m->requests);
        g_string_append(out, " |\n");
    }
    g_string_append_printf(out, "| **total** | | %" G_GINT64_FORMAT " | | | **", spend->requests);
    append_cost(out, spend->cost_pusd, spend->unpriced, spend->requests);
    g_string_append(out, "** |\n\n");
    if (spend->refused > 0) {
        g_string_append_printf(out, "**%" G_GINT64_FORMAT " request%s refused** by ", spend->refused,
                               plural(spend->refused));
        for (guint i = 0; i < spend->refused_by->len; i++)
            g_string_append_printf(out, "%s`%s`", i > 0 ? ", " : "",
                                   (const char *)spend->refused_by->pdata[i]);
        g_string_append(out, ".\n\n");
    }
    return g_string_free(out, FALSE);
}

/* Whether `st` is the file behind llmwrap's stdout or stderr, which the
 * program wrote to first. */
static gboolean is_std_stream(const struct stat *st)
{
    for (int fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++) {
        struct stat std;
        if (fstat(fd, &std) == 0 && std.st_dev == st->st_dev && std.st_ino == st->st_ino)
            return TRUE;
    }
    return FALSE;
}

gboolean lw_summary_write_file(const char *path, const char *text, GError **error)
{
    int fd;
    while ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0666)) < 0 &&
           errno == EINTR) {
    }
    if (fd < 0) {
        int e = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "%s: %s", path, g_strerror(e));
        return FALSE;
    }
    struct stat st;
    int rc = fstat(fd, &st);
    if (rc == 0 && S_ISREG(st.st_mode))
        rc = is_std_stream(&st) ? (lseek(fd, 0, SEEK_END) < 0 ? -1 : 0) : ftruncate(fd, 0);
    size_t len = strlen(text);
    for (size_t done = 0; rc == 0 && done < len;) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno != EINTR)
            rc = -1;
        else if (n > 0)
            done += (size_t)n;
    }
    int e = errno;
    if (close(fd) != 0 && rc == 0 && errno != EINTR) {
        rc = -1;
        e = errno;
    }
    if (rc != 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "%s: %s", path, g_strerror(e));
        return FALSE;
    }
    return TRUE;
}
