/* fuzz-upstream-head.c - libFuzzer target for collector/upstream-head.c:
 * an upstream answer's head, line by line as libcurl's header callback
 * gets it, to the fields the client is sent.
 *
 * Input: a control byte (bit 0: the answer is to a HEAD request; bit 1:
 * filler fields after the first line, 256 plus the next byte of them, to
 * reach the line cap), then the lines, each cut after its LF and fed in a
 * buffer of its exact size. After the final head come the trailers.
 *
 * Besides crashes and sanitizer reports, the target aborts when: a kept
 * line holds a CR or LF; more lines than the cap are kept; a head is
 * refused for its framing although its Content-Length fields agree and it
 * names no transfer coding but chunked, or passed although they do not; a
 * head whose status is under 200 is delivered; a status line "HTTP/1.1
 * NNN" does not give status NNN; a field name is empty, holds a colon or
 * ends in a blank, or a value starts with one; a trailer changes anything;
 * a hop-by-hop field (or one a Connection field names), Alt-Svc, or
 * Content-Length outside an answer to HEAD reaches the client, or an
 * end-to-end field does not, or comes changed or out of order; or, when
 * every line of the upstream head was well formed (a token, a colon, a
 * value; obs-folds after a field), the head sent does not parse back
 * (common/http1.c) into the same fields.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upstream-head.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok)
        abort();
}

static bool is_tchar(char c)
{
    return g_ascii_isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A field-value octet as RFC 9110 §5.5 has it (VCHAR, obs-text, SP,
 * HTAB), or a CR, which the collector turns into a space. */
static bool is_value_char(char c)
{
    unsigned char u = (unsigned char)c;
    return u == '\t' || u == '\r' || (u >= 0x20 && u != 0x7f);
}

/* A line after the status line as a well-formed head has it: a field
 * ("token *(blank) : value") or, after one, an obs-fold. */
static bool is_well_formed(const char *line, size_t len, bool after_field)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    size_t i = 0;
    if (len > 0 && (line[0] == ' ' || line[0] == '\t')) {
        if (!after_field)
            return false;
    } else {
        while (i < len && is_tchar(line[i]))
            i++;
        if (i == 0)
            return false;
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i == len || line[i] != ':')
            return false;
        i++;
    }
    for (; i < len; i++) {
        if (!is_value_char(line[i]))
            return false;
    }
    return true;
}

static size_t trimmed_len(const char *v, size_t n)
{
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    return n;
}

static bool value_is(const LwHttpHeader *h, const char *lit)
{
    return lw_http1_name_is(h->value, trimmed_len(h->value, h->value_len), lit);
}

/* The framing check, independently: Content-Length values agree, and no
 * transfer coding but chunked is named. */
static bool framing_ok(const LwHttpHeader *f, size_t n)
{
    const LwHttpHeader *length = NULL;
    for (size_t i = 0; i < n; i++) {
        if (lw_http1_name_is(f[i].name, f[i].name_len, "content-length")) {
            size_t a = trimmed_len(f[i].value, f[i].value_len);
            if (length != NULL && (a != trimmed_len(length->value, length->value_len) ||
                                   memcmp(f[i].value, length->value, a) != 0))
                return false;
            length = &f[i];
        } else if (lw_http1_name_is(f[i].name, f[i].name_len, "transfer-encoding") &&
                   !value_is(&f[i], "chunked")) {
            return false;
        }
    }
    return true;
}

/* The elements of every Connection field's comma-separated list,
 * trimmed and lowered: the names that field makes hop-by-hop. */
static GHashTable *connection_names(const LwHttpHeader *f, size_t n)
{
    GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (size_t i = 0; i < n; i++) {
        if (!lw_http1_name_is(f[i].name, f[i].name_len, "connection"))
            continue;
        g_autofree char *v = g_ascii_strdown(f[i].value, (gssize)f[i].value_len);
        g_auto(GStrv) parts = g_strsplit(v, ",", -1);
        for (char **p = parts; *p != NULL; p++) {
            const char *e = *p;
            while (*e == ' ' || *e == '\t')
                e++;
            g_hash_table_add(names, g_strndup(e, trimmed_len(e, strlen(e))));
        }
    }
    return names;
}

