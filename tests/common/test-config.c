/* test-config.c - config.ini loading: values, defaults and every error
 * naming file, line and key. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"

typedef struct {
    const char *name;
    const char *text;
    const char *error; /* NULL = loads; else a substring the message must contain */
    int line;          /* expected line in "FILE:LINE:" (0 = don't check) */
} ErrorCase;

static const ErrorCase error_cases[] = {
    {"empty", "", NULL, 0},
    {"comments", "# c\n\n[collector]\n  # more\n", NULL, 0},
    {"semicolon is not a comment", "[collector]\n; c\n", "is not 'key = value'", 2},
    {"pinned keys",
     "[collector]\nlisten = 127.0.0.1:0\n[provider.openai]\nupstream = https://127.0.0.1:18443\n",
     NULL, 0},
    {"unknown group", "[collector]\n\n[colector]\nlisten = x\n", "unknown group [colector]", 3},
    {"unknown key", "[collector]\nlisten = 127.0.0.1:0\nlisen = 1\n", "unknown key 'lisen'", 3},
    {"key outside group", "listen = 1\n", "outside of any [group]", 1},
    {"not key value", "[collector]\njust words\n", "is not 'key = value'", 2},
    {"bad header", "[collector\n", "malformed group header", 1},
    {"duplicate key", "[collector]\nport = 1\nport = 2\n", "appears twice", 3},
    {"duplicate group", "[collector]\n[upstream]\n[collector]\n", "appears twice", 3},
    {"bad port", "[collector]\nport = 70000\n", "bad value '70000' for key 'port'", 2},
    {"bad port text", "[collector]\n\nport = abc\n", "for key 'port' in [collector]", 3},
    {"bad net", "[collector]\nsynthetic_net = 0\n", "'synthetic_net'", 2},
    {"bad listen", "[collector]\nlisten = localhost\n", "'listen'", 2},
    {"bad listen port", "[collector]\nlisten = 127.0.0.1:99999\n", "'listen'", 2},
    {"bad size", "[collector]\nmax_body = 12 parsecs\n", "'max_body'", 2},
    {"bad duration", "[collector]\nidle_timeout = soon\n", "'idle_timeout'", 2},
    {"nan duration", "[collector]\nidle_timeout = nan\n", "'idle_timeout'", 2},
    {"negative nan duration", "[collector]\ndrain_timeout = -nan\n", "'drain_timeout'", 2},
    {"infinite duration", "[collector]\nidle_timeout = inf s\n", "'idle_timeout'", 2},
    {"hex duration", "[collector]\nidle_timeout = 0x10\n", "'idle_timeout'", 2},
    /* A timer of 0 fires at once: every request would time out. */
    {"zero idle timeout", "[collector]\nidle_timeout = 0\n", "bad value '0' for key 'idle_timeout'",
     2},
    {"zero header timeout", "[collector]\n\nheader_timeout = 0ms\n", "'header_timeout'", 3},
    {"zero drain timeout", "[collector]\ndrain_timeout = 0s\n", "'drain_timeout'", 2},
    {"zero connect timeout", "[upstream]\nconnect_timeout = 0\n", "'connect_timeout'", 2},
    {"zero first byte timeout", "[upstream]\nfirst_byte_timeout = 0\n", "'first_byte_timeout'", 2},
    {"zero stall timeout", "[upstream]\nstall_timeout = 0.0\n", "'stall_timeout'", 2},
    {"zero guard window", "[guard.g]\ntype = rate\nthreshold = 5\nwindow = 0\n", "'window'", 4},
    /* Below 1 ms would be truncated to 0. */
    {"sub-millisecond timeout", "[upstream]\nfirst_byte_timeout = 0.0001\n",
     "bad value '0.0001' for key 'first_byte_timeout'", 2},
    {"sub-millisecond release", "[collector]\nrelease_memory_after = 0.5ms\n",
     "'release_memory_after'", 2},
    /* 0 means never, documented. */
    {"release memory never", "[collector]\nrelease_memory_after = 0\n", NULL, 0},
    {"log never rotated", "[collector]\nlog_max_size = 0\n", NULL, 0},
    {"bad log size", "[collector]\nlog_max_size = big\n", "'log_max_size'", 2},
    {"zero body cap", "[collector]\nmax_body = 0\n", "bad value '0' for key 'max_body'", 2},
    {"zero body cap with unit", "[collector]\nmax_body = 0MiB\n", "'max_body'", 2},
    {"bad proxy", "[upstream]\nproxy = not a url at all\n", "'proxy'", 2},
    {"bad proxy scheme", "[upstream]\nproxy = ftp://p:21\n", "'proxy'", 2},
    {"bad proxy port", "[upstream]\nproxy = http://127.0.0.1:99999\n", "'proxy'", 2},
    {"proxy", "[upstream]\nproxy = socks5h://127.0.0.1:1080\n", NULL, 0},
    {"bad log level", "[collector]\nlog_level = loud\n", "'log_level'", 2},
    {"bad bool", "[upstream]\nhttp2 = maybe\n", "'http2'", 2},
    {"missing ca file", "[upstream]\nca_file = /nonexistent/anchors.pem\n", "'ca_file'", 2},
    /* Relative to the file's directory: a directory. */
    {"ca file is a directory", "[upstream]\nca_file = .\n", "expected a readable PEM file", 2},
    /* Addresses the collector could not all listen on (port 0 is a fresh
     * port each time; IPv6 listeners are IPv6-only). */
    {"listen twice", "[collector]\nlisten = 127.0.0.1:47111, 127.0.0.1:47111\n",
     "'127.0.0.1:47111' and '127.0.0.1:47111' cannot both be listened on", 2},
    {"listen localhost and its address",
     "[collector]\n\nlisten = localhost:47111, 127.0.0.1:47111\n", "cannot both be listened on", 3},
    {"listen and the wildcard", "[collector]\nlisten = 127.0.0.1:47111, 0.0.0.0:47111\n",
     "cannot both be listened on", 2},
    {"listen ipv6 and its wildcard", "[collector]\nlisten = [::]:47111, [::1]:47111\n",
     "cannot both be listened on", 2},
    {"listen port 0 twice", "[collector]\nlisten = 127.0.0.1:0, 127.0.0.1:0\n", NULL, 0},
    {"listen both wildcards", "[collector]\nlisten = 0.0.0.0:47111, [::]:47111\n", NULL, 0},
    {"listen on the synthetic port", "[collector]\nport = 47111\nlisten = 0.0.0.0:47111\n",
     "takes port 47111 of the synthetic listeners on 127.241.0.x", 3},
    {"listen on a synthetic address",
     "[collector]\nlisten = 127.200.0.1:47111\nsynthetic_net = 200\nport = 47111\n",
     "'127.200.0.1:47111' takes port 47111", 2},
    {"listen beside the synthetic port", "[collector]\nport = 47111\nlisten = 127.0.0.1:47111\n",
     NULL, 0},
    {"bad upstream url", "[provider.openai]\nupstream = ftp://x\n", "not an upstream URL", 2},
    {"bad upstream port", "[provider.openai]\nupstream = https://127.0.0.1:99999\n",
     "not an upstream URL", 2},
    {"upstream port 0", "[provider.openai]\nupstream = https://127.0.0.1:0\n",
     "not an upstream URL", 2},
    /* Plain HTTP only to this machine: API keys must not cross a network. */
    {"http upstream elsewhere", "[provider.openai]\nupstream = http://gw.example:8080\n",
     "must point at this machine", 2},
    {"http upstream on a LAN address", "[provider.openai]\nupstream = http://10.0.0.5\n",
     "must point at this machine", 2},
    {"http upstream on loopback", "[provider.openai]\nupstream = http://127.0.0.1:4000/v1\n",
     NULL, 0},
    {"http upstream on localhost", "[provider.openai]\nupstream = http://LocalHost:4000\n",
     NULL, 0},
    {"http upstream on ::1", "[provider.openai]\nupstream = http://[::1]:4000\n", NULL, 0},
    {"bad format", "[provider.openai]\nformat = xml\n", "'format'", 2},
    {"new provider needs host", "[provider.acme]\nupstream = https://a.example\n",
     "needs 'host ='", 1},
    {"bad host", "[provider.acme]\nhost = not a host\n", "not a valid host name", 2},
    /* Hosts the CA's name constraints cannot take. */
    {"ip address host", "[provider.acme]\nhost = 10.0.0.1\n", "not a valid host name", 2},
    {"host label starting with '-'", "[provider.acme]\nhost = -a.example\n",
     "not a valid host name", 2},
    {"host label ending with '-'", "[provider.acme]\nhost = a-.example\n", "not a valid host name",
     2},
    {"empty host label", "[provider.acme]\nhost = a..example\n", "not a valid host name", 2},
    {"host label of 64",
     "[provider.acme]\nhost = "
     "a123456789012345678901234567890123456789012345678901234567890123.example\n",
     "not a valid host name", 2},
    {"host label of 63",
     "[provider.acme]\nhost = "
     "a12345678901234567890123456789012345678901234567890123456789012.example\n",
     NULL, 0},
    {"taken host", "[provider.acme]\nhost = api.openai.com\n", "already belongs to provider 'openai'",
     2},
    {"bad provider name", "[provider.a b]\nhost = a.example\n", "bad provider name", 1},
    /* Keys not given keep the table's: whether MODEL is in it is for
     * lw_pricing_load to tell (test-pricing.c). */
    {"partial price", "[price.m]\ncached_input = 0.05\n", NULL, 0},
    {"bad price", "[price.m]\ninput = cheap\noutput = 1\n", "'input'", 2},
    {"negative price", "[price.m]\ninput = -1\noutput = 1\n", "'input'", 2},
    {"guard", "[guard.loop]\ntype = loop\nthreshold = 5\nwindow = 30s\naction = warn\n", NULL, 0},
    {"guard bad type", "[guard.g]\ntype = lop\nthreshold = 5\n", "'type'", 2},
    {"guard missing threshold", "[guard.g]\ntype = rate\n", "'threshold'", 1},
    {"guard bad growth", "[guard.g]\ntype = growth\nthreshold = 1\n", "'threshold'", 3},
    {"guard bad action", "[guard.g]\ntype = size\nthreshold = 100\naction = kill\n", "'action'", 4},
    {"budget floor", "[budget]\nclamp_floor = 0\n", "'clamp_floor'", 2},
    {"price too precise", "[price.m]\ninput = 0.0000001\noutput = 1\n", "at most 6 decimals", 2},
};

