/* test-ca.c - the local CA: files and modes, chain shape, name constraints
 * as real verifiers (openssl verify, X509_verify_cert, CPython's ssl with
 * VERIFY_X509_STRICT) enforce them, regeneration rules, refusal to mint. */
#include "ca.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_NAME, X509_NAME_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_EXTENSION, X509_EXTENSION_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_STORE, X509_STORE_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_STORE_CTX, X509_STORE_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BIO, BIO_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NAME_CONSTRAINTS, NAME_CONSTRAINTS_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GENERAL_NAMES, GENERAL_NAMES_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ASN1_BIT_STRING, ASN1_BIT_STRING_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BIGNUM, BN_free)

#define DAY (24 * 60 * 60)

static const char *const provider_hosts[] = {
    "api.openai.com",   "api.anthropic.com", "generativelanguage.googleapis.com",
    "api.x.ai",         "openrouter.ai",     "api.deepseek.com",
    "api.groq.com",     "api.mistral.ai",    "api.together.xyz",
    "api.fireworks.ai", "api.perplexity.ai", NULL,
};

/* ---- Fixture: a fresh temporary directory with a 0700 CA directory in it -- */

typedef struct {
    char *tmp;    /* g_dir_make_tmp(); leaf files the tests write go here */
    char *ca_dir; /* tmp/ca, 0700 */
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    f->tmp = g_dir_make_tmp("test-ca-XXXXXX", &error);
    g_assert_no_error(error);
    f->ca_dir = g_build_filename(f->tmp, "ca", NULL);
    g_assert_cmpint(g_mkdir(f->ca_dir, 0700), ==, 0);
    g_assert_cmpint(chmod(f->ca_dir, 0700), ==, 0); /* whatever the umask */
}

/* Removes `path` and, for a directory, its contents (the tests make at most
 * two levels). */
static void remove_tree(const char *path, int depth)
{
    g_assert_cmpint(depth, <, 4);
    if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
        chmod(path, 0700);
        g_autoptr(GDir) dir = g_dir_open(path, 0, NULL);
        const char *name;
        while (dir != NULL && (name = g_dir_read_name(dir)) != NULL) {
            g_autofree char *child = g_build_filename(path, name, NULL);
            remove_tree(child, depth + 1);
        }
        g_rmdir(path);
    } else {
        g_unlink(path);
    }
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    remove_tree(f->tmp, 0);
    g_assert_false(g_file_test(f->tmp, G_FILE_TEST_EXISTS));
    g_free(f->ca_dir);
    g_free(f->tmp);
}

/* ---- Helpers ---------------------------------------------------------------- */

static char *ca_file(const Fixture *f, const char *name)
{
    return g_build_filename(f->ca_dir, name, NULL);
}

static LwCa *open_ok(const Fixture *f, const char *const *hosts, LwCaOrigin expected_origin)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *detail = NULL;
    LwCaOrigin origin = (LwCaOrigin)-1;
    LwCa *ca = lw_ca_open(f->ca_dir, hosts, &origin, &detail, &error);
    g_assert_no_error(error);
    g_assert_nonnull(ca);
    if (origin != expected_origin)
        g_test_message("origin %s (%s)", lw_ca_origin_to_string(origin), detail);
    g_assert_cmpint(origin, ==, expected_origin);
    if (origin == LW_CA_LOADED || origin == LW_CA_CREATED)
        g_assert_null(detail);
    else
        g_assert_nonnull(detail);
    return ca;
}

static char *fingerprint(const LwCa *ca)
{
    char *fp = lw_ca_dup_root_fingerprint(ca);
    g_assert_nonnull(fp);
    g_assert_cmpuint(strlen(fp), ==, 32 * 3 - 1);
    return fp;
}

static X509 *read_cert_file(const char *path)
{
    g_autoptr(BIO) bio = BIO_new_file(path, "r");
    g_assert_nonnull(bio);
    X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    g_assert_nonnull(cert);
    return cert;
}

static EVP_PKEY *read_key_file(const char *path)
{
    g_autoptr(BIO) bio = BIO_new_file(path, "r");
    g_assert_nonnull(bio);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    g_assert_nonnull(key);
    return key;
}

static void write_pem(const char *path, X509 *cert, X509 *chain_cert, EVP_PKEY *key)
{
    g_autoptr(BIO) bio = BIO_new_file(path, "w");
    g_assert_nonnull(bio);
    if (cert != NULL)
        g_assert_cmpint(PEM_write_bio_X509(bio, cert), ==, 1);
    if (chain_cert != NULL)
        g_assert_cmpint(PEM_write_bio_X509(bio, chain_cert), ==, 1);
    if (key != NULL)
        g_assert_cmpint(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), ==, 1);
    g_assert_cmpint(BIO_flush(bio), ==, 1);
}

static guint mode_of(const char *path)
{
    struct stat st;
    g_assert_cmpint(stat(path, &st), ==, 0);
    return st.st_mode & 07777;
}

/* Runs argv (searched in PATH), returns the exit status; stdout+stderr go to
 * `ret_output`. Every command the tests run bounds itself (openssl verify does
 * no I/O beyond files, the Python script arms an alarm). */
