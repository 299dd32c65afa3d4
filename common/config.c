/* config.c - config.ini: loading, validation, defaults.
 *
 * GLib's key file parser does not report line numbers, so the file is first
 * scanned here line by line: syntax, duplicate keys and unknown groups or
 * keys are caught with their line. GKeyFile then does the value parsing,
 * and every value error is reported at the line of its key.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/socket.h>

#include "budget-def.h"
#include "paths.h"

G_DEFINE_QUARK(lw-config-error-quark, lw_config_error)

/* ---- schema ---- */

static const char *const collector_keys[] = {
    "listen", "synthetic_net", "port", "max_body", "max_head", "max_headers",
    "max_connections", "idle_timeout", "header_timeout", "drain_timeout", "log_level",
    "release_memory_after", "log_max_size", NULL,
};
static const char *const upstream_keys[] = {
    "ca_file", "proxy", "connect_timeout", "first_byte_timeout", "stall_timeout", "http2", NULL,
};
static const char *const budget_keys[] = {"clamp_floor", NULL};
static const char *const provider_keys[] = {"host", "upstream", "format", NULL};
static const char *const guard_keys[] = {"type", "threshold", "window", "action", NULL};
static const char *const price_keys[] = {
    "input", "output", "cached_input", "cache_write", "cache_write_1h", NULL,
};

typedef struct {
    const char *name;   /* exact group name, or prefix when is_prefix */
    gboolean is_prefix; /* "provider." + NAME */
    const char *const *keys;
} GroupSchema;

static const GroupSchema schema[] = {
    {"collector", FALSE, collector_keys},
    {"upstream", FALSE, upstream_keys},
    {"budget", FALSE, budget_keys},
    {"provider.", TRUE, provider_keys},
    {"price.", TRUE, price_keys},
    {"guard.", TRUE, guard_keys},
};

static const GroupSchema *schema_for_group(const char *group)
{
    for (guint i = 0; i < G_N_ELEMENTS(schema); i++) {
        if (schema[i].is_prefix) {
            if (g_str_has_prefix(group, schema[i].name) && group[strlen(schema[i].name)] != '\0')
                return &schema[i];
        } else if (strcmp(group, schema[i].name) == 0) {
            return &schema[i];
        }
    }
    return NULL;
}

static gboolean key_known(const GroupSchema *gs, const char *key)
{
    return g_strv_contains((const char *const *)gs->keys, key);
}

/* ---- line-aware scan ---- */

/* Where each (group, key) was defined, so value errors can name a line. */
typedef struct {
    GHashTable *lines; /* "group\x1fkey" -> line (GUINT_TO_POINTER) */
} LineIndex;

static char *line_key(const char *group, const char *key)
{
    return g_strconcat(group, "\x1f", key ? key : "", NULL);
}

/* Line of `key` in `group`, or of the group header when the key is absent
 * (an error about a missing key points at its group). */
static guint line_of(const LineIndex *idx, const char *group, const char *key)
{
    g_autofree char *k = line_key(group, key);
    guint line = GPOINTER_TO_UINT(g_hash_table_lookup(idx->lines, k));
    if (line == 0 && key != NULL)
        return line_of(idx, group, NULL);
    return line;
}

static gboolean scan_error(GError **error, gint code, const char *path, guint line,
                           const char *fmt, ...) G_GNUC_PRINTF(5, 6);

static gboolean scan_error(GError **error, gint code, const char *path, guint line,
                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, LW_CONFIG_ERROR, code, "%s:%u: %s", path, line, msg);
    return FALSE;
}