static bool is_sent(GHashTable *hops, const LwHttpHeader *h, bool is_head)
{
    static const char *const fixed[] = {
        "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "trailer",
        "upgrade",    "alt-svc",    "content-length",
    };
    if (is_head && lw_http1_name_is(h->name, h->name_len, "content-length"))
        return true;
    for (guint i = 0; i < G_N_ELEMENTS(fixed); i++) {
        if (lw_http1_name_is(h->name, h->name_len, fixed[i]))
            return false;
    }
    g_autofree char *name = g_ascii_strdown(h->name, (gssize)h->name_len);
    return !g_hash_table_contains(hops, name);
}

/* The head is complete: what goes to the client. */
static void check_head(const LwUpstreamHead *head, bool is_head, bool well_formed)
{
    require(head->status >= 200);
    const char *first = g_ptr_array_index(head->lines, 0);
    int digits = 0;
    if (strncmp(first, "HTTP/1.1 ", 9) == 0 && g_ascii_isdigit(first[9]) &&
        g_ascii_isdigit(first[10]) && g_ascii_isdigit(first[11]) &&
        (first[12] == '\0' || first[12] == ' '))
        digits = (first[9] - '0') * 100 + (first[10] - '0') * 10 + (first[11] - '0');
    require(digits == 0 || head->status == digits);

    size_t n = 0;
    const char *reason = NULL;
    g_autofree LwHttpHeader *f = lw_upstream_head_fields(head, &n, &reason);
    require(reason != NULL && strpbrk(reason, "\r\n") == NULL);
    require(framing_ok(f, n));
    g_autoptr(GHashTable) hops = connection_names(f, n);
    g_autofree bool *is = g_new0(bool, MAX(n, 1));
    g_autoptr(GString) want = g_string_new(NULL);
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        const LwHttpHeader *h = &f[i];
        require(h->name_len > 0 && memchr(h->name, ':', h->name_len) == NULL);
        require(h->name[h->name_len - 1] != ' ' && h->name[h->name_len - 1] != '\t');
        require(h->value_len == 0 || (h->value[0] != ' ' && h->value[0] != '\t'));
        require(memchr(h->name, '\r', h->name_len) == NULL &&
                memchr(h->name, '\n', h->name_len) == NULL &&
                memchr(h->value, '\r', h->value_len) == NULL &&
                memchr(h->value, '\n', h->value_len) == NULL);
        is[i] = is_sent(hops, h, is_head);
        if (!is[i])
            continue;
        g_string_append_len(want, h->name, (gssize)h->name_len);
        g_string_append(want, ": ");
        g_string_append_len(want, h->value, (gssize)h->value_len);
        g_string_append(want, "\r\n");
        sent++;
    }
    g_autoptr(GString) out = g_string_new(NULL);
    lw_upstream_head_write_fields(out, f, n, is_head);
    require(g_string_equal(out, want));

    /* A Host field, or a length (HEAD), means something else to the
     * request parser the head is read back with. */
    for (size_t i = 0; i < n && well_formed; i++) {
        if (is[i] && (lw_http1_name_is(f[i].name, f[i].name_len, "host") ||
                      lw_http1_name_is(f[i].name, f[i].name_len, "content-length")))
            well_formed = false;
    }
    if (!well_formed)
        return;
    g_autoptr(GString) msg = g_string_new("GET / HTTP/1.0\r\n");
    g_string_append_len(msg, out->str, (gssize)out->len);
    g_string_append(msg, "\r\n");
    g_autofree LwHttpHeader *parsed = g_new0(LwHttpHeader, sent + 1);
    LwHttpRequest req = {.headers = parsed, .max_headers = sent + 1};
    ssize_t r = lw_http1_parse_request(msg->str, msg->len, 0, msg->len, &req);
    require(r == (ssize_t)msg->len && req.num_headers == sent);
    for (size_t i = 0, k = 0; i < n; i++) {
        if (!is[i])
            continue;
        const LwHttpHeader *p = &parsed[k++];
        size_t vl = trimmed_len(f[i].value, f[i].value_len);
        require(p->name_len == f[i].name_len && memcmp(p->name, f[i].name, p->name_len) == 0);
        require(p->value_len == vl && memcmp(p->value, f[i].value, vl) == 0);
    }
}