static int run(const char *const *argv, char **ret_output)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL, *err = NULL;
    int status = -1;
    g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status,
                 &error);
    g_assert_no_error(error);
    *ret_output = g_strconcat(out, err, NULL);
    g_test_message("%s -> %d: %s", argv[0], status, *ret_output);
    if (!WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static int openssl_verify(const Fixture *f, const char *leaf_path, const char *hostname,
                          char **ret_output)
{
    g_autofree char *root = ca_file(f, LW_CA_ROOT_FILE);
    g_autofree char *inter = ca_file(f, LW_CA_INTERMEDIATE_FILE);
    const char *argv[16] = {"openssl", "verify", "-x509_strict", "-purpose", "sslserver",
                            "-CAfile", root,     "-untrusted",   inter};
    int n = 9;
    if (hostname != NULL) {
        argv[n++] = "-verify_hostname";
        argv[n++] = hostname;
    }
    argv[n++] = leaf_path;
    argv[n] = NULL;
    return run(argv, ret_output);
}

/* X509_verify_cert as a TLS client would run it: strict, server purpose, the
 * identity pinned. Returns the X509_V_* result. */
static int verify_programmatically(X509 *root, X509 *intermediate, X509 *leaf, const char *host,
                                   const char *ip)
{
    g_autoptr(X509_STORE) store = X509_STORE_new();
    g_autoptr(X509_STORE_CTX) ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    sk_X509_push(untrusted, intermediate);
    g_assert_cmpint(X509_STORE_add_cert(store, root), ==, 1);
    g_assert_cmpint(X509_STORE_CTX_init(ctx, store, leaf, untrusted), ==, 1);
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
    if (host != NULL)
        g_assert_cmpint(X509_VERIFY_PARAM_set1_host(param, host, 0), ==, 1);
    if (ip != NULL)
        g_assert_cmpint(X509_VERIFY_PARAM_set1_ip_asc(param, ip), ==, 1);
    int ok = X509_verify_cert(ctx);
    int err = X509_STORE_CTX_get_error(ctx);
    sk_X509_free(untrusted);
    ERR_clear_error();
    g_assert_true((ok == 1) == (err == X509_V_OK));
    return err;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
    g_autoptr(X509_EXTENSION) ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    g_assert_nonnull(ext);
    g_assert_cmpint(X509_add_ext(cert, ext, -1), ==, 1);
}

/* What an attacker holding intermediate.key could sign: a well-formed server
 * leaf for `san` ("DNS:example.com", "IP:127.0.0.1"), built with plain
 * OpenSSL calls and nothing from ca.c. Only the name constraints can stop it. */
static X509 *forge_leaf(const Fixture *f, const char *common_name, const char *san,
                        gboolean with_aki, EVP_PKEY **ret_key)
{
    g_autofree char *key_path = ca_file(f, LW_CA_INTERMEDIATE_KEY_FILE);
    g_autofree char *inter_path = ca_file(f, LW_CA_INTERMEDIATE_FILE);
    g_autoptr(EVP_PKEY) ca_key = read_key_file(key_path);
    g_autoptr(X509) inter = read_cert_file(inter_path);

    g_autoptr(EVP_PKEY) key = EVP_EC_gen("prime256v1");
    g_assert_nonnull(key);
    X509 *leaf = X509_new();
    X509_set_version(leaf, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(leaf), (long)g_random_int_range(1, G_MAXINT32));
    g_autoptr(X509_NAME) name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name, -1,
                               -1, 0);
    X509_set_subject_name(leaf, name);
    X509_set_issuer_name(leaf, X509_get_subject_name(inter));
    X509_gmtime_adj(X509_getm_notBefore(leaf), -DAY);
    X509_gmtime_adj(X509_getm_notAfter(leaf), 30L * DAY);
    X509_set_pubkey(leaf, key);
    add_ext(leaf, inter, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(leaf, inter, NID_key_usage, "critical,digitalSignature");
    add_ext(leaf, inter, NID_ext_key_usage, "serverAuth");
    add_ext(leaf, inter, NID_subject_alt_name, san);
    if (with_aki)
        add_ext(leaf, inter, NID_authority_key_identifier, "keyid:always");
    g_assert_cmpint(X509_sign(leaf, ca_key, EVP_sha256()), >, 0);
    if (ret_key != NULL)
        *ret_key = g_steal_pointer(&key);
    return leaf;
}

static LwCa *create_ca(const Fixture *f)
{
    return open_ok(f, provider_hosts, LW_CA_CREATED);
}

/* ---- Creation, files, reload ------------------------------------------------------ */

static void test_create_and_reload(Fixture *f, gconstpointer data)
{
    g_autofree char *fp1 = NULL;
    {
        g_autoptr(LwCa) ca = create_ca(f);
        fp1 = fingerprint(ca);
        g_autofree char *root_path = ca_file(f, LW_CA_ROOT_FILE);
        g_assert_cmpstr(lw_ca_get_root_path(ca), ==, root_path);
    }

    g_assert_cmpuint(mode_of(f->ca_dir), ==, 0700);
    g_autofree char *key_path = ca_file(f, LW_CA_INTERMEDIATE_KEY_FILE);
    g_assert_cmpuint(mode_of(key_path), ==, 0600);

    /* Exactly the three files (no temporaries left), and the only private key
     * on disk is the intermediate's: the root's was discarded. */
    g_autoptr(GDir) dir = g_dir_open(f->ca_dir, 0, NULL);
    g_assert_nonnull(dir);
    guint n_files = 0;
    const char *name;
    while ((name = g_dir_read_name(dir)) != NULL) {
        g_autofree char *path = ca_file(f, name);
        g_autofree char *contents = NULL;
        g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
        gboolean is_key_file = g_str_equal(name, LW_CA_INTERMEDIATE_KEY_FILE);
        g_assert_true(g_str_equal(name, LW_CA_ROOT_FILE) ||
                      g_str_equal(name, LW_CA_INTERMEDIATE_FILE) || is_key_file);
        g_assert_true((strstr(contents, "PRIVATE KEY") != NULL) == is_key_file);
        n_files++;
    }
    g_assert_cmpuint(n_files, ==, 3);

    g_autofree char *root_path = ca_file(f, LW_CA_ROOT_FILE);
    g_autofree char *inter_path = ca_file(f, LW_CA_INTERMEDIATE_FILE);
    g_autoptr(EVP_PKEY) key = read_key_file(key_path);
    g_autoptr(X509) root = read_cert_file(root_path);
    g_autoptr(X509) inter = read_cert_file(inter_path);
    g_assert_cmpint(X509_check_private_key(inter, key), ==, 1);
    g_assert_cmpint(X509_check_private_key(root, key), ==, 0);
    ERR_clear_error();

    /* Loading again reuses the chain. */
    g_autoptr(LwCa) again = open_ok(f, provider_hosts, LW_CA_LOADED);
    g_autofree char *fp2 = fingerprint(again);
    g_assert_cmpstr(fp1, ==, fp2);
    g_assert_cmpint(X509_cmp(lw_ca_get_intermediate(again), inter), ==, 0);
    g_assert_cmpint(X509_cmp(lw_ca_get_root(again), root), ==, 0);
}

/* ---- The chain, checked by verifiers ----------------------------------------------- */

static void test_openssl_cli_verifies_leaf(Fixture *f, gconstpointer data)
{
    g_autoptr(LwCa) ca = create_ca(f);
    g_autoptr(EVP_PKEY) key = NULL;
    g_autoptr(X509) leaf = NULL;
    g_autoptr(GError) error = NULL;
    g_assert_true(lw_ca_mint_leaf(ca, "api.openai.com", &key, &leaf, &error));
    g_assert_no_error(error);
    g_autofree char *leaf_path = g_build_filename(f->tmp, "leaf.pem", NULL);
    write_pem(leaf_path, leaf, NULL, NULL);

    g_autofree char *out = NULL;
    g_assert_cmpint(openssl_verify(f, leaf_path, NULL, &out), ==, 0);
    g_assert_nonnull(strstr(out, ": OK"));
    g_free(g_steal_pointer(&out));
    g_assert_cmpint(openssl_verify(f, leaf_path, "api.openai.com", &out), ==, 0);
    g_assert_nonnull(strstr(out, ": OK"));
    g_free(g_steal_pointer(&out));
    /* The same leaf for another name: the hostname check still applies. */
    g_assert_cmpint(openssl_verify(f, leaf_path, "api.anthropic.com", &out), !=, 0);

    g_assert_cmpint(verify_programmatically(lw_ca_get_root(ca), lw_ca_get_intermediate(ca), leaf,
                                            "api.openai.com", NULL),
                    ==, X509_V_OK);
}

typedef struct {
    const char *name;
    const char *common_name;
    const char *san;
    const char *host; /* identity pinned for X509_VERIFY_PARAM_set1_host */
    const char *ip;   /* ... or X509_VERIFY_PARAM_set1_ip_asc */
    int expected;     /* X509_V_* */
    const char *expected_text;
} ForgeCase;

static const ForgeCase forge_cases[] = {
    /* Control: the same forging code for a permitted name verifies, so the
     * failures below come from the name constraints and nothing else. */
    {"permitted", "api.openai.com", "DNS:api.openai.com", "api.openai.com", NULL, X509_V_OK,
     ": OK"},
    {"other-domain", "example.com", "DNS:example.com", "example.com", NULL,
     X509_V_ERR_PERMITTED_VIOLATION, "permitted subtree violation"},
    {"suffix-trick", "api.openai.com.example.com", "DNS:api.openai.com.example.com",
     "api.openai.com.example.com", NULL, X509_V_ERR_PERMITTED_VIOLATION,
     "permitted subtree violation"},
    {"parent-domain", "openai.com", "DNS:openai.com", "openai.com", NULL,
     X509_V_ERR_PERMITTED_VIOLATION, "permitted subtree violation"},
    /* A DNS-only constraint says nothing about IP SANs; the exclusions do. */
    {"ipv4", "api.openai.com", "IP:127.0.0.1", NULL, "127.0.0.1", X509_V_ERR_EXCLUDED_VIOLATION,
     "excluded subtree violation"},
    {"ipv6", "api.openai.com", "IP:::1", NULL, "::1", X509_V_ERR_EXCLUDED_VIOLATION,
     "excluded subtree violation"},
};

static void test_name_constraints_bite(Fixture *f, gconstpointer data)
{
    const ForgeCase *c = data;
    g_autoptr(LwCa) ca = create_ca(f);
    g_autoptr(X509) leaf = forge_leaf(f, c->common_name, c->san, TRUE, NULL);
    g_autofree char *leaf_path = g_build_filename(f->tmp, "forged.pem", NULL);
    write_pem(leaf_path, leaf, NULL, NULL);

    g_autofree char *out = NULL;
    int status = openssl_verify(f, leaf_path, NULL, &out);
    g_assert_nonnull(strstr(out, c->expected_text));
    if (c->expected == X509_V_OK)
        g_assert_cmpint(status, ==, 0);
    else
        g_assert_cmpint(status, !=, 0);

    g_assert_cmpint(verify_programmatically(lw_ca_get_root(ca), lw_ca_get_intermediate(ca), leaf,
                                            c->host, c->ip),
                    ==, c->expected);
}

/* ---- Minting ---------------------------------------------------------------------- */

typedef struct {
    const char *host;
    const char *expected_san; /* NULL: refused */
} MintCase;

static const MintCase mint_cases[] = {
    {"api.openai.com", "api.openai.com"},
    {"API.OpenAI.COM", "api.openai.com"},
    {"api.anthropic.com.", "api.anthropic.com"},
    {"generativelanguage.googleapis.com", "generativelanguage.googleapis.com"},
    {"example.com", NULL},
    {"evil.api.openai.com", NULL}, /* the constraint would allow it; we serve exact names */
    {"openai.com", NULL},
    {"googleapis.com", NULL},
    {"api.openai.com..", NULL},
    {".api.openai.com", NULL},
    {"api.openai.com.example.com", NULL},
    {"127.0.0.1", NULL},
    {"api.openai.com\n", NULL},
    {"", NULL},
};

static void test_mint(Fixture *f, gconstpointer data)
{
    const MintCase *c = data;
    g_autoptr(LwCa) ca = create_ca(f);
    g_autoptr(EVP_PKEY) key = NULL;
    g_autoptr(X509) leaf = NULL;
    g_autoptr(GError) error = NULL;
    gboolean ok = lw_ca_mint_leaf(ca, c->host, &key, &leaf, &error);
    g_assert_cmpint(lw_ca_is_permitted_host(ca, c->host), ==, c->expected_san != NULL);
    if (c->expected_san == NULL) {
        g_assert_false(ok);
        g_assert_error(error, LW_CA_ERROR, LW_CA_ERROR_HOST_NOT_PERMITTED);
        g_assert_null(key);
        g_assert_null(leaf);
        return;
    }
    g_assert_no_error(error);
    g_assert_true(ok);
    g_assert_cmpint(X509_check_host(leaf, c->expected_san, 0, 0, NULL), ==, 1);
    g_assert_cmpint(verify_programmatically(lw_ca_get_root(ca), lw_ca_get_intermediate(ca), leaf,
                                            c->expected_san, NULL),
                    ==, X509_V_OK);
}

static gboolean ext_is_critical(X509 *cert, int nid)
{
    int idx = X509_get_ext_by_NID(cert, nid, -1);
    g_assert_cmpint(idx, >=, 0);
    g_assert_cmpint(X509_get_ext_by_NID(cert, nid, idx), ==, -1); /* exactly once */
    return X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

static void assert_p256(X509 *cert)
{
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    char group[64];
    size_t len = 0;
    g_assert_true(EVP_PKEY_is_a(pub, "EC"));
    g_assert_cmpint(EVP_PKEY_get_group_name(pub, group, sizeof group, &len), ==, 1);
    g_assert_cmpstr(group, ==, "prime256v1");
    g_assert_cmpint(X509_get_signature_nid(cert), ==, NID_ecdsa_with_SHA256);
}

static void assert_random_serial(X509 *cert)
{
    g_autoptr(BIGNUM) bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    g_assert_false(BN_is_negative(bn));
    g_assert_cmpint(BN_num_bits(bn), >=, 64);
}

/* Seconds from notBefore to notAfter. */
static long lifetime_seconds(X509 *cert)
{
    int days = 0, secs = 0;
    g_assert_cmpint(
        ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert)), ==, 1);
    return (long)days * DAY + secs;
}

