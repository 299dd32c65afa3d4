/* ca.c - the collector's local certificate authority (see ca.h). */
#include "ca.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509, X509_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_NAME, X509_NAME_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_EXTENSION, X509_EXTENSION_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_STORE, X509_STORE_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(X509_STORE_CTX, X509_STORE_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BIO, BIO_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BIGNUM, BN_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(NAME_CONSTRAINTS, NAME_CONSTRAINTS_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GENERAL_NAMES, GENERAL_NAMES_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GENERAL_NAME, GENERAL_NAME_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GENERAL_SUBTREE, GENERAL_SUBTREE_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ASN1_OCTET_STRING, ASN1_OCTET_STRING_free)

#define SECONDS_PER_DAY     (24L * 60 * 60)
#define SERIAL_BYTES        16 /* 126 random bits after fixing the top two */
#define ORG_ID_BYTES        4  /* "llmwrap 1a2b3c4d": tells two machines' CAs apart */
#define MAX_QUEUED_ERRORS   8
#define TEMP_NAME_ATTEMPTS  16
#define MAX_COMMON_NAME_LEN 64

struct _LwCa {
    char *dir;
    char *root_path;
    char **hosts; /* normalised, sorted, unique, NULL-terminated */
    X509 *root;
    X509 *intermediate;
    EVP_PKEY *intermediate_key;
    /* OpenSSL 3 documents EVP_PKEY as safe for concurrent use, but it fills
     * provider caches lazily on first use; signing is rare (one per host per
     * start), so serialising it costs nothing and leaves no doubt. */
    GMutex sign_lock;
};

G_DEFINE_QUARK(lw-ca-error-quark, lw_ca_error)

/* ---- OpenSSL errors ------------------------------------------------------ */

void lw_ca_set_error_from_openssl(GError **error, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    g_autofree char *context = g_strdup_vprintf(format, ap);
    va_end(ap);

    g_autoptr(GString) msg = g_string_new(context);
    guint n = 0;
    const char *data = NULL;
    int flags = 0;
    unsigned long code;
    while ((code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        if (n < MAX_QUEUED_ERRORS) {
            char text[256];
            ERR_error_string_n(code, text, sizeof text);
            g_string_append(msg, n == 0 ? ": " : "; ");
            g_string_append(msg, text);
            if ((flags & ERR_TXT_STRING) && data != NULL && data[0] != '\0')
                g_string_append_printf(msg, " (%s)", data);
        }
        n++;
    }
    if (n == 0)
        g_string_append(msg, ": no OpenSSL error reported");
    else if (n > MAX_QUEUED_ERRORS)
        g_string_append_printf(msg, "; and %u more", n - MAX_QUEUED_ERRORS);
    ERR_clear_error();
    g_set_error_literal(error, LW_CA_ERROR, LW_CA_ERROR_CRYPTO, msg->str);
}

/* ---- Host names ------------------------------------------------------------ */

/* Lowercases `host` and drops one trailing dot. Returns NULL unless the result
 * is a plausible DNS host name: LDH labels of 1..63 characters, not an IP
 * literal (those can never match the constraints, which exclude all IPs). */
static char *normalize_host(const char *host)
{
    if (host == NULL)
        return NULL;
    size_t len = strlen(host);
    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len == 0 || len > LW_CA_MAX_HOST_LEN)
        return NULL;

    size_t label_len = 0;
    for (size_t i = 0; i < len; i++) {
        char c = host[i];
        if (c == '.') {
            if (label_len == 0 || host[i - 1] == '-')
                return NULL;
            label_len = 0;
            continue;
        }
        if (!g_ascii_isalnum(c) && c != '-')
            return NULL;
        if (c == '-' && label_len == 0)
            return NULL;
        if (++label_len > 63)
            return NULL;
    }
    if (host[len - 1] == '-')
        return NULL;

    char *norm = g_ascii_strdown(host, (gssize)len);
    if (g_hostname_is_ip_address(norm)) {
        g_free(norm);
        return NULL;
    }
    return norm;
}

static int compare_strings(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts and de-duplicates a GPtrArray of owned strings into a GStrv. */
static char **host_array_to_set(GPtrArray *array)
{
    g_ptr_array_sort(array, compare_strings);
    GPtrArray *set = g_ptr_array_new();
    for (guint i = 0; i < array->len; i++) {
        char *h = array->pdata[i];
        if (set->len > 0 && strcmp(set->pdata[set->len - 1], h) == 0)
            continue;
        g_ptr_array_add(set, g_strdup(h));
    }
    g_ptr_array_add(set, NULL);
    return (char **)g_ptr_array_free(set, FALSE);
}

static gboolean normalize_host_list(const char *const *hosts, char ***ret_set, GError **error)
{
    guint count = hosts != NULL ? g_strv_length((char **)hosts) : 0;
    if (count == 0) {
        g_set_error_literal(error, LW_CA_ERROR, LW_CA_ERROR_INVALID_HOSTS,
                            "the CA needs at least one provider host");
        return FALSE;
    }
    if (count > LW_CA_MAX_HOSTS) {
        g_set_error(error, LW_CA_ERROR, LW_CA_ERROR_INVALID_HOSTS,
                    "%u provider hosts; the CA supports at most %d", count, LW_CA_MAX_HOSTS);
        return FALSE;
    }
    g_autoptr(GPtrArray) array = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < count; i++) {
        char *norm = normalize_host(hosts[i]);
        if (norm == NULL) {
            g_set_error(error, LW_CA_ERROR, LW_CA_ERROR_INVALID_HOSTS,
                        "\"%s\" is not a valid provider host name", hosts[i]);
            return FALSE;
        }
        g_ptr_array_add(array, norm);
    }
    *ret_set = host_array_to_set(array);
    return TRUE;
}

