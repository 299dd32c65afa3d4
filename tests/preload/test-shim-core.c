/* test-shim-core.c - the preload shim's decisions, without preloading:
 * configuration parsing, host and address matching, hostent filling,
 * base64, and the exec environment merge. */
#include "shim-core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <string.h>

#define HOSTS11                                                                                    \
    "api.openai.com,api.anthropic.com,generativelanguage.googleapis.com,api.x.ai,openrouter.ai,"   \
    "api.deepseek.com,api.groq.com,api.mistral.ai,api.together.xyz,api.fireworks.ai,"              \
    "api.perplexity.ai"

static LwShimConfig *config_new(char *const *envp, LwShimStatus expect)
{
    LwShimConfig *cfg = g_new0(LwShimConfig, 1);
    const char *bad = NULL;
    g_assert_cmpint(lw_shim_config_parse(cfg, envp, &bad), ==, expect);
    return cfg;
}

static LwShimConfig *config_default(void)
{
    char *envp[] = {"LLMWRAP_HOSTS=" HOSTS11, "LLMWRAP_PORT=4443", NULL};
    return config_new(envp, LW_SHIM_ACTIVE);
}

/* ---- configuration ---- */

static void test_config_full(void)
{
    char *envp[] = {
        "HOME=/home/u",
        "LLMWRAP_HOSTS=API.OpenAI.com.,api.anthropic.com",
        "LLMWRAP_NET=7",
        "LLMWRAP_PORT=65535",
        "LLMWRAP_RUN_ID=18446744073709551615",
        "LLMWRAP_ATTRIB_SOCK=/run/llmwrap/attrib.sock",
        "LLMWRAP_CA_DER=AAEC/w==",
        "LLMWRAP_TLS_HOOK=0",
        "LLMWRAP_FAIL_OPEN=1",
        "LLMWRAP_PROPAGATE=0",
        "LLMWRAP_PRELOAD=/usr/lib/llmwrap/libllmwrap-preload.so",
        "LLMWRAP_TEST_REAL_ADDR=127.0.0.1:8080",
        "LLMWRAP_PORT=1", /* getenv semantics: the first one wins */
        NULL,
    };
    g_autofree LwShimConfig *cfg = config_new(envp, LW_SHIM_ACTIVE);
    g_assert_cmpuint(cfg->net.count, ==, 2);
    g_assert_cmphex(cfg->net.base, ==, 0x7f070000);
    g_assert_cmpstr(cfg->hosts[0], ==, "api.openai.com");
    g_assert_cmpuint(cfg->port, ==, 65535);
    g_assert_cmpuint(cfg->run_id, ==, G_MAXUINT64);
    g_assert_true(cfg->has_attrib);
    g_assert_cmpstr(cfg->attrib_addr.sun_path, ==, "/run/llmwrap/attrib.sock");
    g_assert_cmpuint(cfg->ca_der_len, ==, 4);
    g_assert_cmpmem(cfg->ca_der, 4, "\x00\x01\x02\xff", 4);
    g_assert_false(cfg->tls_hook);
    g_assert_true(cfg->fail_open);
    g_assert_false(cfg->propagate);
    g_assert_cmpstr(cfg->preload, ==, "/usr/lib/llmwrap/libllmwrap-preload.so");
    g_assert_true(cfg->has_test_real_addr);
    g_assert_cmpuint(ntohs(cfg->test_real_addr.sin_port), ==, 8080);
    g_assert_cmphex(ntohl(cfg->test_real_addr.sin_addr.s_addr), ==, 0x7f000001);
}

static void test_config_defaults(void)
{
    g_autofree LwShimConfig *cfg = config_default();
    g_assert_cmpuint(cfg->net.count, ==, 11);
    g_assert_cmphex(cfg->net.base, ==, 0x7ff10000); /* 127.241 */
    g_assert_cmpuint(cfg->run_id, ==, 0);
    g_assert_false(cfg->has_attrib);
    g_assert_cmpuint(cfg->ca_der_len, ==, 0);
    g_assert_true(cfg->tls_hook);
    g_assert_false(cfg->fail_open);
    g_assert_true(cfg->propagate);
    g_assert_cmpstr(cfg->preload, ==, "");
    g_assert_false(cfg->has_test_real_addr);
}

typedef struct {
    const char *name;
    const char *vars[4]; /* added to a valid base environment, taking precedence */
    LwShimStatus status;
    const char *bad_var; /* inert: the variable named; active: the one replaced */
} ConfigCase;