static void test_leaf_properties(Fixture *f, gconstpointer data)
{
    g_autoptr(LwCa) ca = create_ca(f);
    g_autoptr(EVP_PKEY) key = NULL;
    g_autoptr(X509) leaf = NULL;
    g_autoptr(GError) error = NULL;
    g_assert_true(lw_ca_mint_leaf(ca, "api.openai.com", &key, &leaf, &error));
    g_assert_no_error(error);
    X509 *inter = lw_ca_get_intermediate(ca);

    g_assert_cmpint(X509_get_version(leaf), ==, X509_VERSION_3);
    g_assert_cmpint(X509_check_private_key(leaf, key), ==, 1);
    assert_p256(leaf);
    assert_random_serial(leaf);
    g_assert_cmpint(X509_check_issued(inter, leaf), ==, X509_V_OK);

    /* Subject CN = host, SAN = exactly one dNSName = host, not critical. */
    char cn[256];
    g_assert_cmpint(
        X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof cn), >,
        0);
    g_assert_cmpstr(cn, ==, "api.openai.com");
    g_assert_false(ext_is_critical(leaf, NID_subject_alt_name));
    g_autoptr(GENERAL_NAMES) sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    g_assert_cmpint(sk_GENERAL_NAME_num(sans), ==, 1);
    GENERAL_NAME *san = sk_GENERAL_NAME_value(sans, 0);
    g_assert_cmpint(san->type, ==, GEN_DNS);
    g_assert_cmpstr((const char *)ASN1_STRING_get0_data(san->d.dNSName), ==, "api.openai.com");

    /* No SKI (P17); AKI = the intermediate's SKI. */
    g_assert_cmpint(X509_get_ext_by_NID(leaf, NID_subject_key_identifier, -1), ==, -1);
    g_assert_null(X509_get0_subject_key_id(leaf));
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(leaf);
    const ASN1_OCTET_STRING *inter_ski = X509_get0_subject_key_id(inter);
    g_assert_nonnull(aki);
    g_assert_nonnull(inter_ski);
    g_assert_cmpint(ASN1_OCTET_STRING_cmp(aki, inter_ski), ==, 0);
    g_assert_false(ext_is_critical(leaf, NID_authority_key_identifier));

    /* BasicConstraints CA:FALSE critical; KU digitalSignature only, critical;
     * EKU serverAuth only. */
    g_assert_true(ext_is_critical(leaf, NID_basic_constraints));
    g_autoptr(BASIC_CONSTRAINTS) bc = X509_get_ext_d2i(leaf, NID_basic_constraints, NULL, NULL);
    g_assert_false(bc->ca);
    g_assert_true(ext_is_critical(leaf, NID_key_usage));
    g_assert_cmpuint(X509_get_key_usage(leaf), ==, KU_DIGITAL_SIGNATURE);
    g_assert_false(ext_is_critical(leaf, NID_ext_key_usage));
    g_autoptr(EXTENDED_KEY_USAGE) eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, NULL, NULL);
    g_assert_cmpint(sk_ASN1_OBJECT_num(eku), ==, 1);
    g_assert_cmpint(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), ==, NID_server_auth);
    g_assert_cmpint(X509_get_ext_count(leaf), ==, 5);

    /* Validity: at most 45 days in all, started about a day ago. */
    g_assert_cmpint(lifetime_seconds(leaf), <=, 45L * DAY);
    g_assert_cmpint(lifetime_seconds(leaf), >=, 44L * DAY);
    time_t now = time(NULL);
    time_t lower = now - 2 * DAY, upper = now - DAY / 2;
    g_assert_cmpint(X509_cmp_time(X509_get0_notBefore(leaf), &lower), >, 0);
    g_assert_cmpint(X509_cmp_time(X509_get0_notBefore(leaf), &upper), <, 0);

    /* Two mints never share a key or a serial. */
    g_autoptr(EVP_PKEY) key2 = NULL;
    g_autoptr(X509) leaf2 = NULL;
    g_assert_true(lw_ca_mint_leaf(ca, "api.openai.com", &key2, &leaf2, &error));
    g_assert_cmpint(EVP_PKEY_eq(key, key2), !=, 1);
    g_assert_cmpint(ASN1_INTEGER_cmp(X509_get0_serialNumber(leaf), X509_get0_serialNumber(leaf2)),
                    !=, 0);
}

