/* test-wrap.c - llmwrap's pure parts: option values, the child's and the
 * collector's environments, the root certificate, PATH lookup, the
 * command line's redaction. */
#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "childenv.h"
#include "options.h"
#include "program.h"
#include "redact.h"
#include "summary.h"
#include "trust.h"

/* ---- --budget ---- */

typedef struct {
    const char *in;
    gboolean ok;
    gint64 pusd;
} UsdCase;

static const UsdCase usd_cases[] = {
    {"5", TRUE, G_GINT64_CONSTANT(5000000000000)},
    {"0", TRUE, 0},
    {"0.25", TRUE, G_GINT64_CONSTANT(250000000000)},
    {"12.5", TRUE, G_GINT64_CONSTANT(12500000000000)},
    {"0.000000000001", TRUE, 1},
    {"1.000000000001", TRUE, G_GINT64_CONSTANT(1000000000001)},
    {"007", TRUE, G_GINT64_CONSTANT(7000000000000)},
    {"9223372.036854775807", TRUE, G_MAXINT64},
    {"9223372.036854775808", FALSE, 0},
    {"9223373", FALSE, 0},
    {"99999999999999999999", FALSE, 0},
    {"1.0000000000001", FALSE, 0}, /* a 13th decimal would be rounded: refused */
    {"", FALSE, 0},
    {".5", FALSE, 0},
    {"5.", FALSE, 0},
    {"-1", FALSE, 0},
    {"+1", FALSE, 0},
    {"1e3", FALSE, 0},
    {" 1", FALSE, 0},
    {"1 ", FALSE, 0},
    {"1,5", FALSE, 0},
    {"$5", FALSE, 0},
};

static void test_parse_usd(gconstpointer data)
{
    const UsdCase *c = data;
    gint64 v = -42;
    g_assert_cmpint(lw_options_parse_usd(c->in, &v), ==, c->ok);
    g_assert_cmpint(v, ==, c->ok ? c->pusd : -42);
}

typedef struct {
    gint64 pusd;
    const char *out;
} FormatCase;

static const FormatCase format_cases[] = {
    {0, "0"},
    {1, "0.000000000001"},
    {G_GINT64_CONSTANT(1234000000), "0.001234"},
    {G_GINT64_CONSTANT(5000000000000), "5"},
    {G_GINT64_CONSTANT(12345678901234), "12.345678901234"},
    {G_GINT64_CONSTANT(-500000000000), "-0.5"},
    {G_MAXINT64, "9223372.036854775807"},
    {G_MININT64, "-9223372.036854775808"},
};

static void test_format_usd(gconstpointer data)
{
    const FormatCase *c = data;
    g_autofree char *s = lw_options_format_usd(c->pusd);
    g_assert_cmpstr(s, ==, c->out);
    if (c->pusd >= 0) {
        gint64 back = -1;
        g_assert_true(lw_options_parse_usd(s, &back));
        g_assert_cmpint(back, ==, c->pusd);
    }
}

/* ---- --tag ---- */

typedef struct {
    const char *in;
    const char *key, *value; /* NULL: refused */
} TagCase;

static const TagCase tag_cases[] = {
    {"team=core", "team", "core"},
    {"a=b=c", "a", "b=c"},
    {"ticket.id=LW-1", "ticket.id", "LW-1"},
    {"9x=é ü", "9x", "é ü"},
    {"k=v w", "k", "v w"},
    {"novalue", NULL, NULL},
    {"=v", NULL, NULL},
    {"k=", NULL, NULL},
    {"-k=v", NULL, NULL},
    {"bad key=v", NULL, NULL},
    {"k\x01=v", NULL, NULL},
    {"k=a\nb", NULL, NULL},
    {"k=\xff\xfe", NULL, NULL},
};

static void test_parse_tag(gconstpointer data)
{
    const TagCase *c = data;
    g_autofree char *k = NULL, *v = NULL;
    g_autoptr(GError) error = NULL;
    gboolean ok = lw_options_parse_tag(c->in, &k, &v, &error);
    if (c->key == NULL) {
        g_assert_false(ok);
        g_assert_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE);
        g_assert_null(k);
        return;
    }
    g_assert_no_error(error);
    g_assert_cmpstr(k, ==, c->key);
    g_assert_cmpstr(v, ==, c->value);
}

static void test_tag_limits(void)
{
    g_autofree char *k = NULL, *v = NULL;
    g_autofree char *long_key = g_strnfill(LW_TAG_KEY_MAX_LEN, 'k');
    g_autofree char *ok = g_strconcat(long_key, "=v", NULL);
    g_assert_true(lw_options_parse_tag(ok, &k, &v, NULL));
    g_autofree char *bad = g_strconcat(long_key, "k=v", NULL);
    g_assert_false(lw_options_parse_tag(bad, &k, &v, NULL));
    g_autofree char *long_value = g_strnfill(LW_TAG_VALUE_MAX_LEN + 1, 'v');
    g_autofree char *bad2 = g_strconcat("k=", long_value, NULL);
    g_assert_false(lw_options_parse_tag(bad2, &k, &v, NULL));
}

/* ---- environments ---- */

#define SHIM "/opt/lw/libllmwrap-preload.so"

typedef struct {
    const char *user;
    const char *want;
} PreloadCase;

static const PreloadCase preload_cases[] = {
    {NULL, SHIM},
    {"", SHIM},
    {"/usr/lib/libjemalloc.so.2", SHIM ":/usr/lib/libjemalloc.so.2"},
    {"a.so b.so:c.so", SHIM ":a.so:b.so:c.so"},
    {"::a.so::", SHIM ":a.so"},
    /* ours from an outer run, or another build's: never two shims */
    {SHIM, SHIM},
    {"/old/libllmwrap-preload.so:/x/a.so", SHIM ":/x/a.so"},
    {"/x/not-libllmwrap-preload.so", SHIM ":/x/not-libllmwrap-preload.so"},
    /* a sanitizer runtime must stay the first object */
    {"/usr/lib/libasan.so.8:/x/a.so", "/usr/lib/libasan.so.8:" SHIM ":/x/a.so"},
    {"/x/a.so:/usr/lib/libasan.so.8", SHIM ":/x/a.so:/usr/lib/libasan.so.8"},
};

static void test_preload_value(gconstpointer data)
{
    const PreloadCase *c = data;
    g_autofree char *v = lw_childenv_preload_value(c->user, SHIM);
    g_assert_cmpstr(v, ==, c->want);
}

static void test_preload_without_shim(void)
{
    g_assert_null(lw_childenv_preload_without_shim(NULL));
    g_assert_null(lw_childenv_preload_without_shim(SHIM));
    g_autofree char *v = lw_childenv_preload_without_shim(SHIM " /x/a.so");
    g_assert_cmpstr(v, ==, "/x/a.so");
}

typedef struct {
    const char *user, *want;
} GodebugCase;

static const GodebugCase godebug_cases[] = {
    {NULL, "netdns=go"},
    {"", "netdns=go"},
    {"http2client=0", "http2client=0,netdns=go"},
    {"netdns=cgo", "netdns=cgo,netdns=go"},
    {"netdns=go", "netdns=go"},
    {"netdns=go,x=1", "netdns=go,x=1"},
    {"netdns=go,netdns=cgo", "netdns=go,netdns=cgo,netdns=go"},
};

