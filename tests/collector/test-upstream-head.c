/* test-upstream-head.c - an upstream answer's head, fed line by line as
 * libcurl's header callback gets it: interim heads skipped, obs-folds and
 * bare CRs cleaned, framing refused, the line cap, trailers ignored, and
 * the fields a client is sent. */
#include "upstream-head.h"

#include <string.h>

typedef struct {
    const char *name;
    const char *head;    /* lines as libcurl passes them, each up to its LF */
    gboolean is_head;    /* the answer to a HEAD request */
    const char *refused; /* NULL: the head completes; else part of the reason */
    int status;
    const char *reason;
    const char *sent; /* the fields written for the client */
} Case;

static const Case cases[] = {
    {"h1", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-request-id: req_1\r\n\r\n",
     FALSE, NULL, 200, "OK", "Content-Type: application/json\r\nx-request-id: req_1\r\n"},
    {"h2-has-no-reason", "HTTP/2 200 \r\ncontent-type: text/event-stream\r\n\r\n", FALSE, NULL, 200,
     "", "content-type: text/event-stream\r\n"},
    {"interim-heads-skipped",
     "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
     "HTTP/1.1 429 Too Many Requests\r\nretry-after: 2\r\n\r\n",
     FALSE, NULL, 429, "Too Many Requests", "retry-after: 2\r\n"},
    {"hop-by-hop-dropped",
     "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nx-hop: 1\r\nKeep-Alive: timeout=5\r\n"
     "Transfer-Encoding: chunked\r\nTE: trailers\r\nTrailer: x-sum\r\nUpgrade: h2c\r\n"
     "Proxy-Connection: keep-alive\r\nAlt-Svc: h3=\":443\"\r\nContent-Length: 5\r\n"
     "x-kept: 1\r\n\r\n",
     FALSE, NULL, 200, "OK", "x-kept: 1\r\n"},
    {"head-keeps-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: x\r\n\r\n", TRUE,
     NULL, 200, "OK", "Content-Length: 5\r\n"},
    {"blanks-around-colon", "HTTP/1.1 200 OK\r\nContent-Type \t:  \ttext/plain\r\n\r\n", FALSE,
     NULL, 200, "OK", "Content-Type: text/plain\r\n"},
    {"obs-fold-joined", "HTTP/1.1 200 OK\r\nx-fold: a\r\n  b\r\n\tc\r\n\r\n", FALSE, NULL, 200,
     "OK", "x-fold: a b c\r\n"},
    {"bare-cr-becomes-space", "HTTP/1.1 200 OK\r\nx-cr: one\rtwo\r\n\r\n", FALSE, NULL, 200, "OK",
     "x-cr: one two\r\n"},
    {"no-colon-or-no-name-skipped", "HTTP/1.1 200 OK\r\nnocolon\r\n: v\r\n\r\n", FALSE, NULL, 200,
     "OK", ""},
    {"trailers-ignored",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nx-a: 1\r\n\r\nx-trailer: 2\r\n\r\n", FALSE,
     NULL, 200, "OK", "x-a: 1\r\n"},
    {"lengths-agree", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length :  2 \r\n\r\n", FALSE,
     NULL, 200, "OK", ""},
    {"lengths-disagree", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 12\r\n\r\n",
     FALSE, "Content-Length fields that disagree", 0, NULL, NULL},
    {"chunked-in-any-case", "HTTP/1.1 200 OK\r\nTransfer-Encoding:  Chunked \r\n\r\n", FALSE, NULL,
     200, "OK", ""},
    {"coding-other-than-chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
     FALSE, "transfer coding other than chunked", 0, NULL, NULL},
};

/* Feeds `text` a line at a time; TRUE when the final head completed (its
 * fields then in *ret_sent), FALSE when it was refused. */
static gboolean run(LwUpstreamHead *head, const char *text, gboolean is_head, GString *ret_sent)
{
    gboolean complete = FALSE;
    for (const char *p = text; *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t len = nl != NULL ? (size_t)(nl + 1 - p) : strlen(p);
        LwUpstreamHeadResult r = lw_upstream_head_line(head, p, len);
        p += len;
        if (r == LW_UPSTREAM_HEAD_REFUSED)
            return FALSE;
        if (r == LW_UPSTREAM_HEAD_COMPLETE) {
            g_assert_false(complete);
            complete = TRUE;
            head->done = TRUE; /* as upstream.c does once it delivered the head */
        }
    }
    g_assert_true(complete);
    size_t n = 0;
    const char *reason = NULL;
    g_autofree LwHttpHeader *fields = lw_upstream_head_fields(head, &n, &reason);
    lw_upstream_head_write_fields(ret_sent, fields, n, is_head);
    return TRUE;
}

static void test_case(gconstpointer data)
{
    const Case *c = data;
    LwUpstreamHead head;
    lw_upstream_head_init(&head);
    g_autoptr(GString) sent = g_string_new(NULL);
    gboolean complete = run(&head, c->head, c->is_head, sent);
    if (c->refused != NULL) {
        g_assert_false(complete);
        g_assert_nonnull(strstr(head.refused, c->refused));
    } else {
        g_assert_true(complete);
        g_assert_null(head.refused);
        g_assert_cmpint(head.status, ==, c->status);
        size_t n = 0;
        const char *reason = NULL;
        g_autofree LwHttpHeader *fields = lw_upstream_head_fields(&head, &n, &reason);
        g_assert_cmpstr(reason, ==, c->reason);
        g_assert_cmpstr(sent->str, ==, c->sent);
    }
    lw_upstream_head_clear(&head);
}

/* The head's lines are capped: the status line and 511 fields pass, one
 * more is refused rather than forwarded with a field cut off; an obs-fold
 * adds no line. */
static void test_line_cap(void)
{
    for (guint extra = 0; extra <= 1; extra++) {
        g_autoptr(GString) text = g_string_new("HTTP/1.1 200 OK\r\n");
        for (guint i = 0; i < LW_UPSTREAM_HEAD_MAX_LINES - 1 + extra; i++)
            g_string_append_printf(text, "x-%u: 1\r\n", i);
        g_string_append(text, " folded\r\n\r\n");
        LwUpstreamHead head;
        lw_upstream_head_init(&head);
        g_autoptr(GString) sent = g_string_new(NULL);
        gboolean complete = run(&head, text->str, FALSE, sent);
        g_assert_cmpint(complete, ==, extra == 0);
        if (extra == 0)
            g_assert_true(g_str_has_suffix(sent->str, "x-510: 1 folded\r\n"));
        else
            g_assert_nonnull(strstr(head.refused, "more than 512 lines"));
        lw_upstream_head_clear(&head);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_strdup_printf("/upstream-head/%s", cases[i].name);
        g_test_add_data_func(path, &cases[i], test_case);
    }
    g_test_add_func("/upstream-head/line-cap", test_line_cap);
    return g_test_run();
}