static gboolean scan_text(const char *path, const char *text, LineIndex *idx, GError **error)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_autofree char *group = NULL;
    const GroupSchema *gs = NULL;

    for (guint n = 0; lines[n] != NULL; n++) {
        guint lineno = n + 1;
        char *line = g_strstrip(lines[n]);
        if (line[0] == '\0' || line[0] == '#')
            continue;
        if (line[0] == '[') {
            char *end = strchr(line, ']');
            if (end == NULL || end[1] != '\0' || end == line + 1)
                return scan_error(error, LW_CONFIG_ERROR_SYNTAX, path, lineno,
                                  "malformed group header '%s'", line);
            g_free(group);
            group = g_strndup(line + 1, (gsize)(end - line - 1));
            gs = schema_for_group(group);
            if (gs == NULL)
                return scan_error(error, LW_CONFIG_ERROR_UNKNOWN_GROUP, path, lineno,
                                  "unknown group [%s] (known: [collector], [upstream], [budget], "
                                  "[provider.NAME], [price.MODEL], [guard.NAME])",
                                  group);
            g_autofree char *k = line_key(group, NULL);
            if (g_hash_table_contains(idx->lines, k))
                return scan_error(error, LW_CONFIG_ERROR_SYNTAX, path, lineno,
                                  "group [%s] appears twice", group);
            g_hash_table_insert(idx->lines, g_steal_pointer(&k), GUINT_TO_POINTER(lineno));
            continue;
        }
        char *eq = strchr(line, '=');
        if (eq == NULL)
            return scan_error(error, LW_CONFIG_ERROR_SYNTAX, path, lineno,
                              "'%s' is not 'key = value', a [group] or a # comment", line);
        if (group == NULL)
            return scan_error(error, LW_CONFIG_ERROR_SYNTAX, path, lineno,
                              "key outside of any [group]");
        g_autofree char *key = g_strstrip(g_strndup(line, (gsize)(eq - line)));
        if (!key_known(gs, key)) {
            g_autofree char *known = g_strjoinv(", ", (char **)gs->keys);
            return scan_error(error, LW_CONFIG_ERROR_UNKNOWN_KEY, path, lineno,
                              "unknown key '%s' in [%s] (known: %s)", key, group, known);
        }
        g_autofree char *k = line_key(group, key);
        if (g_hash_table_contains(idx->lines, k))
            return scan_error(error, LW_CONFIG_ERROR_SYNTAX, path, lineno,
                              "key '%s' in [%s] appears twice", key, group);
        g_hash_table_insert(idx->lines, g_steal_pointer(&k), GUINT_TO_POINTER(lineno));
    }
    return TRUE;
}

/* ---- value parsers ---- */

/* What libcurl takes as CURLOPT_PROXY, checked here so that a typo is an
 * error at load time rather than a 502 on every request. */
static gboolean is_proxy_url(const char *s)
{
    static const char *const schemes[] = {"http", "https", "socks4", "socks4a", "socks5",
                                          "socks5h"};
    GUri *uri = g_uri_parse(s, G_URI_FLAGS_NONE, NULL);
    if (uri == NULL)
        return FALSE;
    gboolean ok = FALSE;
    for (guint i = 0; i < G_N_ELEMENTS(schemes); i++)
        ok = ok || g_ascii_strcasecmp(g_uri_get_scheme(uri), schemes[i]) == 0;
    const char *host = g_uri_get_host(uri);
    ok = ok && host != NULL && host[0] != '\0' && g_uri_get_port(uri) != 0;
    g_uri_unref(uri);
    return ok;
}

gboolean lw_config_parse_duration_ms(const char *s, guint *ret_ms)
{
    char *end = NULL;
    /* Digits: strtod would also take "nan", "inf" and hex. */
    if (!g_ascii_isdigit(s[0]) && !(s[0] == '.' && g_ascii_isdigit(s[1])))
        return FALSE;
    errno = 0;
    double v = g_ascii_strtod(s, &end);
    if (end == s || errno != 0 || !isfinite(v) || v < 0 || g_ascii_strncasecmp(s, "0x", 2) == 0)
        return FALSE;
    while (*end == ' ')
        end++;
    double mult;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return FALSE;
    double ms = v * mult;
    /* The timers count whole milliseconds: a positive value below one would
     * silently become 0, a different setting. */
    if (ms > (double)G_MAXUINT || (ms > 0 && ms < 1))
        return FALSE;
    *ret_ms = (guint)ms;
    return TRUE;
}

gboolean lw_config_parse_size(const char *s, guint64 *ret_bytes)
{
    char *end = NULL;
    if (!g_ascii_isdigit(s[0]))
        return FALSE;
    errno = 0;
    guint64 v = g_ascii_strtoull(s, &end, 10);
    if (errno != 0)
        return FALSE;
    while (*end == ' ')
        end++;
    guint64 mult;
    if (*end == '\0' || strcmp(end, "B") == 0)
        mult = 1;
    else if (g_ascii_strcasecmp(end, "k") == 0 || strcmp(end, "KiB") == 0 ||
             strcmp(end, "KB") == 0)
        mult = 1024;
    else if (strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0 || strcmp(end, "MB") == 0)
        mult = 1024 * 1024;
    else if (strcmp(end, "G") == 0 || strcmp(end, "GiB") == 0 || strcmp(end, "GB") == 0)
        mult = 1024 * 1024 * 1024;
    else
        return FALSE;
    if (v > G_MAXUINT64 / mult)
        return FALSE;
    *ret_bytes = v * mult;
    return TRUE;
}

