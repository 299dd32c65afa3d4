/* shim-core.h - the preload shim's decisions, as plain functions.
 *
 * Everything here is pure: no syscalls, no getenv, no allocation, no global
 * state. The hooks (hook-*.c) call these with the process's configuration;
 * the unit tests call them directly, without preloading anything.
 *
 * Environment contract (set by llmwrap, read once by the shim's constructor):
 *   LLMWRAP_HOSTS        comma-separated provider hosts; host i (1-based) owns
 *                        the synthetic address 127.X.0.i
 *   LLMWRAP_NET          X, decimal 1..254 (default 241)
 *   LLMWRAP_PORT         the collector's port on every synthetic address
 *   LLMWRAP_LISTEN       the collector's listen addresses, comma-separated
 *                        IPv4:PORT or [IPv6]:PORT (0.0.0.0 and [::] stand
 *                        for any loopback address of their family); a TCP
 *                        connection to one of them is not redirected but
 *                        attributed like a provider connection
 *   LLMWRAP_RUN_ID       decimal run id (default 0)
 *   LLMWRAP_ATTRIB_SOCK  absolute path of the collector's attribution socket
 *                        (AF_UNIX SOCK_SEQPACKET, one message per connection)
 *   LLMWRAP_ATTRIB_REQUIRED=1  a connection whose attribution cannot
 *                        be delivered fails with ECONNREFUSED instead of
 *                        going on unattributed (llmwrap sets it: an
 *                        unattributed request would escape the run's
 *                        budgets and tags)
 *   LLMWRAP_CA_DER       base64 of the DER root the SSL_new hook trusts
 *   LLMWRAP_TLS_HOOK=0   turns the SSL_new hook off
 *   LLMWRAP_FAIL_OPEN=1  collector refused: connect to the real provider
 *   LLMWRAP_PROPAGATE=0  exec hooks do not re-add variables
 *   LLMWRAP_PRELOAD      absolute path of this shim, re-added to LD_PRELOAD
 *   LLMWRAP_COLLECTOR=1  sentinel: the shim is inert in this process
 *   LLMWRAP_TEST_REAL_ADDR=IPv4:PORT
 *                        TEST ONLY: replaces the real resolution of a provider
 *                        host on the fail-open path, so tests stay on loopback.
 * Without a valid LLMWRAP_HOSTS and LLMWRAP_PORT the shim is inert (it says
 * so on stderr if they are present but malformed): it cannot know what to
 * redirect, or where. Any other malformed variable is reported once on
 * stderr and replaced by the value that keeps provider traffic metered:
 * LLMWRAP_NET 241; LLMWRAP_RUN_ID, LLMWRAP_ATTRIB_SOCK: attribution cannot
 * be delivered (LLMWRAP_ATTRIB_REQUIRED then refuses provider connections);
 * LLMWRAP_LISTEN its well-formed entries (no better value exists: the
 * others' connections still reach the collector, outside the run);
 * LLMWRAP_CA_DER none; LLMWRAP_TLS_HOOK 1; LLMWRAP_FAIL_OPEN 0;
 * LLMWRAP_ATTRIB_REQUIRED 1; LLMWRAP_PROPAGATE 1; LLMWRAP_PRELOAD the
 * shim's own path; LLMWRAP_TEST_REAL_ADDR none. Going inert instead would
 * let a typo send provider traffic to the provider unmetered, past every
 * budget. llmwrap itself refuses to run with a malformed LLMWRAP_TLS_HOOK,
 * LLMWRAP_PROPAGATE or LLMWRAP_TEST_REAL_ADDR (it writes the others).
 *
 * Thread-safety: every function is reentrant; the structs are read-only
 * after they are filled.
 */
#pragma once

#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Same capacities as common/providers.h (which the shim cannot include:
 * it is GLib-side); the collector never emits more. */
#define LW_SHIM_MAX_HOSTS    64
#define LW_SHIM_MAX_HOST_LEN 253
#define LW_SHIM_DEFAULT_NET  241

/* Listen addresses the shim attributes: llmwrap passes every one the
 * collector has, the shim keeps this many and warns about the rest. */
#define LW_SHIM_MAX_LISTEN 16

/* A root certificate is well under this (ECDSA P-256 ~ 500 bytes). */
#define LW_SHIM_MAX_CA_DER 8192
#define LW_SHIM_MAX_PATH   4096

/* ---- configuration ---- */

/* Malformed variables the configuration remembers, with what the shim did
 * instead (one per variable read, so never more). */