static void test_godebug(gconstpointer data)
{
    const GodebugCase *c = data;
    g_autofree char *v = lw_childenv_godebug_value(c->user);
    g_assert_cmpstr(v, ==, c->want);
}

typedef struct {
    const char *user, *hosts, *want;
} NoProxyCase;

#define HOSTS2 "api.openai.com,api.anthropic.com"
static const NoProxyCase no_proxy_cases[] = {
    {NULL, HOSTS2, HOSTS2},
    {"", HOSTS2, HOSTS2},
    {"corp.example", HOSTS2, "corp.example," HOSTS2},
    {"corp.example,", HOSTS2, "corp.example," HOSTS2},
    {"localhost, API.OpenAI.com", HOSTS2, "localhost, API.OpenAI.com,api.anthropic.com"},
    {"*", HOSTS2, "*"},
    {"corp.example", "", "corp.example"},
    {NULL, NULL, ""},
};

static void test_no_proxy(gconstpointer data)
{
    const NoProxyCase *c = data;
    g_autofree char *v = lw_childenv_no_proxy_value(c->user, c->hosts);
    g_assert_cmpstr(v, ==, c->want);
}

static const LwChildEnv child = {
    .preload = SHIM,
    .hosts = HOSTS2,
    .net = 241,
    .port = 40123,
    .listen = "127.0.0.1:4000,[::1]:4000",
    .run_id = 77,
    .attrib_sock = "/h/run/attrib.sock",
    .home = "/h",
    .ca_der_b64 = "MIIB",
    .combined_pem = "/h/run/trust/combined.pem",
    .ca_pem = "/h/run/trust/ca.pem",
    .fail_open = FALSE,
};

static void test_child_env(void)
{
    char *base[] = {"PATH=/usr/bin",
                    "LD_PRELOAD=/x/a.so",
                    "SSL_CERT_FILE=",
                    "LLMWRAP_FAIL_OPEN=1",
                    "LLMWRAP_COLLECTOR=1",
                    "LLMWRAP_RUN_ID=5",
                    "GODEBUG=x=1",
                    "NO_PROXY=corp.example",
                    "LLMWRAP_LISTEN=1.2.3.4:5",
                    NULL};
    g_auto(GStrv) env = lw_childenv_build(base, &child);
    g_assert_cmpstr(g_environ_getenv(env, "PATH"), ==, "/usr/bin");
    g_assert_cmpstr(g_environ_getenv(env, "LD_PRELOAD"), ==, SHIM ":/x/a.so");
    g_assert_cmpstr(g_environ_getenv(env, "LLMWRAP_PRELOAD"), ==, SHIM);
    g_assert_cmpstr(g_environ_getenv(env, "LLMWRAP_HOSTS"), ==, child.hosts);
    g_assert_cmpstr(g_environ_getenv(env, "LLMWRAP_NET"), ==, "241");
    g_assert_cmpstr(g_environ_getenv(env, "LLMWRAP_PORT"), ==, "40123");
    g_assert_cmpstr(g_environ_getenv(env, "LLMWRAP_LISTEN"), ==, "127.0.0.1:4000,[::1]:4000");
    g_assert_cmpstr(g_environ_getenv(env, "LLMWRAP_RUN_ID"), ==, "77");
    g_assert_cmpstr(g_environ_getenv(env, "LLMWRAP_ATTRIB_SOCK"), ==, "/h/run/attrib.sock");
    g_assert_cmpstr(g_environ_getenv(env, "LLMWRAP_HOME"), ==, "/h");
    g_assert_cmpstr(g_environ_getenv(env, "LLMWRAP_CA_DER"), ==, "MIIB");
    g_assert_null(g_environ_getenv(env, "LLMWRAP_FAIL_OPEN"));
    g_assert_null(g_environ_getenv(env, "LLMWRAP_COLLECTOR"));
    for (guint i = 0; lw_childenv_combined_vars[i] != NULL; i++)
        g_assert_cmpstr(g_environ_getenv(env, lw_childenv_combined_vars[i]), ==,
                        child.combined_pem);
    for (guint i = 0; lw_childenv_ca_only_vars[i] != NULL; i++)
        g_assert_cmpstr(g_environ_getenv(env, lw_childenv_ca_only_vars[i]), ==, child.ca_pem);
    g_assert_cmpstr(g_environ_getenv(env, "GODEBUG"), ==, "x=1,netdns=go");
    g_assert_cmpstr(g_environ_getenv(env, "GRPC_DNS_RESOLVER"), ==, "native");
    g_assert_cmpstr(g_environ_getenv(env, "NO_PROXY"), ==, "corp.example," HOSTS2);
    g_assert_cmpstr(g_environ_getenv(env, "no_proxy"), ==, "corp.example," HOSTS2);

    LwChildEnv open = child;
    open.fail_open = TRUE;
    g_auto(GStrv) env2 = lw_childenv_build(base, &open);
    g_assert_cmpstr(g_environ_getenv(env2, "LLMWRAP_FAIL_OPEN"), ==, "1");

    /* A collector without listen addresses: an outer run's are not kept. */
    LwChildEnv none = child;
    none.listen = "";
    g_auto(GStrv) env3 = lw_childenv_build(base, &none);
    g_assert_null(g_environ_getenv(env3, "LLMWRAP_LISTEN"));
}

/* StatusReply's listeners as LLMWRAP_LISTEN takes them. */
static void test_listen_value(void)
{
    g_autoptr(GString) v = g_string_new(NULL);
    lw_childenv_listen_append(v, "127.0.0.1", 4000);
    g_assert_cmpstr(v->str, ==, "127.0.0.1:4000");
    lw_childenv_listen_append(v, "::1", 4001);
    lw_childenv_listen_append(v, "0.0.0.0", 1);
    lw_childenv_listen_append(v, "::", 65535);
    g_assert_cmpstr(v->str, ==, "127.0.0.1:4000,[::1]:4001,0.0.0.0:1,[::]:65535");
}

/* A trust variable the user set points at the file made from their bundle;
 * the others keep the defaults. */
static void test_child_env_user_trust(void)
{
    char *base[] = {"CURL_CA_BUNDLE=/corp.pem", "NODE_EXTRA_CA_CERTS=/corp.pem", NULL};
    char *own[] = {"CURL_CA_BUNDLE=/h/run/trust/combined-1.pem",
                   "NODE_EXTRA_CA_CERTS=/h/run/trust/combined-1.pem", NULL};
    LwChildEnv e = child;
    e.user_trust = own;
    g_auto(GStrv) env = lw_childenv_build(base, &e);
    g_assert_cmpstr(g_environ_getenv(env, "CURL_CA_BUNDLE"), ==, "/h/run/trust/combined-1.pem");
    g_assert_cmpstr(g_environ_getenv(env, "NODE_EXTRA_CA_CERTS"), ==,
                    "/h/run/trust/combined-1.pem");
    g_assert_cmpstr(g_environ_getenv(env, "SSL_CERT_FILE"), ==, child.combined_pem);
    g_assert_cmpstr(g_environ_getenv(env, "DENO_CERT"), ==, child.ca_pem);
}