static const ConfigCase config_cases[] = {
    {"empty-hosts", {"LLMWRAP_HOSTS="}, LW_SHIM_INERT_UNSET, NULL},
    {"collector", {"LLMWRAP_COLLECTOR=1"}, LW_SHIM_INERT_COLLECTOR, NULL},
    {"collector-0", {"LLMWRAP_COLLECTOR=0"}, LW_SHIM_ACTIVE, NULL},
    {"hosts-empty-entry", {"LLMWRAP_HOSTS=a.com,,b.com"}, LW_SHIM_INERT_MALFORMED, "LLMWRAP_HOSTS"},
    {"hosts-leading-comma", {"LLMWRAP_HOSTS=,a.com"}, LW_SHIM_INERT_MALFORMED, "LLMWRAP_HOSTS"},
    {"hosts-trailing-comma", {"LLMWRAP_HOSTS=a.com,"}, LW_SHIM_INERT_MALFORMED, "LLMWRAP_HOSTS"},
    {"hosts-space", {"LLMWRAP_HOSTS=a.com, b.com"}, LW_SHIM_INERT_MALFORMED, "LLMWRAP_HOSTS"},
    {"hosts-dot", {"LLMWRAP_HOSTS=."}, LW_SHIM_INERT_MALFORMED, "LLMWRAP_HOSTS"},
    {"hosts-leading-dot", {"LLMWRAP_HOSTS=.a.com"}, LW_SHIM_INERT_MALFORMED, "LLMWRAP_HOSTS"},
    {"hosts-slash", {"LLMWRAP_HOSTS=a.com/x"}, LW_SHIM_INERT_MALFORMED, "LLMWRAP_HOSTS"},
    {"net-0", {"LLMWRAP_NET=0"}, LW_SHIM_ACTIVE, "LLMWRAP_NET"},
    {"net-255", {"LLMWRAP_NET=255"}, LW_SHIM_ACTIVE, "LLMWRAP_NET"},
    {"net-text", {"LLMWRAP_NET=abc"}, LW_SHIM_ACTIVE, "LLMWRAP_NET"},
    {"net-negative", {"LLMWRAP_NET=-1"}, LW_SHIM_ACTIVE, "LLMWRAP_NET"},
    {"net-suffix", {"LLMWRAP_NET=241x"}, LW_SHIM_ACTIVE, "LLMWRAP_NET"},
    {"net-leading-zero", {"LLMWRAP_NET=0241"}, LW_SHIM_ACTIVE, "LLMWRAP_NET"},
    {"net-space", {"LLMWRAP_NET= 241"}, LW_SHIM_ACTIVE, "LLMWRAP_NET"},
    {"net-huge", {"LLMWRAP_NET=99999999999999999999999"}, LW_SHIM_ACTIVE, "LLMWRAP_NET"},
    {"net-empty", {"LLMWRAP_NET="}, LW_SHIM_ACTIVE, NULL},
    {"net-1", {"LLMWRAP_NET=1"}, LW_SHIM_ACTIVE, NULL},
    {"net-254", {"LLMWRAP_NET=254"}, LW_SHIM_ACTIVE, NULL},
    {"port-empty", {"LLMWRAP_PORT="}, LW_SHIM_INERT_MALFORMED, "LLMWRAP_PORT"},
    {"port-0", {"LLMWRAP_PORT=0"}, LW_SHIM_INERT_MALFORMED, "LLMWRAP_PORT"},
    {"port-65536", {"LLMWRAP_PORT=65536"}, LW_SHIM_INERT_MALFORMED, "LLMWRAP_PORT"},
    {"port-text", {"LLMWRAP_PORT=https"}, LW_SHIM_INERT_MALFORMED, "LLMWRAP_PORT"},
    {"port-plus", {"LLMWRAP_PORT=+443"}, LW_SHIM_INERT_MALFORMED, "LLMWRAP_PORT"},
    {"run-id-overflow", {"LLMWRAP_RUN_ID=18446744073709551616"}, LW_SHIM_ACTIVE, "LLMWRAP_RUN_ID"},
    {"run-id-text", {"LLMWRAP_RUN_ID=12a"}, LW_SHIM_ACTIVE, "LLMWRAP_RUN_ID"},
    {"attrib-relative",
     {"LLMWRAP_ATTRIB_SOCK=run/attrib.sock"},
     LW_SHIM_ACTIVE,
     "LLMWRAP_ATTRIB_SOCK"},
    {"attrib-too-long",
     {"LLMWRAP_ATTRIB_SOCK=/0123456789012345678901234567890123456789012345678901234567890123456789"
      "0123456789012345678901234567890123456789"},
     LW_SHIM_ACTIVE,
     "LLMWRAP_ATTRIB_SOCK"},
    {"ca-bad-char", {"LLMWRAP_CA_DER=AAEC*w=="}, LW_SHIM_ACTIVE, "LLMWRAP_CA_DER"},
    {"ca-newline", {"LLMWRAP_CA_DER=AAEC\n/w=="}, LW_SHIM_ACTIVE, "LLMWRAP_CA_DER"},
    {"ca-truncated", {"LLMWRAP_CA_DER=A"}, LW_SHIM_ACTIVE, "LLMWRAP_CA_DER"},
    {"tls-hook-yes", {"LLMWRAP_TLS_HOOK=yes"}, LW_SHIM_ACTIVE, "LLMWRAP_TLS_HOOK"},
    {"tls-hook-true", {"LLMWRAP_TLS_HOOK=true"}, LW_SHIM_ACTIVE, "LLMWRAP_TLS_HOOK"},
    {"tls-hook-off", {"LLMWRAP_TLS_HOOK=off"}, LW_SHIM_ACTIVE, "LLMWRAP_TLS_HOOK"},
    {"attrib-required-yes",
     {"LLMWRAP_ATTRIB_REQUIRED=yes"},
     LW_SHIM_ACTIVE,
     "LLMWRAP_ATTRIB_REQUIRED"},
    {"fail-open-2", {"LLMWRAP_FAIL_OPEN=2"}, LW_SHIM_ACTIVE, "LLMWRAP_FAIL_OPEN"},
    {"propagate-true", {"LLMWRAP_PROPAGATE=true"}, LW_SHIM_ACTIVE, "LLMWRAP_PROPAGATE"},
    {"preload-relative",
     {"LLMWRAP_PRELOAD=libllmwrap-preload.so"},
     LW_SHIM_ACTIVE,
     "LLMWRAP_PRELOAD"},
    {"real-addr-no-port",
     {"LLMWRAP_TEST_REAL_ADDR=127.0.0.1"},
     LW_SHIM_ACTIVE,
     "LLMWRAP_TEST_REAL_ADDR"},
    {"real-addr-name",
     {"LLMWRAP_TEST_REAL_ADDR=localhost:80"},
     LW_SHIM_ACTIVE,
     "LLMWRAP_TEST_REAL_ADDR"},
    {"real-addr-port-0",
     {"LLMWRAP_TEST_REAL_ADDR=127.0.0.1:0"},
     LW_SHIM_ACTIVE,
     "LLMWRAP_TEST_REAL_ADDR"},
};

static void test_config_case(gconstpointer data)
{
    const ConfigCase *c = data;
    char *envp[16];
    size_t n = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(c->vars) && c->vars[i] != NULL; i++)
        envp[n++] = (char *)c->vars[i];
    envp[n++] = "LLMWRAP_HOSTS=" HOSTS11;
    envp[n++] = "LLMWRAP_PORT=4443";
    envp[n] = NULL;

    g_autofree LwShimConfig *cfg = g_new0(LwShimConfig, 1);
    const char *bad = NULL;
    g_assert_cmpint(lw_shim_config_parse(cfg, envp, &bad), ==, c->status);
    if (c->status == LW_SHIM_INERT_MALFORMED)
        g_assert_cmpstr(bad, ==, c->bad_var);
    if (c->status == LW_SHIM_ACTIVE) {
        /* A malformed variable other than the hosts and the port is
         * replaced, and redirection stays on. */
        g_assert_cmpuint(cfg->n_ignored, ==, c->bad_var != NULL ? 1 : 0);
        if (c->bad_var != NULL)
            g_assert_cmpstr(cfg->ignored[0].var, ==, c->bad_var);
        g_assert_cmpuint(lw_shim_host_slot(cfg, "api.openai.com"), ==, 1);
    }
    if (c->status != LW_SHIM_ACTIVE) {
        /* Inert: nothing is a provider, no address is synthetic. */
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7ff10001)};
        g_assert_cmpuint(lw_shim_host_slot(cfg, "api.openai.com"), ==, 0);
        g_assert_cmpuint(lw_shim_sockaddr_slot(&cfg->net, (struct sockaddr *)&sin, sizeof sin), ==,
                         0);
    }
}

/* Each malformed knob takes the value that keeps provider traffic
 * metered, never the one a typo might have meant. */