gboolean lw_config_parse_micro_usd(const char *s, gint64 *ret_micro)
{
    const gint64 limit = G_GINT64_CONSTANT(1000000000000); /* 1M USD per 1M tokens */
    gint64 whole = 0, frac = 0;
    int frac_digits = 0;
    const char *p = s;
    if (!g_ascii_isdigit(*p))
        return FALSE;
    while (g_ascii_isdigit(*p)) {
        whole = whole * 10 + (*p - '0');
        if (whole > limit)
            return FALSE;
        p++;
    }
    if (*p == '.') {
        p++;
        if (!g_ascii_isdigit(*p))
            return FALSE;
        while (g_ascii_isdigit(*p)) {
            if (++frac_digits > 6)
                return FALSE;
            frac = frac * 10 + (*p - '0');
            p++;
        }
    }
    if (*p != '\0')
        return FALSE;
    for (int i = frac_digits; i < 6; i++)
        frac *= 10;
    *ret_micro = whole * 1000000 + frac;
    return TRUE;
}

guint lw_config_count_pem_certificates(const char *pem, gsize len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)MIN(len, (gsize)G_MAXINT));
    guint n = 0;
    X509 *x;
    while (bio != NULL && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        X509_free(x);
        n++;
    }
    ERR_clear_error(); /* the loop ends on a "no start line" error */
    BIO_free(bio);
    return n;
}

gboolean lw_config_parse_listen(const char *s, struct sockaddr_storage *ret_addr,
                                unsigned int *ret_len)
{
    g_autofree char *host = NULL;
    const char *port_str;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':')
            return FALSE;
        host = g_strndup(s + 1, (gsize)(close - s - 1));
        port_str = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (colon == NULL)
            return FALSE;
        host = g_strndup(s, (gsize)(colon - s));
        port_str = colon + 1;
    }
    char *end = NULL;
    if (!g_ascii_isdigit(port_str[0]))
        return FALSE;
    guint64 port = g_ascii_strtoull(port_str, &end, 10);
    if (*end != '\0' || port > 65535)
        return FALSE;

    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (strcmp(host, "localhost") == 0)
        g_free(g_steal_pointer(&host)), host = g_strdup("127.0.0.1");
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((guint16)port);
        *ret_len = sizeof *sin;
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((guint16)port);
        *ret_len = sizeof *sin6;
    } else {
        return FALSE;
    }
    *ret_addr = ss;
    return TRUE;
}

/* ---- loading ---- */

typedef struct {
    const char *path;
    GKeyFile *kf;
    LineIndex *idx;
} Loader;

static gboolean bad_value(Loader *l, const char *group, const char *key, const char *value,
                          const char *expect, GError **error)
{
    g_set_error(error, LW_CONFIG_ERROR, LW_CONFIG_ERROR_BAD_VALUE,
                "%s:%u: bad value '%s' for key '%s' in [%s]: expected %s", l->path,
                line_of(l->idx, group, key), value, key, group, expect);
    return FALSE;
}

/* Reads a string value; *ret untouched when the key is absent. */
static gboolean get_string(Loader *l, const char *group, const char *key, char **ret,
                           GError **error)
{
    if (!g_key_file_has_key(l->kf, group, key, NULL))
        return TRUE;
    g_autoptr(GError) local = NULL;
    char *v = g_key_file_get_string(l->kf, group, key, &local);
    if (v == NULL) {
        g_set_error(error, LW_CONFIG_ERROR, LW_CONFIG_ERROR_BAD_VALUE,
                    "%s:%u: bad value for key '%s' in [%s]: %s", l->path,
                    line_of(l->idx, group, key), key, group, local->message);
        return FALSE;
    }
    g_strstrip(v);
    g_free(*ret);
    *ret = v;
    return TRUE;
}