static char *write_temp(const char *text)
{
    GError *error = NULL;
    char *path = NULL;
    int fd = g_file_open_tmp("lw-config-XXXXXX.ini", &path, &error);
    g_assert_no_error(error);
    g_assert_true(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_error_case(gconstpointer data)
{
    const ErrorCase *c = data;
    g_autofree char *path = write_temp(c->text);
    g_autoptr(GError) error = NULL;
    g_autoptr(LwConfig) config = lw_config_load(path, &error);
    g_unlink(path);
    if (c->error == NULL) {
        g_assert_no_error(error);
        g_assert_nonnull(config);
        return;
    }
    g_assert_null(config);
    g_assert_nonnull(error);
    g_assert_true(error->domain == LW_CONFIG_ERROR);
    if (strstr(error->message, c->error) == NULL)
        g_error("message '%s' lacks '%s'", error->message, c->error);
    g_assert_true(g_str_has_prefix(error->message, path));
    if (c->line > 0) {
        g_autofree char *prefix = g_strdup_printf("%s:%d: ", path, c->line);
        if (!g_str_has_prefix(error->message, prefix))
            g_error("message '%s' does not start with '%s'", error->message, prefix);
    }
}

static void test_defaults(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(LwConfig) c = lw_config_load("/nonexistent/dir/config.ini", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(c->listen[0], ==, "127.0.0.1:0");
    g_assert_cmpuint(c->synthetic_net, ==, 241);
    g_assert_cmpuint(c->max_head, ==, 64 * 1024);
    g_assert_cmpuint(c->max_body, ==, 32 * 1024 * 1024);
    g_assert_cmpuint(c->release_memory_after_ms, ==, 250);
    g_assert_cmpuint(c->log_max_size, ==, 10 * 1024 * 1024);
    g_assert_true(c->http2);
    g_assert_cmpuint(lw_provider_table_count(c->providers), ==, LW_BUILTIN_PROVIDER_COUNT);
    const LwProvider *p = lw_provider_table_by_name(c->providers, "gemini");
    g_assert_cmpstr(p->host, ==, "generativelanguage.googleapis.com");
    g_assert_cmpstr(p->upstream, ==, "https://generativelanguage.googleapis.com");
    g_assert_cmpint(p->format, ==, LW_FORMAT_GEMINI);
    g_assert_cmpuint(p->slot, ==, 3);
}

static void test_values(void)
{
    g_autofree char *path = write_temp("[collector]\n"
                                       "listen = 127.0.0.1:0, [::1]:8080\n"
                                       "synthetic_net = 199\n"
                                       "port = 18000\n"
                                       "max_body = 1MiB\n"
                                       "max_head = 16KiB\n"
                                       "max_headers = 20\n"
                                       "idle_timeout = 250ms\n"
                                       "header_timeout = 2m\n"
                                       "release_memory_after = 0\n"
                                       "log_level = debug\n"
                                       "log_max_size = 1MiB\n"
                                       "[upstream]\n"
                                       "http2 = no\n"
                                       "connect_timeout = 3\n"
                                       "stall_timeout = 90s\n"
                                       "[provider.openai]\n"
                                       "upstream = https://127.0.0.1:18443/\n"
                                       "[provider.zeta]\n"
                                       "host = LLM.Example.COM.\n"
                                       "[provider.acme]\n"
                                       "host = api.acme.test\n"
                                       "format = anthropic\n"
                                       "upstream = http://127.0.0.1:9/prefix\n"
                                       "[price.gpt-4o-mini]\n"
                                       "input = 0.15\n"
                                       "output = 0.60\n"
                                       "cached_input = 0.075\n"
                                       "cache_write = 0.1875\n"
                                       "cache_write_1h = 0.30\n");
    g_autoptr(GError) error = NULL;
    g_autoptr(LwConfig) c = lw_config_load(path, &error);
    g_unlink(path);
    g_assert_no_error(error);
    g_assert_cmpuint(g_strv_length(c->listen), ==, 2);
    g_assert_cmpstr(c->listen[1], ==, "[::1]:8080");
    g_assert_cmpuint(c->synthetic_net, ==, 199);
    g_assert_cmpuint(c->port, ==, 18000);
    g_assert_cmpuint(c->max_body, ==, 1024 * 1024);
    g_assert_cmpuint(c->max_head, ==, 16 * 1024);
    g_assert_cmpuint(c->max_headers, ==, 20);
    g_assert_cmpuint(c->idle_timeout_ms, ==, 250);
    g_assert_cmpuint(c->header_timeout_ms, ==, 120000);
    g_assert_cmpuint(c->release_memory_after_ms, ==, 0);
    g_assert_cmpuint(c->connect_timeout_ms, ==, 3000);
    g_assert_cmpuint(c->stall_timeout_ms, ==, 90000);
    g_assert_false(c->http2);
    g_assert_cmpstr(c->log_level, ==, "debug");
    g_assert_cmpuint(c->log_max_size, ==, 1024 * 1024);

    const LwProvider *openai = lw_provider_table_by_name(c->providers, "openai");
    g_assert_cmpstr(openai->upstream, ==, "https://127.0.0.1:18443");
    g_assert_cmpstr(openai->host, ==, "api.openai.com");
    /* Added providers follow the built-ins, in name order. */
    const LwProvider *acme = lw_provider_table_by_slot(c->providers, 12);
    const LwProvider *zeta = lw_provider_table_by_slot(c->providers, 13);
    g_assert_cmpstr(acme->name, ==, "acme");
    g_assert_cmpint(acme->format, ==, LW_FORMAT_ANTHROPIC);
    g_assert_cmpstr(acme->upstream, ==, "http://127.0.0.1:9/prefix");
    g_assert_cmpstr(zeta->host, ==, "llm.example.com");
    g_assert_cmpstr(zeta->upstream, ==, "https://llm.example.com");
    g_assert_true(lw_provider_table_by_host(c->providers, "LLM.example.com.") == zeta);
    g_assert_null(lw_provider_table_by_host(c->providers, "llm.example.com.evil"));

    g_autofree char *env = lw_provider_table_env_hosts(c->providers);
    g_assert_true(g_str_has_prefix(env, "api.openai.com,api.anthropic.com,"));
    g_assert_true(g_str_has_suffix(env, ",api.perplexity.ai,api.acme.test,llm.example.com"));

    g_assert_cmpuint(c->price_overrides->len, ==, 1);
    LwPriceOverride *o = g_ptr_array_index(c->price_overrides, 0);
    g_assert_cmpstr(o->model, ==, "gpt-4o-mini");
    g_assert_cmpuint(o->line, ==, 25);
    g_assert_cmpint(o->input, ==, 150000);
    g_assert_cmpint(o->cached_input, ==, 75000);
    g_assert_cmpint(o->cache_write, ==, 187500);
    g_assert_cmpint(o->cache_write_1h, ==, 300000);
}

/* A self-signed certificate, for [upstream] ca_file. */
static const char anchor_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBlDCCATmgAwIBAgIUY4ilnZZwgYislrNmzUnwftXctacwCgYIKoZIzj0EAwIw\n"
    "HjEcMBoGA1UEAwwTbGxtd3JhcCB0ZXN0IGFuY2hvcjAgFw0yNjExMjIwNzA3MDFa\n"
    "GA8yMTI2MTAyOTA3MDcwMVowHjEcMBoGA1UEAwwTbGxtd3JhcCB0ZXN0IGFuY2hv\n"
    "cjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABKiI87Kt8iuOQQ4I5KDQPEohtTl4\n"
    "SsdxIFVOLgBg2SI82cd9QRZOl99oqHzkDR/Vh6b0GkjLe/JzLLgEzlGo0PujUzBR\n"
    "MB0GA1UdDgQWBBQASuhrZvArybQINzspeA0pvTKQFTAfBgNVHSMEGDAWgBQASuhr\n"
    "ZvArybQINzspeA0pvTKQFTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kA\n"
    "MEYCIQCR9Ia09r3WWlW7BQQhvyYOsaidHSX99kVhMZqILKacLwIhAO8RZDlhNAC1\n"
    "TR+jj3CPHAkrrng1780KQHrxN4OorS5n\n"
    "-----END CERTIFICATE-----\n";

/* [upstream] ca_file must be a regular file holding a PEM certificate: the
 * upstream refuses anything else when the collector starts. */
static void test_ca_file(void)
{
    g_autofree char *dir = g_dir_make_tmp("lw-config-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "config.ini", NULL);
    g_autofree char *anchors = g_build_filename(dir, "anchors.pem", NULL);
    g_assert_true(g_file_set_contents(path, "[upstream]\nca_file = anchors.pem\n", -1, NULL));
    struct {
        const char *content; /* NULL: a directory */
        const char *error;
    } cases[] = {
        {NULL, "expected a readable PEM file"},
        {"anchors\n", "expected a PEM file of certificates (it holds none)"},
        {"", "(it holds none)"},
        {anchor_pem, NULL},
    };
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        if (cases[i].content == NULL)
            g_assert_cmpint(g_mkdir(anchors, 0700), ==, 0);
        else
            g_assert_true(g_file_set_contents(anchors, cases[i].content, -1, NULL));
        g_autoptr(GError) error = NULL;
        g_autoptr(LwConfig) c = lw_config_load(path, &error);
        g_remove(anchors);
        if (cases[i].error == NULL) {
            g_assert_no_error(error);
            g_assert_cmpstr(c->ca_file, ==, anchors);
            continue;
        }
        g_assert_error(error, LW_CONFIG_ERROR, LW_CONFIG_ERROR_BAD_VALUE);
        g_autofree char *head = g_strdup_printf(
            "%s:2: bad value '%s' for key 'ca_file' in [upstream]: ", path, anchors);
        if (!g_str_has_prefix(error->message, head) ||
            strstr(error->message, cases[i].error) == NULL)
            g_error("message '%s' is not '%s...%s'", error->message, head, cases[i].error);
    }
    g_unlink(path);
    g_rmdir(dir);
}

static void test_unreadable(void)
{
    g_autofree char *dir = g_dir_make_tmp("lw-config-XXXXXX", NULL);
    g_autoptr(GError) error = NULL;
    /* A directory where the file should be: exists but cannot be read. */
    g_autoptr(LwConfig) c = lw_config_load(dir, &error);
    g_rmdir(dir);
    g_assert_null(c);
    g_assert_error(error, LW_CONFIG_ERROR, LW_CONFIG_ERROR_UNREADABLE);
    g_assert_true(g_str_has_prefix(error->message, dir));
}

static void test_parsers(void)
{
    guint ms;
    g_assert_true(lw_config_parse_duration_ms("1.5s", &ms) && ms == 1500);
    g_assert_true(lw_config_parse_duration_ms("1h", &ms) && ms == 3600000);
    g_assert_false(lw_config_parse_duration_ms("-1s", &ms));
    g_assert_false(lw_config_parse_duration_ms("", &ms));
    g_assert_true(lw_config_parse_duration_ms(".5s", &ms) && ms == 500);
    g_assert_false(lw_config_parse_duration_ms("nan", &ms));
    g_assert_false(lw_config_parse_duration_ms("infinity", &ms));
    g_assert_true(lw_config_parse_duration_ms("0", &ms) && ms == 0);
    g_assert_true(lw_config_parse_duration_ms("1ms", &ms) && ms == 1);
    g_assert_false(lw_config_parse_duration_ms("0.0001", &ms));
    g_assert_false(lw_config_parse_duration_ms("0.9ms", &ms));
    guint64 b;
    g_assert_true(lw_config_parse_size("64KiB", &b) && b == 65536);
    g_assert_true(lw_config_parse_size("2G", &b) && b == 2ull << 30);
    g_assert_false(lw_config_parse_size("99999999999999999999", &b));
    g_assert_false(lw_config_parse_size("1TiB", &b));
    gint64 micro;
    g_assert_true(lw_config_parse_micro_usd("0.075", &micro) && micro == 75000);
    g_assert_true(lw_config_parse_micro_usd("2", &micro) && micro == 2000000);
    g_assert_true(lw_config_parse_micro_usd("0.000001", &micro) && micro == 1);
    g_assert_false(lw_config_parse_micro_usd("0.0000001", &micro));
    g_assert_false(lw_config_parse_micro_usd("1e-3", &micro));
    g_assert_false(lw_config_parse_micro_usd(".5", &micro));
    g_assert_false(lw_config_parse_micro_usd("-1", &micro));
    g_assert_false(lw_config_parse_micro_usd("1.", &micro));
    struct sockaddr_storage ss;
    unsigned int len;
    g_assert_true(lw_config_parse_listen("[::1]:0", &ss, &len) && ss.ss_family == AF_INET6);
    g_assert_true(lw_config_parse_listen("localhost:80", &ss, &len) && ss.ss_family == AF_INET);
    g_assert_false(lw_config_parse_listen("example.com:80", &ss, &len));
    g_assert_false(lw_config_parse_listen("[::1]80", &ss, &len));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (guint i = 0; i < G_N_ELEMENTS(error_cases); i++) {
        g_autofree char *name = g_strdup_printf("/config/load/%s", error_cases[i].name);
        g_test_add_data_func(name, &error_cases[i], test_error_case);
    }
    g_test_add_func("/config/defaults", test_defaults);
    g_test_add_func("/config/values", test_values);
    g_test_add_func("/config/unreadable", test_unreadable);
    g_test_add_func("/config/ca-file", test_ca_file);
    g_test_add_func("/config/parsers", test_parsers);
    return g_test_run();
}