static void test_config_fallbacks(void)
{
    char *envp[] = {
        "LLMWRAP_HOSTS=" HOSTS11,
        "LLMWRAP_PORT=4443",
        "LLMWRAP_NET=300",
        "LLMWRAP_RUN_ID=12a",
        "LLMWRAP_ATTRIB_SOCK=/run/llmwrap/attrib.sock",
        "LLMWRAP_CA_DER=!!",
        "LLMWRAP_TLS_HOOK=off",
        "LLMWRAP_FAIL_OPEN=true",
        "LLMWRAP_ATTRIB_REQUIRED=no",
        "LLMWRAP_PROPAGATE=false",
        "LLMWRAP_PRELOAD=libllmwrap-preload.so",
        "LLMWRAP_TEST_REAL_ADDR=localhost:80",
        NULL,
    };
    g_autofree LwShimConfig *cfg = config_new(envp, LW_SHIM_ACTIVE);
    g_assert_cmpuint(cfg->n_ignored, ==, 9);
    g_assert_cmphex(cfg->net.base, ==, 0x7ff10000);
    g_assert_cmpuint(lw_shim_host_slot(cfg, "api.openai.com"), ==, 1);
    g_assert_cmpuint(cfg->run_id, ==, 0);
    /* Attribution is configured but cannot be delivered: required, it
     * refuses the connection rather than let it go unattributed. */
    g_assert_true(cfg->has_attrib);
    g_assert_cmpuint(cfg->attrib_addr_len, ==, sizeof(sa_family_t));
    g_assert_true(cfg->attrib_required);
    g_assert_cmpuint(cfg->ca_der_len, ==, 0);
    g_assert_true(cfg->tls_hook);
    g_assert_false(cfg->fail_open);
    g_assert_true(cfg->propagate);
    g_assert_cmpstr(cfg->preload, ==, "");
    g_assert_false(cfg->has_test_real_addr);
    for (unsigned i = 0; i < cfg->n_ignored; i++)
        g_assert_nonnull(cfg->ignored[i].instead);

    char *bad_sock[] = {"LLMWRAP_HOSTS=a.com", "LLMWRAP_PORT=1", "LLMWRAP_ATTRIB_SOCK=rel.sock",
                        NULL};
    g_autofree LwShimConfig *s = config_new(bad_sock, LW_SHIM_ACTIVE);
    g_assert_true(s->has_attrib);
    g_assert_cmpuint(s->attrib_addr_len, ==, sizeof(sa_family_t));
    g_assert_false(s->attrib_required);
}

/* What llmwrap checks before it runs anything. */
static void test_user_knobs(void)
{
    static const struct {
        const char *name, *value;
        bool ok;
    } cases[] = {
        {"LLMWRAP_TLS_HOOK", "0", true},
        {"LLMWRAP_TLS_HOOK", "1", true},
        {"LLMWRAP_TLS_HOOK", "", true},
        {"LLMWRAP_TLS_HOOK", "true", false},
        {"LLMWRAP_TLS_HOOK", "off", false},
        {"LLMWRAP_TLS_HOOK", " 1", false},
        {"LLMWRAP_PROPAGATE", "0", true},
        {"LLMWRAP_PROPAGATE", "no", false},
        {"LLMWRAP_TEST_REAL_ADDR", "127.0.0.1:80", true},
        {"LLMWRAP_TEST_REAL_ADDR", "", true},
        {"LLMWRAP_TEST_REAL_ADDR", "localhost:80", false},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        const char *expected = NULL;
        g_assert_true(lw_shim_knob_valid(cases[i].name, cases[i].value, &expected) == cases[i].ok);
        g_assert_nonnull(expected);
    }
    size_t n = 0;
    while (lw_shim_user_knobs[n] != NULL)
        n++;
    g_assert_cmpuint(n, ==, 3);
}

static void test_config_unset(void)
{
    char *empty[] = {NULL};
    g_autofree LwShimConfig *a = config_new(NULL, LW_SHIM_INERT_UNSET);
    g_autofree LwShimConfig *b = config_new(empty, LW_SHIM_INERT_UNSET);
    char *port_only[] = {"LLMWRAP_PORT=1", NULL};
    g_autofree LwShimConfig *c = config_new(port_only, LW_SHIM_INERT_UNSET);
    g_assert_cmpuint(a->net.count + b->net.count + c->net.count, ==, 0);
}

static void test_config_missing_port(void)
{
    char *envp[] = {"LLMWRAP_HOSTS=a.com", NULL};
    const char *bad = NULL;
    g_autofree LwShimConfig *cfg = g_new0(LwShimConfig, 1);
    g_assert_cmpint(lw_shim_config_parse(cfg, envp, &bad), ==, LW_SHIM_INERT_MALFORMED);
    g_assert_cmpstr(bad, ==, "LLMWRAP_PORT");
}

static void test_config_host_limits(void)
{
    /* 64 hosts are accepted, 65 are not; a 253-byte host is, 254 is not. */
    GString *hosts = g_string_new("LLMWRAP_HOSTS=");
    for (int i = 1; i <= 64; i++)
        g_string_append_printf(hosts, "%sh%d.example", i > 1 ? "," : "", i);
    char *envp[] = {hosts->str, "LLMWRAP_PORT=1", NULL};
    g_autofree LwShimConfig *cfg = config_new(envp, LW_SHIM_ACTIVE);
    g_assert_cmpuint(cfg->net.count, ==, 64);
    g_assert_cmpuint(lw_shim_host_slot(cfg, "h64.example"), ==, 64);
    g_string_append(hosts, ",h65.example");
    envp[0] = hosts->str;
    g_autofree LwShimConfig *over = config_new(envp, LW_SHIM_INERT_MALFORMED);
    g_assert_cmpuint(lw_shim_host_slot(over, "h1.example"), ==, 0);

    g_autofree char *h253 = g_strnfill(253, 'a');
    g_autofree char *v253 = g_strconcat("LLMWRAP_HOSTS=", h253, NULL);
    envp[0] = v253;
    g_autofree LwShimConfig *ok = config_new(envp, LW_SHIM_ACTIVE);
    g_assert_cmpuint(lw_shim_host_slot(ok, h253), ==, 1);
    g_autofree char *v254 = g_strconcat("LLMWRAP_HOSTS=a", h253, NULL);
    envp[0] = v254;
    g_autofree LwShimConfig *long_host = config_new(envp, LW_SHIM_INERT_MALFORMED);
    g_assert_cmpuint(long_host->net.count, ==, 0);
    g_string_free(hosts, TRUE);
}

/* ---- host matching ---- */

typedef struct {
    const char *name;
    unsigned slot;
} HostCase;

static const HostCase host_cases[] = {
    {"api.openai.com", 1},
    {"API.OPENAI.COM", 1},
    {"Api.OpenAI.Com", 1},
    {"api.openai.com.", 1},
    {"api.anthropic.com", 2},
    {"generativelanguage.googleapis.com", 3},
    {"api.perplexity.ai", 11},
    {"api.openai.com..", 0},
    {"api.openai.com.evil", 0},
    {"api.openai.com.evil.", 0},
    {"evil.api.openai.com", 0},
    {"xapi.openai.com", 0},
    {"api.openai.co", 0},
    {"api.openai.comm", 0},
    {"api-openai.com", 0},
    {"googleapis.com", 0},
    {"localhost", 0},
    {"127.241.0.1", 0},
    {"", 0},
    {".", 0},
};

