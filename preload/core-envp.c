/* core-envp.c - restoring llmwrap's variables in an exec's environment.
 *
 * lw_shim_envp_merge runs inside exec hooks, which may run in a vfork child
 * sharing the parent's memory: it allocates nothing, takes no locks and
 * writes only to the caller's buffers.
 */
#include "shim-core.h"

#include <string.h>

/* Replace-semantics and additive trust variables llmwrap sets (DESIGN §1),
 * plus the resolver hints that keep grpc and cgo-Go on getaddrinfo. */
static const char *const propagated_names[] = {
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "AWS_CA_BUNDLE",
    "CARGO_HTTP_CAINFO",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "NODE_EXTRA_CA_CERTS",
    "DENO_CERT",
    "GRPC_DNS_RESOLVER",
    "GODEBUG",
};

#define LD_PRELOAD_EQ     "LD_PRELOAD="
#define LD_PRELOAD_EQ_LEN (sizeof LD_PRELOAD_EQ - 1)

bool lw_shim_is_propagated_name(const char *name, size_t len)
{
    if (len > 8 && memcmp(name, "LLMWRAP_", 8) == 0)
        return true;
    for (size_t i = 0; i < sizeof propagated_names / sizeof propagated_names[0]; i++) {
        if (strlen(propagated_names[i]) == len && memcmp(propagated_names[i], name, len) == 0)
            return true;
    }
    return false;
}

void lw_shim_env_snapshot(LwShimEnvSnapshot *snap, char *const *envp, const char *preload_path)
{
    size_t used = 0;

    snap->count = 0;
    snap->preload[0] = '\0';
    snap->preload_len = 0;
    if (preload_path != NULL && preload_path[0] == '/') {
        size_t n = strlen(preload_path);
        if (n < sizeof snap->preload) {
            memcpy(snap->preload, preload_path, n + 1);
            snap->preload_len = n;
        }
    }
    if (envp == NULL)
        return;
    for (; *envp != NULL && snap->count < LW_SHIM_SNAP_MAX_VARS; envp++) {
        const char *eq = strchr(*envp, '=');
        if (eq == NULL)
            continue;
        size_t name_len = (size_t)(eq - *envp);
        if (!lw_shim_is_propagated_name(*envp, name_len))
            continue;
        /* getenv semantics: the first definition of a name wins. */
        bool seen = false;
        for (unsigned i = 0; i < snap->count && !seen; i++)
            seen = snap->name_len[i] == name_len && memcmp(snap->vars[i], *envp, name_len) == 0;
        size_t n = strlen(*envp) + 1;
        if (seen || n > LW_SHIM_SNAP_VAR_MAX || n > sizeof snap->buf - used)
            continue;
        memcpy(snap->buf + used, *envp, n);
        snap->vars[snap->count] = snap->buf + used;
        snap->name_len[snap->count] = (uint16_t)name_len;
        snap->count++;
        used += n;
    }
}

size_t lw_shim_envp_count(char *const *envp, size_t max)
{
    size_t n = 0;
    if (envp == NULL)
        return 0;
    while (envp[n] != NULL) {
        if (n == max)
            return SIZE_MAX;
        n++;
    }
    return n;
}

static bool is_preload_sep(char c)
{
    return c == ':' || c == ' ';
}

bool lw_shim_preload_has(const char *value, const char *path, size_t path_len)
{
    const char *p = value;
    while (*p != '\0') {
        while (is_preload_sep(*p))
            p++;
        const char *start = p;
        while (*p != '\0' && !is_preload_sep(*p))
            p++;
        if ((size_t)(p - start) == path_len && path_len > 0 && memcmp(start, path, path_len) == 0)
            return true;
    }
    return false;
}

