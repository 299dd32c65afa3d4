/* childenv.c - the environments of the wrapped program and the collector. */
#include "childenv.h"

#include <string.h>

#include "shim-core.h"

const char *const lw_childenv_combined_vars[] = {
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "AWS_CA_BUNDLE",
    "CARGO_HTTP_CAINFO",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    NULL,
};

const char *const lw_childenv_ca_only_vars[] = {"NODE_EXTRA_CA_CERTS", "DENO_CERT", NULL};

const char *const lw_childenv_dir_vars[] = {"SSL_CERT_DIR", NULL};

const char *const *const lw_childenv_trust_lists[LW_CHILDENV_TRUST_LISTS] = {
    lw_childenv_combined_vars, lw_childenv_ca_only_vars, lw_childenv_dir_vars};

/* Where a client looks when a trust variable is unset: requests reads
 * REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE; curl reads CURL_CA_BUNDLE, then
 * SSL_CERT_DIR and SSL_CERT_FILE; httpx reads SSL_CERT_FILE, then
 * SSL_CERT_DIR. A variable the user left unset must not hide the one they
 * set after it: it follows what llmwrap gives that one, or, when the one
 * they set is a directory (which a bundle variable cannot stand for), stays
 * unset. The first matching row wins. */
static const struct {
    const char *name;
    const char *next;
    gboolean stays_unset;
} fallbacks[] = {
    {"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", FALSE},
    {"CURL_CA_BUNDLE", "SSL_CERT_DIR", TRUE},
    {"CURL_CA_BUNDLE", "SSL_CERT_FILE", FALSE},
    {"SSL_CERT_FILE", "SSL_CERT_DIR", TRUE},
};

/* The shim's own variables: a collector must not see them, and a nested
 * llmwrap replaces them all, but for the knobs a user may set
 * (lw_shim_user_knobs), which llmwrap checks and passes on. */
static const char *const shim_vars[] = {
    "LLMWRAP_HOSTS",           "LLMWRAP_NET",         "LLMWRAP_PORT",
    "LLMWRAP_RUN_ID",          "LLMWRAP_ATTRIB_SOCK", "LLMWRAP_CA_DER",
    "LLMWRAP_PRELOAD",         "LLMWRAP_FAIL_OPEN",   "LLMWRAP_ATTRIB_REQUIRED",
    "LLMWRAP_TLS_HOOK",        "LLMWRAP_PROPAGATE",   "LLMWRAP_TEST_REAL_ADDR",
    "LLMWRAP_LISTEN",          NULL,
};

static gboolean is_shim_entry(const char *entry, size_t len)
{
    size_t base_len = strlen(LW_PRELOAD_BASENAME);
    if (len < base_len || memcmp(entry + len - base_len, LW_PRELOAD_BASENAME, base_len) != 0)
        return FALSE;
    return len == base_len || entry[len - base_len - 1] == '/';
}

/* Appends the user's entries (ld.so separates them with ':' or spaces),
 * minus any shim, to `out` joined with ':'. */
static void append_user_preloads(GString *out, const char *user)
{
    if (user == NULL)
        return;
    const char *p = user;
    while (*p != '\0') {
        size_t len = strcspn(p, ": \t");
        if (len > 0 && !is_shim_entry(p, len)) {
            if (out->len > 0)
                g_string_append_c(out, ':');
            g_string_append_len(out, p, (gssize)len);
        }
        p += len;
        if (*p != '\0')
            p++;
    }
}

char *lw_childenv_preload_value(const char *user, const char *shim)
{
    GString *out = g_string_new(NULL);
    const char *rest = user;
    if (user != NULL) {
        size_t skip = strspn(user, ": \t");
        size_t len = strcspn(user + skip, ": \t");
        /* A sanitizer runtime keeps its place in front of the shim. */
        if (len > 0 && lw_shim_preload_entry_leads(user + skip, len)) {
            g_string_append_len(out, user + skip, (gssize)len);
            rest = user + skip + len;
        }
    }
    if (out->len > 0)
        g_string_append_c(out, ':');
    g_string_append(out, shim);
    append_user_preloads(out, rest);
    return g_string_free(out, FALSE);
}