static gboolean host_set_contains(char *const *set, const char *norm)
{
    for (guint i = 0; set[i] != NULL; i++) {
        if (strcmp(set[i], norm) == 0)
            return TRUE;
    }
    return FALSE;
}

/* "added a, b; removed c" between two sorted sets, for the regeneration reason. */
static char *describe_host_change(char *const *old_set, char *const *new_set)
{
    g_autoptr(GString) added = g_string_new(NULL);
    g_autoptr(GString) removed = g_string_new(NULL);
    for (guint i = 0; new_set[i] != NULL; i++) {
        if (!host_set_contains(old_set, new_set[i]))
            g_string_append_printf(added, "%s%s", added->len ? ", " : "", new_set[i]);
    }
    for (guint i = 0; old_set[i] != NULL; i++) {
        if (!host_set_contains(new_set, old_set[i]))
            g_string_append_printf(removed, "%s%s", removed->len ? ", " : "", old_set[i]);
    }
    return g_strdup_printf("name constraints changed: added [%s], removed [%s]", added->str,
                           removed->str);
}

/* ---- Name constraints -------------------------------------------------------- */

static gboolean push_subtree(STACK_OF(GENERAL_SUBTREE) *subtrees, int type, void *value)
{
    g_autoptr(GENERAL_SUBTREE) subtree = GENERAL_SUBTREE_new();
    g_autoptr(GENERAL_NAME) name = GENERAL_NAME_new();
    if (subtree == NULL || name == NULL)
        return FALSE;
    GENERAL_NAME_set0_value(name, type, value);
    GENERAL_NAME_free(subtree->base);
    subtree->base = g_steal_pointer(&name);
    if (sk_GENERAL_SUBTREE_push(subtrees, subtree) == 0)
        return FALSE;
    subtree = NULL;
    return TRUE;
}

/* permitted: dNSName = each host; excluded: iPAddress 0.0.0.0/0 and ::/0.
 * Built as structures rather than from a config string so no host text is
 * ever parsed as extension syntax. */
static NAME_CONSTRAINTS *build_name_constraints(char *const *hosts)
{
    g_autoptr(NAME_CONSTRAINTS) nc = NAME_CONSTRAINTS_new();
    if (nc == NULL)
        return NULL;
    nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null();
    nc->excludedSubtrees = sk_GENERAL_SUBTREE_new_null();
    if (nc->permittedSubtrees == NULL || nc->excludedSubtrees == NULL)
        return NULL;

    for (guint i = 0; hosts[i] != NULL; i++) {
        ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
        if (dns == NULL || !ASN1_STRING_set(dns, hosts[i], -1) ||
            !push_subtree(nc->permittedSubtrees, GEN_DNS, dns)) {
            ASN1_IA5STRING_free(dns);
            return NULL;
        }
    }
    /* An iPAddress subtree is address || mask; all zeros is "every address". */
    static const unsigned char zeros[32] = {0};
    static const int ip_lengths[] = {8, 32};
    for (guint i = 0; i < G_N_ELEMENTS(ip_lengths); i++) {
        ASN1_OCTET_STRING *ip = ASN1_OCTET_STRING_new();
        if (ip == NULL || !ASN1_OCTET_STRING_set(ip, zeros, ip_lengths[i]) ||
            !push_subtree(nc->excludedSubtrees, GEN_IPADD, ip)) {
            ASN1_OCTET_STRING_free(ip);
            return NULL;
        }
    }
    return g_steal_pointer(&nc);
}

static gboolean is_all_zero(const ASN1_OCTET_STRING *s)
{
    const unsigned char *p = ASN1_STRING_get0_data(s);
    for (int i = 0; i < ASN1_STRING_length(s); i++) {
        if (p[i] != 0)
            return FALSE;
    }
    return TRUE;
}

/* Reads back the host set of a certificate's name constraints, requiring the
 * exact shape build_name_constraints() writes (critical, DNS-only permitted
 * subtrees without min/max, both "all IPs" exclusions and nothing else).
 * Returns the sorted set, or NULL with `ret_problem` set. */
static char **read_name_constraints(X509 *cert, char **ret_problem)
{
    int critical = -1;
    g_autoptr(NAME_CONSTRAINTS) nc = X509_get_ext_d2i(cert, NID_name_constraints, &critical, NULL);
    ERR_clear_error(); /* a missing or malformed extension is a finding, not an error */
    if (nc == NULL) {
        *ret_problem = g_strdup("no name constraints");
        return NULL;
    }
    if (critical != 1) {
        *ret_problem = g_strdup("name constraints not critical");
        return NULL;
    }
    int n_permitted = sk_GENERAL_SUBTREE_num(nc->permittedSubtrees);
    if (n_permitted <= 0 || n_permitted > LW_CA_MAX_HOSTS) {
        *ret_problem = g_strdup("unexpected number of permitted subtrees");
        return NULL;
    }
    g_autoptr(GPtrArray) array = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < n_permitted; i++) {
        GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
        if (st->base->type != GEN_DNS || st->minimum != NULL || st->maximum != NULL) {
            *ret_problem = g_strdup("unexpected permitted subtree");
            return NULL;
        }
        const ASN1_IA5STRING *dns = st->base->d.dNSName;
        int len = ASN1_STRING_length(dns);
        const char *text = (const char *)ASN1_STRING_get0_data(dns);
        if (len <= 0 || len > LW_CA_MAX_HOST_LEN || memchr(text, '\0', (size_t)len) != NULL) {
            *ret_problem = g_strdup("malformed permitted subtree");
            return NULL;
        }
        g_ptr_array_add(array, g_ascii_strdown(text, len));
    }

    gboolean seen_v4 = FALSE, seen_v6 = FALSE;
    int n_excluded = sk_GENERAL_SUBTREE_num(nc->excludedSubtrees);
    for (int i = 0; i < n_excluded; i++) {
        GENERAL_SUBTREE *st = sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, i);
        if (st->base->type != GEN_IPADD || !is_all_zero(st->base->d.iPAddress)) {
            *ret_problem = g_strdup("unexpected excluded subtree");
            return NULL;
        }
        int len = ASN1_STRING_length(st->base->d.iPAddress);
        seen_v4 |= len == 8;
        seen_v6 |= len == 32;
    }
    if (n_excluded != 2 || !seen_v4 || !seen_v6) {
        *ret_problem = g_strdup("IP addresses not excluded");
        return NULL;
    }
    return host_array_to_set(array);
}