/* One line, in a buffer of its exact size (a read past it trips ASan). */
static LwUpstreamHeadResult feed(LwUpstreamHead *head, const char *line, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);
    require(copy != NULL);
    memcpy(copy, line, len);
    LwUpstreamHeadResult r = lw_upstream_head_line(head, copy, len);
    free(copy);
    return r;
}

static bool is_blank(const char *line, size_t len)
{
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
        len--;
    return len == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    bool is_head = (data[0] & 1) != 0;
    guint fillers = (data[0] & 2) != 0 ? 256u + data[1] : 0;
    const char *p = (const char *)data + 2, *end = (const char *)data + size;

    LwUpstreamHead head;
    lw_upstream_head_init(&head);
    bool well_formed = true; /* every line since the status line */
    bool after_field = false;
    guint line_no = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl + 1 - p) : (size_t)(end - p);
        const char *line = p;
        p += len;

        if (head.done) {
            /* a trailer: nothing changes */
            guint lines = head.lines->len;
            require(feed(&head, line, len) == LW_UPSTREAM_HEAD_MORE);
            require(head.lines->len == lines && head.done && head.refused == NULL);
            continue;
        }
        bool blank = is_blank(line, len);
        bool fold = len > 0 && (line[0] == ' ' || line[0] == '\t') && head.lines->len > 1;
        bool status_line = len >= 5 && memcmp(line, "HTTP/", 5) == 0;
        if (status_line) {
            well_formed = true;
            after_field = false;
        } else if (!blank) {
            well_formed = well_formed && is_well_formed(line, len, after_field);
            after_field = true;
        }
        guint kept = head.lines->len;
        int status = head.status;
        LwUpstreamHeadResult r = feed(&head, line, len);
        /* the line added, or the one an obs-fold joined */
        if (head.lines->len > 0)
            require(strpbrk(g_ptr_array_index(head.lines, head.lines->len - 1), "\r\n") == NULL);
        require(head.lines->len <= LW_UPSTREAM_HEAD_MAX_LINES);
        if (r == LW_UPSTREAM_HEAD_REFUSED) {
            require(head.refused != NULL);
            if (blank) {
                size_t n = 0;
                const char *reason;
                g_autofree LwHttpHeader *f = lw_upstream_head_fields(&head, &n, &reason);
                require(status >= 200 && !framing_ok(f, n));
            } else {
                require(!fold && kept == LW_UPSTREAM_HEAD_MAX_LINES);
            }
            break;
        }
        require(head.refused == NULL);
        if (r == LW_UPSTREAM_HEAD_COMPLETE) {
            require(blank);
            check_head(&head, is_head, well_formed);
            head.done = TRUE; /* as upstream.c does once it delivered the head */
            continue;
        }
        require(!blank || status < 200);
        if (line_no++ == 0) {
            for (guint i = 0; i < fillers && r == LW_UPSTREAM_HEAD_MORE; i++)
                r = feed(&head, "x-filler: 1\r\n", 13);
            require(r != LW_UPSTREAM_HEAD_COMPLETE);
            if (r == LW_UPSTREAM_HEAD_REFUSED) {
                require(head.lines->len == LW_UPSTREAM_HEAD_MAX_LINES);
                break;
            }
        }
    }
    lw_upstream_head_clear(&head);
    return 0;
}
