/* trust.c - the trust files for wrapped programs. */
#include "trust.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PEM_BEGIN     "-----BEGIN CERTIFICATE-----"
#define PEM_END       "-----END CERTIFICATE-----"
#define DEBIAN_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

char *lw_trust_dir(const char *run_dir)
{
    return g_build_filename(run_dir, "trust", NULL);
}

void lw_trust_free(LwTrust *t)
{
    if (t == NULL)
        return;
    g_free(t->dir);
    g_free(t->combined_file);
    g_free(t->ca_file);
    g_free(t->ca_der_b64);
    g_free(t->bundle_source);
    g_free(t->root_block);
    g_free(t);
}

/* Where distributions keep the system bundle (OpenSSL's compiled-in
 * default on Debian is the first; the rest are other families'). A list,
 * rather than asking libcrypto, keeps libcrypto out of llmwrap, whose
 * start-up is added to every wrapped command. */
static const char *const system_bundles[] = {
    "/usr/lib/ssl/cert.pem",              /* Debian, Ubuntu: OpenSSL's default */
    DEBIAN_BUNDLE,                        /* /etc/ssl/certs/ca-certificates.crt */
    "/etc/pki/tls/certs/ca-bundle.crt",   /* Fedora, RHEL */
    "/etc/ssl/ca-bundle.pem",             /* openSUSE */
    "/etc/ssl/cert.pem",                  /* Alpine, Arch */
};

const char *lw_trust_system_bundle(void)
{
    for (guint i = 0; i < G_N_ELEMENTS(system_bundles); i++) {
        if (access(system_bundles[i], R_OK) == 0)
            return system_bundles[i];
    }
    return NULL;
}

gboolean lw_trust_parse_root(const char *pem, gsize len, char **ret_der_b64, char **ret_pem,
                             GError **error)
{
    const char *begin = g_strstr_len(pem, (gssize)len, PEM_BEGIN);
    const char *end =
        begin != NULL ? g_strstr_len(begin, (gssize)(pem + len - begin), PEM_END) : NULL;
    if (end == NULL) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "no PEM certificate found");
        return FALSE;
    }
    const char *body = begin + strlen(PEM_BEGIN);
    /* g_base64_decode skips the line breaks; reject anything else that is
     * not base64 so a corrupt file is an error, not a garbage DER. */
    GString *b64 = g_string_sized_new((gsize)(end - body));
    for (const char *p = body; p < end; p++) {
        if (g_ascii_isalnum(*p) || *p == '+' || *p == '/' || *p == '=')
            g_string_append_c(b64, *p);
        else if (!g_ascii_isspace(*p)) {
            g_string_free(b64, TRUE);
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "the PEM certificate is not valid base64");
            return FALSE;
        }
    }
    gsize der_len = 0;
    g_autofree guchar *der = g_base64_decode(b64->str, &der_len);
    g_string_free(b64, TRUE);
    /* A certificate is a DER SEQUENCE. */
    if (der_len < 16 || der_len > LW_TRUST_MAX_DER || der[0] != 0x30) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "the PEM certificate is not a DER certificate of at most %d bytes",
                    LW_TRUST_MAX_DER);
        return FALSE;
    }
    char *der_b64 = g_base64_encode(der, der_len);
    GString *out = g_string_new(PEM_BEGIN "\n");
    for (size_t i = 0, n = strlen(der_b64); i < n; i += 64) {
        g_string_append_len(out, der_b64 + i, (gssize)MIN(64, n - i));
        g_string_append_c(out, '\n');
    }
    g_string_append(out, PEM_END "\n");
    *ret_der_b64 = der_b64;
    *ret_pem = g_string_free(out, FALSE);
    return TRUE;
}

/* ---- the root's subject hash ----
 *
 * OpenSSL finds a certificate in a CA directory (SSL_CERT_DIR, a capath)
 * by the file name "<hash>.<n>", where hash is X509_NAME_hash of the
 * subject: the first four bytes (little-endian) of the SHA-1 of the
 * name's canonical encoding. Computed here from the DER, so llmwrap does
 * not link libcrypto. */