/* ---- Certificates ----------------------------------------------------------- */

static gboolean set_random_serial(X509 *cert, GError **error)
{
    unsigned char bytes[SERIAL_BYTES];
    if (RAND_bytes(bytes, sizeof bytes) != 1) {
        lw_ca_set_error_from_openssl(error, "generating a serial number");
        return FALSE;
    }
    /* Positive (DER integers are signed) and a fixed length, never zero. */
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    g_autoptr(BIGNUM) bn = BN_bin2bn(bytes, sizeof bytes, NULL);
    if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL) {
        lw_ca_set_error_from_openssl(error, "setting the serial number");
        return FALSE;
    }
    return TRUE;
}

/* Valid from LW_CA_BACKDATE_DAYS before `now` for `total_days` in all. */
static gboolean set_validity(X509 *cert, time_t now, long total_days, GError **error)
{
    time_t t = now;
    if (X509_time_adj_ex(X509_getm_notBefore(cert), -LW_CA_BACKDATE_DAYS, 0, &t) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(cert), (int)(total_days - LW_CA_BACKDATE_DAYS), 0,
                         &t) == NULL) {
        lw_ca_set_error_from_openssl(error, "setting the validity period");
        return FALSE;
    }
    return TRUE;
}

static gboolean add_name_entry(X509_NAME *name, const char *field, const char *value)
{
    return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, (const unsigned char *)value, -1,
                                      -1, 0) == 1;
}

/* Adds an extension whose value is a constant of this file (never host text). */
static gboolean add_conf_ext(X509 *cert, X509V3_CTX *v3, int nid, const char *value, GError **error)
{
    g_autoptr(X509_EXTENSION) ext = X509V3_EXT_conf_nid(NULL, v3, nid, value);
    if (ext == NULL || X509_add_ext(cert, ext, -1) != 1) {
        lw_ca_set_error_from_openssl(error, "adding extension %s", OBJ_nid2sn(nid));
        return FALSE;
    }
    return TRUE;
}

static EVP_PKEY *generate_p256_key(GError **error)
{
    EVP_PKEY *key = EVP_EC_gen(SN_X9_62_prime256v1);
    if (key == NULL)
        lw_ca_set_error_from_openssl(error, "generating an ECDSA P-256 key");
    return key;
}

static gboolean is_p256_key(EVP_PKEY *key)
{
    char group[64];
    size_t len = 0;
    if (!EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_group_name(key, group, sizeof group, &len) != 1) {
        ERR_clear_error();
        return FALSE;
    }
    return strcmp(group, SN_X9_62_prime256v1) == 0;
}

/* Does `cert` carry LW_CA_PURPOSE, TLS server authentication and nothing
 * else? On a CA certificate, verifiers (OpenSSL's purpose checks, Go, NSS,
 * Windows) read it as a limit on every certificate below it. */
static gboolean is_server_only(X509 *cert)
{
    uint32_t xku = X509_get_extended_key_usage(cert);
    return (X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) != 0 && xku == XKU_SSL_SERVER;
}

/* A CA certificate for `subject_key`. With `issuer` NULL it is the
 * self-signed root; otherwise an intermediate (pathlen 0) signed by
 * `issuer_key`. Both carry the same critical name constraints, and
 * LW_CA_PURPOSE. */
static X509 *make_ca_cert(EVP_PKEY *subject_key, const char *common_name, const char *org,
                          X509 *issuer, EVP_PKEY *issuer_key, char *const *hosts, time_t now,
                          GError **error)
{
    g_autoptr(X509) cert = X509_new();
    g_autoptr(X509_NAME) subject = X509_NAME_new();
    if (cert == NULL || subject == NULL || !add_name_entry(subject, "O", org) ||
        !add_name_entry(subject, "CN", common_name) ||
        X509_set_version(cert, X509_VERSION_3) != 1 || X509_set_subject_name(cert, subject) != 1 ||
        X509_set_issuer_name(cert, issuer != NULL ? X509_get_subject_name(issuer) : subject) != 1 ||
        X509_set_pubkey(cert, subject_key) != 1) {
        lw_ca_set_error_from_openssl(error, "building the %s certificate", common_name);
        return NULL;
    }
    if (!set_random_serial(cert, error) || !set_validity(cert, now, LW_CA_CA_VALIDITY_DAYS, error))
        return NULL;

    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer != NULL ? issuer : cert, cert, NULL, NULL, 0);
    if (!add_conf_ext(cert, &v3, NID_basic_constraints,
                      issuer != NULL ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE", error) ||
        !add_conf_ext(cert, &v3, NID_key_usage, "critical,keyCertSign,cRLSign", error) ||
        !add_conf_ext(cert, &v3, NID_ext_key_usage, LW_CA_PURPOSE, error) ||
        !add_conf_ext(cert, &v3, NID_subject_key_identifier, "hash", error))
        return NULL;
    if (issuer != NULL &&
        !add_conf_ext(cert, &v3, NID_authority_key_identifier, "keyid:always", error))
        return NULL;

    g_autoptr(NAME_CONSTRAINTS) nc = build_name_constraints(hosts);
    if (nc == NULL ||
        X509_add1_ext_i2d(cert, NID_name_constraints, nc, 1, X509V3_ADD_DEFAULT) != 1) {
        lw_ca_set_error_from_openssl(error, "adding name constraints");
        return NULL;
    }
    if (X509_sign(cert, issuer_key != NULL ? issuer_key : subject_key, EVP_sha256()) <= 0) {
        lw_ca_set_error_from_openssl(error, "signing the %s certificate", common_name);
        return NULL;
    }
    return g_steal_pointer(&cert);
}