/* Which value each trust variable gets, from what the user set (`user`)
 * and what llmwrap could add its root to (`own`, lw_trust_combined_for's
 * results). Expected values: "C" combined.pem, "A" ca.pem, NULL unset,
 * anything else a path. */
typedef struct {
    const char *name;
    const char *user[4];
    const char *own[4];
    const char *ssl_cert_file, *ssl_cert_dir, *curl, *requests, *git, *node;
} TrustRuleCase;

static const TrustRuleCase trust_rule_cases[] = {
    {"none", {NULL}, {NULL}, "C", NULL, "C", "C", "C", "A"},
    /* requests reads CURL_CA_BUNDLE when REQUESTS_CA_BUNDLE is unset. */
    {"curl-file",
     {"CURL_CA_BUNDLE=/corp.pem"},
     {"CURL_CA_BUNDLE=/t/combined-1.pem"},
     "C",
     NULL,
     "/t/combined-1.pem",
     "/t/combined-1.pem",
     "C",
     "A"},
    {"curl-missing", {"CURL_CA_BUNDLE=/gone.pem"}, {NULL}, "C", NULL, "/gone.pem", NULL, "C", "A"},
    {"requests-dir",
     {"REQUESTS_CA_BUNDLE=/corp"},
     {"REQUESTS_CA_BUNDLE=/t/dir-1"},
     "C",
     NULL,
     "C",
     "/t/dir-1",
     "C",
     "A"},
    {"requests-and-curl",
     {"REQUESTS_CA_BUNDLE=/r.pem", "CURL_CA_BUNDLE=/c.pem"},
     {"REQUESTS_CA_BUNDLE=/t/r.pem", "CURL_CA_BUNDLE=/t/c.pem"},
     "C",
     NULL,
     "/t/c.pem",
     "/t/r.pem",
     "C",
     "A"},
    /* curl reads SSL_CERT_DIR, httpx too, only when CURL_CA_BUNDLE and
     * SSL_CERT_FILE are unset. */
    {"dir",
     {"SSL_CERT_DIR=/corp"},
     {"SSL_CERT_DIR=/t/dir-1"},
     NULL,
     "/t/dir-1",
     NULL,
     "C",
     "C",
     "A"},
    {"dir-unlistable", {"SSL_CERT_DIR=/corp"}, {NULL}, NULL, "/corp", NULL, "C", "C", "A"},
    {"dir-and-file",
     {"SSL_CERT_DIR=/corp", "SSL_CERT_FILE=/f.pem"},
     {"SSL_CERT_DIR=/t/dir-1", "SSL_CERT_FILE=/t/combined-f.pem"},
     "/t/combined-f.pem",
     "/t/dir-1",
     NULL,
     "C",
     "C",
     "A"},
    /* curl reads SSL_CERT_FILE when CURL_CA_BUNDLE is unset; a file that
     * cannot be read stays as the user set it, and nothing hides it. */
    {"file",
     {"SSL_CERT_FILE=/f.pem"},
     {"SSL_CERT_FILE=/t/combined-f.pem"},
     "/t/combined-f.pem",
     NULL,
     "/t/combined-f.pem",
     "C",
     "C",
     "A"},
    {"file-missing", {"SSL_CERT_FILE=/gone.pem"}, {NULL}, "/gone.pem", NULL, NULL, "C", "C", "A"},
    {"node-missing",
     {"NODE_EXTRA_CA_CERTS=/gone.pem", "GIT_SSL_CAINFO=/g.pem"},
     {"GIT_SSL_CAINFO=/t/g.pem"},
     "C",
     NULL,
     "C",
     "C",
     "/t/g.pem",
     "/gone.pem"},
    /* An empty value is no value. */
    {"empty", {"CURL_CA_BUNDLE=", "SSL_CERT_DIR="}, {NULL}, "C", "", "C", "C", "C", "A"},
};

static void test_trust_rules(gconstpointer data)
{
    const TrustRuleCase *c = data;
    g_auto(GStrv) base = g_new0(char *, 1);
    g_auto(GStrv) own = g_new0(char *, 1);
    for (guint i = 0; i < G_N_ELEMENTS(c->user) && c->user[i] != NULL; i++) {
        g_auto(GStrv) kv = g_strsplit(c->user[i], "=", 2);
        base = g_environ_setenv(base, kv[0], kv[1], TRUE);
    }
    for (guint i = 0; i < G_N_ELEMENTS(c->own) && c->own[i] != NULL; i++) {
        g_auto(GStrv) kv = g_strsplit(c->own[i], "=", 2);
        own = g_environ_setenv(own, kv[0], kv[1], TRUE);
    }
    LwChildEnv e = child;
    e.user_trust = own;
    g_auto(GStrv) env = lw_childenv_build(base, &e);
    const char *names[] = {"SSL_CERT_FILE",      "SSL_CERT_DIR",   "CURL_CA_BUNDLE",
                           "REQUESTS_CA_BUNDLE", "GIT_SSL_CAINFO", "NODE_EXTRA_CA_CERTS"};
    const char *want[] = {c->ssl_cert_file, c->ssl_cert_dir, c->curl, c->requests, c->git, c->node};
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        const char *w = want[i];
        if (g_strcmp0(w, "C") == 0)
            w = child.combined_pem;
        else if (g_strcmp0(w, "A") == 0)
            w = child.ca_pem;
        g_test_message("%s", names[i]);
        g_assert_cmpstr(g_environ_getenv(env, names[i]), ==, w);
    }
}

static void test_collector_env(void)
{
    char *base[] = {"PATH=/usr/bin",
                    "LD_PRELOAD=" SHIM ":/x/a.so",
                    "LLMWRAP_HOSTS=api.openai.com",
                    "LLMWRAP_PORT=1",
                    "LLMWRAP_LISTEN=127.0.0.1:4000",
                    "LLMWRAP_RUN_ID=5",
                    "LLMWRAP_CA_DER=MIIB",
                    "SSL_CERT_FILE=/h/run/trust/combined.pem",
                    "NODE_EXTRA_CA_CERTS=/h/run/trust/ca.pem",
                    "CURL_CA_BUNDLE=/etc/mine.pem",
                    "REQUESTS_CA_BUNDLE=/h/run/trustee.pem",
                    "SSL_CERT_DIR=/h/run/trust/dir-1",
                    "LLMWRAP_TLS_HOOK=0",
                    "LLMWRAP_PROPAGATE=0",
                    NULL};
    g_auto(GStrv) env = lw_childenv_for_collector(base, "/h/run/trust", "/h");
    g_assert_cmpstr(g_environ_getenv(env, "LD_PRELOAD"), ==, "/x/a.so");
    g_assert_null(g_environ_getenv(env, "LLMWRAP_HOSTS"));
    g_assert_null(g_environ_getenv(env, "LLMWRAP_PORT"));
    g_assert_null(g_environ_getenv(env, "LLMWRAP_LISTEN"));
    g_assert_null(g_environ_getenv(env, "LLMWRAP_RUN_ID"));
    g_assert_null(g_environ_getenv(env, "LLMWRAP_CA_DER"));
    g_assert_null(g_environ_getenv(env, "SSL_CERT_FILE"));
    g_assert_null(g_environ_getenv(env, "NODE_EXTRA_CA_CERTS"));
    g_assert_null(g_environ_getenv(env, "SSL_CERT_DIR"));
    g_assert_null(g_environ_getenv(env, "LLMWRAP_TLS_HOOK"));
    g_assert_null(g_environ_getenv(env, "LLMWRAP_PROPAGATE"));
    g_assert_cmpstr(g_environ_getenv(env, "CURL_CA_BUNDLE"), ==, "/etc/mine.pem");
    g_assert_cmpstr(g_environ_getenv(env, "REQUESTS_CA_BUNDLE"), ==, "/h/run/trustee.pem");
    g_assert_cmpstr(g_environ_getenv(env, "LLMWRAP_HOME"), ==, "/h");
    g_assert_cmpstr(g_environ_getenv(env, "PATH"), ==, "/usr/bin");

    char *only_shim[] = {"LD_PRELOAD=" SHIM, NULL};
    g_auto(GStrv) env2 = lw_childenv_for_collector(only_shim, NULL, NULL);
    g_assert_null(g_environ_getenv(env2, "LD_PRELOAD"));
}