static void test_host_case(gconstpointer data)
{
    const HostCase *c = data;
    g_autofree LwShimConfig *cfg = config_default();
    g_assert_cmpuint(lw_shim_host_slot(cfg, c->name), ==, c->slot);
    if (c->slot != 0) {
        /* The table keeps the canonical spelling: lowercase, no trailing dot. */
        g_autofree char *canon = g_ascii_strdown(c->name, -1);
        if (g_str_has_suffix(canon, "."))
            canon[strlen(canon) - 1] = '\0';
        g_assert_cmpstr(lw_shim_slot_host(cfg, c->slot), ==, canon);
    }
}

static void test_host_edge(void)
{
    g_autofree LwShimConfig *cfg = config_default();
    g_assert_cmpuint(lw_shim_host_slot(cfg, NULL), ==, 0);
    g_autofree char *huge = g_strnfill(10000, 'a');
    g_assert_cmpuint(lw_shim_host_slot(cfg, huge), ==, 0);
    g_assert_null(lw_shim_slot_host(cfg, 0));
    g_assert_null(lw_shim_slot_host(cfg, 12));
    g_assert_cmpstr(lw_shim_slot_host(cfg, 11), ==, "api.perplexity.ai");
}

/* ---- synthetic addresses ---- */

typedef struct {
    const char *addr;
    unsigned slot;
} AddrCase;

static const AddrCase addr_cases[] = {
    {"127.241.0.1", 1},
    {"127.241.0.11", 11},
    {"127.241.0.0", 0},  /* slot 0 does not exist */
    {"127.241.0.12", 0}, /* beyond the 11 configured hosts */
    {"127.241.0.255", 0},
    {"127.241.1.1", 0},
    {"127.242.0.1", 0},
    {"127.0.0.1", 0},
    {"10.241.0.1", 0},
    {"0.0.0.0", 0},
    {"::ffff:127.241.0.1", 1},
    {"::ffff:127.241.0.11", 11},
    {"::ffff:127.241.0.12", 0},
    {"::ffff:127.241.0.0", 0},
    {"::127.241.0.1", 0}, /* v4-compatible, not v4-mapped */
    {"64:ff9b::127.241.0.1", 0},
    {"::1", 0},
    {"::", 0},
};

static void test_addr_case(gconstpointer data)
{
    const AddrCase *c = data;
    g_autofree LwShimConfig *cfg = config_default();
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (strchr(c->addr, ':') != NULL) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        g_assert_cmpint(inet_pton(AF_INET6, c->addr, &sin6->sin6_addr), ==, 1);
        len = sizeof *sin6;
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        g_assert_cmpint(inet_pton(AF_INET, c->addr, &sin->sin_addr), ==, 1);
        len = sizeof *sin;
    }
    g_assert_cmpuint(lw_shim_sockaddr_slot(&cfg->net, (struct sockaddr *)&ss, len), ==, c->slot);
    /* A truncated address is never synthetic. */
    g_assert_cmpuint(lw_shim_sockaddr_slot(&cfg->net, (struct sockaddr *)&ss, len - 1), ==, 0);
}

static void test_addr_edge(void)
{
    g_autofree LwShimConfig *cfg = config_default();
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7ff10001)};
    g_assert_cmpuint(lw_shim_sockaddr_slot(&cfg->net, NULL, sizeof sin), ==, 0);
    g_assert_cmpuint(lw_shim_sockaddr_slot(&cfg->net, (struct sockaddr *)&sin, 0), ==, 0);
    g_assert_cmpuint(lw_shim_sockaddr_slot(&cfg->net, (struct sockaddr *)&sin, 1), ==, 0);
    sin.sin_family = AF_UNIX;
    g_assert_cmpuint(lw_shim_sockaddr_slot(&cfg->net, (struct sockaddr *)&sin, sizeof sin), ==, 0);

    /* A zeroed net (inert shim) matches nothing, not even 0.0.0.x. */
    LwShimNet zero = {0};
    for (uint32_t a = 0; a < 0x300; a++)
        g_assert_cmpuint(lw_shim_v4_slot(&zero, a), ==, 0);

    /* Another X: 127.7.0.i */
    char *envp[] = {"LLMWRAP_HOSTS=a.com,b.com", "LLMWRAP_PORT=1", "LLMWRAP_NET=7", NULL};
    g_autofree LwShimConfig *seven = config_new(envp, LW_SHIM_ACTIVE);
    g_assert_cmpuint(lw_shim_v4_slot(&seven->net, 0x7f070002), ==, 2);
    g_assert_cmpuint(lw_shim_v4_slot(&seven->net, 0x7f070003), ==, 0);
    g_assert_cmpuint(lw_shim_v4_slot(&seven->net, 0x7ff10001), ==, 0);
}

/* ---- the collector's listen addresses ---- */

#define LISTEN "127.0.0.1:4000,[::1]:4000,0.0.0.0:5000,[::]:6000,192.0.2.7:7000"

typedef struct {
    const char *addr;
    unsigned port;
    bool match;
} ListenCase;

static const ListenCase listen_cases[] = {
    {"127.0.0.1", 4000, true},
    {"::ffff:127.0.0.1", 4000, true}, /* an AF_INET6 socket reaches it too */
    {"127.0.0.1", 4001, false},
    {"127.0.0.2", 4000, false},
    {"::1", 4000, true},
    {"::ffff:127.0.0.2", 4000, false},
    {"0.0.0.0", 4000, true}, /* Linux connects it to 127.0.0.1 */
    {"::ffff:0.0.0.0", 4000, true},
    {"::", 4000, true}, /* and this to ::1 */
    /* 0.0.0.0: any loopback address, in either form, but not IPv6's */
    {"127.0.0.1", 5000, true},
    {"127.1.2.3", 5000, true},
    {"::ffff:127.9.9.9", 5000, true},
    {"0.0.0.0", 5000, true},
    {"::1", 5000, false},
    {"10.0.0.1", 5000, false},
    {"::ffff:10.0.0.1", 5000, false},
    /* [::]: ::1 only (the collector listens on it IPv6-only) */
    {"::1", 6000, true},
    {"::", 6000, true},
    {"127.0.0.1", 6000, false},
    {"::ffff:127.0.0.1", 6000, false},
    {"::2", 6000, false},
    /* another address, exactly */
    {"192.0.2.7", 7000, true},
    {"::ffff:192.0.2.7", 7000, true},
    {"192.0.2.8", 7000, false},
    {"127.0.0.1", 7000, false},
    /* providers' synthetic addresses are not listen addresses */
    {"127.241.0.1", 4443, false},
    {"127.0.0.1", 443, false},
};

