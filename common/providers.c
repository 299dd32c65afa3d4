/* providers.c - the provider table. */
#include "providers.h"

#include <arpa/inet.h>
#include <string.h>

G_DEFINE_QUARK(lw-provider-error-quark, lw_provider_error)

/* Slot order is part of the wire contract with the shim (127.X.0.slot):
 * append new built-ins at the end, never reorder. */
const LwBuiltinProvider lw_builtin_providers[LW_BUILTIN_PROVIDER_COUNT] = {
    {"openai", "api.openai.com", LW_FORMAT_OPENAI},
    {"anthropic", "api.anthropic.com", LW_FORMAT_ANTHROPIC},
    {"gemini", "generativelanguage.googleapis.com", LW_FORMAT_GEMINI},
    {"xai", "api.x.ai", LW_FORMAT_OPENAI},
    {"openrouter", "openrouter.ai", LW_FORMAT_OPENAI},
    {"deepseek", "api.deepseek.com", LW_FORMAT_OPENAI},
    {"groq", "api.groq.com", LW_FORMAT_OPENAI},
    {"mistral", "api.mistral.ai", LW_FORMAT_OPENAI},
    {"together", "api.together.xyz", LW_FORMAT_OPENAI},
    {"fireworks", "api.fireworks.ai", LW_FORMAT_OPENAI},
    {"perplexity", "api.perplexity.ai", LW_FORMAT_OPENAI},
};

struct _LwProviderTable {
    GPtrArray *providers; /* LwProvider*, slot order once sealed */
    gboolean sealed;
};

static const char *const format_names[] = {"openai", "anthropic", "gemini"};

gboolean lw_format_from_string(const char *s, LwFormat *ret_format)
{
    for (guint i = 0; i < G_N_ELEMENTS(format_names); i++) {
        if (g_strcmp0(s, format_names[i]) == 0) {
            *ret_format = (LwFormat)i;
            return TRUE;
        }
    }
    return FALSE;
}

const char *lw_format_to_string(LwFormat format)
{
    if ((guint)format < G_N_ELEMENTS(format_names))
        return format_names[format];
    return "unknown";
}

static void provider_free(gpointer p)
{
    LwProvider *provider = p;
    g_free(provider->name);
    g_free(provider->host);
    g_free(provider->upstream);
    g_free(provider);
}

LwProviderTable *lw_provider_table_new(void)
{
    LwProviderTable *table = g_new0(LwProviderTable, 1);
    table->providers = g_ptr_array_new_with_free_func(provider_free);
    for (guint i = 0; i < LW_BUILTIN_PROVIDER_COUNT; i++) {
        LwProvider *p = g_new0(LwProvider, 1);
        p->name = g_strdup(lw_builtin_providers[i].name);
        p->host = g_strdup(lw_builtin_providers[i].host);
        p->format = lw_builtin_providers[i].format;
        p->upstream = g_strdup_printf("https://%s", p->host);
        p->slot = i + 1;
        p->is_builtin = TRUE;
        g_ptr_array_add(table->providers, p);
    }
    return table;
}

void lw_provider_table_free(LwProviderTable *table)
{
    if (table == NULL)
        return;
    g_ptr_array_unref(table->providers);
    g_free(table);
}

/* Lowercases and strips one trailing dot. Returns NULL for a name that is
 * not a plausible DNS host name: labels of 1-63 letters, digits and '-',
 * neither starting nor ending with '-', and not an IP address. The CA's
 * name constraints take no other (collector/ca.c): refused here, such a
 * host is a config.ini error, not a collector that fails to start. */
static char *normalize_host(const char *host)
{
    size_t len = strlen(host);
    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len == 0 || len > LW_MAX_HOST_LEN)
        return NULL;
    size_t label = 0;
    for (size_t i = 0; i <= len; i++) {
        char c = i < len ? host[i] : '.';
        if (c == '.') {
            if (label == 0 || host[i - 1] == '-')
                return NULL;
            label = 0;
        } else if ((!g_ascii_isalnum(c) && c != '-') || (c == '-' && label == 0) || ++label > 63) {
            return NULL;
        }
    }
    char *out = g_ascii_strdown(host, (gssize)len);
    if (g_hostname_is_ip_address(out)) {
        g_free(out);
        return NULL;
    }
    return out;
}

