/* upstream-head.h - an upstream answer's head, from the lines libcurl
 * hands over to the fields the client is sent.
 *
 * libcurl passes every line of every head to upstream.c's header callback:
 * interim 1xx heads, the final head, then the trailers, each line with its
 * CRLF. The lines of the current head are kept (an obs-fold joined to the
 * line it continues, a CR or LF inside a line turned into a space, at most
 * LW_UPSTREAM_HEAD_MAX_LINES of them); at the end of the final head,
 * framing the collector cannot pass on is refused; the lines are then split
 * into fields, and exchange.c forwards the end-to-end ones. Pure (no
 * libcurl, no I/O), so fuzz/fuzz-upstream-head.c drives it alone.
 *
 * Thread: any; one LwUpstreamHead is used by one thread at a time.
 */
#pragma once

#include <glib.h>

#include "http1.h"

/* Lines of one upstream response head that are kept; a response with more
 * is refused (502) rather than forwarded with some cut off. */
#define LW_UPSTREAM_HEAD_MAX_LINES 512

typedef struct {
    GPtrArray *lines;    /* the current head's lines (char*), cleaned, status line first */
    int status;          /* the current head's status; 0 before a status line */
    gboolean done;       /* the final head was delivered: further lines are trailers */
    const char *refused; /* why the head stops the transfer (static), NULL if it does not */
} LwUpstreamHead;

typedef enum {
    LW_UPSTREAM_HEAD_MORE = 0, /* the line was taken, or ignored (a trailer) */
    LW_UPSTREAM_HEAD_COMPLETE, /* the final head ended: deliver it, then set `done` */
    LW_UPSTREAM_HEAD_REFUSED,  /* stop the transfer: `refused` says why */
} LwUpstreamHeadResult;

void lw_upstream_head_init(LwUpstreamHead *head);
void lw_upstream_head_clear(LwUpstreamHead *head);

/* Takes one line as the header callback receives it: buf[0..len), its CR
 * and LF included, not NUL-terminated. The empty line that ends a head of
 * status 200 or more is COMPLETE, or REFUSED when the answer's
 * Content-Length fields disagree or a transfer coding other than chunked
 * is named (the collector re-frames the body: either would hand the client
 * an answer other than the provider's, RFC 9112 §6.3); a line past the
 * cap is REFUSED. Lines once `done` is set are trailers: not kept, and
 * not counted against the cap. */
LwUpstreamHeadResult lw_upstream_head_line(LwUpstreamHead *head, const char *buf, size_t len);

/* The fields of the current head: each line after the status line split at
 * its first colon, the blanks before the colon (a proxy must remove them,
 * RFC 9112 §5.1) and before the value dropped, a line without a colon or a
 * name skipped. Slices point into head->lines and live until its next
 * change. *ret_reason is the status line's reason phrase ("" when it has
 * none: HTTP/2). Transfer full of the array (g_free), none of what it
 * points to. */
LwHttpHeader *lw_upstream_head_fields(const LwUpstreamHead *head, size_t *ret_n,
                                      const char **ret_reason);

/* Appends "name: value\r\n" to `out` for each field a client is sent: all
 * but the hop-by-hop ones (RFC 9110 §7.6.1, with those the Connection
 * fields name), Content-Length (the collector frames the body itself;
 * kept in an answer to HEAD, where it describes a body not sent) and
 * Alt-Svc (an alternative service, HTTP/3 say, would reach the provider
 * past the collector). */
void lw_upstream_head_write_fields(GString *out, const LwHttpHeader *fields, size_t n_fields,
                                   gboolean is_head);
