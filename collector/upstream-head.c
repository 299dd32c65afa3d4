/* upstream-head.c - an upstream answer's head (see upstream-head.h). */
#include "upstream-head.h"

#include <string.h>

void lw_upstream_head_init(LwUpstreamHead *head)
{
    memset(head, 0, sizeof *head);
    head->lines = g_ptr_array_new_with_free_func(g_free);
}

void lw_upstream_head_clear(LwUpstreamHead *head)
{
    if (head->lines != NULL)
        g_ptr_array_unref(head->lines);
    memset(head, 0, sizeof *head);
}

/* Whether a field line (already cleaned) is `name: ...`, case-insensitive;
 * its value (blanks skipped) in *ret_value, *ret_len bytes (trailing
 * blanks too). */
static gboolean field_is(const char *line, const char *name, const char **ret_value,
                         size_t *ret_len)
{
    size_t n = strlen(name);
    if (g_ascii_strncasecmp(line, name, n) != 0)
        return FALSE;
    const char *p = line + n;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p != ':')
        return FALSE;
    p++;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t n_value = strlen(p);
    while (n_value > 0 && (p[n_value - 1] == ' ' || p[n_value - 1] == '\t'))
        n_value--;
    *ret_value = p;
    *ret_len = n_value;
    return TRUE;
}

/* Why an answer's framing cannot be passed on (NULL when it can): the
 * collector re-frames the body with the length or chunking it announces,
 * so Content-Length fields that disagree, or a transfer coding other than
 * chunked (its bytes would reach the client still coded, unlabelled),
 * would hand the client an answer other than the provider's (RFC 9112
 * §6.3). */
static const char *framing_problem(const GPtrArray *lines)
{
    const char *length = NULL;
    size_t length_len = 0;
    for (guint i = 1; i < lines->len; i++) {
        const char *line = g_ptr_array_index(lines, i), *v;
        size_t n;
        if (field_is(line, "content-length", &v, &n)) {
            if (length != NULL && (n != length_len || memcmp(length, v, n) != 0))
                return "the response has Content-Length fields that disagree";
            length = v;
            length_len = n;
        } else if (field_is(line, "transfer-encoding", &v, &n) &&
                   !(n == 7 && g_ascii_strncasecmp(v, "chunked", 7) == 0)) {
            return "the response uses a transfer coding other than chunked";
        }
    }
    return NULL;
}

/* A CR or LF inside a field line becomes a space (RFC 9112, 5.5):
 * passed on bare, a client could read it as the end of the line and the
 * rest as a field of its own. */
static void clean_field_line(char *line)
{
    for (char *p = line; (p = strpbrk(p, "\r\n")) != NULL; p++)
        *p = ' ';
}

/* The status of "HTTP/1.1 200 OK" or "HTTP/2 200": the number after the
 * first space, as strtoull reads it; 0 without one. */
static int status_of(const char *buf, size_t len)
{
    const char *sp = memchr(buf, ' ', len);
    if (sp == NULL)
        return 0;
    g_autofree char *rest = g_strndup(sp + 1, len - (size_t)(sp + 1 - buf));
    return (int)g_ascii_strtoull(rest, NULL, 10);
}