static LwShimConfig *config_listen(const char *listen)
{
    g_autofree char *var = g_strconcat("LLMWRAP_LISTEN=", listen, NULL);
    char *envp[] = {"LLMWRAP_HOSTS=" HOSTS11, "LLMWRAP_PORT=4443", var, NULL};
    return config_new(envp, LW_SHIM_ACTIVE);
}

static void test_listen_case(gconstpointer data)
{
    const ListenCase *c = data;
    g_autofree LwShimConfig *cfg = config_listen(LISTEN);
    g_assert_cmpuint(cfg->n_ignored, ==, 0);
    g_assert_cmpuint(cfg->listen.count, ==, 5);
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (strchr(c->addr, ':') != NULL) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)c->port);
        g_assert_cmpint(inet_pton(AF_INET6, c->addr, &sin6->sin6_addr), ==, 1);
        len = sizeof *sin6;
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)c->port);
        g_assert_cmpint(inet_pton(AF_INET, c->addr, &sin->sin_addr), ==, 1);
        len = sizeof *sin;
    }
    const struct sockaddr *sa = (const struct sockaddr *)&ss;
    g_assert_true(lw_shim_sockaddr_is_listen(&cfg->listen, sa, len) == c->match);
    /* A truncated address is never one (connect() takes an IPv6 one
     * without its scope id, RFC 2133's 24 bytes). */
    socklen_t short_len = ss.ss_family == AF_INET ? len - 1 : 23;
    g_assert_false(lw_shim_sockaddr_is_listen(&cfg->listen, sa, short_len));
    g_assert_true(lw_shim_sockaddr_is_listen(&cfg->listen, sa, short_len + 1) == c->match);
    /* Nor is anything without LLMWRAP_LISTEN, or in an inert shim. */
    g_autofree LwShimConfig *none = config_default();
    g_assert_false(lw_shim_sockaddr_is_listen(&none->listen, sa, len));
    char *inert_env[] = {"LLMWRAP_LISTEN=" LISTEN, "LLMWRAP_PORT=4443", NULL};
    g_autofree LwShimConfig *inert = config_new(inert_env, LW_SHIM_INERT_UNSET);
    g_assert_false(lw_shim_sockaddr_is_listen(&inert->listen, sa, len));
}

/* A malformed entry is reported and dropped; the others still count. */
static void test_listen_parse(void)
{
    static const char *const bad[] = {
        "localhost:4000",   "127.0.0.1",       "127.0.0.1:0",     "127.0.0.1:65536",
        "127.0.0.1:+1",     "127.0.0.1:04000", "::1:4000",        "[::1]4000",
        "[127.0.0.1]:4000", "[::1:4000",       "127.0.0.1:4000 ", "",
        "[]:4000",          ":4000",           "[::1%lo]:4000",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *v = g_strdup_printf("%s,127.0.0.1:1", bad[i]);
        g_autofree LwShimConfig *cfg = config_listen(v);
        g_assert_cmpuint(cfg->n_ignored, ==, 1);
        g_assert_cmpstr(cfg->ignored[0].var, ==, "LLMWRAP_LISTEN");
        g_assert_cmpuint(cfg->listen.count, ==, 1);
        g_assert_cmpuint(cfg->listen.addrs[0].port, ==, htons(1));
        g_assert_cmpuint(lw_shim_host_slot(cfg, "api.openai.com"), ==, 1);
    }

    /* 16 are kept; one more is reported. */
    g_autoptr(GString) many = g_string_new(NULL);
    for (unsigned i = 1; i <= LW_SHIM_MAX_LISTEN; i++)
        g_string_append_printf(many, "%s127.0.0.1:%u", i > 1 ? "," : "", i);
    g_autofree LwShimConfig *full = config_listen(many->str);
    g_assert_cmpuint(full->n_ignored, ==, 0);
    g_assert_cmpuint(full->listen.count, ==, LW_SHIM_MAX_LISTEN);
    g_string_append(many, ",127.0.0.1:17");
    g_autofree LwShimConfig *over = config_listen(many->str);
    g_assert_cmpuint(over->n_ignored, ==, 1);
    g_assert_cmpuint(over->listen.count, ==, LW_SHIM_MAX_LISTEN);

    /* Unset or empty: none. */
    g_autofree LwShimConfig *empty = config_listen("");
    g_assert_cmpuint(empty->n_ignored + empty->listen.count, ==, 0);
}

static void test_slot_literal(void)
{
    g_autofree LwShimConfig *cfg = config_default();
    char buf[INET6_ADDRSTRLEN];
    g_assert_true(lw_shim_slot_literal(&cfg->net, 3, AF_INET, buf, sizeof buf));
    g_assert_cmpstr(buf, ==, "127.241.0.3");
    g_assert_true(lw_shim_slot_literal(&cfg->net, 11, AF_INET6, buf, sizeof buf));
    g_assert_cmpstr(buf, ==, "::ffff:127.241.0.11");
    g_assert_false(lw_shim_slot_literal(&cfg->net, 11, AF_UNIX, buf, sizeof buf));
    g_assert_false(lw_shim_slot_literal(&cfg->net, 11, AF_INET, buf, strlen("127.241.0.11")));
    g_assert_true(lw_shim_slot_literal(&cfg->net, 11, AF_INET, buf, strlen("127.241.0.11") + 1));

    uint8_t addr[16];
    g_assert_cmpuint(lw_shim_slot_addr(&cfg->net, 2, AF_INET, addr), ==, 4);
    g_assert_cmpmem(addr, 4, "\x7f\xf1\x00\x02", 4);
    g_assert_cmpuint(lw_shim_slot_addr(&cfg->net, 2, AF_INET6, addr), ==, 16);
    g_assert_cmpmem(addr, 16, "\0\0\0\0\0\0\0\0\0\0\xff\xff\x7f\xf1\x00\x02", 16);
    g_assert_cmpuint(lw_shim_slot_addr(&cfg->net, 2, AF_UNIX, addr), ==, 0);
}

/* ---- hostent ---- */

static void check_hostent(const struct hostent *he, const char *name, int family,
                          const uint8_t *addr)
{
    size_t alen = family == AF_INET6 ? 16 : 4;
    g_assert_cmpstr(he->h_name, ==, name);
    g_assert_null(he->h_aliases[0]);
    g_assert_cmpint(he->h_addrtype, ==, family);
    g_assert_cmpint(he->h_length, ==, (int)alen);
    g_assert_nonnull(he->h_addr_list[0]);
    g_assert_cmpmem(he->h_addr_list[0], alen, addr, alen);
    g_assert_null(he->h_addr_list[1]);
}