static gboolean get_uint(Loader *l, const char *group, const char *key, guint64 min, guint64 max,
                         guint64 *ret, GError **error)
{
    g_autofree char *v = NULL;
    if (!get_string(l, group, key, &v, error))
        return FALSE;
    if (v == NULL)
        return TRUE;
    char *end = NULL;
    errno = 0;
    guint64 n = g_ascii_strtoull(v, &end, 10);
    if (!g_ascii_isdigit(v[0]) || *end != '\0' || errno != 0 || n < min || n > max) {
        g_autofree char *expect =
            g_strdup_printf("an integer from %" G_GUINT64_FORMAT " to %" G_GUINT64_FORMAT, min,
                            max);
        return bad_value(l, group, key, v, expect, error);
    }
    *ret = n;
    return TRUE;
}

/* Zero is refused unless `zero_means` says what it means for this key:
 * a timer of 0 fires at once (every request times out), and libcurl reads
 * a connect timeout of 0 as its default. */
static gboolean get_duration(Loader *l, const char *group, const char *key, const char *zero_means,
                             guint *ret, GError **error)
{
    g_autofree char *v = NULL;
    if (!get_string(l, group, key, &v, error))
        return FALSE;
    if (v == NULL)
        return TRUE;
    guint ms;
    if (!lw_config_parse_duration_ms(v, &ms) || (ms == 0 && zero_means == NULL)) {
        g_autofree char *expect = g_strdup_printf(
            "a duration of at least 1ms such as 500ms, 15s, 2m%s%s",
            zero_means != NULL ? ", or 0 to " : "", zero_means != NULL ? zero_means : "");
        return bad_value(l, group, key, v, expect, error);
    }
    *ret = ms;
    return TRUE;
}

/* A size above zero: no size key gives 0 a meaning. */
static gboolean get_size(Loader *l, const char *group, const char *key, guint64 *ret,
                         GError **error)
{
    g_autofree char *v = NULL;
    if (!get_string(l, group, key, &v, error))
        return FALSE;
    if (v == NULL)
        return TRUE;
    guint64 bytes;
    if (!lw_config_parse_size(v, &bytes) || bytes == 0)
        return bad_value(l, group, key, v, "a size above zero such as 65536, 64KiB, 32MiB", error);
    *ret = bytes;
    return TRUE;
}

static gboolean get_bool(Loader *l, const char *group, const char *key, gboolean *ret,
                         GError **error)
{
    g_autofree char *v = NULL;
    if (!get_string(l, group, key, &v, error))
        return FALSE;
    if (v == NULL)
        return TRUE;
    if (g_ascii_strcasecmp(v, "true") == 0 || g_ascii_strcasecmp(v, "yes") == 0 ||
        strcmp(v, "1") == 0)
        *ret = TRUE;
    else if (g_ascii_strcasecmp(v, "false") == 0 || g_ascii_strcasecmp(v, "no") == 0 ||
             strcmp(v, "0") == 0)
        *ret = FALSE;
    else
        return bad_value(l, group, key, v, "true or false", error);
    return TRUE;
}

static gboolean get_price(Loader *l, const char *group, const char *key, gint64 *ret,
                          GError **error)
{
    g_autofree char *v = NULL;
    if (!get_string(l, group, key, &v, error))
        return FALSE;
    if (v != NULL && !lw_config_parse_micro_usd(v, ret))
        return bad_value(l, group, key, v,
                         "a price in USD per 1M tokens such as 0.15 (at most 6 decimals)", error);
    return TRUE;
}

static void price_override_free(gpointer p)
{
    LwPriceOverride *o = p;
    g_free(o->model);
    g_free(o);
}

LwConfig *lw_config_new_default(void)
{
    LwConfig *c = g_new0(LwConfig, 1);
    c->listen = g_new0(char *, 2);
    c->listen[0] = g_strdup("127.0.0.1:0");
    c->synthetic_net = 241;
    c->port = 0;
    c->max_body = 32 * 1024 * 1024;
    c->max_head = 64 * 1024;
    c->max_headers = 128;
    c->max_connections = 4096;
    c->idle_timeout_ms = 75 * 1000;
    c->header_timeout_ms = 15 * 1000;
    c->drain_timeout_ms = 30 * 1000;
    c->release_memory_after_ms = 250;
    c->log_max_size = 10 * 1024 * 1024;
    c->log_level = g_strdup("info");
    c->clamp_floor = 64;
    c->connect_timeout_ms = 10 * 1000;
    c->first_byte_timeout_ms = 600 * 1000;
    c->stall_timeout_ms = 600 * 1000;
    c->http2 = TRUE;
    c->providers = lw_provider_table_new();
    c->price_overrides = g_ptr_array_new_with_free_func(price_override_free);
    c->guards = g_ptr_array_new_with_free_func((GDestroyNotify)lw_guard_def_free);
    return c;
}

