/* hook-tls.c - SSL_new: make dynamically linked OpenSSL trust llmwrap's CA.
 *
 * SSL_new is the last moment before a connection exists, after the program
 * loaded its own trust (certifi, a compiled-in bundle, --cacert) and after
 * curl attached a shared store; adding the root to the context's store
 * there covers all of them. The shim declares opaque types and resolves
 * every OpenSSL function at run time from the libssl that is already loaded:
 * it never links or loads libssl itself, so a process without OpenSSL keeps
 * none (and a stray call to our SSL_new just returns NULL).
 *
 * LLMWRAP_TLS_HOOK=0 leaves contexts untouched, to isolate faults.
 */
#include "shim.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>

struct lw_ssl;
struct lw_ssl_ctx;
struct lw_x509;
struct lw_x509_store;

struct lw_ssl *SSL_new(struct lw_ssl_ctx *ctx);

typedef struct {
    struct lw_ssl *(*ssl_new)(struct lw_ssl_ctx *);
    struct lw_x509 *(*d2i_x509)(struct lw_x509 **, const unsigned char **, long);
    void (*x509_free)(struct lw_x509 *);
    struct lw_x509_store *(*ctx_get_cert_store)(const struct lw_ssl_ctx *);
    int (*store_add_cert)(struct lw_x509_store *, struct lw_x509 *);
    int (*err_set_mark)(void);
    int (*err_pop_to_mark)(void);
} SslApi;

/* Resolved lazily (OpenSSL may be dlopen'ed long after start-up) and
 * published once complete; concurrent first calls resolve the same values. */
static SslApi ssl_api;
static int ssl_api_ready;
static struct lw_x509 *ca_cert;
static int ca_cert_bad;

typedef struct {
    char path[LW_SHIM_MAX_PATH];
} Found;

static int find_libssl(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    const char *name = info->dlpi_name;
    if (name == NULL || name[0] == '\0')
        return 0;
    const char *base = strrchr(name, '/');
    base = base != NULL ? base + 1 : name;
    /* "libssl.so.3", not NSS's "libssl3.so" */
    if (strncmp(base, "libssl.so", 9) != 0 || strlen(name) >= sizeof ((Found *)data)->path)
        return 0;
    memcpy(((Found *)data)->path, name, strlen(name) + 1);
    return 1;
}

static void *sym(void *handle, const char *name)
{
    void *p = handle != NULL ? dlsym(handle, name) : NULL;
    return p != NULL ? p : dlsym(RTLD_NEXT, name);
}