/* A host longer than a commonName can hold still gets a strict-valid leaf:
 * empty subject, critical SAN. */
static void test_long_host(Fixture *f, gconstpointer data)
{
    g_autofree char *label = g_strnfill(60, 'l');
    g_autofree char *long_host = g_strdup_printf("%s.example.net", label); /* 72 characters */
    const char *const hosts[] = {"api.openai.com", long_host, NULL};
    g_autoptr(LwCa) ca = open_ok(f, hosts, LW_CA_CREATED);
    g_autoptr(GError) error = NULL;
    g_autoptr(EVP_PKEY) key = NULL;
    g_autoptr(X509) leaf = NULL;
    g_assert_true(lw_ca_mint_leaf(ca, long_host, &key, &leaf, &error));
    g_assert_no_error(error);
    g_assert_cmpint(X509_NAME_entry_count(X509_get_subject_name(leaf)), ==, 0);
    g_assert_true(ext_is_critical(leaf, NID_subject_alt_name));

    g_autofree char *leaf_path = g_build_filename(f->tmp, "long.pem", NULL);
    write_pem(leaf_path, leaf, NULL, NULL);
    g_autofree char *out = NULL;
    g_assert_cmpint(openssl_verify(f, leaf_path, long_host, &out), ==, 0);
    g_assert_nonnull(strstr(out, ": OK"));
    g_assert_cmpint(verify_programmatically(lw_ca_get_root(ca), lw_ca_get_intermediate(ca), leaf,
                                            long_host, NULL),
                    ==, X509_V_OK);

    /* The short host keeps its CN and a non-critical SAN. */
    g_autoptr(EVP_PKEY) key2 = NULL;
    g_autoptr(X509) leaf2 = NULL;
    g_assert_true(lw_ca_mint_leaf(ca, "api.openai.com", &key2, &leaf2, &error));
    g_assert_cmpint(X509_NAME_entry_count(X509_get_subject_name(leaf2)), ==, 1);
    g_assert_false(ext_is_critical(leaf2, NID_subject_alt_name));
}

static void assert_constraints(X509 *cert, const char *const *expected_hosts)
{
    int crit = -1;
    g_autoptr(NAME_CONSTRAINTS) nc = X509_get_ext_d2i(cert, NID_name_constraints, &crit, NULL);
    g_assert_nonnull(nc);
    g_assert_cmpint(crit, ==, 1);
    g_assert_cmpint(sk_GENERAL_SUBTREE_num(nc->permittedSubtrees), ==,
                    (int)g_strv_length((char **)expected_hosts));
    for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++) {
        GENERAL_NAME *gn = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i)->base;
        g_assert_cmpint(gn->type, ==, GEN_DNS);
        const char *dns = (const char *)ASN1_STRING_get0_data(gn->d.dNSName);
        g_assert_true(g_strv_contains(expected_hosts, dns));
    }
    g_assert_cmpint(sk_GENERAL_SUBTREE_num(nc->excludedSubtrees), ==, 2);
    int lengths = 0;
    for (int i = 0; i < 2; i++) {
        GENERAL_NAME *gn = sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, i)->base;
        g_assert_cmpint(gn->type, ==, GEN_IPADD);
        const ASN1_OCTET_STRING *ip = gn->d.iPAddress;
        static const unsigned char zeros[32] = {0};
        g_assert_cmpmem(ASN1_STRING_get0_data(ip), ASN1_STRING_length(ip), zeros,
                        ASN1_STRING_length(ip));
        lengths += ASN1_STRING_length(ip);
    }
    g_assert_cmpint(lengths, ==, 8 + 32); /* 0.0.0.0/0 and ::/0 */
}

static char *org_of(X509 *cert)
{
    char org[256];
    g_assert_cmpint(X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_organizationName,
                                              org, sizeof org),
                    >, 0);
    return g_strdup(org);
}

static void test_ca_properties(Fixture *f, gconstpointer data)
{
    g_autoptr(LwCa) ca = create_ca(f);
    X509 *root = lw_ca_get_root(ca), *inter = lw_ca_get_intermediate(ca);

    for (int i = 0; i < 2; i++) {
        X509 *cert = i == 0 ? root : inter;
        assert_p256(cert);
        assert_random_serial(cert);
        g_assert_true(ext_is_critical(cert, NID_basic_constraints));
        g_autoptr(BASIC_CONSTRAINTS) bc = X509_get_ext_d2i(cert, NID_basic_constraints, NULL, NULL);
        g_assert_true(bc->ca);
        g_assert_true(ext_is_critical(cert, NID_key_usage));
        g_assert_cmpuint(X509_get_key_usage(cert), ==, KU_KEY_CERT_SIGN | KU_CRL_SIGN);
        /* TLS servers only: see LW_CA_PURPOSE. */
        g_assert_true((X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) != 0);
        g_assert_cmpuint(X509_get_extended_key_usage(cert), ==, XKU_SSL_SERVER);
        g_assert_false(ext_is_critical(cert, NID_subject_key_identifier));
        g_assert_nonnull(X509_get0_subject_key_id(cert));
        assert_constraints(cert, provider_hosts);
        long lifetime = lifetime_seconds(cert);
        g_assert_cmpint(lifetime, ==, (long)LW_CA_CA_VALIDITY_DAYS * DAY);
        g_autofree char *org = org_of(cert);
        g_assert_true(g_str_has_prefix(org, "llmwrap "));
    }
    g_assert_true(X509_self_signed(root, 1) == 1);
    g_assert_cmpint(X509_get_ext_by_NID(root, NID_authority_key_identifier, -1), ==, -1);
    g_assert_cmpint(X509_get_pathlen(inter), ==, 0);
    g_assert_cmpint(X509_get_pathlen(root), ==, -1);
    g_assert_cmpint(
        ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(inter), X509_get0_subject_key_id(root)),
        ==, 0);
    g_assert_cmpint(X509_check_issued(root, inter), ==, X509_V_OK);

    /* Two CAs are distinguishable by name. */
    g_autofree char *org1 = org_of(root);
    g_autoptr(GError) error = NULL;
    g_autoptr(LwCa) other = lw_ca_rotate(f->ca_dir, provider_hosts, &error);
    g_assert_no_error(error);
    g_autofree char *org2 = org_of(lw_ca_get_root(other));
    g_assert_cmpstr(org1, !=, org2);

    g_assert_cmpstrv(
        lw_ca_get_hosts(ca),
        ((const char *const[]){"api.anthropic.com", "api.deepseek.com", "api.fireworks.ai",
                               "api.groq.com", "api.mistral.ai", "api.openai.com",
                               "api.perplexity.ai", "api.together.xyz", "api.x.ai",
                               "generativelanguage.googleapis.com", "openrouter.ai", NULL}));
}