static void test_hostent_fill(void)
{
    const char *name = "api.openai.com";
    static const uint8_t v4[4] = {127, 241, 0, 1};
    static const uint8_t v6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 241, 0, 1};
    for (int f = 0; f < 2; f++) {
        int family = f == 0 ? AF_INET : AF_INET6;
        const uint8_t *addr = f == 0 ? v4 : v6;
        size_t need = 3 * sizeof(char *) + (f == 0 ? 4 : 16) + strlen(name) + 1;
        /* Every misalignment of the caller's buffer, every size around the need. */
        for (size_t off = 0; off < sizeof(char *); off++) {
            size_t pad = (sizeof(char *) - off) % sizeof(char *);
            for (size_t len = 0; len <= need + pad + 2; len++) {
                g_autofree char *mem = g_malloc(len + off + 1);
                struct hostent he;
                int rc = lw_shim_hostent_fill(&he, mem + off, len, name, family, addr);
                if (len < need + pad) {
                    g_assert_cmpint(rc, ==, ERANGE);
                } else {
                    g_assert_cmpint(rc, ==, 0);
                    check_hostent(&he, name, family, addr);
                    g_assert_cmpint(((uintptr_t)he.h_addr_list) % sizeof(char *), ==, 0);
                }
            }
        }
    }
    struct hostent he;
    g_assert_cmpint(lw_shim_hostent_fill(&he, NULL, 1000, name, AF_INET, v4), ==, ERANGE);
}

/* ---- base64 ---- */

typedef struct {
    const char *in;
    long len; /* -1: rejected */
    const char *out;
} B64Case;

static const B64Case b64_cases[] = {
    {"", 0, ""},
    {"Zg==", 1, "f"},
    {"Zm8=", 2, "fo"},
    {"Zm9v", 3, "foo"},
    {"Zm9vYg==", 4, "foob"},
    {"Zm9vYg", 4, "foob"},
    {"Zm9vYmE=", 5, "fooba"},
    {"Zm9vYmFy", 6, "foobar"},
    {"+/+/", 3, "\xfb\xff\xbf"},
    {"Z", -1, NULL},
    {"Zg=", -1, NULL},
    {"Zh==", -1, NULL}, /* non-zero leftover bits */
    {"Zm9v\n", -1, NULL},
    {" Zm9v", -1, NULL},
    {"Zm-v", -1, NULL},
    {"Zm9v====", -1, NULL},
    {"Z===", -1, NULL},
};

static void test_base64_case(gconstpointer data)
{
    const B64Case *c = data;
    uint8_t out[16];
    long n = lw_shim_base64_decode(c->in, out, sizeof out);
    g_assert_cmpint(n, ==, c->len);
    if (n > 0)
        g_assert_cmpmem(out, (size_t)n, c->out, strlen(c->out));
}

static void test_base64_cap(void)
{
    uint8_t out[6];
    g_assert_cmpint(lw_shim_base64_decode("Zm9vYmFy", out, 6), ==, 6);
    g_assert_cmpint(lw_shim_base64_decode("Zm9vYmFy", out, 5), ==, -1);
    g_assert_cmpint(lw_shim_base64_decode("Zm9vYmFy", out, 0), ==, -1);
}

/* ---- exec environment ---- */

#define SHIM "/opt/lw/libllmwrap-preload.so"

static char *snap_env[] = {
    "HOME=/home/u",
    "LD_PRELOAD=" SHIM,
    "LLMWRAP_HOSTS=api.openai.com",
    "LLMWRAP_PORT=4443",
    "SSL_CERT_FILE=/lw/combined.pem",
    "GODEBUG=netdns=go",
    "LLMWRAP_PORT=9", /* duplicate: getenv sees the first */
    "NODE_EXTRA_CA_CERTS=/lw/ca.pem",
    "OTHER=1",
    NULL,
};

static LwShimEnvSnapshot *snapshot_new(void)
{
    LwShimEnvSnapshot *snap = g_new0(LwShimEnvSnapshot, 1);
    lw_shim_env_snapshot(snap, snap_env, SHIM);
    return snap;
}

/* Merges envp and returns a GStrv copy of the result (NULL on -1). */
static char **merge(const LwShimEnvSnapshot *snap, char *const *envp)
{
    size_t n = lw_shim_envp_count(envp, LW_SHIM_ENVP_MAX);
    g_assert_cmpuint(n, !=, SIZE_MAX);
    size_t cap = n + LW_SHIM_SNAP_MAX_VARS + 2;
    g_autofree char **out = g_new0(char *, cap);
    char preload[LW_SHIM_PRELOAD_MAX];
    long rc = lw_shim_envp_merge(snap, envp, out, cap, preload, sizeof preload);
    if (rc < 0)
        return NULL;
    g_assert_null(out[rc]);
    return g_strdupv(out);
}

static void test_snapshot(void)
{
    g_autofree LwShimEnvSnapshot *snap = snapshot_new();
    g_assert_cmpstr(snap->preload, ==, SHIM);
    g_assert_cmpuint(snap->count, ==, 5);
    g_assert_cmpstr(snap->vars[0], ==, "LLMWRAP_HOSTS=api.openai.com");
    g_assert_cmpstr(snap->vars[1], ==, "LLMWRAP_PORT=4443");
    g_assert_cmpstr(snap->vars[2], ==, "SSL_CERT_FILE=/lw/combined.pem");
    g_assert_cmpstr(snap->vars[3], ==, "GODEBUG=netdns=go");
    g_assert_cmpstr(snap->vars[4], ==, "NODE_EXTRA_CA_CERTS=/lw/ca.pem");

    /* A relative or missing preload path is never put into LD_PRELOAD. */
    g_autofree LwShimEnvSnapshot *rel = g_new0(LwShimEnvSnapshot, 1);
    lw_shim_env_snapshot(rel, snap_env, "libllmwrap-preload.so");
    g_assert_cmpuint(rel->preload_len, ==, 0);
    char *empty[] = {NULL};
    g_auto(GStrv) out = merge(rel, empty);
    g_assert_null(g_environ_getenv(out, "LD_PRELOAD"));
    g_assert_cmpstr(g_environ_getenv(out, "LLMWRAP_PORT"), ==, "4443");
}