/* The DER element at *p (before end): its tag and value; *p moves past it.
 * FALSE when it does not fit or uses a form no certificate name needs
 * (multi-byte tags, indefinite or over 4-byte lengths). */
static gboolean der_next(const guchar **p, const guchar *end, guint *ret_tag,
                         const guchar **ret_val, gsize *ret_len)
{
    const guchar *q = *p;
    if (end - q < 2 || (q[0] & 0x1f) == 0x1f)
        return FALSE;
    guint tag = *q++;
    gsize len = *q++;
    if (len & 0x80) {
        guint n = len & 0x7f;
        if (n == 0 || n > 4 || (gsize)(end - q) < n)
            return FALSE;
        len = 0;
        for (guint i = 0; i < n; i++)
            len = (len << 8) | *q++;
    }
    if ((gsize)(end - q) < len)
        return FALSE;
    *ret_tag = tag;
    *ret_val = q;
    *ret_len = len;
    *p = q + len;
    return TRUE;
}

static void der_put(GByteArray *out, guint8 tag, const guchar *val, gsize len)
{
    guint8 head[6] = {tag};
    guint n = 1;
    if (len < 0x80) {
        head[n++] = (guint8)len;
    } else {
        guint bytes = 0;
        for (gsize l = len; l > 0; l >>= 8)
            bytes++;
        head[n++] = (guint8)(0x80 | bytes);
        for (guint i = bytes; i > 0; i--)
            head[n++] = (guint8)(len >> (8 * (i - 1)));
    }
    g_byte_array_append(out, head, n);
    g_byte_array_append(out, val, (guint)len);
}

static gboolean is_canon_space(guchar c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* An attribute value as OpenSSL canonicalises it (asn1_string_canon): a
 * string becomes a UTF8String, trimmed, inner runs of white space made one
 * space, ASCII lowercased; any other type is kept. FALSE for the string
 * types that need a character set conversion (T61, BMP, Universal, or a
 * non-ASCII byte in an ASCII type): our root has none. */
static gboolean canon_value(GByteArray *out, guint tag, const guchar *val, gsize len)
{
    gboolean ascii_type = tag == 0x13 || tag == 0x16 || tag == 0x1a; /* Printable, IA5, Visible */
    if (tag == 0x14 || tag == 0x1e || tag == 0x1c)
        return FALSE;
    if (tag != 0x0c && !ascii_type) {
        der_put(out, (guint8)tag, val, len);
        return TRUE;
    }
    if (tag == 0x0c && !g_utf8_validate_len((const char *)val, len, NULL))
        return FALSE;
    while (len > 0 && is_canon_space(val[0])) {
        val++;
        len--;
    }
    while (len > 0 && is_canon_space(val[len - 1]))
        len--;
    g_autoptr(GByteArray) s = g_byte_array_sized_new((guint)len);
    for (gsize i = 0; i < len;) {
        guchar c = val[i];
        if (c >= 0x80) {
            if (ascii_type)
                return FALSE;
            g_byte_array_append(s, &c, 1);
            i++;
        } else if (is_canon_space(c)) {
            guchar sp = ' ';
            g_byte_array_append(s, &sp, 1);
            while (i < len && is_canon_space(val[i]))
                i++;
        } else {
            guchar lc = (guchar)g_ascii_tolower((gchar)c);
            g_byte_array_append(s, &lc, 1);
            i++;
        }
    }
    der_put(out, 0x0c, s->data, s->len);
    return TRUE;
}

gboolean lw_trust_subject_hash(const guchar *der, gsize len, guint32 *ret_hash)
{
    const guchar *p = der, *end = der + len, *v;
    gsize n;
    guint tag;
    /* Certificate, then tbsCertificate. */
    for (int i = 0; i < 2; i++) {
        if (!der_next(&p, end, &tag, &v, &n) || tag != 0x30)
            return FALSE;
        p = v;
        end = v + n;
    }
    /* [0] version (optional), serialNumber, signature, issuer, validity. */
    if (!der_next(&p, end, &tag, &v, &n))
        return FALSE;
    if (tag == 0xa0 && !der_next(&p, end, &tag, &v, &n))
        return FALSE;
    for (int i = 0; i < 3; i++) {
        if (!der_next(&p, end, &tag, &v, &n))
            return FALSE;
    }
    if (!der_next(&p, end, &tag, &v, &n) || tag != 0x30)
        return FALSE;

    /* The canonical encoding: each RelativeDistinguishedName (a SET) in
     * turn, without the outer SEQUENCE. */
    g_autoptr(GByteArray) canon = g_byte_array_new();
    const guchar *rdn = v, *rdns_end = v + n;
    while (rdn < rdns_end) {
        const guchar *set, *ava, *a, *oid, *val;
        gsize set_len, ava_len, oid_len, val_len;
        guint oid_tag, val_tag;
        if (!der_next(&rdn, rdns_end, &tag, &set, &set_len) || tag != 0x31)
            return FALSE;
        /* One attribute per RDN: a multi-valued one would need the SET
         * sorted again after canonicalisation. */
        a = set;
        if (!der_next(&a, set + set_len, &tag, &ava, &ava_len) || tag != 0x30 || a != set + set_len)
            return FALSE;
        a = ava;
        if (!der_next(&a, ava + ava_len, &oid_tag, &oid, &oid_len) || oid_tag != 0x06 ||
            !der_next(&a, ava + ava_len, &val_tag, &val, &val_len) || a != ava + ava_len)
            return FALSE;
        g_autoptr(GByteArray) seq = g_byte_array_new();
        der_put(seq, 0x06, oid, oid_len);
        if (!canon_value(seq, val_tag, val, val_len))
            return FALSE;
        g_autoptr(GByteArray) one = g_byte_array_new();
        der_put(one, 0x30, seq->data, seq->len);
        der_put(canon, 0x31, one->data, one->len);
    }
    guint8 sha1[20];
    gsize sha1_len = sizeof sha1;
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA1);
    g_checksum_update(sum, canon->data, canon->len);
    g_checksum_get_digest(sum, sha1, &sha1_len);
    *ret_hash =
        (guint32)sha1[0] | (guint32)sha1[1] << 8 | (guint32)sha1[2] << 16 | (guint32)sha1[3] << 24;
    return TRUE;
}