/* ---- Regeneration ------------------------------------------------------------------ */

static void test_hosts_change(Fixture *f, gconstpointer data)
{
    g_autoptr(LwCa) first = create_ca(f);
    g_autofree char *fp1 = fingerprint(first);

    /* Same set spelt differently: reused. */
    static const char *const same[] = {"API.OPENAI.COM.",
                                       "api.anthropic.com",
                                       "generativelanguage.googleapis.com",
                                       "api.x.ai",
                                       "openrouter.ai",
                                       "api.deepseek.com",
                                       "api.groq.com",
                                       "api.mistral.ai",
                                       "api.together.xyz",
                                       "api.fireworks.ai",
                                       "api.perplexity.ai",
                                       "api.openai.com",
                                       NULL};
    g_autoptr(LwCa) reused = open_ok(f, same, LW_CA_LOADED);
    g_autofree char *fp_reused = fingerprint(reused);
    g_assert_cmpstr(fp1, ==, fp_reused);

    /* A provider added: new chain, constraints name it, the reason says so. */
    g_autoptr(GStrvBuilder) b = g_strv_builder_new();
    g_strv_builder_addv(b, (const char **)provider_hosts);
    g_strv_builder_add(b, "llm.example.net");
    g_auto(GStrv) added = g_strv_builder_end(b);
    g_autoptr(GError) error = NULL;
    g_autofree char *detail = NULL;
    LwCaOrigin origin = LW_CA_LOADED;
    g_autoptr(LwCa) second =
        lw_ca_open(f->ca_dir, (const char *const *)added, &origin, &detail, &error);
    g_assert_no_error(error);
    g_assert_cmpint(origin, ==, LW_CA_REGEN_HOSTS);
    g_assert_nonnull(strstr(detail, "llm.example.net"));
    g_autofree char *fp2 = fingerprint(second);
    g_assert_cmpstr(fp1, !=, fp2);
    assert_constraints(lw_ca_get_root(second), (const char *const *)added);
    assert_constraints(lw_ca_get_intermediate(second), (const char *const *)added);
    g_assert_true(lw_ca_is_permitted_host(second, "llm.example.net"));
    g_autoptr(EVP_PKEY) key = NULL;
    g_autoptr(X509) leaf = NULL;
    g_assert_true(lw_ca_mint_leaf(second, "llm.example.net", &key, &leaf, &error));
    g_assert_cmpint(verify_programmatically(lw_ca_get_root(second), lw_ca_get_intermediate(second),
                                            leaf, "llm.example.net", NULL),
                    ==, X509_V_OK);

    /* And removed again: the removed host is refused afterwards. */
    g_autoptr(LwCa) third = open_ok(f, provider_hosts, LW_CA_REGEN_HOSTS);
    g_assert_false(lw_ca_is_permitted_host(third, "llm.example.net"));
    lw_ca_free(open_ok(f, provider_hosts, LW_CA_LOADED));
}

static void set_file(const Fixture *f, const char *name, const char *contents, gssize len, int mode)
{
    g_autofree char *path = ca_file(f, name);
    g_autoptr(GError) error = NULL;
    g_assert_true(g_file_set_contents_full(path, contents, len, G_FILE_SET_CONTENTS_CONSISTENT,
                                           mode, &error));
    g_assert_no_error(error);
}

typedef enum {
    DAMAGE_KEY_GARBAGE,
    DAMAGE_KEY_EMPTY,
    DAMAGE_KEY_OTHER,
    DAMAGE_KEY_RSA,
    DAMAGE_KEY_MISSING,
    DAMAGE_INTERMEDIATE_GARBAGE,
    DAMAGE_INTERMEDIATE_SWAPPED,
    DAMAGE_ROOT_MISSING,
    DAMAGE_ROOT_FROM_OTHER_CA,
    DAMAGE_ROOT_OVERSIZED,
    DAMAGE_ROOT_DIRECTORY,
} Damage;

typedef struct {
    const char *name;
    Damage damage;
    const char *expected_detail;
} DamageCase;

static const DamageCase damage_cases[] = {
    {"key-garbage", DAMAGE_KEY_GARBAGE, "intermediate.key"},
    {"key-empty", DAMAGE_KEY_EMPTY, "intermediate.key"},
    {"key-mismatch", DAMAGE_KEY_OTHER, "does not match"},
    {"key-rsa", DAMAGE_KEY_RSA, "P-256"},
    {"key-missing", DAMAGE_KEY_MISSING, "intermediate.key: missing"},
    {"intermediate-garbage", DAMAGE_INTERMEDIATE_GARBAGE, "intermediate.pem"},
    {"intermediate-is-root", DAMAGE_INTERMEDIATE_SWAPPED, "intermediate"},
    {"root-missing", DAMAGE_ROOT_MISSING, "root.pem: missing"},
    {"root-foreign", DAMAGE_ROOT_FROM_OTHER_CA, "does not verify"},
    {"root-oversized", DAMAGE_ROOT_OVERSIZED, "larger than"},
    {"root-directory", DAMAGE_ROOT_DIRECTORY, "root.pem"},
};

static char *pem_of_key(EVP_PKEY *key)
{
    g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
    g_assert_cmpint(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), ==, 1);
    char *p = NULL;
    long len = BIO_get_mem_data(bio, &p);
    return g_strndup(p, (gsize)len);
}