LwUpstreamHeadResult lw_upstream_head_line(LwUpstreamHead *head, const char *buf, size_t len)
{
    /* Trailers come here too, after the head: not forwarded (the answer is
     * re-framed), and not counted against the head's cap. */
    if (head->done)
        return LW_UPSTREAM_HEAD_MORE;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len == 0) {
        /* End of a head: 1xx heads are interim, skip them. */
        if (head->status < 200)
            return LW_UPSTREAM_HEAD_MORE;
        head->refused = framing_problem(head->lines);
        return head->refused != NULL ? LW_UPSTREAM_HEAD_REFUSED : LW_UPSTREAM_HEAD_COMPLETE;
    }
    if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        g_ptr_array_set_size(head->lines, 0);
        head->status = status_of(buf, len);
    }
    if ((buf[0] == ' ' || buf[0] == '\t') && head->lines->len > 1) {
        /* obs-fold: the line continues the previous field. A proxy
         * replaces the fold with a space (RFC 9112, 5.2). */
        while (len > 0 && (buf[0] == ' ' || buf[0] == '\t')) {
            buf++;
            len--;
        }
        char *prev = g_ptr_array_index(head->lines, head->lines->len - 1);
        char *joined = g_strdup_printf("%s %.*s", prev, (int)len, buf);
        g_free(prev);
        head->lines->pdata[head->lines->len - 1] = joined;
        clean_field_line(joined);
        return LW_UPSTREAM_HEAD_MORE;
    }
    if (head->lines->len >= LW_UPSTREAM_HEAD_MAX_LINES) {
        head->refused =
            "the response head has more than " G_STRINGIFY(LW_UPSTREAM_HEAD_MAX_LINES) " lines";
        return LW_UPSTREAM_HEAD_REFUSED;
    }
    char *line = g_strndup(buf, len);
    clean_field_line(line);
    g_ptr_array_add(head->lines, line);
    return LW_UPSTREAM_HEAD_MORE;
}

LwHttpHeader *lw_upstream_head_fields(const LwUpstreamHead *head, size_t *ret_n,
                                      const char **ret_reason)
{
    const GPtrArray *lines = head->lines;
    LwHttpHeader *fields = g_new0(LwHttpHeader, MAX(lines->len, 1));
    size_t n = 0;
    const char *reason = "";
    for (guint i = 0; i < lines->len; i++) {
        const char *line = g_ptr_array_index(lines, i);
        if (i == 0) {
            /* "HTTP/1.1 200 OK" or "HTTP/2 200" */
            const char *sp = strchr(line, ' ');
            if (sp != NULL && (sp = strchr(sp + 1, ' ')) != NULL)
                reason = sp + 1;
            continue;
        }
        const char *colon = strchr(line, ':');
        if (colon == NULL)
            continue;
        /* "Name : v": a proxy removes the blanks before the colon (RFC 9112
         * §5.1), else a client may take them for part of the name. */
        size_t name_len = (size_t)(colon - line);
        while (name_len > 0 && (line[name_len - 1] == ' ' || line[name_len - 1] == '\t'))
            name_len--;
        if (name_len == 0)
            continue;
        const char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        fields[n++] = (LwHttpHeader){line, name_len, v, strlen(v)};
    }
    *ret_n = n;
    *ret_reason = reason;
    return fields;
}

static gboolean is_dropped_response_header(const LwHttpHeader *h)
{
    /* Most fields start with none of these letters: skip the comparisons. */
    if (h->name_len == 0 || strchr("cCkKpPtTuUaA", h->name[0]) == NULL)
        return FALSE;
    static const char *const dropped[] = {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
        "trailer",    "upgrade",    "content-length",   "alt-svc",
    };
    for (guint i = 0; i < G_N_ELEMENTS(dropped); i++) {
        if (lw_http1_name_is(h->name, h->name_len, dropped[i]))
            return TRUE;
    }
    return FALSE;
}

void lw_upstream_head_write_fields(GString *out, const LwHttpHeader *fields, size_t n_fields,
                                   gboolean is_head)
{
    /* Fields the upstream's Connection names are hop-by-hop too (looked
     * for only when there is a Connection field). */
    gboolean names_hops = lw_http1_find_field(fields, n_fields, "connection") != NULL;
    for (size_t i = 0; i < n_fields; i++) {
        const LwHttpHeader *h = &fields[i];
        if (is_dropped_response_header(h) ||
            (names_hops && lw_http1_is_hop_by_hop(fields, n_fields, h->name, h->name_len))) {
            /* HEAD answers keep the length of the body they describe. */
            if (!(is_head && lw_http1_name_is(h->name, h->name_len, "content-length")))
                continue;
        }
        g_string_append_len(out, h->name, (gssize)h->name_len);
        g_string_append(out, ": ");
        g_string_append_len(out, h->value, (gssize)h->value_len);
        g_string_append(out, "\r\n");
    }
}