/* ---- the root certificate ---- */

/* DER-shaped bytes (a SEQUENCE with a long-form length), base64: the parser
 * checks the shape, not the certificate. */
#define ROOT_B64                                                                                   \
    "MIIBdDCCARmgAwIBAgIUQ5Vx6r9TwmlQ6p5m0G5n0bVdcDkwCgYIKoZIzj0EAwIwDzENMAsGA1UEAwwEcm9v"         \
    "dDAeFw0yNTAxMDEwMDAwMDBaFw0zNTAxMDEwMDAwMDBaMA8xDTALBgNVBAMMBHJvb3QwWTATBgcqhkjOPQIB"         \
    "BggqhkjOPQMBBwNCAAQY7S4Xw1x9d0n4yV3b7m5l0t8u1V0r4k2s9z3c8v7q6w5e4r3t2y1u0i9o8p7a6s5d"         \
    "4f3g2h1j0k9l8z7x6c5vo1MwUTAdBgNVHQ4EFgQUAAECAwQFBgcICQoLDA0ODxAREhMwHwYDVR0jBBgwFoAU"         \
    "AAECAwQFBgcICQoLDA0ODxAREhMwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEA"

static void test_parse_root(void)
{
    GString *pem = g_string_new("# a comment before\n-----BEGIN CERTIFICATE-----\n");
    const char *b64 = ROOT_B64;
    for (size_t i = 0; i < strlen(b64); i += 60) {
        g_string_append_len(pem, b64 + i, (gssize)MIN(60, strlen(b64) - i));
        g_string_append(pem, "\r\n");
    }
    g_string_append(pem, "-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nAAAA\n");
    g_autofree char *der = NULL, *block = NULL;
    g_autoptr(GError) error = NULL;
    g_assert_true(lw_trust_parse_root(pem->str, pem->len, &der, &block, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(der, ==, ROOT_B64);
    g_assert_true(g_str_has_prefix(block, "-----BEGIN CERTIFICATE-----\n"));
    g_assert_true(g_str_has_suffix(block, "\n-----END CERTIFICATE-----\n"));
    g_assert_null(strchr(der, '\n'));
    g_string_free(pem, TRUE);

    const char *bad[] = {
        "",
        "no pem here",
        "-----BEGIN CERTIFICATE-----\nMIIB\n", /* no end */
        "-----BEGIN CERTIFICATE-----\nnot*base64\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\nAAAAAAAAAAAAAAAAAAAAAAAA\n-----END CERTIFICATE-----\n",
    };
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *d = NULL, *b = NULL;
        g_autoptr(GError) e = NULL;
        g_assert_false(lw_trust_parse_root(bad[i], strlen(bad[i]), &d, &b, &e));
        g_assert_nonnull(e);
        g_assert_null(d);
    }
}

/* Subjects whose canonical forms are equal: "US", "  Example   Org ",
 * "LLMWrap  Test Root" (UTF8String) and "Root@Example.COM" (IA5String);
 * then "us", "Example Org", "llmwrap test root", "root@example.com".
 * `openssl x509 -subject_hash` says 92e22fff for both. */
#define CERT_SPACED                                                                                \
    "-----BEGIN CERTIFICATE-----\n"                                                                \
    "MIICIjCCAcmgAwIBAgIUJ6aeUNpE7uOgemDO+DCVYhMHGBAwCgYIKoZIzj0EAwIw\n"                           \
    "ZjELMAkGA1UEBhMCVVMxGTAXBgNVBAoMECAgRXhhbXBsZSAgIE9yZyAxGzAZBgNV\n"                           \
    "BAMMEkxMTVdyYXAgIFRlc3QgUm9vdDEfMB0GCSqGSIb3DQEJARYQUm9vdEBFeGFt\n"                           \
    "cGxlLkNPTTAgFw0yNjExMjIwNjQ3MzFaGA8yMTI2MTAyOTA2NDczMVowZjELMAkG\n"                           \
    "A1UEBhMCVVMxGTAXBgNVBAoMECAgRXhhbXBsZSAgIE9yZyAxGzAZBgNVBAMMEkxM\n"                           \
    "TVdyYXAgIFRlc3QgUm9vdDEfMB0GCSqGSIb3DQEJARYQUm9vdEBFeGFtcGxlLkNP\n"                           \
    "TTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABK44FbKlRqfLLVOOsxTsfyXsgZ9U\n"                           \
    "P4GIfupknwTUYTDWo8YSdnN6NalfeNsp5JPg9fdm5FJe0BNQjOz2WChJL06jUzBR\n"                           \
    "MB0GA1UdDgQWBBS6+B+nYcUzkd4iC9AP7KnsMnZUPTAfBgNVHSMEGDAWgBS6+B+n\n"                           \
    "YcUzkd4iC9AP7KnsMnZUPTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cA\n"                           \
    "MEQCICX4+dPbpvPwSzPUygTb2WE4gyeWGlS2KhIufFFX7xPgAiBF7C/tMUW5FCBP\n"                           \
    "poNN8eLI8PQzRMVJAU/cE5wH0OB+gA==\n"                                                           \
    "-----END CERTIFICATE-----\n"

#define CERT_CANON                                                                                 \
    "-----BEGIN CERTIFICATE-----\n"                                                                \
    "MIICFjCCAb2gAwIBAgIUJ9T80ZJAatzg+0+9TaB1vfNAAS8wCgYIKoZIzj0EAwIw\n"                           \
    "YDELMAkGA1UEBhMCdXMxFDASBgNVBAoMC0V4YW1wbGUgT3JnMRowGAYDVQQDDBFs\n"                           \
    "bG13cmFwIHRlc3Qgcm9vdDEfMB0GCSqGSIb3DQEJARYQcm9vdEBleGFtcGxlLmNv\n"                           \
    "bTAgFw0yNjExMjIwNjQ3MzRaGA8yMTI2MTAyOTA2NDczNFowYDELMAkGA1UEBhMC\n"                           \
    "dXMxFDASBgNVBAoMC0V4YW1wbGUgT3JnMRowGAYDVQQDDBFsbG13cmFwIHRlc3Qg\n"                           \
    "cm9vdDEfMB0GCSqGSIb3DQEJARYQcm9vdEBleGFtcGxlLmNvbTBZMBMGByqGSM49\n"                           \
    "AgEGCCqGSM49AwEHA0IABH+Frw20i831a69HG6D2wN2DnIDCqyzrfIrAy30iVn2s\n"                           \
    "iKF0+7wAz7UQa5vUohEl4DKXudxqAJWyPbR2aaL7UaCjUzBRMB0GA1UdDgQWBBRI\n"                           \
    "w+RtHNRhTuZdJgOHpOAQZkN8zzAfBgNVHSMEGDAWgBRIw+RtHNRhTuZdJgOHpOAQ\n"                           \
    "ZkN8zzAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIBv6L2bhkI1q\n"                           \
    "LweYGfLOQcD2Q0QOBi2CojpNzE3IH+sJAiAZiejvs+hM7aWNI5lE1xAIrIwosohn\n"                           \
    "haQtYvaD92fz6g==\n"                                                                           \
    "-----END CERTIFICATE-----\n"
/* Two attributes in one RDN (CN=a + O=b + OU=c): not implemented. */
#define CERT_MULTI_RDN                                                                             \
    "-----BEGIN CERTIFICATE-----\n"                                                                \
    "MIIBmzCCAUGgAwIBAgIUEmQePGEwdXmN1eNEHA6X19DAcXQwCgYIKoZIzj0EAwIw\n"                           \
    "IjEKMAgGA1UEAwwBYTEUMAgGA1UECgwBYjAIBgNVBAsMAWMwIBcNMjYxMTIyMDY0\n"                           \
    "NzM0WhgPMjEyNjEwMjkwNjQ3MzRaMCIxCjAIBgNVBAMMAWExFDAIBgNVBAoMAWIw\n"                           \
    "CAYDVQQLDAFjMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEDEsmAZVUETx+o7Uz\n"                           \
    "BQgxc5TgE9PHDuo41aHTasNwG90xPSYgLpp6cY83VaxFBtE6dMVE+r+hTnzZ2sNI\n"                           \
    "gwBJA6NTMFEwHQYDVR0OBBYEFKPLH9FwfG4G/jvT6/V8dfW1YgYGMB8GA1UdIwQY\n"                           \
    "MBaAFKPLH9FwfG4G/jvT6/V8dfW1YgYGMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZI\n"                           \
    "zj0EAwIDSAAwRQIgHtR+ynHd1vRuwjiV1WzO1BECLu9tEyWogQysRbczPZUCIQCx\n"                           \
    "ePtzatROZgLwhfrvVA8f5pDdYElsB9DQsoSfU5wKKg==\n"                                               \
    "-----END CERTIFICATE-----\n"

static guchar *pem_der(const char *pem, gsize *ret_len)
{
    g_autofree char *b64 = NULL, *block = NULL;
    g_autoptr(GError) error = NULL;
    g_assert_true(lw_trust_parse_root(pem, strlen(pem), &b64, &block, &error));
    return g_base64_decode(b64, ret_len);
}

static void test_subject_hash(void)
{
    const char *same[] = {CERT_SPACED, CERT_CANON};
    for (guint i = 0; i < G_N_ELEMENTS(same); i++) {
        gsize len = 0;
        g_autofree guchar *der = pem_der(same[i], &len);
        guint32 hash = 0;
        g_assert_true(lw_trust_subject_hash(der, len, &hash));
        g_assert_cmphex(hash, ==, 0x92e22fff);
        /* Cut anywhere, it does not parse. */
        for (gsize cut = 0; cut < 200; cut++)
            g_assert_false(lw_trust_subject_hash(der, cut, &hash));
    }
    gsize len = 0;
    g_autofree guchar *multi = pem_der(CERT_MULTI_RDN, &len);
    guint32 hash = 0;
    g_assert_false(lw_trust_subject_hash(multi, len, &hash));
}

static void remove_tree(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    if (d == NULL) {
        g_unlink(path);
        return;
    }
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL) {
        g_autofree char *child_path = g_build_filename(path, name, NULL);
        if (g_file_test(child_path, G_FILE_TEST_IS_SYMLINK))
            g_unlink(child_path);
        else
            remove_tree(child_path);
    }
    g_dir_close(d);
    g_rmdir(path);
}