/* ---- Files ------------------------------------------------------------------- */

static void close_fdp(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
#define auto_fd __attribute__((cleanup(close_fdp))) int

static void set_file_error(GError **error, int errsv, const char *what, const char *path)
{
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errsv), "%s %s: %s", what, path,
                g_strerror(errsv));
}

/* Opens the CA directory, refusing one that others could read or write: the
 * intermediate key in it can impersonate every provider to wrapped programs. */
static int open_ca_dir(const char *dir, GError **error)
{
    auto_fd fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        set_file_error(error, errno, "cannot open CA directory", dir);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_file_error(error, errno, "cannot stat CA directory", dir);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        g_set_error(error, LW_CA_ERROR, LW_CA_ERROR_INSECURE,
                    "CA directory %s belongs to uid %u, not to the current user", dir,
                    (unsigned)st.st_uid);
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        g_set_error(error, LW_CA_ERROR, LW_CA_ERROR_INSECURE,
                    "CA directory %s has mode %04o; it must not be accessible to group or others "
                    "(chmod 700 it, or run `llmctl ca rotate` if the key may have been copied)",
                    dir, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    int ret = fd;
    fd = -1;
    return ret;
}

typedef enum {
    FILE_READ,
    FILE_MISSING,
    FILE_BAD,      /* unreadable or too large: a reason to regenerate */
    FILE_INSECURE, /* error is set */
} FileStatus;

/* Reads a whole CA file. A secret file must be ours and 0600 or stricter. On
 * FILE_READ stores a NUL-terminated copy in `ret_data` (transfer full; the
 * caller cleanses secrets); on FILE_BAD a reason in `ret_problem`. */
static FileStatus read_ca_file(int dirfd, const char *dir, const char *name, gboolean is_secret,
                               char **ret_data, gsize *ret_len, char **ret_problem, GError **error)
{
    /* O_NONBLOCK: a FIFO planted under our name must not hang the open. */
    auto_fd fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return FILE_MISSING;
        *ret_problem = g_strdup_printf("%s: %s", name, g_strerror(errno));
        return FILE_BAD;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        *ret_problem = g_strdup_printf("%s: %s", name, g_strerror(errno));
        return FILE_BAD;
    }
    if (!S_ISREG(st.st_mode)) {
        *ret_problem = g_strdup_printf("%s: not a regular file", name);
        return FILE_BAD;
    }
    if (is_secret && (st.st_uid != geteuid() || (st.st_mode & 077) != 0)) {
        g_set_error(error, LW_CA_ERROR, LW_CA_ERROR_INSECURE,
                    "%s/%s has mode %04o and uid %u; it must be 0600 and owned by the current "
                    "user (run `llmctl ca rotate` if the key may have been copied)",
                    dir, name, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
        return FILE_INSECURE;
    }
    if (st.st_size > LW_CA_MAX_FILE_SIZE) {
        *ret_problem = g_strdup_printf("%s: larger than %d bytes", name, LW_CA_MAX_FILE_SIZE);
        return FILE_BAD;
    }

    /* Read up to one byte past the cap, so a file that grew since fstat is caught. */
    gsize cap = LW_CA_MAX_FILE_SIZE + 1, len = 0;
    char *data = g_malloc(cap + 1);
    while (len < cap) {
        ssize_t n = read(fd, data + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int errsv = errno;
            OPENSSL_cleanse(data, len);
            g_free(data);
            *ret_problem = g_strdup_printf("%s: %s", name, g_strerror(errsv));
            return FILE_BAD;
        }
        if (n == 0)
            break;
        len += (gsize)n;
    }
    if (len > LW_CA_MAX_FILE_SIZE) {
        OPENSSL_cleanse(data, len);
        g_free(data);
        *ret_problem = g_strdup_printf("%s: larger than %d bytes", name, LW_CA_MAX_FILE_SIZE);
        return FILE_BAD;
    }
    data[len] = '\0';
    *ret_data = data;
    *ret_len = len;
    return FILE_READ;
}

static gboolean write_all(int fd, const char *data, gsize len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return FALSE;
        data += n;
        len -= (gsize)n;
    }
    return TRUE;
}

/* Replaces dir/name atomically: a reader sees the old file or the new one,
 * never a prefix, and a private key never exists with a wider mode. The
 * caller fsyncs the directory after the last rename. */