static bool resolve_ssl_api(void)
{
    if (__atomic_load_n(&ssl_api_ready, __ATOMIC_ACQUIRE))
        return true;

    SslApi a = {0};
    void *handle = NULL;
    void *next = dlsym(RTLD_NEXT, "SSL_new");
    Dl_info info;
    if (next != NULL && next != (void *)SSL_new) {
        /* libssl is in the global scope (linked, or dlopen'ed RTLD_GLOBAL).
         * Calling `next` keeps any other SSL_new interposer in the chain. */
        a.ssl_new = (__typeof__(a.ssl_new))next;
        if (dladdr(next, &info) != 0 && info.dli_fname != NULL)
            handle = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    } else {
        /* CPython's _ssl loads libssl RTLD_LOCAL: RTLD_NEXT cannot see it,
         * but the loaded object list can. RTLD_NOLOAD never loads one. */
        Found found = {{0}};
        if (dl_iterate_phdr(find_libssl, &found) == 0)
            return false;
        handle = dlopen(found.path, RTLD_LAZY | RTLD_NOLOAD);
        if (handle == NULL)
            return false;
        a.ssl_new = (__typeof__(a.ssl_new))dlsym(handle, "SSL_new");
        if (a.ssl_new == NULL || (void *)a.ssl_new == (void *)SSL_new)
            return false;
    }
    /* Through libssl's handle, so libcrypto is the one this libssl uses
     * even when two OpenSSL versions are loaded. */
    a.d2i_x509 = (__typeof__(a.d2i_x509))sym(handle, "d2i_X509");
    a.x509_free = (__typeof__(a.x509_free))sym(handle, "X509_free");
    a.ctx_get_cert_store = (__typeof__(a.ctx_get_cert_store))sym(handle, "SSL_CTX_get_cert_store");
    a.store_add_cert = (__typeof__(a.store_add_cert))sym(handle, "X509_STORE_add_cert");
    a.err_set_mark = (__typeof__(a.err_set_mark))sym(handle, "ERR_set_mark");
    a.err_pop_to_mark = (__typeof__(a.err_pop_to_mark))sym(handle, "ERR_pop_to_mark");

    __atomic_store_n(&ssl_api.ssl_new, a.ssl_new, __ATOMIC_RELAXED);
    __atomic_store_n(&ssl_api.d2i_x509, a.d2i_x509, __ATOMIC_RELAXED);
    __atomic_store_n(&ssl_api.x509_free, a.x509_free, __ATOMIC_RELAXED);
    __atomic_store_n(&ssl_api.ctx_get_cert_store, a.ctx_get_cert_store, __ATOMIC_RELAXED);
    __atomic_store_n(&ssl_api.store_add_cert, a.store_add_cert, __ATOMIC_RELAXED);
    __atomic_store_n(&ssl_api.err_set_mark, a.err_set_mark, __ATOMIC_RELAXED);
    __atomic_store_n(&ssl_api.err_pop_to_mark, a.err_pop_to_mark, __ATOMIC_RELAXED);
    __atomic_store_n(&ssl_api_ready, 1, __ATOMIC_RELEASE);
    return true;
}

/* The root as an X509, parsed once per process. NULL if it does not parse
 * (then the hook stays out of the way). Call inside an error mark. */
static struct lw_x509 *llmwrap_ca(void)
{
    struct lw_x509 *x = __atomic_load_n(&ca_cert, __ATOMIC_ACQUIRE);
    if (x != NULL || __atomic_load_n(&ca_cert_bad, __ATOMIC_RELAXED))
        return x;
    const unsigned char *p = lw_cfg.ca_der;
    x = ssl_api.d2i_x509(NULL, &p, (long)lw_cfg.ca_der_len);
    if (x == NULL) {
        static pid_t said;
        __atomic_store_n(&ca_cert_bad, 1, __ATOMIC_RELAXED);
        if (lw_shim_first_in_process(&said))
            lw_shim_say("LLMWRAP_CA_DER is not a DER certificate; OpenSSL contexts are left "
                        "unchanged");
        return NULL;
    }
    struct lw_x509 *expected = NULL;
    if (!__atomic_compare_exchange_n(&ca_cert, &expected, x, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        if (ssl_api.x509_free != NULL)
            ssl_api.x509_free(x);
        x = expected;
    }
    return x;
}

static void trust_llmwrap_ca(struct lw_ssl_ctx *ctx)
{
    if (ssl_api.d2i_x509 == NULL || ssl_api.ctx_get_cert_store == NULL ||
        ssl_api.store_add_cert == NULL || ssl_api.err_set_mark == NULL ||
        ssl_api.err_pop_to_mark == NULL)
        return;
    struct lw_x509_store *store = ssl_api.ctx_get_cert_store(ctx);
    if (store == NULL)
        return;
    /* Adding a root the store already holds succeeds without a new entry,
     * so stores need no bookkeeping here; the mark drops any error the
     * add leaves, which the program would otherwise see on its next
     * SSL_get_error. */
    ssl_api.err_set_mark();
    struct lw_x509 *ca = llmwrap_ca();
    if (ca != NULL)
        ssl_api.store_add_cert(store, ca);
    ssl_api.err_pop_to_mark();
}

LW_EXPORT struct lw_ssl *SSL_new(struct lw_ssl_ctx *ctx)
{
    if (!resolve_ssl_api())
        return NULL;
    if (ctx != NULL && lw_active && lw_cfg.tls_hook && lw_cfg.ca_der_len > 0)
        trust_llmwrap_ca(ctx);
    return ssl_api.ssl_new(ctx);
}