/* Writes `contents` to `path` unless the file already holds exactly that. */
static gboolean write_if_different(const char *path, const char *contents, gsize len,
                                   GError **error)
{
    g_autofree char *old = NULL;
    gsize old_len = 0;
    if (g_file_get_contents(path, &old, &old_len, NULL) && old_len == len &&
        memcmp(old, contents, len) == 0)
        return TRUE;
    return g_file_set_contents_full(path, contents, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT,
                                    0644, error);
}

static gboolean is_in_dir(const char *path, const char *dir)
{
    g_autofree char *canon = g_canonicalize_filename(path, NULL);
    size_t n = strlen(dir);
    return strncmp(canon, dir, n) == 0 && canon[n] == '/';
}

static char *read_capped(const char *path, gsize *ret_len)
{
    char *data = NULL;
    GStatBuf st;
    if (path == NULL || g_stat(path, &st) != 0 || st.st_size > LW_TRUST_MAX_BUNDLE ||
        !g_file_get_contents(path, &data, ret_len, NULL))
        return NULL;
    return data;
}

/* Whether the file at `path` ends with `block`. */
static gboolean ends_with(const char *path, const char *block)
{
    size_t n = strlen(block);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return FALSE;
    struct stat st;
    g_autofree char *tail = g_malloc(n);
    gboolean same = fstat(fd, &st) == 0 && (guint64)st.st_size >= n &&
                    pread(fd, tail, n, st.st_size - (off_t)n) == (ssize_t)n &&
                    memcmp(tail, block, n) == 0;
    close(fd);
    return same;
}

static gint64 mtime_ns(const struct stat *st)
{
    return (gint64)st->st_mtim.tv_sec * G_GINT64_CONSTANT(1000000000) + st->st_mtim.tv_nsec;
}