bool lw_shim_preload_entry_leads(const char *entry, size_t len)
{
    const char *base = entry;
    for (size_t i = 0; i < len; i++) {
        if (entry[i] == '/')
            base = entry + i + 1;
    }
    size_t base_len = len - (size_t)(base - entry);
    return (base_len >= 10 && memcmp(base, "libasan.so", 10) == 0 &&
            (base_len == 10 || base[10] == '.')) ||
           (base_len >= 16 && memcmp(base, "libclang_rt.asan", 16) == 0);
}

/* The length of the first entry of an LD_PRELOAD value (after leading
 * separators, skipped into *skip) when it must stay first
 * (lw_shim_preload_entry_leads); 0 when it need not. */
static size_t first_must_stay(const char *value, size_t *skip)
{
    const char *p = value;
    while (is_preload_sep(*p))
        p++;
    const char *start = p;
    while (*p != '\0' && !is_preload_sep(*p))
        p++;
    *skip = (size_t)(start - value);
    return lw_shim_preload_entry_leads(start, (size_t)(p - start)) ? (size_t)(p - start) : 0;
}

/* Whether envp defines the variable `entry` ("NAME=..." with the name's
 * length given). */
static bool envp_defines(char *const *envp, const char *entry, size_t name_len)
{
    if (envp == NULL)
        return false;
    for (; *envp != NULL; envp++) {
        if (strncmp(*envp, entry, name_len + 1) == 0)
            return true;
    }
    return false;
}

long lw_shim_envp_merge(const LwShimEnvSnapshot *snap, char *const *envp, char **ret_envp,
                        size_t cap, char *preload_buf, size_t preload_cap)
{
    size_t n = 0;
    bool preload_seen = false;

    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++) {
        char *e = envp[i];
        if (n + 1 >= cap)
            return -1;
        if (!preload_seen && strncmp(e, LD_PRELOAD_EQ, LD_PRELOAD_EQ_LEN) == 0) {
            preload_seen = true;
            const char *value = e + LD_PRELOAD_EQ_LEN;
            if (snap->preload_len > 0 &&
                !lw_shim_preload_has(value, snap->preload, snap->preload_len)) {
                /* The shim goes first, after an ASan runtime if one leads. */
                size_t skip = 0;
                size_t first = first_must_stay(value, &skip);
                const char *lead = value + skip;
                const char *rest = first > 0 ? lead + first : value;
                size_t rlen = strlen(rest);
                bool sep = rlen > 0 && !is_preload_sep(rest[0]);
                size_t need = LD_PRELOAD_EQ_LEN + (first > 0 ? first + 1 : 0) +
                              snap->preload_len + (sep ? 1 : 0) + rlen + 1;
                if (need > preload_cap)
                    return -1;
                char *p = preload_buf;
                memcpy(p, LD_PRELOAD_EQ, LD_PRELOAD_EQ_LEN);
                p += LD_PRELOAD_EQ_LEN;
                if (first > 0) {
                    memcpy(p, lead, first);
                    p += first;
                    *p++ = ':';
                }
                memcpy(p, snap->preload, snap->preload_len);
                p += snap->preload_len;
                if (sep)
                    *p++ = ':';
                memcpy(p, rest, rlen + 1);
                e = preload_buf;
            }
        }
        ret_envp[n++] = e;
    }

    if (!preload_seen && snap->preload_len > 0) {
        size_t need = LD_PRELOAD_EQ_LEN + snap->preload_len + 1;
        if (need > preload_cap || n + 1 >= cap)
            return -1;
        memcpy(preload_buf, LD_PRELOAD_EQ, LD_PRELOAD_EQ_LEN);
        memcpy(preload_buf + LD_PRELOAD_EQ_LEN, snap->preload, snap->preload_len + 1);
        ret_envp[n++] = preload_buf;
    }

    for (unsigned i = 0; i < snap->count; i++) {
        if (envp_defines(envp, snap->vars[i], snap->name_len[i]))
            continue;
        if (n + 1 >= cap)
            return -1;
        ret_envp[n++] = (char *)snap->vars[i];
    }
    ret_envp[n] = NULL;
    return (long)n;
}