static gboolean write_file_atomic(int dirfd, const char *dir, const char *name, const char *data,
                                  gsize len, mode_t mode, GError **error)
{
    g_autofree char *tmp = NULL;
    auto_fd fd = -1;
    for (int attempt = 0; attempt < TEMP_NAME_ATTEMPTS && fd < 0; attempt++) {
        g_free(tmp);
        tmp = g_strdup_printf(".%s.tmp-%08x", name, g_random_int());
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0 && errno != EEXIST) {
            set_file_error(error, errno, "cannot create a temporary file in", dir);
            return FALSE;
        }
    }
    if (fd < 0) {
        set_file_error(error, EEXIST, "cannot create a temporary file in", dir);
        return FALSE;
    }

    int errsv = 0;
    /* fchmod: the umask must neither widen nor narrow the intended mode. */
    if (fchmod(fd, mode) != 0 || !write_all(fd, data, len) || fsync(fd) != 0)
        errsv = errno != 0 ? errno : EIO;
    int fd_to_close = fd;
    fd = -1;
    if (close(fd_to_close) != 0 && errsv == 0)
        errsv = errno;
    if (errsv == 0 && renameat(dirfd, tmp, dirfd, name) != 0)
        errsv = errno;
    if (errsv != 0) {
        unlinkat(dirfd, tmp, 0);
        g_autofree char *path = g_build_filename(dir, name, NULL);
        set_file_error(error, errsv, "cannot write", path);
        return FALSE;
    }
    return TRUE;
}

static char *cert_to_pem(X509 *cert, gsize *ret_len)
{
    g_autoptr(BIO) bio = BIO_new(BIO_s_mem());
    char *p = NULL;
    if (bio == NULL || PEM_write_bio_X509(bio, cert) != 1)
        return NULL;
    long len = BIO_get_mem_data(bio, &p);
    *ret_len = (gsize)len;
    return g_strndup(p, (gsize)len);
}

static gboolean write_chain(int dirfd, const char *dir, X509 *root, X509 *intermediate,
                            EVP_PKEY *key, GError **error)
{
    /* The key's PEM lives only in secure-heap memory that is zeroed on free. */
    g_autoptr(BIO) key_bio = BIO_new(BIO_s_secmem());
    if (key_bio == NULL || PEM_write_bio_PrivateKey(key_bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
        lw_ca_set_error_from_openssl(error, "encoding the intermediate key");
        return FALSE;
    }
    char *key_pem = NULL;
    long key_len = BIO_get_mem_data(key_bio, &key_pem);

    gsize root_len = 0, inter_len = 0;
    g_autofree char *root_pem = cert_to_pem(root, &root_len);
    g_autofree char *inter_pem = cert_to_pem(intermediate, &inter_len);
    if (root_pem == NULL || inter_pem == NULL) {
        lw_ca_set_error_from_openssl(error, "encoding the CA certificates");
        return FALSE;
    }

    /* If this stops half-way, the next load finds files that do not match
     * one another and regenerates, so the order only has to end with the
     * certificate clients trust. */
    if (!write_file_atomic(dirfd, dir, LW_CA_INTERMEDIATE_KEY_FILE, key_pem, (gsize)key_len, 0600,
                           error) ||
        !write_file_atomic(dirfd, dir, LW_CA_INTERMEDIATE_FILE, inter_pem, inter_len, 0644,
                           error) ||
        !write_file_atomic(dirfd, dir, LW_CA_ROOT_FILE, root_pem, root_len, 0644, error))
        return FALSE;
    if (fsync(dirfd) != 0) {
        set_file_error(error, errno, "cannot sync CA directory", dir);
        return FALSE;
    }
    return TRUE;
}

/* ---- The CA object ------------------------------------------------------------ */

static LwCa *ca_new(const char *dir, char **hosts, X509 *root, X509 *intermediate, EVP_PKEY *key)
{
    LwCa *ca = g_new0(LwCa, 1);
    ca->dir = g_strdup(dir);
    ca->root_path = g_build_filename(dir, LW_CA_ROOT_FILE, NULL);
    ca->hosts = hosts;
    ca->root = root;
    ca->intermediate = intermediate;
    ca->intermediate_key = key;
    g_mutex_init(&ca->sign_lock);
    return ca;
}

void lw_ca_free(LwCa *ca)
{
    if (ca == NULL)
        return;
    EVP_PKEY_free(ca->intermediate_key);
    X509_free(ca->intermediate);
    X509_free(ca->root);
    g_strfreev(ca->hosts);
    g_free(ca->root_path);
    g_free(ca->dir);
    g_mutex_clear(&ca->sign_lock);
    g_free(ca);
}

static LwCa *generate_chain(int dirfd, const char *dir, char **hosts, GError **error)
{
    unsigned char id_bytes[ORG_ID_BYTES];
    if (RAND_bytes(id_bytes, sizeof id_bytes) != 1) {
        lw_ca_set_error_from_openssl(error, "generating the CA id");
        return NULL;
    }
    g_autofree char *org = g_strdup_printf("llmwrap %02x%02x%02x%02x", id_bytes[0], id_bytes[1],
                                           id_bytes[2], id_bytes[3]);
    time_t now = time(NULL);

    g_autoptr(EVP_PKEY) root_key = generate_p256_key(error);
    if (root_key == NULL)
        return NULL;
    g_autoptr(X509) root =
        make_ca_cert(root_key, "llmwrap local CA (root)", org, NULL, NULL, hosts, now, error);
    if (root == NULL)
        return NULL;
    g_autoptr(EVP_PKEY) key = generate_p256_key(error);
    if (key == NULL)
        return NULL;
    g_autoptr(X509) intermediate = make_ca_cert(key, "llmwrap local CA (intermediate)", org, root,
                                                root_key, hosts, now, error);
    /* The root has signed everything it ever will; nothing may keep its key. */
    g_clear_pointer(&root_key, EVP_PKEY_free);
    if (intermediate == NULL)
        return NULL;

    if (!write_chain(dirfd, dir, root, intermediate, key, error))
        return NULL;
    return ca_new(dir, g_strdupv(hosts), g_steal_pointer(&root), g_steal_pointer(&intermediate),
                  g_steal_pointer(&key));
}

static int no_password(char *buf, int size, int rwflag, void *userdata)
{
    /* An encrypted key is not ours; never let OpenSSL prompt on a terminal. */
    return 0;
}

static X509 *parse_cert(const char *pem, gsize len)
{
    g_autoptr(BIO) bio = BIO_new_mem_buf(pem, (int)len);
    X509 *cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, no_password, NULL) : NULL;
    ERR_clear_error();
    return cert;
}