static void test_damaged_files_regenerate(Fixture *f, gconstpointer data)
{
    const DamageCase *c = data;
    g_autofree char *fp1 = NULL;
    {
        g_autoptr(LwCa) ca = create_ca(f);
        fp1 = fingerprint(ca);
    }
    g_autofree char *root_path = ca_file(f, LW_CA_ROOT_FILE);
    g_autofree char *key_path = ca_file(f, LW_CA_INTERMEDIATE_KEY_FILE);

    switch (c->damage) {
    case DAMAGE_KEY_GARBAGE: {
        g_autofree char *contents = NULL;
        gsize len = 0;
        g_assert_true(g_file_get_contents(key_path, &contents, &len, NULL));
        contents[len / 2] ^= 0x55; /* one flipped byte inside the base64 */
        set_file(f, LW_CA_INTERMEDIATE_KEY_FILE, contents, (gssize)len, 0600);
        break;
    }
    case DAMAGE_KEY_EMPTY:
        set_file(f, LW_CA_INTERMEDIATE_KEY_FILE, "", 0, 0600);
        break;
    case DAMAGE_KEY_OTHER:
    case DAMAGE_KEY_RSA: {
        g_autoptr(EVP_PKEY) other =
            c->damage == DAMAGE_KEY_RSA ? EVP_RSA_gen(2048) : EVP_EC_gen("prime256v1");
        g_autofree char *pem = pem_of_key(other);
        set_file(f, LW_CA_INTERMEDIATE_KEY_FILE, pem, -1, 0600);
        break;
    }
    case DAMAGE_KEY_MISSING:
        g_assert_cmpint(g_unlink(key_path), ==, 0);
        break;
    case DAMAGE_INTERMEDIATE_GARBAGE:
        set_file(f, LW_CA_INTERMEDIATE_FILE, "-----BEGIN CERTIFICATE-----\nAAAA\n", -1, 0644);
        break;
    case DAMAGE_INTERMEDIATE_SWAPPED: {
        g_autofree char *root_pem = NULL;
        g_assert_true(g_file_get_contents(root_path, &root_pem, NULL, NULL));
        set_file(f, LW_CA_INTERMEDIATE_FILE, root_pem, -1, 0644);
        break;
    }
    case DAMAGE_ROOT_MISSING:
        g_assert_cmpint(g_unlink(root_path), ==, 0);
        break;
    case DAMAGE_ROOT_FROM_OTHER_CA: {
        g_autofree char *other_dir = g_build_filename(f->tmp, "other", NULL);
        g_assert_cmpint(g_mkdir(other_dir, 0700), ==, 0);
        g_autoptr(GError) error = NULL;
        g_autoptr(LwCa) other = lw_ca_open(other_dir, provider_hosts, NULL, NULL, &error);
        g_assert_no_error(error);
        write_pem(root_path, lw_ca_get_root(other), NULL, NULL);
        break;
    }
    case DAMAGE_ROOT_OVERSIZED: {
        /* A valid root.pem followed by padding past the cap. */
        g_autofree char *root_pem = NULL;
        g_assert_true(g_file_get_contents(root_path, &root_pem, NULL, NULL));
        g_autofree char *padding = g_strnfill(LW_CA_MAX_FILE_SIZE, '\n');
        g_autofree char *big = g_strconcat(root_pem, padding, NULL);
        set_file(f, LW_CA_ROOT_FILE, big, -1, 0644);
        break;
    }
    case DAMAGE_ROOT_DIRECTORY:
        g_assert_cmpint(g_unlink(root_path), ==, 0);
        g_assert_cmpint(g_mkdir(root_path, 0700), ==, 0);
        break;
    }

    g_autoptr(GError) error = NULL;
    g_autofree char *detail = NULL;
    LwCaOrigin origin = LW_CA_LOADED;
    g_autoptr(LwCa) ca = lw_ca_open(f->ca_dir, provider_hosts, &origin, &detail, &error);
    if (c->damage == DAMAGE_ROOT_DIRECTORY) {
        /* rename() cannot replace a directory with a file: a clear error
         * rather than a CA that silently is not what root.pem says. */
        g_assert_null(ca);
        g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_ISDIR);
        return;
    }
    g_assert_no_error(error);
    g_assert_nonnull(ca);
    g_test_message("detail: %s", detail);
    g_assert_cmpint(origin, ==, LW_CA_REGEN_INVALID);
    g_assert_nonnull(detail);
    g_assert_nonnull(strstr(detail, c->expected_detail));
    g_autofree char *fp2 = fingerprint(ca);
    g_assert_cmpstr(fp1, !=, fp2);
    g_assert_cmpuint(mode_of(key_path), ==, 0600);

    /* The repaired directory loads as it is. */
    g_autoptr(LwCa) again = open_ok(f, provider_hosts, LW_CA_LOADED);
    g_autofree char *fp3 = fingerprint(again);
    g_assert_cmpstr(fp2, ==, fp3);
}

/* Re-signs the chain in the directory with a new root key (ours is gone)
 * so the intermediate expires in `inter_days`; everything else stays as
 * lw_ca_open() wrote it. */
/* Re-signs the chain in the directory (the root with a new key, since its
 * own was discarded) with the intermediate expiring in `inter_days`, and
 * without the extended key usage when `drop_purpose`, as an older llmwrap
 * made it. */
static void forge_chain(const Fixture *f, long inter_days, gboolean drop_purpose)
{
    g_autofree char *root_path = ca_file(f, LW_CA_ROOT_FILE);
    g_autofree char *inter_path = ca_file(f, LW_CA_INTERMEDIATE_FILE);
    g_autoptr(X509) root = read_cert_file(root_path);
    g_autoptr(X509) inter = read_cert_file(inter_path);
    g_autoptr(EVP_PKEY) root_key = EVP_EC_gen("prime256v1");
    for (int i = 0; drop_purpose && i < 2; i++) {
        X509 *cert = i == 0 ? root : inter;
        int at = X509_get_ext_by_NID(cert, NID_ext_key_usage, -1);
        X509_EXTENSION_free(X509_delete_ext(cert, at));
    }

    X509_set_pubkey(root, root_key);
    X509_EXTENSION_free(
        X509_delete_ext(root, X509_get_ext_by_NID(root, NID_subject_key_identifier, -1)));
    add_ext(root, root, NID_subject_key_identifier, "hash");
    g_assert_cmpint(X509_sign(root, root_key, EVP_sha256()), >, 0);

    X509_gmtime_adj(X509_getm_notAfter(inter), inter_days * DAY);
    X509_EXTENSION_free(
        X509_delete_ext(inter, X509_get_ext_by_NID(inter, NID_authority_key_identifier, -1)));
    add_ext(inter, root, NID_authority_key_identifier, "keyid:always");
    g_assert_cmpint(X509_sign(inter, root_key, EVP_sha256()), >, 0);

    write_pem(root_path, root, NULL, NULL);
    write_pem(inter_path, inter, NULL, NULL);
}

static void test_expiring_regenerates(Fixture *f, gconstpointer data)
{
    lw_ca_free(create_ca(f));
    /* Control: the forged chain with plenty of validity left is accepted,
     * so only the expiry can trigger what follows. */
    forge_chain(f, LW_CA_RENEW_BEFORE_DAYS + 5, FALSE);
    g_autofree char *fp_forged = NULL;
    {
        g_autoptr(LwCa) ca = open_ok(f, provider_hosts, LW_CA_LOADED);
        fp_forged = fingerprint(ca);
    }
    forge_chain(f, LW_CA_RENEW_BEFORE_DAYS - 5, FALSE);
    g_autoptr(GError) error = NULL;
    g_autofree char *detail = NULL;
    LwCaOrigin origin = LW_CA_LOADED;
    g_autoptr(LwCa) ca = lw_ca_open(f->ca_dir, provider_hosts, &origin, &detail, &error);
    g_assert_no_error(error);
    g_assert_cmpint(origin, ==, LW_CA_REGEN_EXPIRING);
    g_assert_nonnull(strstr(detail, "intermediate.pem: expires within"));
    g_autofree char *fp_new = fingerprint(ca);
    g_assert_cmpstr(fp_new, !=, fp_forged);

    /* Leaves never outlive their issuer: mint from a CA about to expire. */
    forge_chain(f, LW_CA_RENEW_BEFORE_DAYS + 5, FALSE);
    g_autoptr(LwCa) short_lived = open_ok(f, provider_hosts, LW_CA_LOADED);
    g_autoptr(EVP_PKEY) key = NULL;
    g_autoptr(X509) leaf = NULL;
    g_assert_true(lw_ca_mint_leaf(short_lived, "api.openai.com", &key, &leaf, &error));
    g_assert_cmpint(ASN1_TIME_compare(X509_get0_notAfter(leaf),
                                      X509_get0_notAfter(lw_ca_get_intermediate(short_lived))),
                    <=, 0);
}

/* A chain an older llmwrap made, valid in every other way, is replaced by
 * one limited to TLS servers. */
