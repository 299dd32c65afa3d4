/* hook-tls.c - SSL_new: make dynamically linked OpenSSL trust llmwrap's CA.
 *
 * SSL_new is the last moment before a connection exists, after the program
 * loaded its own trust (certifi, a compiled-in bundle, --cacert) and after
 * curl attached a shared store; adding the root to the context's store
 * there covers all of them. The shim declares opaque types and resolves
 * every OpenSSL function at run time from a libssl that is already loaded:
 * it never links or loads libssl itself, so a process without OpenSSL keeps
 * none (and a stray call to our SSL_new just returns NULL).
 *
 * A process may hold several OpenSSLs: the system's, and private copies
 * that Python wheels bundle (auditwheel renames them libssl-<hash>.so.*)
 * for, say, libpq. An unversioned SSL_new interposes the callers of all of
 * them, so each call goes where ld.so would have bound it without us: the
 * global scope's SSL_new if it has the version the caller needs, else the
 * one in the calling object's own dependency scope (CPython's _ssl, whose
 * libssl is RTLD_LOCAL; a wheel's private copy). Each caller's functions
 * and its libcrypto's copy of the root are cached.
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

/* One calling object's OpenSSL. `caller` (its link_map) is published last,
 * with release ordering, so a reader that sees it sees the rest. */
typedef struct {
    const void *caller;
    SslApi api;
    struct lw_x509 *ca; /* parsed by this api's d2i_X509; set once */
    int ca_bad;
} SslBinding;

/* Objects calling SSL_new in one process are few (libssl itself, libcurl,
 * Python's _ssl, libpq...); past this many, calls resolve uncached. */
#define SSL_BINDINGS 16
static SslBinding bindings[SSL_BINDINGS];
static unsigned bindings_used;

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
    if (strncmp(base, "libssl.so", 9) != 0 || strlen(name) >= sizeof((Found *)data)->path)
        return 0;
    memcpy(((Found *)data)->path, name, strlen(name) + 1);
    return 1;
}

/* SSL_new for a caller whose own scope has none (the main program, a
 * dlopen'ed module that reaches OpenSSL another way): libssl in the global
 * scope, else the first libssl.so* loaded. *ret_handle gets a handle for
 * the helper lookups (may be NULL: then RTLD_NEXT is used). */
static void *global_ssl_new(void **ret_handle)
{
    void *next = dlsym(RTLD_NEXT, "SSL_new");
    Dl_info info;
    *ret_handle = NULL;
    if (next != NULL && next != (void *)SSL_new) {
        /* Calling `next` keeps another SSL_new interposer in the chain. */
        if (dladdr(next, &info) != 0 && info.dli_fname != NULL)
            *ret_handle = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
        return next;
    }
    /* CPython's _ssl loads libssl RTLD_LOCAL: RTLD_NEXT cannot see it, but
     * the loaded object list can. RTLD_NOLOAD never loads anything. */
    Found found = {{0}};
    if (dl_iterate_phdr(find_libssl, &found) == 0)
        return NULL;
    *ret_handle = dlopen(found.path, RTLD_LAZY | RTLD_NOLOAD);
    if (*ret_handle == NULL)
        return NULL;
    void *p = dlsym(*ret_handle, "SSL_new");
    return p != (void *)SSL_new ? p : NULL;
}

static void *sym(void *handle, const char *name)
{
    void *p = handle != NULL ? dlsym(handle, name) : NULL;
    return p != NULL ? p : dlsym(RTLD_NEXT, name);
}

/* Symbol versions OpenSSL releases give SSL_new. */
static const char *const ssl_versions[] = {"OPENSSL_3.0.0", "OPENSSL_1_1_0", "OPENSSL_1.0.0"};

/* Fills b->api for the object `map` (NULL if unknown), choosing the SSL_new
 * the dynamic linker would have bound that object's call to. */
static bool resolve(const struct link_map *map, SslBinding *b)
{
    void *handle = NULL;
    void *ssl_new = NULL;

    /* The caller's own scope: the object and its dependencies, never the
     * global scope (so never our own SSL_new, which nothing depends on). */
    if (map != NULL && map->l_name != NULL && map->l_name[0] != '\0') {
        handle = dlopen(map->l_name, RTLD_LAZY | RTLD_NOLOAD);
        ssl_new = handle != NULL ? dlsym(handle, "SSL_new") : NULL;
        if (ssl_new == (void *)SSL_new)
            ssl_new = NULL;
    }
    if (ssl_new != NULL) {
        /* ld.so searches the global scope before the caller's own: a global
         * libssl whose SSL_new carries the version the caller needs wins
         * (a wheel's private libssl of another major version does not). */
        const char *version = NULL;
        for (size_t i = 0; i < sizeof ssl_versions / sizeof ssl_versions[0] && !version; i++) {
            if (dlvsym(handle, "SSL_new", ssl_versions[i]) == ssl_new)
                version = ssl_versions[i];
        }
        void *global =
            version != NULL ? dlvsym(RTLD_NEXT, "SSL_new", version) : dlsym(RTLD_NEXT, "SSL_new");
        Dl_info info;
        if (global != NULL && global != ssl_new && global != (void *)SSL_new &&
            dladdr(global, &info) != 0 && info.dli_fname != NULL) {
            ssl_new = global;
            handle = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
        }
    } else {
        ssl_new = global_ssl_new(&handle);
    }
    if (ssl_new == NULL)
        return false;

    memset(b, 0, sizeof *b);
    b->api.ssl_new = (__typeof__(b->api.ssl_new))ssl_new;
    /* Through the same handle: the libcrypto this libssl uses. */
    b->api.d2i_x509 = (__typeof__(b->api.d2i_x509))sym(handle, "d2i_X509");
    b->api.x509_free = (__typeof__(b->api.x509_free))sym(handle, "X509_free");
    b->api.ctx_get_cert_store =
        (__typeof__(b->api.ctx_get_cert_store))sym(handle, "SSL_CTX_get_cert_store");
    b->api.store_add_cert = (__typeof__(b->api.store_add_cert))sym(handle, "X509_STORE_add_cert");
    b->api.err_set_mark = (__typeof__(b->api.err_set_mark))sym(handle, "ERR_set_mark");
    b->api.err_pop_to_mark = (__typeof__(b->api.err_pop_to_mark))sym(handle, "ERR_pop_to_mark");
    return true;
}