/* Is the URL's host this machine: localhost, 127.0.0.0/8 or ::1? */
static gboolean host_is_loopback(const char *url)
{
    GUri *uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
    if (uri == NULL)
        return FALSE;
    const char *host = g_uri_get_host(uri);
    struct in_addr a4;
    struct in6_addr a6;
    gboolean loopback = g_ascii_strcasecmp(host, "localhost") == 0 ||
                        (inet_pton(AF_INET, host, &a4) == 1 && (ntohl(a4.s_addr) >> 24) == 127) ||
                        (inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6));
    g_uri_unref(uri);
    return loopback;
}

/* Accepts "https://authority[/prefix]" (http:// too, for a plain upstream
 * such as a local gateway). Strips one trailing '/'. */
static char *normalize_upstream(const char *url)
{
    const char *rest;
    if (g_str_has_prefix(url, "https://"))
        rest = url + 8;
    else if (g_str_has_prefix(url, "http://"))
        rest = url + 7;
    else
        return NULL;
    if (*rest == '\0' || *rest == '/' || strpbrk(url, " \t\r\n?#") != NULL)
        return NULL;
    /* A host, and a port in 1-65535 if one is given. */
    GUri *uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
    gboolean ok = uri != NULL && g_uri_get_host(uri) != NULL && g_uri_get_host(uri)[0] != '\0' &&
                  g_uri_get_port(uri) != 0;
    if (uri != NULL)
        g_uri_unref(uri);
    if (!ok)
        return NULL;
    size_t len = strlen(url);
    if (url[len - 1] == '/')
        len--;
    return g_strndup(url, len);
}

static LwProvider *find_by_name(LwProviderTable *table, const char *name)
{
    for (guint i = 0; i < table->providers->len; i++) {
        LwProvider *p = g_ptr_array_index(table->providers, i);
        if (strcmp(p->name, name) == 0)
            return p;
    }
    return NULL;
}

gboolean lw_provider_table_set(LwProviderTable *table, const char *name, const char *host,
                               const char *upstream, const LwFormat *format, GError **error)
{
    g_return_val_if_fail(table != NULL && name != NULL, FALSE);
    g_return_val_if_fail(!table->sealed, FALSE);

    g_autofree char *norm_host = NULL;
    g_autofree char *norm_upstream = NULL;
    if (host != NULL) {
        norm_host = normalize_host(host);
        if (norm_host == NULL) {
            g_set_error(error, LW_PROVIDER_ERROR, LW_PROVIDER_ERROR_INVALID,
                        "'%s' is not a valid host name", host);
            return FALSE;
        }
    }
    if (upstream != NULL) {
        norm_upstream = normalize_upstream(upstream);
        if (norm_upstream == NULL) {
            g_set_error(error, LW_PROVIDER_ERROR, LW_PROVIDER_ERROR_INVALID,
                        "'%s' is not an upstream URL (expected https://host[:port][/prefix])",
                        upstream);
            return FALSE;
        }
        /* Plain HTTP would carry the program's API keys in the clear: only
         * to a gateway on this machine. */
        if (g_str_has_prefix(norm_upstream, "http://") && !host_is_loopback(norm_upstream)) {
            g_set_error(error, LW_PROVIDER_ERROR, LW_PROVIDER_ERROR_INVALID,
                        "'%s': a plain http:// upstream URL must point at this machine "
                        "(localhost, 127.0.0.0/8 or [::1]): the program's API keys would cross "
                        "the network unencrypted; use https://",
                        upstream);
            return FALSE;
        }
    }

    LwProvider *p = find_by_name(table, name);
    if (p == NULL && norm_host == NULL) {
        g_set_error(error, LW_PROVIDER_ERROR, LW_PROVIDER_ERROR_INVALID,
                    "provider '%s' is not built in, so it needs 'host ='", name);
        return FALSE;
    }
    if (norm_host != NULL) {
        for (guint i = 0; i < table->providers->len; i++) {
            LwProvider *other = g_ptr_array_index(table->providers, i);
            if (other != p && strcmp(other->host, norm_host) == 0) {
                g_set_error(error, LW_PROVIDER_ERROR, LW_PROVIDER_ERROR_INVALID,
                            "host '%s' already belongs to provider '%s'", norm_host, other->name);
                return FALSE;
            }
        }
    }
    if (p == NULL) {
        if (table->providers->len >= LW_MAX_PROVIDERS) {
            g_set_error(error, LW_PROVIDER_ERROR, LW_PROVIDER_ERROR_INVALID,
                        "too many providers (at most %d)", LW_MAX_PROVIDERS);
            return FALSE;
        }
        p = g_new0(LwProvider, 1);
        p->name = g_strdup(name);
        p->format = LW_FORMAT_OPENAI;
        g_ptr_array_add(table->providers, p);
    }
    if (norm_host != NULL) {
        g_free(p->host);
        p->host = g_steal_pointer(&norm_host);
        /* A new host without an explicit upstream goes to that host. */
        if (norm_upstream == NULL && !p->is_builtin) {
            g_free(p->upstream);
            p->upstream = g_strdup_printf("https://%s", p->host);
        }
    }
    if (norm_upstream != NULL) {
        g_free(p->upstream);
        p->upstream = g_steal_pointer(&norm_upstream);
    }
    if (format != NULL)
        p->format = *format;
    return TRUE;
}

