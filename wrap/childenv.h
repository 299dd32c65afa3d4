/* childenv.h - the environments llmwrap gives the wrapped program and the
 * collector it starts.
 *
 * The wrapped program gets the preload shim's contract (preload/shim-core.h):
 * LD_PRELOAD with the shim first, LLMWRAP_HOSTS/NET/PORT/RUN_ID/ATTRIB_SOCK/
 * CA_DER/PRELOAD, LLMWRAP_LISTEN when the collector has listen addresses,
 * LLMWRAP_FAIL_OPEN only when asked, the provider hosts in
 * NO_PROXY and no_proxy, and the trust variables
 * (DESIGN §1): a combined bundle for the variables that replace the trust
 * store, our root alone for the additive ones (Node, Deno). A trust
 * variable the user set points at the user's own file (or CA directory)
 * plus our root instead, so the user's other HTTPS keeps working; one
 * llmwrap cannot add its root to keeps the user's value. A variable the
 * user did not set is left unset, or follows the user's, where a client
 * would read the user's variable in its place (CURL_CA_BUNDLE for
 * requests, SSL_CERT_DIR for curl and httpx).
 *
 * The collector gets the user's environment minus the shim: it must never
 * intercept itself, nor trust our own CA upstream.
 *
 * Pure functions over NULL-terminated "NAME=value" arrays (GStrv); no I/O.
 * Thread-safety: reentrant.
 */
#pragma once

#include <glib.h>

#define LW_PRELOAD_BASENAME "libllmwrap-preload.so"

/* Variables that llmwrap points at the combined bundle (system or user
 * bundle + our root): these replace a program's trust store. */
extern const char *const lw_childenv_combined_vars[];
/* Variables that llmwrap points at our root alone: these add to the
 * program's built-in store. One the user set points at their file plus our
 * root instead (both Node and Deno read every certificate in the file). */
extern const char *const lw_childenv_ca_only_vars[];
/* Variables llmwrap never sets, but points at a directory of its own
 * (the user's entries plus our root) when the user set one. */
extern const char *const lw_childenv_dir_vars[];
/* The three lists above, in that order: every trust variable. */
#define LW_CHILDENV_TRUST_LISTS 3
extern const char *const *const lw_childenv_trust_lists[LW_CHILDENV_TRUST_LISTS];

typedef struct {
    const char *preload; /* absolute path of the shim */
    const char *hosts;   /* StatusReply.hosts */
    guint net;           /* StatusReply.synthetic_net */
    guint port;          /* StatusReply.synthetic_port */
    /* The collector's listen addresses as LLMWRAP_LISTEN takes them
     * (lw_childenv_listen_value); NULL or "" when it has none. */
    const char *listen;
    guint64 run_id;
    const char *attrib_sock; /* absolute */
    const char *home;        /* canonical LLMWRAP_HOME, NULL when unset */
    const char *ca_der_b64;  /* base64 of the root's DER, no newlines */
    const char *combined_pem;
    const char *ca_pem;
    /* "NAME=path" for the trust variables the user set that llmwrap can
     * add its root to (lw_trust_combined_for). May be NULL. A variable the
     * user set that is not listed keeps the user's value; one the user did
     * not set gets combined_pem or ca_pem, unless a client would read a
     * variable the user set in its place. */
    char **user_trust;
    gboolean fail_open;
} LwChildEnv;

/* The wrapped program's environment: `base` with the contract applied.
 * Transfer full. */
char **lw_childenv_build(char **base, const LwChildEnv *e);

/* LD_PRELOAD for the program: our shim first, then the user's other
 * preloads in order (a sanitizer runtime the user put first stays first:
 * it refuses to run otherwise). Any entry named libllmwrap-preload.so (ours, or
 * another build's) is dropped so no process loads two shims. `user` may be
 * NULL. Transfer full. */
char *lw_childenv_preload_value(const char *user, const char *shim);

/* The user's LD_PRELOAD without any libllmwrap-preload.so entry; NULL when
 * nothing is left. Transfer full. */
char *lw_childenv_preload_without_shim(const char *user);

/* GODEBUG with netdns=go last, so Go programs resolve provider hosts
 * themselves rather than through the shim's synthetic answers (they would
 * then connect to a synthetic address with raw syscalls, unredirected, and
 * fail). Go reads GODEBUG right to left, so appending wins over an earlier
 * netdns the user set; a value whose last netdns already is "go" is kept
 * as it is. `user` may be NULL. Transfer full. */
char *lw_childenv_godebug_value(const char *user);

/* NO_PROXY (or no_proxy) with the provider hosts appended: a client that
 * honours HTTPS_PROXY/ALL_PROXY would otherwise send CONNECT host:443 to
 * the proxy, bypassing the shim's redirection (the collector goes through
 * its own [upstream] proxy). `user` is the user's value (may be NULL);
 * `hosts` is comma-separated; hosts the user already lists, and every host
 * when the user's value is "*", are not added again. Transfer full. */
char *lw_childenv_no_proxy_value(const char *user, const char *hosts);

/* Appends one listen address (StatusReply's Listener: a numeric IPv4 or
 * IPv6 address, and a port) to an LLMWRAP_LISTEN value: "ADDR:PORT", an
 * IPv6 address in brackets, comma-separated. */
void lw_childenv_listen_append(GString *value, const char *address, guint port);

/* The environment for llm-collector: `base` without our shim in
 * LD_PRELOAD, without the shim's variables (LLMWRAP_HOSTS, _NET, _PORT,
 * _LISTEN, _RUN_ID, _ATTRIB_SOCK, _CA_DER, _PRELOAD, _FAIL_OPEN) and without any
 * trust variable (SSL_CERT_DIR included) that points into `trust_dir` (a
 * nested llmwrap's environment). LLMWRAP_HOME is set to `home` when not NULL. Transfer full. */
char **lw_childenv_for_collector(char **base, const char *trust_dir, const char *home);