void lw_config_free(LwConfig *c)
{
    if (c == NULL)
        return;
    g_free(c->path);
    g_strfreev(c->listen);
    g_free(c->log_level);
    g_free(c->ca_file);
    g_free(c->proxy);
    lw_provider_table_free(c->providers);
    if (c->price_overrides != NULL)
        g_ptr_array_unref(c->price_overrides);
    if (c->guards != NULL)
        g_ptr_array_unref(c->guards);
    g_free(c);
}

/* Whether two listen addresses cannot both be bound: the same family and
 * port, and the same address or either the wildcard (the collector's
 * listeners are in LISTEN state, which SO_REUSEADDR does not share). Port 0
 * is a fresh port each time, so never a clash. */
static gboolean listen_clash(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return FALSE;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port != 0 && x->sin_port == y->sin_port &&
               (x->sin_addr.s_addr == y->sin_addr.s_addr ||
                x->sin_addr.s_addr == htonl(INADDR_ANY) || y->sin_addr.s_addr == htonl(INADDR_ANY));
    }
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port != 0 && x->sin6_port == y->sin6_port &&
           (IN6_ARE_ADDR_EQUAL(&x->sin6_addr, &y->sin6_addr) ||
            IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr));
}

/* Whether `addr` takes `port` on a synthetic address 127.`net`.0.n, or on
 * the IPv4 wildcard. Any n: which slots are taken depends on the providers. */
static gboolean is_synthetic_clash(const struct sockaddr_storage *addr, guint8 net, guint16 port)
{
    if (addr->ss_family != AF_INET)
        return FALSE;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
    guint32 a = ntohl(sin->sin_addr.s_addr);
    return ntohs(sin->sin_port) == port &&
           (a == INADDR_ANY || a >> 8 == (127u << 16 | (guint32)net << 8));
}

/* The collector binds the synthetic listeners (127.X.0.slot on `port`),
 * then every listen address: one it could not bind after them would stop
 * it at start, where --check-config said OK. Checked here instead. */