char *lw_childenv_preload_without_shim(const char *user)
{
    GString *out = g_string_new(NULL);
    append_user_preloads(out, user);
    if (out->len == 0) {
        g_string_free(out, TRUE);
        return NULL;
    }
    return g_string_free(out, FALSE);
}

char *lw_childenv_godebug_value(const char *user)
{
    if (user == NULL || *user == '\0')
        return g_strdup("netdns=go");
    const char *last_netdns = NULL;
    g_auto(GStrv) parts = g_strsplit(user, ",", -1);
    for (guint i = 0; parts[i] != NULL; i++) {
        if (g_str_has_prefix(parts[i], "netdns="))
            last_netdns = parts[i] + strlen("netdns=");
    }
    if (g_strcmp0(last_netdns, "go") == 0)
        return g_strdup(user);
    return g_strconcat(user, ",netdns=go", NULL);
}

static gboolean lists_host(char **entries, const char *host)
{
    for (guint i = 0; entries[i] != NULL; i++) {
        const char *entry = g_strstrip(entries[i]);
        if (strcmp(entry, "*") == 0 || g_ascii_strcasecmp(entry, host) == 0)
            return TRUE;
    }
    return FALSE;
}

char *lw_childenv_no_proxy_value(const char *user, const char *hosts)
{
    GString *out = g_string_new(user);
    g_auto(GStrv) entries = g_strsplit(user != NULL ? user : "", ",", -1);
    g_auto(GStrv) add = g_strsplit(hosts != NULL ? hosts : "", ",", -1);
    for (guint i = 0; add[i] != NULL; i++) {
        if (add[i][0] == '\0' || lists_host(entries, add[i]))
            continue;
        if (out->len > 0 && out->str[out->len - 1] != ',')
            g_string_append_c(out, ',');
        g_string_append(out, add[i]);
    }
    return g_string_free(out, FALSE);
}

static gboolean user_set(char **base, const char *name)
{
    const char *v = g_environ_getenv(base, name);
    return v != NULL && *v != '\0';
}

/* The value trust variable `name` gets, NULL to leave it as it is in
 * `base`. One the user set gets their file (or directory) plus our root,
 * or keeps their value when llmwrap cannot add to it: a missing file then
 * fails as it would without llmwrap, rather than become the system bundle.
 * One the user did not set gets `dflt`, unless a client would read another
 * variable the user set in its place (fallbacks). */
static const char *trust_value(char **base, const LwChildEnv *e, const char *name, const char *dflt)
{
    if (user_set(base, name))
        return g_environ_getenv(e->user_trust, name);
    for (guint i = 0; i < G_N_ELEMENTS(fallbacks); i++) {
        if (strcmp(fallbacks[i].name, name) != 0 || !user_set(base, fallbacks[i].next))
            continue;
        return fallbacks[i].stays_unset ? NULL : g_environ_getenv(e->user_trust, fallbacks[i].next);
    }
    return dflt;
}