static void test_snapshot_bounds(void)
{
    /* More propagated variables than fit: the first LW_SHIM_SNAP_MAX_VARS. */
    GPtrArray *env = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < LW_SHIM_SNAP_MAX_VARS + 10; i++)
        g_ptr_array_add(env, g_strdup_printf("LLMWRAP_V%d=%d", i, i));
    g_ptr_array_add(env, NULL);
    g_autofree LwShimEnvSnapshot *snap = g_new0(LwShimEnvSnapshot, 1);
    lw_shim_env_snapshot(snap, (char **)env->pdata, SHIM);
    g_assert_cmpuint(snap->count, ==, LW_SHIM_SNAP_MAX_VARS);
    g_assert_cmpstr(snap->vars[LW_SHIM_SNAP_MAX_VARS - 1], ==, "LLMWRAP_V47=47");
    g_ptr_array_unref(env);

    /* An oversized variable is skipped, the next one still taken. */
    g_autofree char *big_value = g_strnfill(LW_SHIM_SNAP_VAR_MAX, 'x');
    g_autofree char *big = g_strconcat("SSL_CERT_FILE=", big_value, NULL);
    char *envp[] = {big, "GODEBUG=x", NULL};
    lw_shim_env_snapshot(snap, envp, SHIM);
    g_assert_cmpuint(snap->count, ==, 1);
    g_assert_cmpstr(snap->vars[0], ==, "GODEBUG=x");

    /* The buffer fills up: later variables are dropped, never truncated. */
    GPtrArray *many = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < 10; i++)
        g_ptr_array_add(many, g_strdup_printf("LLMWRAP_B%d=%s", i, big_value + 100));
    g_ptr_array_add(many, NULL);
    lw_shim_env_snapshot(snap, (char **)many->pdata, SHIM);
    g_assert_cmpuint(snap->count, <, 10);
    g_assert_cmpuint(snap->count, >, 0);
    for (unsigned i = 0; i < snap->count; i++)
        g_assert_cmpstr(snap->vars[i], ==, many->pdata[i]);
    g_ptr_array_unref(many);
}

