/* preload-tls-multi.c - two OpenSSLs in one process: the system libssl
 * (linked) and a private one loaded RTLD_LOCAL behind another library
 * (fake-ssl.c via fake-ssl-user.c). Prints what each SSL_new did.
 *
 *   preload-tls-multi PATH-OF-liblwfakessluser.so
 */
#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>

const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "verify_asan_link_order=0:detect_leaks=0";
}

static void real_round(const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int before = sk_X509_OBJECT_num(X509_STORE_get0_objects(store));
    SSL *ssl = SSL_new(ctx);
    int after = sk_X509_OBJECT_num(X509_STORE_get0_objects(store));
    printf("%s=%s;added=%d;errors=%lu\n", key, ssl != NULL ? "ok" : "NULL", after - before,
           ERR_peek_error());
    SSL_free(ssl);
    SSL_CTX_free(ctx);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    real_round("real1");
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        printf("dlopen=%s\n", dlerror());
        return 1;
    }
    int (*handshake)(void) = (int (*)(void))dlsym(h, "lw_fake_user_handshake");
    void (*stats)(int *, int *, int *, long *, int *) =
        (void (*)(int *, int *, int *, long *, int *))dlsym(h, "lw_fake_ssl_stats");
    if (handshake == NULL || stats == NULL)
        return 1;
    int ok1 = handshake();
    int ok2 = handshake(); /* the cached dispatch */
    real_round("real2");
    int calls, bad, adds, balanced;
    long der;
    stats(&calls, &bad, &adds, &der, &balanced);
    printf("fake=%d,%d;calls=%d;bad_ctx=%d;adds=%d;der_len=%ld;marks_balanced=%d\n", ok1, ok2,
           calls, bad, adds, der, balanced);
    return 0;
}