static void test_chain_without_purpose_regenerates(Fixture *f, gconstpointer data)
{
    lw_ca_free(create_ca(f));
    /* Control: re-signed with the purpose kept, it loads. */
    forge_chain(f, LW_CA_CA_VALIDITY_DAYS / 2, FALSE);
    lw_ca_free(open_ok(f, provider_hosts, LW_CA_LOADED));

    forge_chain(f, LW_CA_CA_VALIDITY_DAYS / 2, TRUE);
    g_autoptr(GError) error = NULL;
    g_autofree char *detail = NULL;
    LwCaOrigin origin = LW_CA_LOADED;
    g_autoptr(LwCa) ca = lw_ca_open(f->ca_dir, provider_hosts, &origin, &detail, &error);
    g_assert_no_error(error);
    g_assert_cmpint(origin, ==, LW_CA_REGEN_PURPOSE);
    g_assert_cmpstr(detail, ==, "root.pem: not limited to TLS servers (a chain made by an older "
                                "llmwrap)");
    g_assert_cmpuint(X509_get_extended_key_usage(lw_ca_get_root(ca)), ==, XKU_SSL_SERVER);
    g_assert_cmpuint(X509_get_extended_key_usage(lw_ca_get_intermediate(ca)), ==,
                     XKU_SSL_SERVER);
    lw_ca_free(g_steal_pointer(&ca));
    lw_ca_free(open_ok(f, provider_hosts, LW_CA_LOADED));
}

static void test_rotate(Fixture *f, gconstpointer data)
{
    g_autoptr(LwCa) first = create_ca(f);
    g_autofree char *fp1 = fingerprint(first);
    g_autoptr(GError) error = NULL;
    g_autoptr(LwCa) rotated = lw_ca_rotate(f->ca_dir, provider_hosts, &error);
    g_assert_no_error(error);
    g_autofree char *fp2 = fingerprint(rotated);
    g_assert_cmpstr(fp1, !=, fp2);
    g_assert_false(EVP_PKEY_eq(X509_get0_pubkey(lw_ca_get_intermediate(first)),
                               X509_get0_pubkey(lw_ca_get_intermediate(rotated))) == 1);
    g_autoptr(LwCa) loaded = open_ok(f, provider_hosts, LW_CA_LOADED);
    g_autofree char *fp3 = fingerprint(loaded);
    g_assert_cmpstr(fp2, ==, fp3);
}

/* ---- Errors ----------------------------------------------------------------------- */

static void test_insecure_directory(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    LwCaOrigin origin = (LwCaOrigin)77;
    char *detail = (char *)"untouched";

    /* A fresh directory that others can read: refused, nothing written. */
    g_assert_cmpint(chmod(f->ca_dir, 0755), ==, 0);
    LwCa *ca = lw_ca_open(f->ca_dir, provider_hosts, &origin, &detail, &error);
    g_assert_null(ca);
    g_assert_error(error, LW_CA_ERROR, LW_CA_ERROR_INSECURE);
    g_assert_nonnull(strstr(error->message, "0755"));
    g_assert_cmpint(origin, ==, 77);
    g_assert_cmpstr(detail, ==, "untouched");
    g_autoptr(GDir) dir = g_dir_open(f->ca_dir, 0, NULL);
    g_assert_null(g_dir_read_name(dir));
    g_clear_error(&error);
    g_assert_null(lw_ca_rotate(f->ca_dir, provider_hosts, &error));
    g_assert_error(error, LW_CA_ERROR, LW_CA_ERROR_INSECURE);
    g_clear_error(&error);

    /* An existing CA whose directory became group-readable: refused, not fixed. */
    g_assert_cmpint(chmod(f->ca_dir, 0700), ==, 0);
    lw_ca_free(create_ca(f));
    g_assert_cmpint(chmod(f->ca_dir, 0750), ==, 0);
    g_assert_null(lw_ca_open(f->ca_dir, provider_hosts, NULL, NULL, &error));
    g_assert_error(error, LW_CA_ERROR, LW_CA_ERROR_INSECURE);
    g_clear_error(&error);
    g_assert_cmpuint(mode_of(f->ca_dir), ==, 0750);
    g_assert_cmpint(chmod(f->ca_dir, 0700), ==, 0);

    /* A key file others can read: refused too. */
    g_autofree char *key_path = ca_file(f, LW_CA_INTERMEDIATE_KEY_FILE);
    g_assert_cmpint(chmod(key_path, 0644), ==, 0);
    g_assert_null(lw_ca_open(f->ca_dir, provider_hosts, NULL, NULL, &error));
    g_assert_error(error, LW_CA_ERROR, LW_CA_ERROR_INSECURE);
    g_assert_nonnull(strstr(error->message, "intermediate.key"));
    g_clear_error(&error);

    /* A missing directory is the caller's to create. */
    g_autofree char *missing = g_build_filename(f->tmp, "nope", NULL);
    g_assert_null(lw_ca_open(missing, provider_hosts, NULL, NULL, &error));
    g_assert_error(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);
}

static void test_invalid_hosts(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    static const char *const empty[] = {NULL};
    static const char *const bad_name[] = {"api.openai.com", "bad host", NULL};
    static const char *const ip[] = {"10.0.0.1", NULL};
    static const char *const dash[] = {"-api.openai.com", NULL};
    const char *const *cases[] = {empty, bad_name, ip, dash, NULL};
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_assert_null(lw_ca_open(f->ca_dir, cases[i], NULL, NULL, &error));
        g_assert_error(error, LW_CA_ERROR, LW_CA_ERROR_INVALID_HOSTS);
        g_clear_error(&error);
    }

    /* The cap: LW_CA_MAX_HOSTS hosts work, one more does not. */
    g_autoptr(GPtrArray) many = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < LW_CA_MAX_HOSTS; i++)
        g_ptr_array_add(many, g_strdup_printf("api%d.example.net", i));
    g_ptr_array_add(many, NULL);
    {
        g_autoptr(LwCa) ca =
            lw_ca_open(f->ca_dir, (const char *const *)many->pdata, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpuint(g_strv_length((char **)lw_ca_get_hosts(ca)), ==, LW_CA_MAX_HOSTS);
        lw_ca_free(open_ok(f, (const char *const *)many->pdata, LW_CA_LOADED));
    }
    g_ptr_array_remove_index(many, many->len - 1);
    g_ptr_array_add(many, g_strdup("one-too-many.example.net"));
    g_ptr_array_add(many, NULL);
    g_assert_null(lw_ca_open(f->ca_dir, (const char *const *)many->pdata, NULL, NULL, &error));
    g_assert_error(error, LW_CA_ERROR, LW_CA_ERROR_INVALID_HOSTS);

    /* Too long a name. */
    g_clear_error(&error);
    g_autofree char *label = g_strnfill(63, 'a');
    g_autofree char *long_host = g_strdup_printf("%s.%s.%s.%s.com", label, label, label, label);
    const char *const too_long[] = {long_host, NULL};
    g_assert_cmpuint(strlen(long_host), >, LW_CA_MAX_HOST_LEN);
    g_assert_null(lw_ca_open(f->ca_dir, too_long, NULL, NULL, &error));
    g_assert_error(error, LW_CA_ERROR, LW_CA_ERROR_INVALID_HOSTS);
}

static void test_openssl_error_translation(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(BIO) bio = BIO_new_mem_buf("not a certificate", -1);
    g_assert_null(PEM_read_bio_X509(bio, NULL, NULL, NULL));
    g_assert_cmpuint(ERR_peek_error(), !=, 0);
    unsigned long code = ERR_peek_error();
    char text[256];
    ERR_error_string_n(code, text, sizeof text);

    lw_ca_set_error_from_openssl(&error, "reading %s", "x.pem");
    g_assert_error(error, LW_CA_ERROR, LW_CA_ERROR_CRYPTO);
    g_assert_true(g_str_has_prefix(error->message, "reading x.pem: "));
    g_assert_nonnull(strstr(error->message, text));
    g_assert_cmpuint(ERR_peek_error(), ==, 0);

    /* Empty queue: still an error, saying so. */
    g_clear_error(&error);
    lw_ca_set_error_from_openssl(&error, "nothing");
    g_assert_cmpstr(error->message, ==, "nothing: no OpenSSL error reported");

    /* A long queue is capped (OpenSSL's own ring holds 16), and NULL error
     * still drains it. */
    for (int i = 0; i < 10; i++)
        ERR_raise(ERR_LIB_X509, X509_R_CERT_ALREADY_IN_HASH_TABLE);
    g_clear_error(&error);
    lw_ca_set_error_from_openssl(&error, "many");
    g_assert_nonnull(strstr(error->message, "; and 2 more"));
    ERR_raise(ERR_LIB_X509, X509_R_CERT_ALREADY_IN_HASH_TABLE);
    lw_ca_set_error_from_openssl(NULL, "dropped");
    g_assert_cmpuint(ERR_peek_error(), ==, 0);
}

