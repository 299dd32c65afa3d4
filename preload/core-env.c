/* core-env.c - reading the shim's configuration from an environment block.
 *
 * Strict parsing. Without a valid LLMWRAP_HOSTS and LLMWRAP_PORT the shim
 * cannot know which names to redirect or where, and goes inert. Any other
 * malformed value is reported and replaced by its fail-closed default:
 * going inert over it would send provider traffic to the provider
 * directly, unmetered, past every budget.
 */
#include "shim-core.h"

#include <arpa/inet.h>
#include <string.h>

const char *lw_shim_env_get(char *const *envp, const char *name)
{
    if (envp == NULL)
        return NULL;
    size_t n = strlen(name);
    for (; *envp != NULL; envp++) {
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    }
    return NULL;
}

/* Decimal without sign, spaces or leading zeros beyond "0"; false on
 * overflow of `max`. */
static bool parse_decimal(const char *s, uint64_t max, uint64_t *ret)
{
    uint64_t v = 0;
    if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
        return false;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *ret = v;
    return true;
}

/* "0" / "1"; unset or empty gives the default. */
static bool parse_bool(const char *s, bool dflt, bool *ret)
{
    if (s == NULL || *s == '\0') {
        *ret = dflt;
        return true;
    }
    if (strcmp(s, "0") == 0 || strcmp(s, "1") == 0) {
        *ret = s[0] == '1';
        return true;
    }
    return false;
}

static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

static bool parse_hosts(LwShimConfig *cfg, const char *s)
{
    unsigned count = 0;
    const char *p = s;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        if (len > 0 && p[len - 1] == '.')
            len--;
        if (len == 0 || len > LW_SHIM_MAX_HOST_LEN || count == LW_SHIM_MAX_HOSTS || p[0] == '.')
            return false;
        for (size_t i = 0; i < len; i++) {
            if (!is_host_char(p[i]))
                return false;
            char c = p[i];
            cfg->hosts[count][i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
        }
        cfg->hosts[count][len] = '\0';
        cfg->host_len[count] = (uint8_t)len;
        count++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    cfg->net.count = count;
    return true;
}

/* "IPv4:PORT", port 1..65535. */
static bool parse_ipv4_port(const char *s, struct sockaddr_in *ret)
{
    const char *colon = strrchr(s, ':');
    char ip[INET_ADDRSTRLEN];
    uint64_t port;
    if (colon == NULL || (size_t)(colon - s) >= sizeof ip)
        return false;
    memcpy(ip, s, (size_t)(colon - s));
    ip[colon - s] = '\0';
    memset(ret, 0, sizeof *ret);
    if (inet_pton(AF_INET, ip, &ret->sin_addr) != 1 || !parse_decimal(colon + 1, 65535, &port) ||
        port == 0)
        return false;
    ret->sin_family = AF_INET;
    ret->sin_port = htons((uint16_t)port);
    return true;
}

/* One listen address: "IPv4:PORT" or "[IPv6]:PORT", `len` bytes, port
 * 1..65535. */
static bool parse_listen_addr(const char *s, size_t len, LwShimListenAddr *ret)
{
    char host[INET6_ADDRSTRLEN];
    char port_text[6];
    const char *colon = NULL;
    for (size_t i = len; i > 0; i--) {
        if (s[i - 1] == ':') {
            colon = s + i - 1;
            break;
        }
    }
    if (colon == NULL)
        return false;
    size_t host_len = (size_t)(colon - s);
    size_t port_len = len - host_len - 1;
    bool v6 = host_len >= 2 && s[0] == '[' && s[host_len - 1] == ']';
    if (v6) {
        s++;
        host_len -= 2;
    }
    if (host_len >= sizeof host || port_len == 0 || port_len >= sizeof port_text)
        return false;
    memcpy(host, s, host_len);
    host[host_len] = '\0';
    memcpy(port_text, colon + 1, port_len);
    port_text[port_len] = '\0';
    uint64_t port;
    if (!parse_decimal(port_text, 65535, &port) || port == 0)
        return false;

    LwShimListenAddr a;
    memset(&a, 0, sizeof a);
    if (v6) {
        if (inet_pton(AF_INET6, host, a.addr) != 1)
            return false;
    } else {
        a.addr[10] = 0xff;
        a.addr[11] = 0xff;
        if (inet_pton(AF_INET, host, a.addr + 12) != 1)
            return false;
    }
    static const uint8_t zero[16] = {0};
    a.any = memcmp(a.addr, zero, 16) == 0 || (!v6 && memcmp(a.addr + 12, zero, 4) == 0);
    a.port = htons((uint16_t)port);
    *ret = a;
    return true;
}

/* Comma-separated listen addresses. Keeps the well-formed ones, up to
 * LW_SHIM_MAX_LISTEN; returns false if any was dropped. */
static bool parse_listen(LwShimListen *listen, const char *s)
{
    bool all = true;
    const char *p = s;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        LwShimListenAddr a;
        if (listen->count < LW_SHIM_MAX_LISTEN && parse_listen_addr(p, len, &a))
            listen->addrs[listen->count++] = a;
        else
            all = false;
        if (end == NULL)
            return all;
        p = end + 1;
    }
}