static gboolean check_listen_clashes(Loader *l, const LwConfig *c, GError **error)
{
    guint n = g_strv_length(c->listen);
    g_autofree struct sockaddr_storage *addrs = g_new0(struct sockaddr_storage, MAX(n, 1));
    for (guint i = 0; i < n; i++) {
        unsigned int len;
        if (!lw_config_parse_listen(c->listen[i], &addrs[i], &len))
            return bad_value(l, "collector", "listen", c->listen[i],
                             "ADDRESS:PORT such as 127.0.0.1:0 or [::1]:8080, comma-separated, "
                             "or 'none'",
                             error);
        for (guint j = 0; j < i; j++) {
            if (listen_clash(&addrs[j], &addrs[i])) {
                g_set_error(error, LW_CONFIG_ERROR, LW_CONFIG_ERROR_BAD_VALUE,
                            "%s:%u: bad value for key 'listen' in [collector]: '%s' and '%s' "
                            "cannot both be listened on (the same port, on the same address or "
                            "the wildcard)",
                            l->path, line_of(l->idx, "collector", "listen"), c->listen[j],
                            c->listen[i]);
                return FALSE;
            }
        }
        if (c->port != 0 && is_synthetic_clash(&addrs[i], c->synthetic_net, c->port)) {
            g_set_error(error, LW_CONFIG_ERROR, LW_CONFIG_ERROR_BAD_VALUE,
                        "%s:%u: bad value for key 'listen' in [collector]: '%s' takes port %u of "
                        "the synthetic listeners on 127.%u.0.x ([collector] port)",
                        l->path, line_of(l->idx, "collector", "listen"), c->listen[i], c->port,
                        c->synthetic_net);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean load_collector(Loader *l, LwConfig *c, GError **error)
{
    const char *g = "collector";
    if (!g_key_file_has_group(l->kf, g))
        return TRUE;
    g_autofree char *listen = NULL;
    if (!get_string(l, g, "listen", &listen, error))
        return FALSE;
    if (listen != NULL) {
        g_strfreev(c->listen);
        if (listen[0] == '\0' || strcmp(listen, "none") == 0) {
            c->listen = g_new0(char *, 1);
        } else {
            c->listen = g_strsplit(listen, ",", -1);
            for (guint i = 0; c->listen[i] != NULL; i++)
                g_strstrip(c->listen[i]);
        }
    }
    guint64 v;
    v = c->synthetic_net;
    if (!get_uint(l, g, "synthetic_net", 1, 254, &v, error))
        return FALSE;
    c->synthetic_net = (guint8)v;
    v = c->port;
    if (!get_uint(l, g, "port", 0, 65535, &v, error))
        return FALSE;
    c->port = (guint16)v;
    if (!check_listen_clashes(l, c, error))
        return FALSE;
    if (!get_size(l, g, "max_body", &c->max_body, error))
        return FALSE;
    g_autofree char *log_max = NULL;
    if (!get_string(l, g, "log_max_size", &log_max, error))
        return FALSE;
    if (g_strcmp0(log_max, "0") == 0) /* never rotate */
        c->log_max_size = 0;
    else if (!get_size(l, g, "log_max_size", &c->log_max_size, error))
        return FALSE;
    v = c->max_head;
    if (!get_size(l, g, "max_head", &v, error))
        return FALSE;
    if (v < 1024 || v > 1024 * 1024)
        return bad_value(l, g, "max_head", "(out of range)", "a size from 1KiB to 1MiB", error);
    c->max_head = (guint)v;
    v = c->max_headers;
    if (!get_uint(l, g, "max_headers", 8, 1024, &v, error))
        return FALSE;
    c->max_headers = (guint)v;
    v = c->max_connections;
    if (!get_uint(l, g, "max_connections", 1, 1000000, &v, error))
        return FALSE;
    c->max_connections = (guint)v;
    if (!get_duration(l, g, "idle_timeout", NULL, &c->idle_timeout_ms, error) ||
        !get_duration(l, g, "header_timeout", NULL, &c->header_timeout_ms, error) ||
        !get_duration(l, g, "drain_timeout", NULL, &c->drain_timeout_ms, error) ||
        !get_duration(l, g, "release_memory_after", "never return it", &c->release_memory_after_ms,
                      error))
        return FALSE;
    if (!get_string(l, g, "log_level", &c->log_level, error))
        return FALSE;
    const char *const levels[] = {"debug", "info", "warning", NULL};
    if (!g_strv_contains(levels, c->log_level))
        return bad_value(l, g, "log_level", c->log_level, "debug, info or warning", error);
    return TRUE;
}

static gboolean load_upstream(Loader *l, LwConfig *c, GError **error)
{
    const char *g = "upstream";
    if (!g_key_file_has_group(l->kf, g))
        return TRUE;
    if (!get_string(l, g, "ca_file", &c->ca_file, error))
        return FALSE;
    if (c->ca_file != NULL) {
        if (c->ca_file[0] == '\0') {
            g_clear_pointer(&c->ca_file, g_free);
        } else {
            if (!g_path_is_absolute(c->ca_file)) {
                g_autofree char *dir = g_path_get_dirname(l->path);
                char *abs = g_build_filename(dir, c->ca_file, NULL);
                g_free(c->ca_file);
                c->ca_file = abs;
            }
            /* What the upstream will read, checked as it will: a directory
             * or a file of no certificate would stop the collector at start. */
            g_autofree char *pem = NULL;
            gsize len = 0;
            if (!g_file_test(c->ca_file, G_FILE_TEST_IS_REGULAR) ||
                !g_file_get_contents(c->ca_file, &pem, &len, NULL))
                return bad_value(l, g, "ca_file", c->ca_file, "a readable PEM file", error);
            if (lw_config_count_pem_certificates(pem, len) == 0)
                return bad_value(l, g, "ca_file", c->ca_file,
                                 "a PEM file of certificates (it holds none)", error);
        }
    }
    if (!get_string(l, g, "proxy", &c->proxy, error))
        return FALSE;
    if (c->proxy != NULL && c->proxy[0] == '\0')
        g_clear_pointer(&c->proxy, g_free);
    if (c->proxy != NULL && !is_proxy_url(c->proxy))
        return bad_value(l, g, "proxy", c->proxy,
                         "a proxy URL: http://, https://, socks4://, socks4a://, socks5:// or "
                         "socks5h://, a host and a port in 1-65535",
                         error);
    if (!get_duration(l, g, "connect_timeout", NULL, &c->connect_timeout_ms, error) ||
        !get_duration(l, g, "first_byte_timeout", NULL, &c->first_byte_timeout_ms, error) ||
        !get_duration(l, g, "stall_timeout", NULL, &c->stall_timeout_ms, error) ||
        !get_bool(l, g, "http2", &c->http2, error))
        return FALSE;
    return TRUE;
}

static gboolean load_budget(Loader *l, LwConfig *c, GError **error)
{
    const char *g = "budget";
    if (!g_key_file_has_group(l->kf, g))
        return TRUE;
    guint64 v = c->clamp_floor;
    if (!get_uint(l, g, "clamp_floor", 1, 1000000, &v, error))
        return FALSE;
    c->clamp_floor = (guint)v;
    return TRUE;
}

static gboolean valid_provider_name(const char *name)
{
    if (name[0] == '\0' || strlen(name) > 64)
        return FALSE;
    for (const char *p = name; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_')
            return FALSE;
    }
    return TRUE;
}

static gboolean load_provider(Loader *l, LwConfig *c, const char *group, GError **error)
{
    const char *name = group + strlen("provider.");
    if (!valid_provider_name(name)) {
        g_set_error(error, LW_CONFIG_ERROR, LW_CONFIG_ERROR_BAD_VALUE,
                    "%s:%u: bad provider name in [%s]: use letters, digits, '-' and '_'",
                    l->path, line_of(l->idx, group, NULL), group);
        return FALSE;
    }
    g_autofree char *host = NULL, *upstream = NULL, *format_str = NULL;
    if (!get_string(l, group, "host", &host, error) ||
        !get_string(l, group, "upstream", &upstream, error) ||
        !get_string(l, group, "format", &format_str, error))
        return FALSE;
    LwFormat format;
    if (format_str != NULL && !lw_format_from_string(format_str, &format))
        return bad_value(l, group, "format", format_str, "openai, anthropic or gemini", error);

    g_autoptr(GError) local = NULL;
    if (!lw_provider_table_set(c->providers, name, host, upstream,
                               format_str != NULL ? &format : NULL, &local)) {
        const char *key = upstream != NULL && strstr(local->message, "URL") ? "upstream" : "host";
        g_set_error(error, LW_CONFIG_ERROR, LW_CONFIG_ERROR_BAD_VALUE, "%s:%u: [%s] %s: %s",
                    l->path, line_of(l->idx, group, key), group, key, local->message);
        return FALSE;
    }
    return TRUE;
}

static gboolean load_price(Loader *l, LwConfig *c, const char *group, GError **error)
{
    LwPriceOverride *o = g_new0(LwPriceOverride, 1);
    o->model = g_strdup(group + strlen("price."));
    o->input = o->output = o->cached_input = o->cache_write = o->cache_write_1h = -1;
    o->line = line_of(l->idx, group, NULL);
    g_ptr_array_add(c->price_overrides, o);
    /* Keys not given keep the table's values; a model the table lacks
     * needs 'input' and 'output', which only the table can tell. */
    return get_price(l, group, "input", &o->input, error) &&
           get_price(l, group, "output", &o->output, error) &&
           get_price(l, group, "cached_input", &o->cached_input, error) &&
           get_price(l, group, "cache_write", &o->cache_write, error) &&
           get_price(l, group, "cache_write_1h", &o->cache_write_1h, error);
}

/* Parses a guard threshold in the unit of its kind (budget-def.h). */
static gboolean parse_guard_threshold(LwGuardKind kind, const char *v, gint64 *ret)
{
    switch (kind) {
    case LW_GUARD_SPEND_RATE:
        return lw_usd_parse(v, ret) && *ret > 0;
    case LW_GUARD_GROWTH: {
        /* A factor with up to 3 decimals, kept x1000. */
        gint64 micro;
        if (!lw_config_parse_micro_usd(v, &micro) || micro % 1000 != 0 || micro <= 1000000)
            return FALSE;
        *ret = micro / 1000;
        return TRUE;
    }
    default: {
        char *end = NULL;
        guint64 n = g_ascii_strtoull(v, &end, 10);
        if (!g_ascii_isdigit(v[0]) || *end != '\0' || n == 0 || n > G_MAXINT32)
            return FALSE;
        *ret = (gint64)n;
        return TRUE;
    }
    }
}

static gboolean load_guard(Loader *l, LwConfig *c, const char *group, GError **error)
{
    const char *name = group + strlen("guard.");
    if (!lw_budget_name_is_valid(name)) {
        g_set_error(error, LW_CONFIG_ERROR, LW_CONFIG_ERROR_BAD_VALUE,
                    "%s:%u: bad guard name in [%s]: use letters, digits, '.', '-' and '_'",
                    l->path, line_of(l->idx, group, NULL), group);
        return FALSE;
    }
    g_autofree char *type = NULL, *threshold = NULL, *action = NULL;
    if (!get_string(l, group, "type", &type, error) ||
        !get_string(l, group, "threshold", &threshold, error) ||
        !get_string(l, group, "action", &action, error))
        return FALSE;
    LwGuardDef *g = g_new0(LwGuardDef, 1);
    g->name = g_strdup(name);
    g->from_config = TRUE;
    g->window_ms = 60000;
    g_ptr_array_add(c->guards, g);
    if (type == NULL || !lw_guard_kind_parse(type, &g->kind))
        return bad_value(l, group, "type", type != NULL ? type : "(missing)",
                         "loop, rate, spend-rate, size or growth", error);
    if (threshold == NULL || !parse_guard_threshold(g->kind, threshold, &g->threshold))
        return bad_value(l, group, "threshold", threshold != NULL ? threshold : "(missing)",
                         "a positive count (loop, rate), USD (spend-rate), tokens (size) or a "
                         "factor above 1 (growth)",
                         error);
    if (!get_duration(l, group, "window", NULL, &g->window_ms, error))
        return FALSE;
    if (action != NULL && strcmp(action, "warn") != 0 && strcmp(action, "block") != 0)
        return bad_value(l, group, "action", action, "warn or block", error);
    g->block = action == NULL || strcmp(action, "block") == 0;
    return TRUE;
}

LwConfig *lw_config_load(const char *path, GError **error)
{
    g_autoptr(LwPaths) paths = NULL;
    if (path == NULL) {
        paths = lw_paths_new();
        path = paths->config_file;
    }
    g_autoptr(LwConfig) c = lw_config_new_default();
    c->path = g_strdup(path);

    g_autofree char *text = NULL;
    gsize len = 0;
    g_autoptr(GError) local = NULL;
    if (!g_file_get_contents(path, &text, &len, &local)) {
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
            lw_provider_table_seal(c->providers);
            return g_steal_pointer(&c);
        }
        g_set_error(error, LW_CONFIG_ERROR, LW_CONFIG_ERROR_UNREADABLE, "%s:0: cannot read: %s",
                    path, local->message);
        return NULL;
    }
    if (!g_utf8_validate(text, (gssize)len, NULL) || memchr(text, '\0', len) != NULL) {
        g_set_error(error, LW_CONFIG_ERROR, LW_CONFIG_ERROR_SYNTAX,
                    "%s:0: not a UTF-8 text file", path);
        return NULL;
    }

    LineIndex idx = {g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL)};
    Loader l = {path, g_key_file_new(), &idx};
    gboolean ok = scan_text(path, text, &idx, error);
    if (ok && !g_key_file_load_from_data(l.kf, text, len, G_KEY_FILE_NONE, &local)) {
        g_set_error(error, LW_CONFIG_ERROR, LW_CONFIG_ERROR_SYNTAX, "%s:0: %s", path,
                    local->message);
        ok = FALSE;
    }
    if (ok)
        ok = load_collector(&l, c, error) && load_upstream(&l, c, error) &&
             load_budget(&l, c, error);
    if (ok) {
        g_auto(GStrv) groups = g_key_file_get_groups(l.kf, NULL);
        for (guint i = 0; ok && groups[i] != NULL; i++) {
            if (g_str_has_prefix(groups[i], "provider."))
                ok = load_provider(&l, c, groups[i], error);
            else if (g_str_has_prefix(groups[i], "price."))
                ok = load_price(&l, c, groups[i], error);
            else if (g_str_has_prefix(groups[i], "guard."))
                ok = load_guard(&l, c, groups[i], error);
        }
    }
    g_key_file_free(l.kf);
    g_hash_table_destroy(idx.lines);
    if (!ok)
        return NULL;
    lw_provider_table_seal(c->providers);
    return g_steal_pointer(&c);
}