char **lw_childenv_build(char **base, const LwChildEnv *e)
{
    g_return_val_if_fail(e != NULL && e->preload != NULL, NULL);
    char **env = g_strdupv(base);

    g_autofree char *preload =
        lw_childenv_preload_value(g_environ_getenv(env, "LD_PRELOAD"), e->preload);
    env = g_environ_setenv(env, "LD_PRELOAD", preload, TRUE);
    env = g_environ_setenv(env, "LLMWRAP_PRELOAD", e->preload, TRUE);
    env = g_environ_setenv(env, "LLMWRAP_HOSTS", e->hosts, TRUE);
    g_autofree char *net = g_strdup_printf("%u", e->net);
    env = g_environ_setenv(env, "LLMWRAP_NET", net, TRUE);
    g_autofree char *port = g_strdup_printf("%u", e->port);
    env = g_environ_setenv(env, "LLMWRAP_PORT", port, TRUE);
    /* A program whose base URL points at the collector is part of the run
     * too: the shim attributes its connections to these addresses. */
    if (e->listen != NULL && e->listen[0] != '\0')
        env = g_environ_setenv(env, "LLMWRAP_LISTEN", e->listen, TRUE);
    else
        env = g_environ_unsetenv(env, "LLMWRAP_LISTEN");
    g_autofree char *run = g_strdup_printf("%" G_GUINT64_FORMAT, e->run_id);
    env = g_environ_setenv(env, "LLMWRAP_RUN_ID", run, TRUE);
    env = g_environ_setenv(env, "LLMWRAP_ATTRIB_SOCK", e->attrib_sock, TRUE);
    /* A connection the collector cannot tie to this run would escape the
     * run's budget and tags: the shim refuses it instead. */
    env = g_environ_setenv(env, "LLMWRAP_ATTRIB_REQUIRED", "1", TRUE);
    if (e->home != NULL)
        env = g_environ_setenv(env, "LLMWRAP_HOME", e->home, TRUE);
    if (e->ca_der_b64 != NULL)
        env = g_environ_setenv(env, "LLMWRAP_CA_DER", e->ca_der_b64, TRUE);
    else
        env = g_environ_unsetenv(env, "LLMWRAP_CA_DER");
    if (e->fail_open)
        env = g_environ_setenv(env, "LLMWRAP_FAIL_OPEN", "1", TRUE);
    else
        env = g_environ_unsetenv(env, "LLMWRAP_FAIL_OPEN");
    /* A sentinel leaked from a collector's environment would make the shim
     * inert in the program: it is never the program's to have. */
    env = g_environ_unsetenv(env, "LLMWRAP_COLLECTOR");

    const char *const *const *lists = lw_childenv_trust_lists;
    const char *defaults[LW_CHILDENV_TRUST_LISTS] = {e->combined_pem, e->ca_pem, NULL};
    for (guint l = 0; l < LW_CHILDENV_TRUST_LISTS; l++) {
        for (guint i = 0; lists[l][i] != NULL; i++) {
            const char *value = trust_value(base, e, lists[l][i], defaults[l]);
            if (value != NULL)
                env = g_environ_setenv(env, lists[l][i], value, TRUE);
        }
    }
    /* curl prefers no_proxy, most others NO_PROXY: each gets the user's
     * value of either, so the user's own exceptions hold in both. */
    const char *upper = g_environ_getenv(env, "NO_PROXY");
    const char *lower = g_environ_getenv(env, "no_proxy");
    g_autofree char *no_proxy = lw_childenv_no_proxy_value(lower != NULL ? lower : upper, e->hosts);
    g_autofree char *no_proxy_upper =
        lw_childenv_no_proxy_value(upper != NULL ? upper : lower, e->hosts);
    env = g_environ_setenv(env, "no_proxy", no_proxy, TRUE);
    env = g_environ_setenv(env, "NO_PROXY", no_proxy_upper, TRUE);
    g_autofree char *godebug = lw_childenv_godebug_value(g_environ_getenv(env, "GODEBUG"));
    env = g_environ_setenv(env, "GODEBUG", godebug, TRUE);
    env = g_environ_setenv(env, "GRPC_DNS_RESOLVER", "native", TRUE);
    return env;
}

static gboolean is_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

void lw_childenv_listen_append(GString *value, const char *address, guint port)
{
    if (value->len > 0)
        g_string_append_c(value, ',');
    if (strchr(address, ':') != NULL)
        g_string_append_printf(value, "[%s]:%u", address, port);
    else
        g_string_append_printf(value, "%s:%u", address, port);
}

char **lw_childenv_for_collector(char **base, const char *trust_dir, const char *home)
{
    char **env = g_strdupv(base);
    g_autofree char *preload =
        lw_childenv_preload_without_shim(g_environ_getenv(env, "LD_PRELOAD"));
    if (preload != NULL)
        env = g_environ_setenv(env, "LD_PRELOAD", preload, TRUE);
    else
        env = g_environ_unsetenv(env, "LD_PRELOAD");
    for (guint i = 0; shim_vars[i] != NULL; i++)
        env = g_environ_unsetenv(env, shim_vars[i]);
    if (trust_dir != NULL) {
        const char *const *const *lists = lw_childenv_trust_lists;
        for (guint l = 0; l < LW_CHILDENV_TRUST_LISTS; l++) {
            for (guint i = 0; lists[l][i] != NULL; i++) {
                const char *v = g_environ_getenv(env, lists[l][i]);
                if (v != NULL && is_under(v, trust_dir))
                    env = g_environ_unsetenv(env, lists[l][i]);
            }
        }
    }
    if (home != NULL)
        env = g_environ_setenv(env, "LLMWRAP_HOME", home, TRUE);
    return env;
}