#define LW_SHIM_MAX_IGNORED 12

typedef struct {
    const char *var;     /* "LLMWRAP_TLS_HOOK" */
    const char *instead; /* "the SSL_new hook stays on (it takes 0 or 1)" */
} LwShimIgnored;

typedef enum {
    LW_SHIM_ACTIVE = 0,
    LW_SHIM_INERT_UNSET,     /* LLMWRAP_HOSTS absent or empty: not under llmwrap */
    LW_SHIM_INERT_COLLECTOR, /* LLMWRAP_COLLECTOR=1 */
    LW_SHIM_INERT_MALFORMED, /* a variable is present but invalid */
} LwShimStatus;

/* The synthetic network as the hot path needs it: 127.X.0.0 in host byte
 * order and how many slots exist. A zeroed LwShimNet matches nothing. */
typedef struct {
    uint32_t base;
    uint32_t count;
} LwShimNet;

/* The collector's listen addresses (LLMWRAP_LISTEN), as connect()
 * destinations are compared with them. A zeroed LwShimListen matches
 * nothing. */
typedef struct {
    uint8_t addr[16]; /* IPv6 form: an IPv4 address as ::ffff:a.b.c.d */
    uint16_t port;    /* network order */
    bool any;         /* 0.0.0.0 or [::]: any loopback address of its family */
} LwShimListenAddr;

typedef struct {
    uint32_t count;
    LwShimListenAddr addrs[LW_SHIM_MAX_LISTEN];
} LwShimListen;

typedef struct {
    LwShimNet net;
    LwShimListen listen;
    uint16_t port; /* collector port, host order */
    uint64_t run_id;
    bool fail_open;
    bool tls_hook;
    bool propagate;
    bool has_attrib;
    bool attrib_required;
    struct sockaddr_un attrib_addr;
    socklen_t attrib_addr_len;
    bool has_test_real_addr;
    struct sockaddr_in test_real_addr;
    unsigned n_ignored; /* malformed variables replaced by a safe value */
    LwShimIgnored ignored[LW_SHIM_MAX_IGNORED];
    size_t ca_der_len; /* 0: no CA to add */
    uint8_t ca_der[LW_SHIM_MAX_CA_DER];
    char preload[LW_SHIM_MAX_PATH]; /* LLMWRAP_PRELOAD, "" if absent */
    uint8_t host_len[LW_SHIM_MAX_HOSTS];
    char hosts[LW_SHIM_MAX_HOSTS][LW_SHIM_MAX_HOST_LEN + 1]; /* lowercase, no trailing dot */
} LwShimConfig;

/* Fills `cfg` from an environment block (NULL-terminated "NAME=value"
 * array; the first entry for a name wins, as with getenv). On anything but
 * LW_SHIM_ACTIVE, `cfg` matches nothing; for LW_SHIM_INERT_MALFORMED,
 * *ret_bad_var (if non-NULL) points at a static string naming the variable.
 * LW_SHIM_ACTIVE may come with cfg->ignored: variables that were malformed
 * and replaced by their safe value (static strings). */
LwShimStatus lw_shim_config_parse(LwShimConfig *cfg, char *const *envp, const char **ret_bad_var);

/* The shim's variables a user may set, which llmwrap passes to the program
 * as they are (it writes or removes every other LLMWRAP_* variable):
 * LLMWRAP_TLS_HOOK, LLMWRAP_PROPAGATE, LLMWRAP_TEST_REAL_ADDR. NULL-
 * terminated. */
extern const char *const lw_shim_user_knobs[];

/* Whether `value` is one the shim accepts for the knob `name` (one of
 * lw_shim_user_knobs; empty means the default). *ret_expected is set to a
 * static description of the valid values ("0 or 1"). */
bool lw_shim_knob_valid(const char *name, const char *value, const char **ret_expected);

/* Value of `name` in envp, or NULL. Borrowed from envp. */
const char *lw_shim_env_get(char *const *envp, const char *name);

/* Decodes standard base64 (padding optional, no whitespace). Returns the
 * decoded length, or -1 on a bad character, bad length or overflow of `cap`. */
long lw_shim_base64_decode(const char *in, uint8_t *out, size_t cap);

/* ---- provider hosts and synthetic addresses ---- */

/* 1-based slot of `name` (case-insensitive, one trailing dot ignored, exact
 * names only), or 0. NULL names are not providers. */
unsigned lw_shim_host_slot(const LwShimConfig *cfg, const char *name);

