/* sim-tls.c - the simulated provider's test CA, server certificate and SSL_CTX. */
#include "sim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define CERT_DAYS 3650

/* The server certificate names every provider host so a client whose traffic
 * is pointed at the sim by name (or by an interception layer) verifies it. */
static const char SERVER_SAN[] =
    "IP:127.0.0.1,IP:::1,DNS:localhost,"
    "DNS:api.openai.com,DNS:api.anthropic.com,DNS:generativelanguage.googleapis.com,"
    "DNS:api.x.ai,DNS:openrouter.ai,DNS:api.deepseek.com,DNS:api.groq.com,"
    "DNS:api.mistral.ai,DNS:api.together.xyz,DNS:api.fireworks.ai,DNS:api.perplexity.ai";

G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SSL_CTX, SSL_CTX_free)

/* The one place OpenSSL's error queue becomes a GError. */
static void set_ssl_error(GError **error, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "unknown error";
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "%s: %s", what, buf);
}

static bool add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return false;
    bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

static bool set_random_serial(X509 *cert)
{
    BIGNUM *bn = BN_new();
    bool ok = bn != NULL && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) == 1 &&
              BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL;
    BN_free(bn);
    return ok;
}

/* Issues a certificate for `key`; a NULL issuer makes it self-signed. */
static X509 *issue(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, bool is_ca)
{
    g_autoptr(X509) cert = X509_new();
    if (cert == NULL || X509_set_version(cert, 2) != 1 || !set_random_serial(cert))
        return NULL;
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"llm-sim", -1, -1,
                               0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(cert, issuer != NULL ? X509_get_subject_name(issuer) : name);
    /* Backdated a day so clock skew between processes never matters. */
    X509_gmtime_adj(X509_getm_notBefore(cert), -86400);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400L * CERT_DAYS);
    if (X509_set_pubkey(cert, key) != 1)
        return NULL;
    X509 *signer = issuer != NULL ? issuer : cert;
    bool ok;
    if (is_ca) {
        ok = add_ext(cert, signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
             add_ext(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign") &&
             add_ext(cert, signer, NID_subject_key_identifier, "hash") &&
             add_ext(cert, signer, NID_authority_key_identifier, "keyid:always");
    } else {
        ok = add_ext(cert, signer, NID_basic_constraints, "critical,CA:FALSE") &&
             add_ext(cert, signer, NID_key_usage, "critical,digitalSignature") &&
             add_ext(cert, signer, NID_ext_key_usage, "serverAuth") &&
             add_ext(cert, signer, NID_subject_alt_name, SERVER_SAN) &&
             add_ext(cert, signer, NID_authority_key_identifier, "keyid:always");
    }
    if (!ok || X509_sign(cert, issuer_key != NULL ? issuer_key : key, EVP_sha256()) == 0)
        return NULL;
    return g_steal_pointer(&cert);
}

/* Writes a PEM file through a temporary in the same directory and renames it
 * into place, so a concurrent reader sees either nothing or the whole file. */
static bool write_pem(const char *path, mode_t mode, X509 *cert, EVP_PKEY *key, GError **error)
{
    g_autofree char *tmp = g_strdup_printf("%s.XXXXXX", path);
    int fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, mode);
    if (fd < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", tmp,
                    g_strerror(errno));
        return false;
    }
    FILE *f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        unlink(tmp);
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "fdopen failed");
        return false;
    }
    bool ok = cert != NULL ? PEM_write_X509(f, cert) == 1
                           : PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) == 1;
    ok = ok && fflush(f) == 0 && fsync(fd) == 0 && fchmod(fd, mode) == 0;
    if (fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_FAILED, "cannot write %s", path);
        return false;
    }
    return true;
}

static bool generate(const char *dir, GError **error)
{
    g_autoptr(EVP_PKEY) ca_key = EVP_EC_gen("P-256");
    g_autoptr(EVP_PKEY) srv_key = EVP_EC_gen("P-256");
    if (ca_key == NULL || srv_key == NULL) {
        set_ssl_error(error, "key generation");
        return false;
    }
    g_autoptr(X509) ca = issue(ca_key, "llm-sim test CA", NULL, NULL, true);
    g_autoptr(X509) srv = ca != NULL ? issue(srv_key, "llm-sim", ca, ca_key, false) : NULL;
    if (srv == NULL) {
        set_ssl_error(error, "certificate generation");
        return false;
    }
    g_autofree char *ca_path = g_build_filename(dir, "sim-ca.pem", NULL);
    g_autofree char *srv_path = g_build_filename(dir, "sim-server.pem", NULL);
    g_autofree char *key_path = g_build_filename(dir, "sim-server.key", NULL);
    /* The CA file goes last: its presence means the set is complete. */
    return write_pem(key_path, 0600, NULL, srv_key, error) &&
           write_pem(srv_path, 0644, srv, NULL, error) && write_pem(ca_path, 0644, ca, NULL, error);
}

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof ours - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *load(const char *dir, GError **error)
{
    g_autofree char *ca_path = g_build_filename(dir, "sim-ca.pem", NULL);
    g_autofree char *srv_path = g_build_filename(dir, "sim-server.pem", NULL);
    g_autofree char *key_path = g_build_filename(dir, "sim-server.key", NULL);
    if (access(ca_path, R_OK) != 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT, "%s missing", ca_path);
        return NULL;
    }
    g_autoptr(SSL_CTX) ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        set_ssl_error(error, "SSL_CTX_new");
        return NULL;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, srv_path) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key_path, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        set_ssl_error(error, srv_path);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    /* One read(2) per burst instead of one per record header and body. */
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"llm-sim", 7);
    return g_steal_pointer(&ctx);
}

SSL_CTX *sim_tls_context(const char *dir, GError **error)
{
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", dir,
                    g_strerror(errno));
        return NULL;
    }
    g_autofree char *lock_path = g_build_filename(dir, ".sim-cert.lock", NULL);
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX) != 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "%s: %s", lock_path,
                    g_strerror(errno));
        if (lock >= 0)
            close(lock);
        return NULL;
    }
    SSL_CTX *ctx = load(dir, NULL);
    if (ctx == NULL && generate(dir, error))
        ctx = load(dir, error);
    close(lock);
    return ctx;
}