static char *link_in(const char *dir, const char *name)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    return g_file_read_link(path, NULL);
}

static guint count_entries(const char *dir)
{
    GDir *d = g_dir_open(dir, 0, NULL);
    g_assert_nonnull(d);
    guint n = 0;
    while (g_dir_read_name(d) != NULL)
        n++;
    g_dir_close(d);
    return n;
}

/* A user's bundle becomes that bundle plus our root; a user's CA directory
 * a directory of links to its entries plus our root under its hash name;
 * what llmwrap cannot add to gives NULL (the variable is left as set). */
static void test_trust_user_values(void)
{
    g_autofree char *tmp = g_dir_make_tmp("lw-wrap-XXXXXX", NULL);
    g_autofree char *run = g_build_filename(tmp, "run", NULL);
    g_autofree char *root = g_build_filename(tmp, "root.pem", NULL);
    g_autofree char *user = g_build_filename(tmp, "certs", NULL);
    g_autofree char *bundle = g_build_filename(tmp, "corp.pem", NULL);
    g_assert_cmpint(g_mkdir(run, 0700), ==, 0);
    g_assert_cmpint(g_mkdir(user, 0700), ==, 0);
    g_assert_true(g_file_set_contents(root, CERT_SPACED, -1, NULL));
    g_assert_true(g_file_set_contents(bundle, CERT_MULTI_RDN, -1, NULL));
    const char *entries[] = {"corp.pem", "92e22fff.0", "1234abcd.0"};
    for (guint i = 0; i < G_N_ELEMENTS(entries); i++) {
        g_autofree char *path = g_build_filename(user, entries[i], NULL);
        g_assert_true(g_file_set_contents(path, CERT_MULTI_RDN, -1, NULL));
    }
    /* Unchanged for an hour: the links directory gets the stamp that lets
     * the next run skip listing it. */
    struct timespec hour_ago[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = time(NULL) - 3600}};
    g_assert_cmpint(utimensat(AT_FDCWD, user, hour_ago, 0), ==, 0);
    g_autoptr(GError) error = NULL;
    g_autoptr(LwTrust) t = lw_trust_prepare(run, root, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(t->has_root_hash);
    g_assert_cmphex(t->root_hash, ==, 0x92e22fff);

    /* A bundle. */
    g_autofree char *file = lw_trust_combined_for(t, bundle, &error);
    g_assert_no_error(error);
    g_autofree char *text = NULL;
    g_assert_true(g_file_get_contents(file, &text, NULL, NULL));
    g_assert_true(g_str_has_prefix(text, CERT_MULTI_RDN));
    g_assert_true(g_str_has_suffix(text, t->root_block));

    /* A directory: the user's 92e22fff.0 keeps its name, ours comes next. */
    g_autofree char *dir = lw_trust_combined_for(t, user, &error);
    g_assert_no_error(error);
    g_assert_true(g_str_has_prefix(dir, t->dir));
    g_assert_cmpuint(count_entries(dir), ==, 4);
    for (guint i = 0; i < G_N_ELEMENTS(entries); i++) {
        g_autofree char *want = g_build_filename(user, entries[i], NULL);
        g_autofree char *got = link_in(dir, entries[i]);
        g_assert_cmpstr(got, ==, want);
    }
    g_autofree char *ours = link_in(dir, "92e22fff.1");
    g_assert_cmpstr(ours, ==, t->ca_file);
    GStatBuf st;
    g_assert_cmpint(g_stat(dir, &st), ==, 0);
    g_assert_cmpint(st.st_mtime, ==, hour_ago[1].tv_sec);
    g_autofree char *same = lw_trust_combined_for(t, user, &error);
    g_assert_cmpstr(same, ==, dir);

    /* The next run follows the user's directory; a nested llmwrap uses
     * ours as it is. */
    g_autofree char *gone = g_build_filename(user, "1234abcd.0", NULL);
    g_assert_cmpint(g_unlink(gone), ==, 0);
    g_autofree char *again = lw_trust_combined_for(t, user, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(again, ==, dir);
    g_assert_cmpuint(count_entries(dir), ==, 3);
    g_autofree char *stale = link_in(dir, "1234abcd.0");
    g_assert_null(stale);
    g_autofree char *nested = lw_trust_combined_for(t, dir, &error);
    g_assert_cmpstr(nested, ==, dir);
    g_autofree char *nested_file = lw_trust_combined_for(t, file, &error);
    g_assert_cmpstr(nested_file, ==, file);

    /* Nothing to add to: missing, empty, not a file or a directory. */
    const char *none[] = {gone, "", "/dev/null", NULL};
    for (guint i = 0; i < G_N_ELEMENTS(none); i++) {
        g_autofree char *v = lw_trust_combined_for(t, none[i], &error);
        g_assert_no_error(error);
        g_assert_null(v);
    }

    /* A missing SSL_CERT_FILE: the combined file starts from the system's. */
    g_autoptr(LwTrust) t2 = lw_trust_prepare(run, root, gone, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(t2->bundle_source, ==, lw_trust_system_bundle());
    remove_tree(tmp);
}

/* ---- PATH lookup ---- */

static char *make_file(const char *dir, const char *name, int mode)
{
    char *path = g_build_filename(dir, name, NULL);
    g_assert_true(g_file_set_contents(path, "#!/bin/sh\n", -1, NULL));
    g_assert_cmpint(g_chmod(path, mode), ==, 0);
    return path;
}

static void test_lookup(void)
{
    g_autofree char *tmp = g_dir_make_tmp("lw-wrap-XXXXXX", NULL);
    g_autofree char *a = g_build_filename(tmp, "a", NULL);
    g_autofree char *b = g_build_filename(tmp, "b", NULL);
    g_assert_cmpint(g_mkdir(a, 0700), ==, 0);
    g_assert_cmpint(g_mkdir(b, 0700), ==, 0);
    g_autofree char *denied = make_file(a, "tool", 0644);
    g_autofree char *runnable = make_file(b, "tool", 0755);
    g_autofree char *only_denied = make_file(a, "other", 0644);
    g_autofree char *path_env = g_strdup_printf("%s:%s", a, b);
    char *found = NULL;
    int err = 0;

    /* As execvp: a non-executable match is skipped for a later one. */
    g_assert_cmpint(lw_program_lookup("tool", path_env, &found, &err), ==, LW_LOOKUP_FOUND);
    g_assert_cmpstr(found, ==, runnable);
    g_clear_pointer(&found, g_free);
    g_assert_cmpint(lw_program_lookup("other", path_env, &found, &err), ==,
                    LW_LOOKUP_NOT_EXECUTABLE);
    g_assert_cmpint(err, ==, EACCES);
    g_assert_cmpint(lw_program_lookup("missing", path_env, &found, &err), ==, LW_LOOKUP_NOT_FOUND);
    g_assert_cmpint(err, ==, ENOENT);
    g_assert_cmpint(lw_program_lookup("", path_env, &found, &err), ==, LW_LOOKUP_NOT_FOUND);
    /* A name with a slash is not searched. */
    g_assert_cmpint(lw_program_lookup(runnable, "/nonexistent", &found, &err), ==, LW_LOOKUP_FOUND);
    g_clear_pointer(&found, g_free);
    g_assert_cmpint(lw_program_lookup(denied, NULL, &found, &err), ==, LW_LOOKUP_NOT_EXECUTABLE);
    g_assert_cmpint(lw_program_lookup(a, NULL, &found, &err), ==, LW_LOOKUP_NOT_EXECUTABLE);
    g_assert_cmpint(err, ==, EISDIR);
    g_autofree char *nothere = g_build_filename(tmp, "nothere", NULL);
    g_assert_cmpint(lw_program_lookup(nothere, NULL, &found, &err), ==, LW_LOOKUP_NOT_FOUND);
    g_assert_null(found);

    g_unlink(denied);
    g_unlink(runnable);
    g_unlink(only_denied);
    g_rmdir(a);
    g_rmdir(b);
    g_rmdir(tmp);
}

static void test_shebang(void)
{
    g_autofree char *tmp = g_dir_make_tmp("lw-wrap-XXXXXX", NULL);
    g_autofree char *script = g_build_filename(tmp, "s", NULL);
    g_assert_true(g_file_set_contents(script, "#!/usr/bin/env -S -i A=1 sh -e\necho\n", -1, NULL));
    g_autoptr(LwProgram) p = lw_program_inspect(script, "/usr/bin:/bin");
    g_assert_true(p->is_script);
    g_assert_false(p->is_elf);
    g_assert_cmpstr(p->interpreter_cmd, ==, "sh");
    g_assert_nonnull(p->interpreter);
    g_assert_true(lw_program_final(p)->is_elf);
    g_unlink(script);
    g_rmdir(tmp);
}

/* ---- the command line's redaction ---- */

#define R   LW_REDACTED
#define KEY "sk-live-TOPSECRET123"

typedef struct {
    const char *in[6]; /* NULL-terminated */
    const char *want[6];
} RedactCase;

static const RedactCase redact_cases[] = {
    /* Nothing secret: unchanged. */
    {{"python3", "agent.py", "--max-tokens", "100"},
     {"python3", "agent.py", "--max-tokens", "100"}},
    {{"curl", "-H", "authorization: Bearer sk-test"}, {"curl", "-H", "authorization: Bearer " R}},
    {{"ls", "--keyboard", "x", "task-runner-and-more"},
     {"ls", "--keyboard", "x", "task-runner-and-more"}},
    {{"pytest", "-k", "sk-test"}, {"pytest", "-k", "sk-test"}},
    /* Auth headers: the value goes, the scheme word stays. */
    {{"curl", "-H", "Authorization: Bearer " KEY, "https://api.openai.com"},
     {"curl", "-H", "Authorization: Bearer " R, "https://api.openai.com"}},
    {{"curl", "-HAuthorization:Basic dXNlcjpwYXNz"}, {"curl", "-HAuthorization:Basic " R}},
    {{"curl", "--header=x-api-key: abc"}, {"curl", "--header=x-api-key: " R}},
    {{"curl", "-H", "X-Goog-Api-Key: abc"}, {"curl", "-H", "X-Goog-Api-Key: " R}},
    {{"curl", "-H", "api-key:abc"}, {"curl", "-H", "api-key:" R}},
    {{"curl", "-H", "Proxy-Authorization: Basic Zm9v"},
     {"curl", "-H", "Proxy-Authorization: Basic " R}},
    {{"http", "Authorization:", "Bearer abc"}, {"http", "Authorization:", R}},
    {{"sh", "-c", "curl -d '{\"x-api-key\": \"abc\"}'"},
     {"sh", "-c", "curl -d '{\"x-api-key\": " R}},
    {{"curl", "-H", "X-Authorization-Hint: abc"}, {"curl", "-H", "X-Authorization-Hint: abc"}},
    /* Secret-named options, both forms. */
    {{"tool", "--api-key", "abc", "--model", "m"}, {"tool", "--api-key", R, "--model", "m"}},
    {{"tool", "--api-key=abc"}, {"tool", "--api-key=" R}},
    {{"tool", "--auth-token=abc", "--TOKEN", "abc"}, {"tool", "--auth-token=" R, "--TOKEN", R}},
    {{"tool", "--client-secret", "abc"}, {"tool", "--client-secret", R}},
    {{"tool", "--password", "abc", "x"}, {"tool", "--password", R, "x"}},
    {{"curl", "--oauth2-bearer", "abc"}, {"curl", "--oauth2-bearer", R}},
    {{"tool", "--apikey"}, {"tool", "--apikey"}},
    /* Environment assignments. */
    {{"env", "OPENAI_API_KEY=abc", "python3"}, {"env", "OPENAI_API_KEY=" R, "python3"}},
    {{"env", "GH_TOKEN=abc", "max_tokens=5"}, {"env", "GH_TOKEN=" R, "max_tokens=5"}},
    /* ... inside an argument: a shell command, an option that passes one on. */
    {{"sh", "-c", "cd x && OPENAI_API_KEY=abc python3 a.py; export GH_TOKEN=\"a b\" n=1"},
     {"sh", "-c", "cd x && OPENAI_API_KEY=" R " python3 a.py; export GH_TOKEN=\"" R "\" n=1"}},
    {{"docker", "run", "--env=OPENAI_API_KEY=abc", "-eANTHROPIC_API_KEY=abc", "img"},
     {"docker", "run", "--env=OPENAI_API_KEY=" R, "-eANTHROPIC_API_KEY=" R, "img"}},
    {{"sh", "-c", "max_tokens=5 x=1 tool"}, {"sh", "-c", "max_tokens=5 x=1 tool"}},
    {{"helm", "--set", "n=1,secrets.apiKey=abc", "--set", "image.tag=v1"},
     {"helm", "--set", "n=1,secrets.apiKey=" R, "--set", "image.tag=v1"}},
    /* Single-dash long options (Go's flag package, Java properties). */
    {{"tool", "-api-key=abc", "-token", "abc", "-k"}, {"tool", "-api-key=" R, "-token", R, "-k"}},
    {{"java", "-Dapi.key=abc", "-jar", "a.jar"}, {"java", "-Dapi.key=" R, "-jar", "a.jar"}},
    /* Key-shaped words, wherever they are. */
    {{"tool", KEY}, {"tool", R}},
    {{"tool", "sk-ant-api03-abcdefghij", "x"}, {"tool", R, "x"}},
    {{"tool", "https://x/v1?key=AIzaSyA1234567890abcdef&alt=sse"},
     {"tool", "https://x/v1?key=" R "&alt=sse"}},
    {{"tool", "xai-0123456789", "gsk_0123456789 and " KEY}, {"tool", R, R " and " R}},
    {{"tool", "pplx-0123456789abcdef", "fw_0123456789abcdef", "fw_x"}, {"tool", R, R, "fw_x"}},
    /* curl's user:password, in each of its forms; a bare user stays. */
    {{"curl", "-u", "me:hunter2", "https://x"}, {"curl", "-u", "me:" R, "https://x"}},
    {{"curl", "-ume:hunter2", "--user=me:pw", "--user", "me"},
     {"curl", "-ume:" R, "--user=me:" R, "--user", "me"}},
    {{"curl", "-U", "me:pw", "--proxy-user", "me:pw"},
     {"curl", "-U", "me:" R, "--proxy-user", "me:" R}},
    {{"python3", "-u", "agent.py", "-x"}, {"python3", "-u", "agent.py", "-x"}},
    /* Passwords in URLs; secret-named query parameters and JSON members. */
    {{"git", "clone", "https://me:ghp_abc@host/r.git", "ftp://host:21/x"},
     {"git", "clone", "https://me:" R "@host/r.git", "ftp://host:21/x"}},
    {{"curl", "https://x/v1?access_token=abc&alt=sse", "http://x/?max_tokens=5&token=t"},
     {"curl", "https://x/v1?access_token=" R "&alt=sse", "http://x/?max_tokens=5&token=" R}},
    {{"curl", "-d", "{\"model\": \"m\", \"api_key\": \"abc\\\"d\", \"n\": 1}"},
     {"curl", "-d", "{\"model\": \"m\", \"api_key\": \"" R "\", \"n\": 1}"}},
    {{"tool", "{\"max_tokens\": \"5\", \"token\": 7}"},
     {"tool", "{\"max_tokens\": \"5\", \"token\": 7}"}},
};

static void test_redact(gconstpointer data)
{
    const RedactCase *c = data;
    g_auto(GStrv) got = lw_redact_argv((char *const *)c->in);
    g_autofree char *got_s = g_strjoinv(" | ", got);
    g_autofree char *want_s = g_strjoinv(" | ", (char **)c->want);
    g_assert_cmpstr(got_s, ==, want_s);
}

static void test_redact_empty(void)
{
    g_auto(GStrv) none = lw_redact_argv(NULL);
    g_assert_nonnull(none);
    g_assert_null(none[0]);
    char *last[] = {"tool", "--api-key", NULL};
    g_auto(GStrv) got = lw_redact_argv(last);
    g_assert_cmpuint(g_strv_length(got), ==, 2);
    g_assert_cmpstr(got[1], ==, "--api-key");
}

/* The sum of the arguments' bytes, each with its NUL. */
static gsize argv_bytes(char **argv)
{
    gsize n = 0;
    for (guint i = 0; argv[i] != NULL; i++)
        n += strlen(argv[i]) + 1;
    return n;
}

/* A command line of megabytes (xargs, a generated file list) is recorded
 * cut: it must fit an IPC frame, or the run cannot be opened at all. */
static void test_redact_cut(void)
{
    g_autofree char *big = g_strnfill(40000, 'x');
    /* Cut inside an argument that carries a key: the key is redacted
     * first, so no prefix of it survives the cut. */
    g_autofree char *fill = g_strnfill(LW_REDACT_MAX_BYTES - 40000 - 5 - 10, 'y');
    g_autofree char *with_key = g_strconcat(fill, " ", KEY, " and more", NULL);
    char *in[] = {"tool", big, with_key, big, big, NULL};
    g_auto(GStrv) got = lw_redact_argv(in);
    g_assert_cmpuint(g_strv_length(got), ==, 4);
    g_assert_cmpstr(got[0], ==, "tool");
    g_assert_cmpstr(got[1], ==, big);
    g_assert_true(g_str_has_prefix(got[2], fill));
    g_assert_null(strstr(got[2], "sk-"));
    g_assert_cmpuint(argv_bytes(got) - (strlen(got[3]) + 1), ==, LW_REDACT_MAX_BYTES);
    gsize total = 5 + 40001 + strlen(fill) + 1 + strlen(R) + strlen(" and more") + 1 + 2 * 40001;
    g_autofree char *note = g_strdup_printf("[%" G_GSIZE_FORMAT " more bytes not recorded]",
                                            total - LW_REDACT_MAX_BYTES);
    g_assert_cmpstr(got[3], ==, note);

    /* A cut never splits a character; a last argument cut still ends with
     * the note. */
    GString *wide = g_string_new(NULL);
    while (wide->len < LW_REDACT_MAX_BYTES + 10)
        g_string_append(wide, "\xc3\xa9");
    char *one[] = {wide->str, NULL};
    g_auto(GStrv) cut = lw_redact_argv(one);
    g_assert_cmpuint(g_strv_length(cut), ==, 2);
    g_assert_true(g_utf8_validate(cut[0], -1, NULL));
    g_assert_cmpuint(strlen(cut[0]), ==, LW_REDACT_MAX_BYTES - 2);
    g_assert_true(g_str_has_suffix(cut[1], " more bytes not recorded]"));
    g_string_free(wide, TRUE);

    /* Many short arguments: those past the limit are left out whole. */
    GPtrArray *many = g_ptr_array_new();
    for (guint i = 0; i < 100000; i++)
        g_ptr_array_add(many, (char *)"ab");
    g_ptr_array_add(many, NULL);
    g_auto(GStrv) few = lw_redact_argv((char *const *)many->pdata);
    guint kept = g_strv_length(few);
    g_assert_cmpuint(kept, ==, LW_REDACT_MAX_BYTES / 3 + 1);
    g_assert_cmpstr(few[kept - 1], ==, "[234465 more bytes not recorded]");
    g_ptr_array_free(many, TRUE);
}

/* The job summary's heading is one line: a multi-line `sh -c` script (as
 * CI files write them) ended it at its first line, and its # comments
 * became headings of their own. A long command is cut at a character. */
static void test_markdown_heading(void)
{
    LwRunSummary spend = {0};
    char *script[] = {"sh", "-c", "set -e\n# step two\r\n\tpython3 `a.py`", NULL};
    g_autofree char *md = lw_summary_markdown(7, script, 0, &spend, NULL);
    g_autofree char *first = g_strndup(md, strcspn(md, "\n"));
    g_assert_cmpstr(first, ==,
                    "### llmwrap run 7: `sh -c set -e # step two   python3 'a.py'` (exit 0)");
    g_assert_true(g_str_has_prefix(md + strlen(first), "\n\n|"));

    GString *wide = g_string_new(NULL);
    for (guint i = 0; i < 300; i++)
        g_string_append(wide, "\xc3\xa9");
    char *long_cmd[] = {"x", wide->str, NULL};
    g_autofree char *md2 = lw_summary_markdown(8, long_cmd, 3, NULL, "gone");
    const char *end = strchr(md2, '\n');
    g_assert_nonnull(end);
    g_autofree char *heading = g_strndup(md2, (gsize)(end - md2));
    g_assert_true(g_utf8_validate(heading, -1, NULL));
    g_assert_true(g_str_has_suffix(heading, " ...` (exit 3)"));
    g_assert_cmpuint(strlen(heading), <=, strlen("### llmwrap run 8: `") + 200 + 14);
    g_string_free(wide, TRUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (guint i = 0; i < G_N_ELEMENTS(usd_cases); i++) {
        g_autofree char *name = g_strdup_printf("/options/usd/%u", i);
        g_test_add_data_func(name, &usd_cases[i], test_parse_usd);
    }
    for (guint i = 0; i < G_N_ELEMENTS(format_cases); i++) {
        g_autofree char *name = g_strdup_printf("/options/format-usd/%u", i);
        g_test_add_data_func(name, &format_cases[i], test_format_usd);
    }
    for (guint i = 0; i < G_N_ELEMENTS(tag_cases); i++) {
        g_autofree char *name = g_strdup_printf("/options/tag/%u", i);
        g_test_add_data_func(name, &tag_cases[i], test_parse_tag);
    }
    g_test_add_func("/options/tag-limits", test_tag_limits);
    for (guint i = 0; i < G_N_ELEMENTS(preload_cases); i++) {
        g_autofree char *name = g_strdup_printf("/childenv/preload/%u", i);
        g_test_add_data_func(name, &preload_cases[i], test_preload_value);
    }
    g_test_add_func("/childenv/preload-without-shim", test_preload_without_shim);
    for (guint i = 0; i < G_N_ELEMENTS(godebug_cases); i++) {
        g_autofree char *name = g_strdup_printf("/childenv/godebug/%u", i);
        g_test_add_data_func(name, &godebug_cases[i], test_godebug);
    }
    for (guint i = 0; i < G_N_ELEMENTS(no_proxy_cases); i++) {
        g_autofree char *name = g_strdup_printf("/childenv/no-proxy/%u", i);
        g_test_add_data_func(name, &no_proxy_cases[i], test_no_proxy);
    }
    g_test_add_func("/childenv/child", test_child_env);
    g_test_add_func("/childenv/listen", test_listen_value);
    g_test_add_func("/childenv/child-user-trust", test_child_env_user_trust);
    g_test_add_func("/childenv/collector", test_collector_env);
    for (guint i = 0; i < G_N_ELEMENTS(trust_rule_cases); i++) {
        g_autofree char *name =
            g_strdup_printf("/childenv/trust-rules/%s", trust_rule_cases[i].name);
        g_test_add_data_func(name, &trust_rule_cases[i], test_trust_rules);
    }
    g_test_add_func("/trust/parse-root", test_parse_root);
    g_test_add_func("/trust/subject-hash", test_subject_hash);
    g_test_add_func("/trust/user-values", test_trust_user_values);
    g_test_add_func("/program/lookup", test_lookup);
    g_test_add_func("/program/shebang", test_shebang);
    for (guint i = 0; i < G_N_ELEMENTS(redact_cases); i++) {
        g_autofree char *name = g_strdup_printf("/redact/argv/%u", i);
        g_test_add_data_func(name, &redact_cases[i], test_redact);
    }
    g_test_add_func("/redact/empty", test_redact_empty);
    g_test_add_func("/redact/cut", test_redact_cut);
    g_test_add_func("/summary/markdown-heading", test_markdown_heading);
    return g_test_run();
}