static void test_propagated_names(void)
{
    static const struct {
        const char *name;
        bool yes;
    } cases[] = {
        {"LLMWRAP_HOSTS", true},
        {"LLMWRAP_X", true},
        {"LLMWRAP_", false},
        {"LLMWRAPX", false},
        {"SSL_CERT_FILE", true},
        {"SSL_CERT_FILEX", false},
        {"SSL_CERT_DIR", true},
        {"SSL_CERT_DIRX", false},
        {"REQUESTS_CA_BUNDLE", true},
        {"CURL_CA_BUNDLE", true},
        {"GIT_SSL_CAINFO", true},
        {"AWS_CA_BUNDLE", true},
        {"CARGO_HTTP_CAINFO", true},
        {"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", true},
        {"NODE_EXTRA_CA_CERTS", true},
        {"DENO_CERT", true},
        {"GRPC_DNS_RESOLVER", true},
        {"GODEBUG", true},
        {"LD_PRELOAD", false},
        {"HOME", false},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
        g_assert_true(lw_shim_is_propagated_name(cases[i].name, strlen(cases[i].name)) ==
                      cases[i].yes);
}

static void test_preload_has(void)
{
    size_t n = strlen(SHIM);
    g_assert_true(lw_shim_preload_has(SHIM, SHIM, n));
    g_assert_true(lw_shim_preload_has("/a.so:" SHIM, SHIM, n));
    g_assert_true(lw_shim_preload_has("/a.so " SHIM " /b.so", SHIM, n));
    g_assert_true(lw_shim_preload_has("::" SHIM "::", SHIM, n));
    g_assert_false(lw_shim_preload_has("", SHIM, n));
    g_assert_false(lw_shim_preload_has(SHIM ".bak", SHIM, n));
    g_assert_false(lw_shim_preload_has("/x" SHIM, SHIM, n));
    g_assert_false(lw_shim_preload_has("/a.so", SHIM, n));
    g_assert_false(lw_shim_preload_has("/a.so", "", 0));
}

typedef struct {
    const char *name;
    const char *in[6];     /* the program's envp */
    const char *expect[8]; /* the exec's envp, in order */
} MergeCase;

#define ADDED                                                                                      \
    "LLMWRAP_HOSTS=api.openai.com", "LLMWRAP_PORT=4443", "SSL_CERT_FILE=/lw/combined.pem",         \
        "GODEBUG=netdns=go", "NODE_EXTRA_CA_CERTS=/lw/ca.pem"

static const MergeCase merge_cases[] = {
    {"empty", {NULL}, {"LD_PRELOAD=" SHIM, ADDED}},
    {"unrelated", {"PATH=/bin", "TERM=x"}, {"PATH=/bin", "TERM=x", "LD_PRELOAD=" SHIM, ADDED}},
    {"keeps-own-value",
     {"SSL_CERT_FILE=/mine.pem", "GODEBUG=http2client=0"},
     {"SSL_CERT_FILE=/mine.pem", "GODEBUG=http2client=0", "LD_PRELOAD=" SHIM,
      "LLMWRAP_HOSTS=api.openai.com", "LLMWRAP_PORT=4443", "NODE_EXTRA_CA_CERTS=/lw/ca.pem"}},
    {"keeps-empty-value",
     {"SSL_CERT_FILE=", "LLMWRAP_PORT=1", "LLMWRAP_HOSTS=h", "GODEBUG=", "NODE_EXTRA_CA_CERTS="},
     {"SSL_CERT_FILE=", "LLMWRAP_PORT=1", "LLMWRAP_HOSTS=h",
      "GODEBUG=", "NODE_EXTRA_CA_CERTS=", "LD_PRELOAD=" SHIM}},
    {"prepends-preload",
     {"LD_PRELOAD=/u/a.so", "X=1"},
     {"LD_PRELOAD=" SHIM ":/u/a.so", "X=1", ADDED}},
    {"prepends-preload-spaces",
     {"LD_PRELOAD=/u/a.so /u/b.so"},
     {"LD_PRELOAD=" SHIM ":/u/a.so /u/b.so", ADDED}},
    {"preload-empty", {"LD_PRELOAD="}, {"LD_PRELOAD=" SHIM, ADDED}},
    {"preload-present", {"LD_PRELOAD=/u/a.so:" SHIM}, {"LD_PRELOAD=/u/a.so:" SHIM, ADDED}},
    {"preload-near-miss", {"LD_PRELOAD=" SHIM ".old"}, {"LD_PRELOAD=" SHIM ":" SHIM ".old", ADDED}},
    {"preload-duplicate-entry",
     {"LD_PRELOAD=/u/a.so", "LD_PRELOAD=/u/b.so"},
     {"LD_PRELOAD=" SHIM ":/u/a.so", "LD_PRELOAD=/u/b.so", ADDED}},
};

static void check_strv(char **got, const char *const *expect, size_t n_expect)
{
    size_t n = 0;
    while (n < n_expect && expect[n] != NULL)
        n++;
    g_assert_nonnull(got);
    g_assert_cmpuint(g_strv_length(got), ==, n);
    for (size_t i = 0; i < n; i++)
        g_assert_cmpstr(got[i], ==, expect[i]);
}

static void test_merge_case(gconstpointer data)
{
    const MergeCase *c = data;
    g_autofree LwShimEnvSnapshot *snap = snapshot_new();
    g_auto(GStrv) out = merge(snap, (char *const *)c->in);
    check_strv(out, c->expect, G_N_ELEMENTS(c->expect));
    /* Merging again changes nothing: LD_PRELOAD gets our path once. */
    g_auto(GStrv) again = merge(snap, out);
    check_strv(again, c->expect, G_N_ELEMENTS(c->expect));
}

static void test_merge_null(void)
{
    g_autofree LwShimEnvSnapshot *snap = snapshot_new();
    g_auto(GStrv) out = merge(snap, NULL);
    static const char *const expect[] = {"LD_PRELOAD=" SHIM, ADDED, NULL};
    check_strv(out, expect, G_N_ELEMENTS(expect));
}

static void test_merge_bounds(void)
{
    g_autofree LwShimEnvSnapshot *snap = snapshot_new();
    char *envp[] = {"A=1", "B=2", NULL};
    char *out[16];
    char preload[LW_SHIM_PRELOAD_MAX];
    /* 2 + LD_PRELOAD + 5 + NULL = 9 slots */
    g_assert_cmpint(lw_shim_envp_merge(snap, envp, out, 9, preload, sizeof preload), ==, 8);
    for (size_t cap = 0; cap < 9; cap++)
        g_assert_cmpint(lw_shim_envp_merge(snap, envp, out, cap, preload, sizeof preload), ==, -1);

    /* The rebuilt LD_PRELOAD entry must fit its buffer. */
    char *with_preload[] = {"LD_PRELOAD=/u/a.so", NULL};
    size_t need = strlen("LD_PRELOAD=" SHIM ":/u/a.so") + 1;
    g_assert_cmpint(lw_shim_envp_merge(snap, with_preload, out, 16, preload, need), ==, 6);
    g_assert_cmpstr(out[0], ==, "LD_PRELOAD=" SHIM ":/u/a.so");
    g_assert_cmpint(lw_shim_envp_merge(snap, with_preload, out, 16, preload, need - 1), ==, -1);

    /* A leading ASan runtime keeps its place: it refuses to run otherwise. */
    static const struct {
        const char *in, *out;
    } asan_cases[] = {
        {"LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libasan.so.8",
         "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libasan.so.8:" SHIM},
        {"LD_PRELOAD=libasan.so.8:/u/a.so", "LD_PRELOAD=libasan.so.8:" SHIM ":/u/a.so"},
        {"LD_PRELOAD= /x/libclang_rt.asan-x86_64.so /u/a.so",
         "LD_PRELOAD=/x/libclang_rt.asan-x86_64.so:" SHIM " /u/a.so"},
        {"LD_PRELOAD=/u/a.so:libasan.so.8", "LD_PRELOAD=" SHIM ":/u/a.so:libasan.so.8"},
        {"LD_PRELOAD=/u/libasan.sox.so", "LD_PRELOAD=" SHIM ":/u/libasan.sox.so"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(asan_cases); i++) {
        char *in[] = {(char *)asan_cases[i].in, NULL};
        size_t exact = strlen(asan_cases[i].out) + 1;
        g_assert_cmpint(lw_shim_envp_merge(snap, in, out, 16, preload, exact), ==, 6);
        g_assert_cmpstr(out[0], ==, asan_cases[i].out);
        g_assert_cmpint(lw_shim_envp_merge(snap, in, out, 16, preload, exact - 1), ==, -1);
    }

    /* Too many entries to copy on the stack: the hooks pass envp unchanged. */
    GPtrArray *big = g_ptr_array_new();
    for (size_t i = 0; i <= LW_SHIM_ENVP_MAX; i++)
        g_ptr_array_add(big, "X=1");
    g_ptr_array_add(big, NULL);
    g_assert_cmpuint(lw_shim_envp_count((char **)big->pdata, LW_SHIM_ENVP_MAX), ==, SIZE_MAX);
    g_ptr_array_remove_index(big, 0);
    g_assert_cmpuint(lw_shim_envp_count((char **)big->pdata, LW_SHIM_ENVP_MAX), ==,
                     LW_SHIM_ENVP_MAX);
    g_ptr_array_unref(big);
    g_assert_cmpuint(lw_shim_envp_count(NULL, 4), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/shim/config/full", test_config_full);
    g_test_add_func("/shim/config/defaults", test_config_defaults);
    g_test_add_func("/shim/config/fallbacks", test_config_fallbacks);
    g_test_add_func("/shim/config/user-knobs", test_user_knobs);
    g_test_add_func("/shim/config/unset", test_config_unset);
    g_test_add_func("/shim/config/missing-port", test_config_missing_port);
    g_test_add_func("/shim/config/host-limits", test_config_host_limits);
    for (size_t i = 0; i < G_N_ELEMENTS(config_cases); i++) {
        g_autofree char *path = g_strdup_printf("/shim/config/%s", config_cases[i].name);
        g_test_add_data_func(path, &config_cases[i], test_config_case);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(host_cases); i++) {
        g_autofree char *path = g_strdup_printf("/shim/host/%zu", i);
        g_test_add_data_func(path, &host_cases[i], test_host_case);
    }
    g_test_add_func("/shim/host/edge", test_host_edge);
    for (size_t i = 0; i < G_N_ELEMENTS(addr_cases); i++) {
        g_autofree char *path = g_strdup_printf("/shim/addr/%zu", i);
        g_test_add_data_func(path, &addr_cases[i], test_addr_case);
    }
    g_test_add_func("/shim/addr/edge", test_addr_edge);
    g_test_add_func("/shim/addr/literal", test_slot_literal);
    for (size_t i = 0; i < G_N_ELEMENTS(listen_cases); i++) {
        g_autofree char *path = g_strdup_printf("/shim/listen/%zu", i);
        g_test_add_data_func(path, &listen_cases[i], test_listen_case);
    }
    g_test_add_func("/shim/listen/parse", test_listen_parse);
    g_test_add_func("/shim/hostent/fill", test_hostent_fill);
    for (size_t i = 0; i < G_N_ELEMENTS(b64_cases); i++) {
        g_autofree char *path = g_strdup_printf("/shim/base64/%zu", i);
        g_test_add_data_func(path, &b64_cases[i], test_base64_case);
    }
    g_test_add_func("/shim/base64/cap", test_base64_cap);
    g_test_add_func("/shim/env/snapshot", test_snapshot);
    g_test_add_func("/shim/env/snapshot-bounds", test_snapshot_bounds);
    g_test_add_func("/shim/env/propagated-names", test_propagated_names);
    g_test_add_func("/shim/env/preload-has", test_preload_has);
    for (size_t i = 0; i < G_N_ELEMENTS(merge_cases); i++) {
        g_autofree char *path = g_strdup_printf("/shim/env/merge/%s", merge_cases[i].name);
        g_test_add_data_func(path, &merge_cases[i], test_merge_case);
    }
    g_test_add_func("/shim/env/merge/null", test_merge_null);
    g_test_add_func("/shim/env/merge/bounds", test_merge_bounds);
    return g_test_run();
}
