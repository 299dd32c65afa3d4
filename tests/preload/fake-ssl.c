/* fake-ssl.c - a stand-in for a second, private OpenSSL, like the
 * libssl-<hash>.so.1.1 that Python wheels bundle for libpq (versioned like
 * OpenSSL 1.1 by fake-ssl.map). It exports the
 * functions the shim's SSL_new hook uses and records how they were called,
 * so test-preload.py can check that the shim dispatches each caller to its
 * own libssl. Its "objects" are tagged structs: a real OpenSSL handed one of
 * them would misbehave, which is the failure the dispatch prevents. */
#include <stddef.h>

#define FAKE_MAGIC 0x5ca1ab1e

struct fake_obj {
    unsigned magic;
};

static struct fake_obj fake_ssl = {FAKE_MAGIC};
static struct fake_obj fake_store = {FAKE_MAGIC};
static struct fake_obj fake_x509 = {FAKE_MAGIC};
static int ssl_new_calls, bad_ctx, adds, marks, pops;
static long der_len;

void *SSL_new(struct fake_obj *ctx);
void *SSL_CTX_get_cert_store(const struct fake_obj *ctx);
void *d2i_X509(void **out, const unsigned char **pp, long len);
void X509_free(void *x);
int X509_STORE_add_cert(struct fake_obj *store, struct fake_obj *x);
int ERR_set_mark(void);
int ERR_pop_to_mark(void);
void lw_fake_ssl_stats(int *ret_ssl_new, int *ret_bad_ctx, int *ret_adds, long *ret_der_len,
                       int *ret_balanced);

void *SSL_new(struct fake_obj *ctx)
{
    ssl_new_calls++;
    if (ctx == NULL || ctx->magic != FAKE_MAGIC) {
        bad_ctx++;
        return NULL;
    }
    return &fake_ssl;
}

void *SSL_CTX_get_cert_store(const struct fake_obj *ctx)
{
    return ctx != NULL && ctx->magic == FAKE_MAGIC ? &fake_store : NULL;
}

void *d2i_X509(void **out, const unsigned char **pp, long len)
{
    (void)out;
    der_len = len;
    *pp += len;
    return &fake_x509;
}

void X509_free(void *x)
{
    (void)x;
}

int X509_STORE_add_cert(struct fake_obj *store, struct fake_obj *x)
{
    if (store == &fake_store && x == &fake_x509)
        adds++;
    return 1;
}

int ERR_set_mark(void)
{
    marks++;
    return 1;
}

int ERR_pop_to_mark(void)
{
    pops++;
    return 1;
}

void lw_fake_ssl_stats(int *ret_ssl_new, int *ret_bad_ctx, int *ret_adds, long *ret_der_len,
                       int *ret_balanced)
{
    *ret_ssl_new = ssl_new_calls;
    *ret_bad_ctx = bad_ctx;
    *ret_adds = adds;
    *ret_der_len = der_len;
    *ret_balanced = marks == pops;
}