/* Records that `var` was malformed and what the shim does instead. */
static void fall_back(LwShimConfig *cfg, const char *var, const char *instead)
{
    if (cfg->n_ignored < LW_SHIM_MAX_IGNORED) {
        cfg->ignored[cfg->n_ignored].var = var;
        cfg->ignored[cfg->n_ignored].instead = instead;
        cfg->n_ignored++;
    }
}

/* A knob: "0" or "1"; unset or empty is the default. A malformed value
 * gives `safe`, the value that keeps requests metered. */
static bool knob(LwShimConfig *cfg, char *const *envp, const char *var, bool dflt, bool safe,
                 const char *instead)
{
    bool v;
    if (parse_bool(lw_shim_env_get(envp, var), dflt, &v))
        return v;
    fall_back(cfg, var, instead);
    return safe;
}

/* Attribution cannot be delivered: an address of no socket, so every
 * delivery fails and LLMWRAP_ATTRIB_REQUIRED refuses the connection, as it
 * does when the collector's socket is gone. */
static void attribution_undeliverable(LwShimConfig *cfg)
{
    memset(&cfg->attrib_addr, 0, sizeof cfg->attrib_addr);
    cfg->attrib_addr.sun_family = AF_UNIX;
    cfg->attrib_addr_len = (socklen_t)sizeof(sa_family_t);
    cfg->has_attrib = true;
}

static LwShimStatus malformed(LwShimConfig *cfg, const char *var, const char **ret_bad_var)
{
    memset(&cfg->net, 0, sizeof cfg->net);
    if (ret_bad_var != NULL)
        *ret_bad_var = var;
    return LW_SHIM_INERT_MALFORMED;
}