static EVP_PKEY *parse_key(const char *pem, gsize len)
{
    g_autoptr(BIO) bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL) : NULL;
    ERR_clear_error();
    return key;
}

/* Checks that the intermediate chains to the root under strict X.509 rules,
 * ignoring time (expiry has its own, earlier threshold). */
static gboolean chain_is_valid(X509 *root, X509 *intermediate, char **ret_problem)
{
    g_autoptr(X509_STORE) store = X509_STORE_new();
    g_autoptr(X509_STORE_CTX) ctx = X509_STORE_CTX_new();
    if (store == NULL || ctx == NULL || X509_STORE_add_cert(store, root) != 1 ||
        X509_STORE_CTX_init(ctx, store, intermediate, NULL) != 1) {
        ERR_clear_error();
        *ret_problem = g_strdup("cannot set up chain verification");
        return FALSE;
    }
    X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_X509_STRICT |
                                                                    X509_V_FLAG_NO_CHECK_TIME |
                                                                    X509_V_FLAG_CHECK_SS_SIGNATURE);
    int ok = X509_verify_cert(ctx);
    int err = X509_STORE_CTX_get_error(ctx);
    ERR_clear_error();
    if (ok != 1) {
        *ret_problem = g_strdup_printf("intermediate.pem does not verify against root.pem: %s",
                                       X509_verify_cert_error_string(err));
        return FALSE;
    }
    if (!X509_check_ca(intermediate) || X509_get_pathlen(intermediate) != 0 ||
        X509_get0_subject_key_id(intermediate) == NULL) {
        *ret_problem = g_strdup("intermediate.pem is not a pathlen:0 CA with a key identifier");
        return FALSE;
    }
    return TRUE;
}

typedef struct {
    char *root_pem, *inter_pem, *key_pem;
    gsize root_len, inter_len, key_len;
} LoadedFiles;

