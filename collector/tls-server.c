/* tls-server.c - TLS termination: SNI → leaf, ALPN. */
#define G_LOG_DOMAIN "tls"

#include "tls-server.h"

#include <gio/gio.h>
#include <openssl/err.h>
#include <openssl/tls1.h>
#include <openssl/x509.h>
#include <string.h>
#include <time.h>


/* Leaves are re-minted this long before they expire, so a collector that
 * runs for weeks never serves an expired certificate. */
#define LEAF_RENEW_SECONDS (7 * 24 * 3600)

typedef struct {
    const LwProvider *provider;
    EVP_PKEY *key;
    X509 *cert;
    time_t not_after;
} Leaf;

struct _LwTls {
    LwCa *ca;
    SSL_CTX *ctx;
    STACK_OF(X509) *chain; /* the intermediate */
    GHashTable *leaves;    /* lowercase host -> Leaf* */
};

typedef struct {
    const LwProvider *expected;
    const LwProvider *chosen;
} SslState;

static int ssl_state_index = -1;

static void leaf_free(gpointer p)
{
    Leaf *leaf = p;
    EVP_PKEY_free(leaf->key);
    X509_free(leaf->cert);
    g_free(leaf);
}

static time_t asn1_to_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    return timegm(&tm);
}

static gboolean mint(LwTls *tls, Leaf *leaf, GError **error)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    if (!lw_ca_mint_leaf(tls->ca, leaf->provider->host, &key, &cert, error))
        return FALSE;
    EVP_PKEY_free(leaf->key);
    X509_free(leaf->cert);
    leaf->key = key;
    leaf->cert = cert;
    leaf->not_after = asn1_to_time(X509_get0_notAfter(cert));
    return TRUE;
}

/* Parses the server_name extension (RFC 6066 §3) into a host name. */
static gboolean sni_from_hello(SSL *ssl, char *out, size_t out_size)
{
    const unsigned char *p;
    size_t len;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) || len < 2)
        return FALSE;
    size_t list_len = ((size_t)p[0] << 8) | p[1];
    if (list_len + 2 != len)
        return FALSE;
    p += 2;
    while (list_len >= 3) {
        unsigned type = p[0];
        size_t name_len = ((size_t)p[1] << 8) | p[2];
        if (name_len + 3 > list_len)
            return FALSE;
        if (type == TLSEXT_NAMETYPE_host_name) {
            if (name_len == 0 || name_len >= out_size || memchr(p + 3, '\0', name_len))
                return FALSE;
            for (size_t i = 0; i < name_len; i++)
                out[i] = g_ascii_tolower((char)p[3 + i]);
            out[name_len] = '\0';
            if (name_len > 1 && out[name_len - 1] == '.')
                out[name_len - 1] = '\0';
            return TRUE;
        }
        p += 3 + name_len;
        list_len -= 3 + name_len;
    }
    return FALSE;
}

static int client_hello_cb(SSL *ssl, int *alert, void *arg)
{
    LwTls *tls = arg;
    SslState *st = SSL_get_ex_data(ssl, ssl_state_index);
    char host[LW_MAX_HOST_LEN + 2];
    if (!sni_from_hello(ssl, host, sizeof host)) {
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
    Leaf *leaf = g_hash_table_lookup(tls->leaves, host);
    if (leaf == NULL || (st->expected != NULL && st->expected != leaf->provider)) {
        g_debug("refusing SNI '%s'%s", host,
                leaf == NULL ? " (not a provider)" : " (not this address's provider)");
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_CLIENT_HELLO_ERROR;
    }
    if (leaf->not_after - time(NULL) < LEAF_RENEW_SECONDS) {
        g_autoptr(GError) error = NULL;
        if (!mint(tls, leaf, &error))
            g_warning("cannot renew the certificate for %s: %s", host, error->message);
    }
    if (SSL_use_cert_and_key(ssl, leaf->cert, leaf->key, tls->chain, 1) != 1) {
        ERR_clear_error();
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    st->chosen = leaf->provider;
    return SSL_CLIENT_HELLO_SUCCESS;
}

static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char http11[] = "http/1.1";
    unsigned int i = 0;
    while (i < inlen) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen)
            break;
        if (n == sizeof http11 - 1 && memcmp(in + i + 1, http11, n) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static void ssl_state_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                           void *argp)
{
    g_free(ptr);
}

LwTls *lw_tls_new(LwCa *ca, const LwProviderTable *providers, GError **error)
{
    if (ssl_state_index < 0)
        ssl_state_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ssl_state_free);

    LwTls *tls = g_new0(LwTls, 1);
    tls->ca = ca;
    tls->leaves = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, leaf_free);
    tls->chain = sk_X509_new_null();
    X509 *inter = lw_ca_get_intermediate(ca);
    X509_up_ref(inter);
    sk_X509_push(tls->chain, inter);

    for (guint i = 0; i < lw_provider_table_count(providers); i++) {
        Leaf *leaf = g_new0(Leaf, 1);
        leaf->provider = lw_provider_table_nth(providers, i);
        g_hash_table_insert(tls->leaves, g_ascii_strdown(leaf->provider->host, -1), leaf);
        if (!mint(tls, leaf, error)) {
            lw_tls_free(tls);
            return NULL;
        }
    }

    tls->ctx = SSL_CTX_new(TLS_server_method());
    if (tls->ctx == NULL) {
        lw_ca_set_error_from_openssl(error, "SSL_CTX_new");
        lw_tls_free(tls);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(tls->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                      SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Partial writes and a moving buffer match conn.c's output queue;
     * released buffers keep idle keep-alive connections small. */
    SSL_CTX_set_mode(tls->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                   SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                   SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_client_hello_cb(tls->ctx, client_hello_cb, tls);
    SSL_CTX_set_alpn_select_cb(tls->ctx, alpn_cb, tls);
    return tls;
}

void lw_tls_free(LwTls *tls)
{
    if (tls == NULL)
        return;
    SSL_CTX_free(tls->ctx);
    sk_X509_pop_free(tls->chain, X509_free);
    g_hash_table_unref(tls->leaves);
    g_free(tls);
}

SSL *lw_tls_new_ssl(LwTls *tls, int fd, const LwProvider *expected, GError **error)
{
    SSL *ssl = SSL_new(tls->ctx);
    if (ssl == NULL) {
        lw_ca_set_error_from_openssl(error, "SSL_new");
        return NULL;
    }
    SslState *st = g_new0(SslState, 1);
    st->expected = expected;
    SSL_set_ex_data(ssl, ssl_state_index, st);
    SSL_set_fd(ssl, fd);
    SSL_set_accept_state(ssl);
    return ssl;
}

const LwProvider *lw_tls_provider(SSL *ssl)
{
    SslState *st = SSL_get_ex_data(ssl, ssl_state_index);
    return st != NULL ? st->chosen : NULL;
}