/* Whether `combined` already is `source` + our root, without reading the
 * bundle (a few hundred KiB): the size must match, the file must end with
 * the root block, and it must not be older than the source (a bundle
 * update, such as update-ca-certificates, rewrites the source). */
static gboolean combined_is_current(const char *combined, const char *source,
                                    const char *root_block)
{
    struct stat cs, ss;
    if (stat(combined, &cs) != 0 || !S_ISREG(cs.st_mode))
        return FALSE;
    guint64 expected = strlen(root_block);
    if (source != NULL) {
        int fd = open(source, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return FALSE;
        char last = '\n';
        gboolean ok = fstat(fd, &ss) == 0 && S_ISREG(ss.st_mode) &&
                      (ss.st_size == 0 || pread(fd, &last, 1, ss.st_size - 1) == 1);
        close(fd);
        if (!ok || mtime_ns(&ss) > mtime_ns(&cs))
            return FALSE;
        expected += (guint64)ss.st_size + (ss.st_size > 0 && last != '\n' ? 1 : 0);
    }
    return (guint64)cs.st_size == expected && ends_with(combined, root_block);
}

/* The combined file for a bundle source: one name per source, so runs of
 * users with different SSL_CERT_FILE values never rewrite each other's. */
static char *combined_name(const char *trust_dir, const char *source)
{
    const char *system = lw_trust_system_bundle();
    g_autofree char *canon = source != NULL ? realpath(source, NULL) : NULL;
    g_autofree char *system_canon = system != NULL ? realpath(system, NULL) : NULL;
    if (canon == NULL || g_strcmp0(canon, system_canon) == 0)
        return g_build_filename(trust_dir, "combined.pem", NULL);
    g_autofree char *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256, canon, -1);
    g_autofree char *name = g_strdup_printf("combined-%.16s.pem", sum);
    return g_build_filename(trust_dir, name, NULL);
}

/* Points *ret_file at the combined file for `source` (NULL: our root
 * alone) plus our root, writing it when it is missing or stale. TRUE with
 * *ret_file NULL when `source` cannot be read; FALSE only when the file
 * cannot be written. */
static gboolean combine(const LwTrust *t, const char *source, char **ret_file, GError **error)
{
    *ret_file = NULL;
    if (source != NULL && access(source, R_OK) != 0)
        return TRUE;
    g_autofree char *file = combined_name(t->dir, source);
    if (combined_is_current(file, source, t->root_block)) {
        *ret_file = g_steal_pointer(&file);
        return TRUE;
    }
    gsize len = 0;
    g_autofree char *bundle = NULL;
    if (source != NULL && (bundle = read_capped(source, &len)) == NULL)
        return TRUE;
    GString *combined = g_string_sized_new(len + strlen(t->root_block) + 1);
    if (bundle != NULL) {
        g_string_append_len(combined, bundle, (gssize)len);
        if (len > 0 && bundle[len - 1] != '\n')
            g_string_append_c(combined, '\n');
    }
    g_string_append(combined, t->root_block);
    gboolean ok = write_if_different(file, combined->str, combined->len, error);
    g_string_free(combined, TRUE);
    if (ok)
        *ret_file = g_steal_pointer(&file);
    return ok;
}

/* The combined file for the user's bundle `source` (a regular file): one
 * of ours that already ends with our root (a nested llmwrap inherits the
 * outer run's) is used as it is; else `source` plus our root. TRUE with
 * *ret_file NULL when `source` is not a readable regular file within the
 * cap. */
static gboolean bundle_for(const LwTrust *t, const char *source, char **ret_file, GError **error)
{
    struct stat st;
    *ret_file = NULL;
    if (stat(source, &st) != 0 || !S_ISREG(st.st_mode))
        return TRUE;
    if (is_in_dir(source, t->dir) && ends_with(source, t->root_block)) {
        *ret_file = g_canonicalize_filename(source, NULL);
        return TRUE;
    }
    return combine(t, source, ret_file, error);
}

/* Links being made in a CA directory: never a hash name, skipped in the
 * user's directory, and left alone by a concurrent llmwrap's clean-up. */