static void loaded_files_clear(LoadedFiles *f)
{
    g_free(f->root_pem);
    g_free(f->inter_pem);
    if (f->key_pem != NULL)
        OPENSSL_cleanse(f->key_pem, f->key_len);
    g_free(f->key_pem);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(LoadedFiles, loaded_files_clear)

/* Tries to reuse the chain in the directory. Returns FALSE only for a hard
 * error (insecure key file). Otherwise stores either the loaded CA in
 * `ret_ca` or, when a new chain is needed, NULL plus the origin and reason. */
static gboolean load_existing(int dirfd, const char *dir, char *const *hosts, LwCa **ret_ca,
                              LwCaOrigin *ret_origin, char **ret_detail, GError **error)
{
    g_auto(LoadedFiles) f = {0};
    char *problem = NULL;
    FileStatus st[3] = {FILE_MISSING, FILE_MISSING, FILE_MISSING};
    st[0] = read_ca_file(dirfd, dir, LW_CA_INTERMEDIATE_KEY_FILE, TRUE, &f.key_pem, &f.key_len,
                         &problem, error);
    if (st[0] == FILE_INSECURE)
        return FALSE;
    if (problem == NULL)
        st[1] = read_ca_file(dirfd, dir, LW_CA_INTERMEDIATE_FILE, FALSE, &f.inter_pem, &f.inter_len,
                             &problem, error);
    if (problem == NULL)
        st[2] = read_ca_file(dirfd, dir, LW_CA_ROOT_FILE, FALSE, &f.root_pem, &f.root_len, &problem,
                             error);

    *ret_ca = NULL;
    *ret_origin = LW_CA_REGEN_INVALID;
    if (problem != NULL) {
        *ret_detail = problem;
        return TRUE;
    }
    if (st[0] == FILE_MISSING && st[1] == FILE_MISSING && st[2] == FILE_MISSING) {
        *ret_origin = LW_CA_CREATED;
        return TRUE;
    }
    static const char *const names[] = {LW_CA_INTERMEDIATE_KEY_FILE, LW_CA_INTERMEDIATE_FILE,
                                        LW_CA_ROOT_FILE};
    for (int i = 0; i < 3; i++) {
        if (st[i] == FILE_MISSING) {
            *ret_detail = g_strdup_printf("%s: missing", names[i]);
            return TRUE;
        }
    }

    g_autoptr(EVP_PKEY) key = parse_key(f.key_pem, f.key_len);
    g_autoptr(X509) intermediate = parse_cert(f.inter_pem, f.inter_len);
    g_autoptr(X509) root = parse_cert(f.root_pem, f.root_len);
    if (key == NULL || !is_p256_key(key)) {
        *ret_detail = g_strdup("intermediate.key: not an unencrypted ECDSA P-256 key");
        return TRUE;
    }
    if (intermediate == NULL || root == NULL) {
        *ret_detail =
            g_strdup_printf("%s: not a PEM certificate",
                            intermediate == NULL ? LW_CA_INTERMEDIATE_FILE : LW_CA_ROOT_FILE);
        return TRUE;
    }
    int key_matches = X509_check_private_key(intermediate, key);
    ERR_clear_error();
    if (key_matches != 1) {
        *ret_detail = g_strdup("intermediate.key: does not match intermediate.pem");
        return TRUE;
    }
    if (!chain_is_valid(root, intermediate, ret_detail))
        return TRUE;

    g_autofree char *root_problem = NULL, *inter_problem = NULL;
    g_auto(GStrv) root_hosts = read_name_constraints(root, &root_problem);
    g_auto(GStrv) inter_hosts = read_name_constraints(intermediate, &inter_problem);
    if (root_hosts == NULL || inter_hosts == NULL) {
        *ret_detail = g_strdup_printf(
            "%s: %s", root_hosts == NULL ? LW_CA_ROOT_FILE : LW_CA_INTERMEDIATE_FILE,
            root_hosts == NULL ? root_problem : inter_problem);
        return TRUE;
    }
    if (!g_strv_equal((const char *const *)root_hosts, (const char *const *)inter_hosts)) {
        *ret_detail = g_strdup("root and intermediate name constraints differ");
        return TRUE;
    }
    if (!g_strv_equal((const char *const *)root_hosts, (const char *const *)hosts)) {
        *ret_origin = LW_CA_REGEN_HOSTS;
        *ret_detail = describe_host_change(root_hosts, hosts);
        return TRUE;
    }
    if (!is_server_only(root) || !is_server_only(intermediate)) {
        *ret_origin = LW_CA_REGEN_PURPOSE;
        *ret_detail = g_strdup_printf(
            "%s: not limited to TLS servers (a chain made by an older llmwrap)",
            is_server_only(root) ? LW_CA_INTERMEDIATE_FILE : LW_CA_ROOT_FILE);
        return TRUE;
    }

    time_t now = time(NULL);
    time_t renew_at = now + LW_CA_RENEW_BEFORE_DAYS * SECONDS_PER_DAY;
    X509 *const certs[] = {intermediate, root};
    for (guint i = 0; i < G_N_ELEMENTS(certs); i++) {
        const char *name = i == 0 ? LW_CA_INTERMEDIATE_FILE : LW_CA_ROOT_FILE;
        if (X509_cmp_time(X509_get0_notBefore(certs[i]), &now) >= 0) {
            *ret_origin = LW_CA_REGEN_EXPIRING;
            *ret_detail = g_strdup_printf("%s: not valid yet (clock changed?)", name);
            return TRUE;
        }
        if (X509_cmp_time(X509_get0_notAfter(certs[i]), &renew_at) <= 0) {
            *ret_origin = LW_CA_REGEN_EXPIRING;
            *ret_detail =
                g_strdup_printf("%s: expires within %d days", name, LW_CA_RENEW_BEFORE_DAYS);
            return TRUE;
        }
    }

    *ret_origin = LW_CA_LOADED;
    *ret_ca = ca_new(dir, g_strdupv((char **)hosts), g_steal_pointer(&root),
                     g_steal_pointer(&intermediate), g_steal_pointer(&key));
    return TRUE;
}

/* ---- Public API ----------------------------------------------------------------- */

LwCa *lw_ca_open(const char *ca_dir, const char *const *hosts, LwCaOrigin *ret_origin,
                 char **ret_detail, GError **error)
{
    g_return_val_if_fail(ca_dir != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    g_auto(GStrv) set = NULL;
    if (!normalize_host_list(hosts, &set, error))
        return NULL;
    auto_fd dirfd = open_ca_dir(ca_dir, error);
    if (dirfd < 0)
        return NULL;

    LwCa *loaded = NULL;
    LwCaOrigin origin = LW_CA_REGEN_INVALID;
    g_autofree char *detail = NULL;
    if (!load_existing(dirfd, ca_dir, set, &loaded, &origin, &detail, error))
        return NULL;
    g_autoptr(LwCa) ca = loaded;
    if (ca == NULL) {
        ca = generate_chain(dirfd, ca_dir, set, error);
        if (ca == NULL)
            return NULL;
    }
    if (ret_origin != NULL)
        *ret_origin = origin;
    if (ret_detail != NULL)
        *ret_detail = g_steal_pointer(&detail);
    return g_steal_pointer(&ca);
}

LwCa *lw_ca_rotate(const char *ca_dir, const char *const *hosts, GError **error)
{
    g_return_val_if_fail(ca_dir != NULL, NULL);
    g_return_val_if_fail(error == NULL || *error == NULL, NULL);

    g_auto(GStrv) set = NULL;
    if (!normalize_host_list(hosts, &set, error))
        return NULL;
    auto_fd dirfd = open_ca_dir(ca_dir, error);
    if (dirfd < 0)
        return NULL;
    return generate_chain(dirfd, ca_dir, set, error);
}

const char *lw_ca_origin_to_string(LwCaOrigin origin)
{
    switch (origin) {
    case LW_CA_LOADED:
        return "loaded";
    case LW_CA_CREATED:
        return "created";
    case LW_CA_REGEN_HOSTS:
        return "regenerated: provider hosts changed";
    case LW_CA_REGEN_EXPIRING:
        return "regenerated: expiring or not yet valid";
    case LW_CA_REGEN_INVALID:
        return "regenerated: files missing, corrupt or mismatched";
    case LW_CA_REGEN_PURPOSE:
        return "regenerated: not limited to TLS servers";
    }
    return "unknown";
}

gboolean lw_ca_is_permitted_host(const LwCa *ca, const char *host)
{
    g_return_val_if_fail(ca != NULL, FALSE);
    g_autofree char *norm = normalize_host(host);
    return norm != NULL && host_set_contains(ca->hosts, norm);
}

static gboolean add_leaf_san(X509 *leaf, const char *host, gboolean critical)
{
    g_autoptr(GENERAL_NAMES) names = sk_GENERAL_NAME_new_null();
    g_autoptr(GENERAL_NAME) name = GENERAL_NAME_new();
    ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
    if (names == NULL || name == NULL || dns == NULL || !ASN1_STRING_set(dns, host, -1)) {
        ASN1_IA5STRING_free(dns);
        return FALSE;
    }
    GENERAL_NAME_set0_value(name, GEN_DNS, dns);
    if (sk_GENERAL_NAME_push(names, name) == 0)
        return FALSE;
    name = NULL;
    return X509_add1_ext_i2d(leaf, NID_subject_alt_name, names, critical ? 1 : 0,
                             X509V3_ADD_DEFAULT) == 1;
}

gboolean lw_ca_mint_leaf(LwCa *ca, const char *host, EVP_PKEY **ret_key, X509 **ret_cert,
                         GError **error)
{
    g_return_val_if_fail(ca != NULL, FALSE);
    g_return_val_if_fail(ret_key != NULL && ret_cert != NULL, FALSE);
    g_return_val_if_fail(error == NULL || *error == NULL, FALSE);

    g_autofree char *norm = normalize_host(host);
    if (norm == NULL || !host_set_contains(ca->hosts, norm)) {
        g_set_error(error, LW_CA_ERROR, LW_CA_ERROR_HOST_NOT_PERMITTED,
                    "refusing to mint a certificate for \"%s\": not a provider host of this CA",
                    host != NULL ? host : "(null)");
        return FALSE;
    }

    g_autoptr(EVP_PKEY) key = generate_p256_key(error);
    if (key == NULL)
        return FALSE;
    /* A commonName holds at most 64 characters (RFC 5280 ub-common-name);
     * longer hosts get an empty subject, which makes the SAN critical. */
    gboolean has_cn = strlen(norm) <= MAX_COMMON_NAME_LEN;
    g_autoptr(X509) leaf = X509_new();
    g_autoptr(X509_NAME) subject = X509_NAME_new();
    if (leaf == NULL || subject == NULL || (has_cn && !add_name_entry(subject, "CN", norm)) ||
        X509_set_version(leaf, X509_VERSION_3) != 1 || X509_set_subject_name(leaf, subject) != 1 ||
        X509_set_issuer_name(leaf, X509_get_subject_name(ca->intermediate)) != 1 ||
        X509_set_pubkey(leaf, key) != 1) {
        lw_ca_set_error_from_openssl(error, "building the certificate for %s", norm);
        return FALSE;
    }
    if (!set_random_serial(leaf, error) ||
        !set_validity(leaf, time(NULL), LW_CA_LEAF_VALIDITY_DAYS, error))
        return FALSE;
    const ASN1_TIME *ca_not_after = X509_get0_notAfter(ca->intermediate);
    if (ASN1_TIME_compare(X509_get0_notAfter(leaf), ca_not_after) > 0 &&
        X509_set1_notAfter(leaf, ca_not_after) != 1) {
        lw_ca_set_error_from_openssl(error, "capping the validity of %s", norm);
        return FALSE;
    }

    /* No Subject Key Identifier: SChannel mis-builds chains when a leaf's SKI
     * equals its issuer's (P17), and nothing looks a leaf up by it. */
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, ca->intermediate, leaf, NULL, NULL, 0);
    if (!add_conf_ext(leaf, &v3, NID_basic_constraints, "critical,CA:FALSE", error) ||
        !add_conf_ext(leaf, &v3, NID_key_usage, "critical,digitalSignature", error) ||
        !add_conf_ext(leaf, &v3, NID_ext_key_usage, "serverAuth", error) ||
        !add_conf_ext(leaf, &v3, NID_authority_key_identifier, "keyid:always", error))
        return FALSE;
    if (!add_leaf_san(leaf, norm, !has_cn)) {
        lw_ca_set_error_from_openssl(error, "adding the subject alternative name %s", norm);
        return FALSE;
    }

    g_mutex_lock(&ca->sign_lock);
    int signed_len = X509_sign(leaf, ca->intermediate_key, EVP_sha256());
    g_mutex_unlock(&ca->sign_lock);
    if (signed_len <= 0) {
        lw_ca_set_error_from_openssl(error, "signing the certificate for %s", norm);
        return FALSE;
    }
    *ret_key = g_steal_pointer(&key);
    *ret_cert = g_steal_pointer(&leaf);
    return TRUE;
}

X509 *lw_ca_get_intermediate(const LwCa *ca)
{
    g_return_val_if_fail(ca != NULL, NULL);
    return ca->intermediate;
}

X509 *lw_ca_get_root(const LwCa *ca)
{
    g_return_val_if_fail(ca != NULL, NULL);
    return ca->root;
}

const char *lw_ca_get_root_path(const LwCa *ca)
{
    g_return_val_if_fail(ca != NULL, NULL);
    return ca->root_path;
}

const char *const *lw_ca_get_hosts(const LwCa *ca)
{
    g_return_val_if_fail(ca != NULL, NULL);
    return (const char *const *)ca->hosts;
}

char *lw_ca_dup_root_fingerprint(const LwCa *ca)
{
    g_return_val_if_fail(ca != NULL, NULL);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(ca->root, EVP_sha256(), md, &len) != 1) {
        ERR_clear_error();
        return NULL;
    }
    GString *hex = g_string_sized_new(len * 3);
    for (unsigned int i = 0; i < len; i++)
        g_string_append_printf(hex, "%s%02X", i > 0 ? ":" : "", md[i]);
    return g_string_free(hex, FALSE);
}