static gint compare_added(gconstpointer a, gconstpointer b)
{
    const LwProvider *pa = *(LwProvider *const *)a;
    const LwProvider *pb = *(LwProvider *const *)b;
    if (pa->is_builtin != pb->is_builtin)
        return pa->is_builtin ? -1 : 1;
    if (pa->is_builtin)
        return (gint)pa->slot - (gint)pb->slot;
    return strcmp(pa->name, pb->name);
}

void lw_provider_table_seal(LwProviderTable *table)
{
    g_return_if_fail(table != NULL && !table->sealed);
    g_ptr_array_sort(table->providers, compare_added);
    for (guint i = 0; i < table->providers->len; i++) {
        LwProvider *p = g_ptr_array_index(table->providers, i);
        p->slot = i + 1;
    }
    table->sealed = TRUE;
}

guint lw_provider_table_count(const LwProviderTable *table)
{
    return table->providers->len;
}

const LwProvider *lw_provider_table_nth(const LwProviderTable *table, guint i)
{
    g_return_val_if_fail(i < table->providers->len, NULL);
    return g_ptr_array_index(table->providers, i);
}

const LwProvider *lw_provider_table_by_slot(const LwProviderTable *table, guint slot)
{
    if (slot == 0 || slot > table->providers->len)
        return NULL;
    return g_ptr_array_index(table->providers, slot - 1);
}

const LwProvider *lw_provider_table_by_name(const LwProviderTable *table, const char *name)
{
    return find_by_name((LwProviderTable *)table, name);
}

const LwProvider *lw_provider_table_by_host(const LwProviderTable *table, const char *host)
{
    size_t len = strlen(host);
    if (len > 0 && host[len - 1] == '.')
        len--;
    for (guint i = 0; i < table->providers->len; i++) {
        const LwProvider *p = g_ptr_array_index(table->providers, i);
        if (strlen(p->host) == len && g_ascii_strncasecmp(p->host, host, len) == 0)
            return p;
    }
    return NULL;
}

char *lw_provider_table_env_hosts(const LwProviderTable *table)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < table->providers->len; i++) {
        const LwProvider *p = g_ptr_array_index(table->providers, i);
        if (i > 0)
            g_string_append_c(s, ',');
        g_string_append(s, p->host);
    }
    return g_string_free(s, FALSE);
}

const char **lw_provider_table_hosts(const LwProviderTable *table)
{
    const char **hosts = g_new0(const char *, table->providers->len + 1);
    for (guint i = 0; i < table->providers->len; i++) {
        const LwProvider *p = g_ptr_array_index(table->providers, i);
        hosts[i] = p->host;
    }
    return hosts;
}

void lw_provider_synthetic_addr(guint8 net_octet, guint slot, struct sockaddr_in *sin)
{
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl((127u << 24) | ((guint32)net_octet << 16) | (slot & 0xffu));
}

guint lw_provider_slot_of_addr(guint8 net_octet, in_addr_t addr)
{
    guint32 a = ntohl(addr);
    if ((a >> 24) != 127 || ((a >> 16) & 0xff) != net_octet || ((a >> 8) & 0xff) != 0)
        return 0;
    return a & 0xff;
}