/* Host of a slot (1..count). Borrowed from cfg. */
const char *lw_shim_slot_host(const LwShimConfig *cfg, unsigned slot);

/* Slot of an IPv4 address in host byte order, or 0. */
static inline unsigned lw_shim_v4_slot(const LwShimNet *net, uint32_t addr)
{
    uint32_t slot = addr & 0xffu;
    if ((addr & 0xffffff00u) != net->base || slot == 0 || slot > net->count)
        return 0;
    return slot;
}

/* Slot of a connect()/sendto() destination: AF_INET 127.X.0.i or AF_INET6
 * ::ffff:127.X.0.i, with i in 1..count; 0 for anything else (including a
 * NULL or short address). The connect hot path: no calls, a few compares. */
static inline unsigned lw_shim_sockaddr_slot(const LwShimNet *net, const struct sockaddr *sa,
                                             socklen_t len)
{
    if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
        return 0;
    if (sa->sa_family == AF_INET) {
        if (len < (socklen_t)sizeof(struct sockaddr_in))
            return 0;
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        return lw_shim_v4_slot(net, ntohl(sin->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        if (len < (socklen_t)sizeof(struct sockaddr_in6))
            return 0;
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        if (!IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
            return 0;
        uint32_t v4;
        __builtin_memcpy(&v4, &sin6->sin6_addr.s6_addr[12], sizeof v4);
        return lw_shim_v4_slot(net, ntohl(v4));
    }
    return 0;
}

/* Whether a connect()/sendto() destination is one of the collector's
 * listen addresses: the same port, and the same address (an IPv4 one also
 * in its v4-mapped form), or any loopback address of the family of a
 * wildcard (0.0.0.0: 127.0.0.0/8; [::]: ::1, since the collector listens
 * on it IPv6-only). The unspecified destination (0.0.0.0, [::]), which
 * Linux connects to loopback, counts as 127.0.0.1 / ::1. */
bool lw_shim_listen_match(const LwShimListen *listen, const struct sockaddr *sa, socklen_t len);

/* lw_shim_listen_match for the connect hot path: a destination whose port
 * is no listen address's costs a compare per listen address, no call. */
_Static_assert(offsetof(struct sockaddr_in, sin_port) == offsetof(struct sockaddr_in6, sin6_port),
               "both families keep the port at one offset");
static inline bool lw_shim_sockaddr_is_listen(const LwShimListen *listen, const struct sockaddr *sa,
                                              socklen_t len)
{
    if (sa == NULL || len < (socklen_t)sizeof(struct sockaddr_in))
        return false;
    uint16_t port = ((const struct sockaddr_in *)sa)->sin_port;
    for (uint32_t i = 0; i < listen->count; i++) {
        if (listen->addrs[i].port == port)
            return lw_shim_listen_match(listen, sa, len);
    }
    return false;
}

/* Writes the numeric literal of a slot's address: "127.X.0.i" for AF_INET,
 * "::ffff:127.X.0.i" for AF_INET6. Returns false if `cap` is too small. */
bool lw_shim_slot_literal(const LwShimNet *net, unsigned slot, int family, char *buf, size_t cap);

/* Binary address of a slot: 4 bytes for AF_INET, 16 (v4-mapped) for
 * AF_INET6, network byte order. Returns the length written, 0 for other
 * families. */
size_t lw_shim_slot_addr(const LwShimNet *net, unsigned slot, int family, uint8_t out[16]);

/* Fills a hostent for one name and one address inside the caller's buffer,
 * as gethostbyname_r does. `addr` has 4 (AF_INET) or 16 (AF_INET6) bytes.
 * Returns 0, or ERANGE when `buflen` is too small (nothing usable written). */
int lw_shim_hostent_fill(struct hostent *ret, char *buf, size_t buflen, const char *name,
                         int family, const uint8_t *addr);

/* ---- attribution (lw.Attribution, encoded by hand) ---- */

#define LW_SHIM_ATTRIB_EXE_MAX 512
/* tags + varints (10 bytes max each) + two addresses + exe: comfortably
 * bounds a message */
#define LW_SHIM_ATTRIB_MAX     (LW_SHIM_ATTRIB_EXE_MAX + 128)
#define LW_SHIM_ATTRIB_VERSION 2

typedef struct {
    uint32_t version;
    uint64_t run_id;
    uint32_t pid;
    uint32_t ppid;
    const char *exe; /* need not be NUL-terminated; truncated to 512 bytes */
    size_t exe_len;
    /* The connection's two ends (see lw_shim_attrib_set_ends): addresses
     * of 4 or 16 bytes, network order; ports in host order. */
    uint8_t local_addr[16];
    uint8_t local_addr_len;
    uint32_t local_port;
    uint8_t remote_addr[16];
    uint8_t remote_addr_len;
    uint32_t remote_port;
} LwShimAttrib;

/* Copies the connection's ends into `a`: `local` as getsockname() gave it,
 * `remote` the address connect() was given. An unspecified remote address
 * (0.0.0.0, ::) is replaced by the local one, which is where Linux
 * connected it. Returns false (a unchanged) unless both are AF_INET or
 * AF_INET6 addresses with a port: the collector tells connections apart
 * only by both ends. */
bool lw_shim_attrib_set_ends(LwShimAttrib *a, const struct sockaddr *local, socklen_t local_len,
                             const struct sockaddr *remote, socklen_t remote_len);

/* Encodes `a` as the protobuf wire form of lw.Attribution (every field
 * present). The exe is cut at 512 bytes, backing off to a UTF-8 character
 * boundary. Returns the number of bytes written, or 0 if `cap` is too small
 * (LW_SHIM_ATTRIB_MAX always suffices). */
size_t lw_shim_attrib_encode(const LwShimAttrib *a, uint8_t *buf, size_t cap);

/* ---- exec propagation ---- */

#define LW_SHIM_SNAP_MAX_VARS 48
#define LW_SHIM_SNAP_BUF      16384
#define LW_SHIM_SNAP_VAR_MAX  4096 /* longer variables are not snapshotted */
/* An environment longer than this is passed to exec unchanged: the merged
 * copy is built on the caller's stack (vfork-safe), so it must be bounded. */
#define LW_SHIM_ENVP_MAX    4096
#define LW_SHIM_PRELOAD_MAX 4096 /* bound of a rebuilt "LD_PRELOAD=..." entry */

/* The variables the exec hooks restore, copied at start-up because the
 * program may clearenv() or edit environ later. */
typedef struct {
    char preload[LW_SHIM_MAX_PATH]; /* our absolute path, "" if unknown */
    size_t preload_len;
    unsigned count;
    const char *vars[LW_SHIM_SNAP_MAX_VARS]; /* "NAME=value", into buf */
    uint16_t name_len[LW_SHIM_SNAP_MAX_VARS];
    char buf[LW_SHIM_SNAP_BUF];
} LwShimEnvSnapshot;

/* Whether exec hooks restore `name` (LLMWRAP_* and the trust variables;
 * LD_PRELOAD is handled separately). `len` is the name's length. */
bool lw_shim_is_propagated_name(const char *name, size_t len);

/* Copies the propagated variables of envp and the preload path (may be NULL
 * or relative: then LD_PRELOAD is not restored) into snap. Variables that do
 * not fit are skipped. */
void lw_shim_env_snapshot(LwShimEnvSnapshot *snap, char *const *envp, const char *preload_path);

/* Number of entries in envp (NULL = empty), or SIZE_MAX if over `max`. */
size_t lw_shim_envp_count(char *const *envp, size_t max);

/* Whether an LD_PRELOAD entry (`len` bytes) must stay in front of the
 * shim: a sanitizer runtime (libasan.so[.N], libclang_rt.asan*), which
 * refuses to run unless it is the first object loaded. llmwrap applies the
 * same rule. */
bool lw_shim_preload_entry_leads(const char *entry, size_t len);

/* Whether `path` is an element of an LD_PRELOAD value (separated by ':' or
 * spaces, as ld.so reads it). */
bool lw_shim_preload_has(const char *value, const char *path, size_t path_len);

/* Builds the environment an exec should get: envp's entries in order, with
 * LD_PRELOAD rebuilt to start with our path when it lacks it (the user's
 * other preloads kept), and each snapshotted variable that envp lacks
 * appended. A variable envp sets (even to "") is never overridden.
 * ret_envp needs room for envp_count + LW_SHIM_SNAP_MAX_VARS + 2 pointers;
 * preload_buf holds the rebuilt LD_PRELOAD entry. Returns the number of
 * entries written before the terminating NULL, or -1 when the result would
 * not fit (then exec with envp unchanged). Pointers in ret_envp borrow from
 * envp, snap and preload_buf. Async-signal-safe: no allocation, no globals. */
long lw_shim_envp_merge(const LwShimEnvSnapshot *snap, char *const *envp, char **ret_envp,
                        size_t cap, char *preload_buf, size_t preload_cap);