/* ---- CPython with VERIFY_X509_STRICT (P16) --------------------------------------- */

/* A server and a strict client in one process over a socket pair. The alarm
 * and socket timeouts bound it if the handshake stalls. */
static const char python_script[] =
    "import signal, socket, ssl, sys, threading\n"
    "signal.alarm(30)\n"
    "root, chain, key, host = sys.argv[1:5]\n"
    "client = ssl.create_default_context(cafile=root)\n"
    "client.verify_flags |= ssl.VERIFY_X509_STRICT\n"
    "assert client.verify_flags & ssl.VERIFY_X509_STRICT\n"
    "assert client.check_hostname and client.verify_mode == ssl.CERT_REQUIRED\n"
    "server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "server.load_cert_chain(chain, key)\n"
    "a, b = socket.socketpair()\n"
    "a.settimeout(10)\n"
    "b.settimeout(10)\n"
    "def serve():\n"
    "    try:\n"
    "        with server.wrap_socket(a, server_side=True) as s:\n"
    "            s.sendall(b'hello')\n"
    "    except (ssl.SSLError, OSError):\n"
    "        pass\n"
    "t = threading.Thread(target=serve, daemon=True)\n"
    "t.start()\n"
    "try:\n"
    "    with client.wrap_socket(b, server_hostname=host) as c:\n"
    "        data = c.recv(5)\n"
    "        print('OK', c.version(), data.decode())\n"
    "except ssl.SSLError as e:\n"
    "    print('FAIL', e)\n"
    "    sys.exit(1)\n"
    "finally:\n"
    "    t.join(10)\n";

static int run_python_client(const Fixture *f, X509 *leaf, EVP_PKEY *key, X509 *intermediate,
                             const char *host, char **ret_output)
{
    g_autofree char *chain = g_build_filename(f->tmp, "chain.pem", NULL);
    g_autofree char *key_path = g_build_filename(f->tmp, "leaf.key", NULL);
    g_autofree char *root = ca_file(f, LW_CA_ROOT_FILE);
    write_pem(chain, leaf, intermediate, NULL);
    write_pem(key_path, NULL, NULL, key);
    const char *argv[] = {"/usr/bin/python3", "-c", python_script, root, chain,
                          key_path,           host, NULL};
    return run(argv, ret_output);
}

static void test_python_strict(Fixture *f, gconstpointer data)
{
    g_autoptr(LwCa) ca = create_ca(f);
    g_autoptr(GError) error = NULL;
    g_autoptr(EVP_PKEY) key = NULL;
    g_autoptr(X509) leaf = NULL;
    g_assert_true(lw_ca_mint_leaf(ca, "api.openai.com", &key, &leaf, &error));
    g_assert_no_error(error);

    g_autofree char *out = NULL;
    g_assert_cmpint(
        run_python_client(f, leaf, key, lw_ca_get_intermediate(ca), "api.openai.com", &out), ==, 0);
    g_assert_true(g_str_has_prefix(out, "OK TLSv1.3 hello"));
    g_clear_pointer(&out, g_free);

    /* Control: the strict flag is live in this Python. A leaf without an
     * Authority Key Identifier, otherwise identical, is rejected. */
    g_autoptr(EVP_PKEY) bad_key = NULL;
    g_autoptr(X509) bad_leaf =
        forge_leaf(f, "api.openai.com", "DNS:api.openai.com", FALSE, &bad_key);
    g_assert_cmpint(
        run_python_client(f, bad_leaf, bad_key, lw_ca_get_intermediate(ca), "api.openai.com", &out),
        ==, 1);
    g_assert_nonnull(strstr(out, "Missing Authority Key Identifier"));
}

/* ---- All providers, timed --------------------------------------------------------- */

static void test_mint_all_providers(Fixture *f, gconstpointer data)
{
    gint64 t0 = g_get_monotonic_time();
    g_autoptr(LwCa) ca = create_ca(f);
    gint64 t1 = g_get_monotonic_time();
    for (guint i = 0; provider_hosts[i] != NULL; i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(EVP_PKEY) key = NULL;
        g_autoptr(X509) leaf = NULL;
        g_assert_true(lw_ca_mint_leaf(ca, provider_hosts[i], &key, &leaf, &error));
        g_assert_no_error(error);
        g_assert_cmpint(verify_programmatically(lw_ca_get_root(ca), lw_ca_get_intermediate(ca),
                                                leaf, provider_hosts[i], NULL),
                        ==, X509_V_OK);
    }
    gint64 t2 = g_get_monotonic_time();
    g_test_message("create CA: %.2f ms; mint+verify %u leaves: %.2f ms", (t1 - t0) / 1000.0,
                   g_strv_length((char **)provider_hosts), (t2 - t1) / 1000.0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

#define ADD(path, func, data) g_test_add(path, Fixture, data, fixture_setup, func, fixture_teardown)

    ADD("/ca/create-and-reload", test_create_and_reload, NULL);
    ADD("/ca/ca-properties", test_ca_properties, NULL);
    ADD("/ca/openssl-cli-verifies-leaf", test_openssl_cli_verifies_leaf, NULL);
    for (guint i = 0; i < G_N_ELEMENTS(forge_cases); i++) {
        g_autofree char *path = g_strdup_printf("/ca/name-constraints/%s", forge_cases[i].name);
        ADD(path, test_name_constraints_bite, &forge_cases[i]);
    }
    for (guint i = 0; i < G_N_ELEMENTS(mint_cases); i++) {
        g_autofree char *escaped = g_strescape(mint_cases[i].host, NULL);
        g_autofree char *path = g_strdup_printf("/ca/mint/%u:%s", i, escaped);
        g_strdelimit(path + 9, "/", '_');
        ADD(path, test_mint, &mint_cases[i]);
    }
    ADD("/ca/leaf-properties", test_leaf_properties, NULL);
    ADD("/ca/long-host", test_long_host, NULL);
    ADD("/ca/hosts-change", test_hosts_change, NULL);
    for (guint i = 0; i < G_N_ELEMENTS(damage_cases); i++) {
        g_autofree char *path = g_strdup_printf("/ca/damaged/%s", damage_cases[i].name);
        ADD(path, test_damaged_files_regenerate, &damage_cases[i]);
    }
    ADD("/ca/expiring", test_expiring_regenerates, NULL);
    ADD("/ca/without-purpose", test_chain_without_purpose_regenerates, NULL);
    ADD("/ca/rotate", test_rotate, NULL);
    ADD("/ca/insecure-directory", test_insecure_directory, NULL);
    ADD("/ca/invalid-hosts", test_invalid_hosts, NULL);
    g_test_add_func("/ca/openssl-error-translation", test_openssl_error_translation);
    ADD("/ca/python-strict", test_python_strict, NULL);
    ADD("/ca/mint-all-providers", test_mint_all_providers, NULL);
    return g_test_run();
}