#define LINK_TMP_PREFIX ".llmwrap-tmp-"

/* Points dir/name at `target` unless it already does: a new link renamed
 * over the entry, so a program reading the directory meanwhile finds the
 * old entry or the new one, never none. */
static gboolean put_link(const char *dir, const char *name, const char *target, GError **error)
{
    static gint counter;
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autofree char *old = g_file_read_link(path, NULL);
    if (old != NULL && strcmp(old, target) == 0)
        return TRUE;
    g_autofree char *tmp = g_strdup_printf("%s/" LINK_TMP_PREFIX "%d-%d", dir, (int)getpid(),
                                           g_atomic_int_add(&counter, 1));
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot link %s: %s", path,
                    g_strerror(e));
        return FALSE;
    }
    return TRUE;
}

static char *root_link_name(const LwTrust *t, guint n)
{
    return g_strdup_printf("%08x.%u", (unsigned)t->root_hash, n);
}

/* Whether `dir` (a CA directory an outer llmwrap made) links our root. */
static gboolean links_root(const LwTrust *t, const char *dir)
{
    for (guint n = 0;; n++) {
        g_autofree char *name = root_link_name(t, n);
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_autofree char *target = g_file_read_link(path, NULL);
        if (target == NULL && !g_file_test(path, G_FILE_TEST_EXISTS))
            return FALSE;
        if (g_strcmp0(target, t->ca_file) == 0)
            return TRUE;
    }
}

/* The CA directory for the user's CA directory `source`: run/trust/dir-HASH
 * (HASH of its canonical path) holds a link to each of its entries and one
 * to ca.pem under our root's hash name, so OpenSSL's hashed lookup (and a
 * reader of every file, such as rustls-native-certs) finds the user's CAs
 * and ours. The links follow the entries' contents; the set of entries is
 * brought in step with `source` when it changed: a finished update stamps
 * the directory with the mtime `source` had when it was listed, and any
 * later change to either directory makes the mtimes differ (so a run
 * checks two stats rather than every link). TRUE with
 * *ret_dir NULL when it cannot be made (the source cannot be listed or has
 * more than LW_TRUST_MAX_DIR_ENTRIES entries, or our root's hash is
 * unknown); FALSE when a link cannot be written. */
static gboolean link_dir(const LwTrust *t, const char *source, char **ret_dir, GError **error)
{
    *ret_dir = NULL;
    g_autofree char *canon = realpath(source, NULL);
    struct stat src_st, our_st;
    if (canon == NULL || !t->has_root_hash || stat(canon, &src_st) != 0)
        return TRUE;
    g_autofree char *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256, canon, -1);
    g_autofree char *dir_name = g_strdup_printf("dir-%.16s", sum);
    g_autofree char *dir = g_build_filename(t->dir, dir_name, NULL);
    if (stat(dir, &our_st) == 0 && mtime_ns(&our_st) == mtime_ns(&src_st) && links_root(t, dir)) {
        *ret_dir = g_steal_pointer(&dir);
        return TRUE;
    }

    GDir *d = g_dir_open(canon, 0, NULL);
    if (d == NULL)
        return TRUE;
    g_autoptr(GHashTable) want = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    const char *name;
    guint count = 0;
    while ((name = g_dir_read_name(d)) != NULL && count++ < LW_TRUST_MAX_DIR_ENTRIES) {
        if (!g_str_has_prefix(name, LINK_TMP_PREFIX))
            g_hash_table_insert(want, g_strdup(name), g_build_filename(canon, name, NULL));
    }
    g_dir_close(d);
    if (count > LW_TRUST_MAX_DIR_ENTRIES)
        return TRUE;
    /* Ours after the user's certificates of the same hash, if any. */
    char *root_name = NULL;
    for (guint n = 0; root_name == NULL; n++) {
        root_name = root_link_name(t, n);
        if (g_hash_table_contains(want, root_name))
            g_clear_pointer(&root_name, g_free);
    }
    g_hash_table_insert(want, root_name, g_strdup(t->ca_file));

    if (g_mkdir(dir, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot create %s: %s", dir,
                    g_strerror(e));
        return FALSE;
    }
    GDir *ours = g_dir_open(dir, 0, error);
    if (ours == NULL)
        return FALSE;
    while ((name = g_dir_read_name(ours)) != NULL) {
        if (!g_str_has_prefix(name, LINK_TMP_PREFIX) && !g_hash_table_contains(want, name)) {
            g_autofree char *path = g_build_filename(dir, name, NULL);
            unlink(path);
        }
    }
    g_dir_close(ours);
    GHashTableIter it;
    gpointer link_name, target;
    g_hash_table_iter_init(&it, want);
    while (g_hash_table_iter_next(&it, &link_name, &target)) {
        if (!put_link(dir, link_name, target, error))
            return FALSE;
    }
    /* File times come from a clock that ticks every few milliseconds: a
     * change to `source` in the tick it was listed in would leave its mtime
     * as stamped. Stamping only a source unchanged for a second leaves
     * such a directory to be listed again next time. A failed stamp only
     * costs that, too. */
    if (g_get_real_time() - mtime_ns(&src_st) / 1000 > G_USEC_PER_SEC) {
        struct timespec times[2] = {{.tv_nsec = UTIME_OMIT}, src_st.st_mtim};
        utimensat(AT_FDCWD, dir, times, 0);
    }
    *ret_dir = g_steal_pointer(&dir);
    return TRUE;
}