/* The binding for the object containing `pc`: cached, or resolved into
 * *scratch when the cache is full or the object cannot be identified. */
static SslBinding *binding_for(const void *pc, SslBinding *scratch)
{
    struct dl_find_object dlfo;
    const struct link_map *map = NULL;
    if (_dl_find_object((void *)pc, &dlfo) == 0)
        map = dlfo.dlfo_link_map;

    unsigned used = __atomic_load_n(&bindings_used, __ATOMIC_ACQUIRE);
    if (used > SSL_BINDINGS)
        used = SSL_BINDINGS;
    for (unsigned i = 0; map != NULL && i < used; i++) {
        if (__atomic_load_n(&bindings[i].caller, __ATOMIC_ACQUIRE) == map)
            return &bindings[i];
    }

    if (!resolve(map, scratch))
        return NULL;
    if (map == NULL || __atomic_load_n(&bindings_used, __ATOMIC_RELAXED) >= SSL_BINDINGS)
        return scratch;
    unsigned i = __atomic_fetch_add(&bindings_used, 1, __ATOMIC_ACQ_REL);
    if (i >= SSL_BINDINGS)
        return scratch;
    /* Two threads may cache the same caller twice: harmless. */
    bindings[i].api = scratch->api;
    __atomic_store_n(&bindings[i].caller, (const void *)map, __ATOMIC_RELEASE);
    return &bindings[i];
}

/* The root as this binding's libcrypto X509, parsed once. NULL if it does
 * not parse (then contexts stay unchanged). Call inside an error mark. */
static struct lw_x509 *llmwrap_ca(SslBinding *b)
{
    struct lw_x509 *x = __atomic_load_n(&b->ca, __ATOMIC_ACQUIRE);
    if (x != NULL || __atomic_load_n(&b->ca_bad, __ATOMIC_RELAXED))
        return x;
    const unsigned char *p = lw_cfg.ca_der;
    x = b->api.d2i_x509(NULL, &p, (long)lw_cfg.ca_der_len);
    if (x == NULL) {
        static pid_t said;
        __atomic_store_n(&b->ca_bad, 1, __ATOMIC_RELAXED);
        if (lw_shim_first_in_process(&said))
            lw_shim_say("LLMWRAP_CA_DER is not a DER certificate; OpenSSL contexts are left "
                        "unchanged");
        return NULL;
    }
    struct lw_x509 *expected = NULL;
    if (!__atomic_compare_exchange_n(&b->ca, &expected, x, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        if (b->api.x509_free != NULL)
            b->api.x509_free(x);
        x = expected;
    }
    return x;
}

static void trust_llmwrap_ca(SslBinding *b, struct lw_ssl_ctx *ctx)
{
    const SslApi *a = &b->api;
    if (a->d2i_x509 == NULL || a->ctx_get_cert_store == NULL || a->store_add_cert == NULL ||
        a->err_set_mark == NULL || a->err_pop_to_mark == NULL)
        return;
    struct lw_x509_store *store = a->ctx_get_cert_store(ctx);
    if (store == NULL)
        return;
    /* Adding a root the store already holds succeeds without a new entry,
     * so stores need no bookkeeping here; the mark drops any error the add
     * leaves, which the program would otherwise meet in its next
     * SSL_get_error. */
    a->err_set_mark();
    struct lw_x509 *ca = llmwrap_ca(b);
    if (ca != NULL)
        a->store_add_cert(store, ca);
    a->err_pop_to_mark();
}

LW_EXPORT struct lw_ssl *SSL_new(struct lw_ssl_ctx *ctx)
{
    SslBinding scratch;
    SslBinding *b = binding_for(__builtin_return_address(0), &scratch);
    if (b == NULL)
        return NULL;
    if (ctx != NULL && lw_active && lw_cfg.tls_hook && lw_cfg.ca_der_len > 0)
        trust_llmwrap_ca(b, ctx);
    struct lw_ssl *ssl = b->api.ssl_new(ctx);
    /* An uncached binding's root copy is referenced by the store now. */
    if (b == &scratch && scratch.ca != NULL && scratch.api.x509_free != NULL)
        scratch.api.x509_free(scratch.ca);
    return ssl;
}
