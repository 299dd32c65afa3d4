/* core-env.c - reading the shim's configuration from an environment block.
 *
 * Strict parsing: llmwrap writes these values, so anything unexpected means
 * a version mismatch or a bug, and the shim goes inert rather than guess.
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

static bool parse_test_real_addr(LwShimConfig *cfg, const char *s)
{
    const char *colon = strrchr(s, ':');
    char ip[INET_ADDRSTRLEN];
    uint64_t port;
    if (colon == NULL || (size_t)(colon - s) >= sizeof ip)
        return false;
    memcpy(ip, s, (size_t)(colon - s));
    ip[colon - s] = '\0';
    memset(&cfg->test_real_addr, 0, sizeof cfg->test_real_addr);
    if (inet_pton(AF_INET, ip, &cfg->test_real_addr.sin_addr) != 1 ||
        !parse_decimal(colon + 1, 65535, &port) || port == 0)
        return false;
    cfg->test_real_addr.sin_family = AF_INET;
    cfg->test_real_addr.sin_port = htons((uint16_t)port);
    cfg->has_test_real_addr = true;
    return true;
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
    if (v != NULL && *v != '\0' && (!parse_decimal(v, 254, &n) || n == 0))
        return malformed(cfg, "LLMWRAP_NET", ret_bad_var);
    uint32_t base = (127u << 24) | ((uint32_t)n << 16);

    v = lw_shim_env_get(envp, "LLMWRAP_PORT");
    if (v == NULL || !parse_decimal(v, 65535, &n) || n == 0)
        return malformed(cfg, "LLMWRAP_PORT", ret_bad_var);
    cfg->port = (uint16_t)n;

    v = lw_shim_env_get(envp, "LLMWRAP_RUN_ID");
    if (v != NULL && *v != '\0' && !parse_decimal(v, UINT64_MAX, &cfg->run_id))
        return malformed(cfg, "LLMWRAP_RUN_ID", ret_bad_var);

    v = lw_shim_env_get(envp, "LLMWRAP_ATTRIB_SOCK");
    if (v != NULL && *v != '\0') {
        size_t len = strlen(v);
        if (v[0] != '/' || len >= sizeof cfg->attrib_addr.sun_path)
            return malformed(cfg, "LLMWRAP_ATTRIB_SOCK", ret_bad_var);
        cfg->attrib_addr.sun_family = AF_UNIX;
        memcpy(cfg->attrib_addr.sun_path, v, len + 1);
        cfg->attrib_addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
        cfg->has_attrib = true;
    }

    v = lw_shim_env_get(envp, "LLMWRAP_CA_DER");
    if (v != NULL && *v != '\0') {
        long len = lw_shim_base64_decode(v, cfg->ca_der, sizeof cfg->ca_der);
        if (len <= 0)
            return malformed(cfg, "LLMWRAP_CA_DER", ret_bad_var);
        cfg->ca_der_len = (size_t)len;
    }

    if (!parse_bool(lw_shim_env_get(envp, "LLMWRAP_TLS_HOOK"), true, &cfg->tls_hook))
        return malformed(cfg, "LLMWRAP_TLS_HOOK", ret_bad_var);
    if (!parse_bool(lw_shim_env_get(envp, "LLMWRAP_FAIL_OPEN"), false, &cfg->fail_open))
        return malformed(cfg, "LLMWRAP_FAIL_OPEN", ret_bad_var);
    if (!parse_bool(lw_shim_env_get(envp, "LLMWRAP_ATTRIB_REQUIRED"), false,
                    &cfg->attrib_required))
        return malformed(cfg, "LLMWRAP_ATTRIB_REQUIRED", ret_bad_var);
    if (!parse_bool(lw_shim_env_get(envp, "LLMWRAP_PROPAGATE"), true, &cfg->propagate))
        return malformed(cfg, "LLMWRAP_PROPAGATE", ret_bad_var);

    v = lw_shim_env_get(envp, "LLMWRAP_PRELOAD");
    if (v != NULL && *v != '\0') {
        size_t len = strlen(v);
        if (v[0] != '/' || len >= sizeof cfg->preload)
            return malformed(cfg, "LLMWRAP_PRELOAD", ret_bad_var);
        memcpy(cfg->preload, v, len + 1);
    }

    v = lw_shim_env_get(envp, "LLMWRAP_TEST_REAL_ADDR");
    if (v != NULL && *v != '\0' && !parse_test_real_addr(cfg, v))
        return malformed(cfg, "LLMWRAP_TEST_REAL_ADDR", ret_bad_var);

    /* Published last: until here the table matched nothing. */
    cfg->net.base = base;
    return LW_SHIM_ACTIVE;
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