LwShimStatus lw_shim_config_parse(LwShimConfig *cfg, char *const *envp, const char **ret_bad_var)
{
    const char *v;
    uint64_t n;

    memset(cfg, 0, offsetof(LwShimConfig, ca_der));
    cfg->preload[0] = '\0';
    cfg->tls_hook = true;
    cfg->propagate = true;

    v = lw_shim_env_get(envp, "LLMWRAP_COLLECTOR");
    if (v != NULL && strcmp(v, "1") == 0)
        return LW_SHIM_INERT_COLLECTOR;

    v = lw_shim_env_get(envp, "LLMWRAP_HOSTS");
    if (v == NULL || *v == '\0')
        return LW_SHIM_INERT_UNSET;
    if (!parse_hosts(cfg, v))
        return malformed(cfg, "LLMWRAP_HOSTS", ret_bad_var);

    v = lw_shim_env_get(envp, "LLMWRAP_NET");
    n = LW_SHIM_DEFAULT_NET;
    if (v != NULL && *v != '\0' && (!parse_decimal(v, 254, &n) || n == 0)) {
        fall_back(cfg, "LLMWRAP_NET", "using 241");
        n = LW_SHIM_DEFAULT_NET;
    }
    uint32_t base = (127u << 24) | ((uint32_t)n << 16);

    v = lw_shim_env_get(envp, "LLMWRAP_PORT");
    if (v == NULL || !parse_decimal(v, 65535, &n) || n == 0)
        return malformed(cfg, "LLMWRAP_PORT", ret_bad_var);
    cfg->port = (uint16_t)n;

    LwShimListen listen;
    memset(&listen, 0, sizeof listen);
    v = lw_shim_env_get(envp, "LLMWRAP_LISTEN");
    if (v != NULL && *v != '\0' && !parse_listen(&listen, v))
        fall_back(cfg, "LLMWRAP_LISTEN",
                  "connections to the listen addresses it names badly (it takes IPv4:PORT or "
                  "[IPv6]:PORT, comma-separated, at most 16) are not part of the run");

    bool undeliverable = false;
    v = lw_shim_env_get(envp, "LLMWRAP_RUN_ID");
    if (v != NULL && *v != '\0' && !parse_decimal(v, UINT64_MAX, &cfg->run_id)) {
        fall_back(cfg, "LLMWRAP_RUN_ID", "connections cannot be attributed to a run");
        cfg->run_id = 0;
        undeliverable = true;
    }

    v = lw_shim_env_get(envp, "LLMWRAP_ATTRIB_SOCK");
    if (v != NULL && *v != '\0') {
        size_t len = strlen(v);
        if (v[0] != '/' || len >= sizeof cfg->attrib_addr.sun_path) {
            fall_back(cfg, "LLMWRAP_ATTRIB_SOCK", "connections cannot be attributed to a run");
            undeliverable = true;
        } else {
            cfg->attrib_addr.sun_family = AF_UNIX;
            memcpy(cfg->attrib_addr.sun_path, v, len + 1);
            cfg->attrib_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
            cfg->has_attrib = true;
        }
    }
    if (undeliverable)
        attribution_undeliverable(cfg);

    v = lw_shim_env_get(envp, "LLMWRAP_CA_DER");
    if (v != NULL && *v != '\0') {
        long len = lw_shim_base64_decode(v, cfg->ca_der, sizeof cfg->ca_der);
        if (len > 0)
            cfg->ca_der_len = (size_t)len;
        else
            fall_back(cfg, "LLMWRAP_CA_DER", "OpenSSL contexts are left unchanged");
    }

    cfg->tls_hook = knob(cfg, envp, "LLMWRAP_TLS_HOOK", true, true,
                         "the SSL_new hook stays on (it takes 0 or 1)");
    cfg->fail_open = knob(cfg, envp, "LLMWRAP_FAIL_OPEN", false, false,
                          "an unreachable collector fails connections (it takes 0 or 1)");
    cfg->attrib_required = knob(cfg, envp, "LLMWRAP_ATTRIB_REQUIRED", false, true,
                                "unattributed connections are refused (it takes 0 or 1)");
    cfg->propagate = knob(cfg, envp, "LLMWRAP_PROPAGATE", true, true,
                          "programs this one runs are covered too (it takes 0 or 1)");

    v = lw_shim_env_get(envp, "LLMWRAP_PRELOAD");
    if (v != NULL && *v != '\0') {
        size_t len = strlen(v);
        if (v[0] != '/' || len >= sizeof cfg->preload)
            fall_back(cfg, "LLMWRAP_PRELOAD", "using the shim's own path");
        else
            memcpy(cfg->preload, v, len + 1);
    }

    v = lw_shim_env_get(envp, "LLMWRAP_TEST_REAL_ADDR");
    if (v != NULL && *v != '\0') {
        cfg->has_test_real_addr = parse_ipv4_port(v, &cfg->test_real_addr);
        if (!cfg->has_test_real_addr)
            fall_back(cfg, "LLMWRAP_TEST_REAL_ADDR", "ignored");
    }

    /* Published last: until here the tables matched nothing. */
    cfg->listen = listen;
    cfg->net.base = base;
    return LW_SHIM_ACTIVE;
}

const char *const lw_shim_user_knobs[] = {"LLMWRAP_TLS_HOOK", "LLMWRAP_PROPAGATE",
                                          "LLMWRAP_TEST_REAL_ADDR", NULL};

bool lw_shim_knob_valid(const char *name, const char *value, const char **ret_expected)
{
    if (strcmp(name, "LLMWRAP_TEST_REAL_ADDR") == 0) {
        struct sockaddr_in sin;
        *ret_expected = "IPv4:PORT";
        return *value == '\0' || parse_ipv4_port(value, &sin);
    }
    bool b;
    *ret_expected = "0 or 1";
    return parse_bool(value, true, &b);
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long lw_shim_base64_decode(const char *in, uint8_t *out, size_t cap)
{
    size_t len = strlen(in);
    size_t padded = len;
    if (len >= 1 && in[len - 1] == '=')
        len--;
    if (len >= 1 && in[len - 1] == '=')
        len--;
    if (len % 4 == 1 || (padded != len && padded % 4 != 0))
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits must be zero, or the input was not canonical base64. */
    if ((acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)o;
}