LwTrust *lw_trust_prepare(const char *run_dir, const char *root_pem, const char *user_bundle,
                          GError **error)
{
    g_autoptr(LwTrust) t = g_new0(LwTrust, 1);
    t->dir = lw_trust_dir(run_dir);
    t->ca_file = g_build_filename(t->dir, "ca.pem", NULL);

    g_autofree char *root = NULL;
    gsize root_len = 0;
    if (!g_file_get_contents(root_pem, &root, &root_len, error))
        return NULL;
    if (!lw_trust_parse_root(root, root_len, &t->ca_der_b64, &t->root_block, error)) {
        g_prefix_error(error, "%s: ", root_pem);
        return NULL;
    }
    gsize der_len = 0;
    g_autofree guchar *der = g_base64_decode(t->ca_der_b64, &der_len);
    t->has_root_hash = lw_trust_subject_hash(der, der_len, &t->root_hash);

    if (g_mkdir(t->dir, 0700) != 0 && errno != EEXIST) {
        int e = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot create %s: %s", t->dir,
                    g_strerror(e));
        return NULL;
    }
    if (!write_if_different(t->ca_file, t->root_block, strlen(t->root_block), error))
        return NULL;

    /* The user's bundle, else the system's, else our root alone. */
    if (user_bundle != NULL && *user_bundle != '\0') {
        if (!bundle_for(t, user_bundle, &t->combined_file, error))
            return NULL;
        if (t->combined_file != NULL)
            t->bundle_source = g_strdup(user_bundle);
    }
    const char *system = lw_trust_system_bundle();
    if (t->combined_file == NULL && system != NULL) {
        if (!combine(t, system, &t->combined_file, error))
            return NULL;
        if (t->combined_file != NULL)
            t->bundle_source = g_strdup(system);
    }
    if (t->combined_file == NULL && !combine(t, NULL, &t->combined_file, error))
        return NULL;
    return g_steal_pointer(&t);
}

char *lw_trust_combined_for(const LwTrust *t, const char *user_value, GError **error)
{
    g_return_val_if_fail(t != NULL && t->root_block != NULL, NULL);
    struct stat st;
    if (user_value == NULL || *user_value == '\0' || stat(user_value, &st) != 0)
        return NULL;
    char *out = NULL;
    if (S_ISDIR(st.st_mode)) {
        if (is_in_dir(user_value, t->dir) && t->has_root_hash && links_root(t, user_value))
            return g_canonicalize_filename(user_value, NULL);
        link_dir(t, user_value, &out, error);
        return out;
    }
    bundle_for(t, user_value, &out, error);
    return out;
}
