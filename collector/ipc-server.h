/* ipc-server.h - the collector's side of run/collector.sock.
 *
 * Accepts clients (same uid only, checked with SO_PEERCRED), decodes
 * lw.Request frames, answers each with one lw.Response, and pushes
 * lw.Response{event} to clients that subscribed with `tail`. A bad frame
 * (oversized, undecodable, no known body) closes that client only.
 *
 * Requests other than `status` are served by handlers the owning modules
 * register (run bookkeeping, budgets); a request without a handler gets an
 * error response naming it.
 *
 * Thread: the loop thread only.
 */
#pragma once

#include <glib.h>

#include "llmwrap.pb-c.h"
#include "server.h"

/* A handler fills `resp` (body and, on failure, error). `resp` is freed by
 * the server with lw_ipc_response_clear(): allocate what you attach with
 * g_malloc / g_strdup. */
typedef void (*LwIpcHandler)(LwServer *server, const Lw__Request *req, Lw__Response *resp,
                             void *data);

LwIpcServer *lw_ipc_server_new(LwServer *server, const char *path, GError **error);
void lw_ipc_server_free(LwIpcServer *ipc);

void lw_ipc_server_set_handler(LwIpcServer *ipc, Lw__Request__BodyCase which, LwIpcHandler func,
                               void *data);

/* The client whose request a handler is running (a number unique for the
 * server's life; 0 outside a handler): for state that lives as long as a
 * client's connection, such as a run as long as its llmwrap. */
guint64 lw_ipc_server_current_client(const LwIpcServer *ipc);

/* Called with a client's number when its connection closes, whatever the
 * reason (not when the server itself is freed). One per server. */
typedef void (*LwIpcCloseFunc)(guint64 client, void *data);
void lw_ipc_server_set_close_handler(LwIpcServer *ipc, LwIpcCloseFunc func, void *data);

/* Sends `event` to every tail subscriber; a subscriber that cannot keep up
 * (over 1 MiB queued) is disconnected rather than buffered without bound. */
void lw_ipc_server_publish(LwIpcServer *ipc, const Lw__RequestEvent *event);

/* Fills a status reply from the server's state. Allocations as for
 * handlers. */
void lw_ipc_fill_status(LwServer *server, Lw__StatusReply *status);

/* Frees what a handler attached to `resp` (g_malloc'd fields, recursively). */
void lw_ipc_response_clear(Lw__Response *resp);

/* Sets resp->error to `message`. */
void lw_ipc_response_set_error(Lw__Response *resp, const char *message);
