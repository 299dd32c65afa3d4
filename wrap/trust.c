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

/* A nested llmwrap inherits the outer run's trust files: one that lies in
 * the trust directory and already ends with the current root is used as
 * it is (the outer run made it from the user's bundle). */
static char *inherited(const LwTrust *t, const char *bundle)
{
    if (!ends_with(bundle, t->root_block))
        return NULL;
    return g_canonicalize_filename(bundle, NULL);
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

    if (g_mkdir(t->dir, 0700) != 0 && errno != EEXIST) {
        int e = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot create %s: %s", t->dir,
                    g_strerror(e));
        return NULL;
    }
    if (!write_if_different(t->ca_file, t->root_block, strlen(t->root_block), error))
        return NULL;

    gboolean has_user = user_bundle != NULL && *user_bundle != '\0';
    if (has_user && is_in_dir(user_bundle, t->dir)) {
        t->combined_file = inherited(t, user_bundle);
        if (t->combined_file != NULL) {
            t->bundle_source = g_strdup(user_bundle);
            return g_steal_pointer(&t);
        }
        has_user = FALSE;
    }
    /* The user's bundle, else the system's, else our root alone. */
    const char *candidates[] = {has_user ? user_bundle : NULL, lw_trust_system_bundle()};
    for (guint i = 0; i < G_N_ELEMENTS(candidates) && t->combined_file == NULL; i++) {
        if (candidates[i] == NULL)
            continue;
        if (!combine(t, candidates[i], &t->combined_file, error))
            return NULL;
        if (t->combined_file != NULL)
            t->bundle_source = g_strdup(candidates[i]);
    }
    if (t->combined_file == NULL && !combine(t, NULL, &t->combined_file, error))
        return NULL;
    return g_steal_pointer(&t);
}

char *lw_trust_combined_for(const LwTrust *t, const char *user_bundle, GError **error)
{
    g_return_val_if_fail(t != NULL && t->root_block != NULL, NULL);
    if (user_bundle == NULL || *user_bundle == '\0')
        return NULL;
    if (is_in_dir(user_bundle, t->dir))
        return inherited(t, user_bundle);
    char *file = NULL;
    if (!combine(t, user_bundle, &file, error))
        return NULL;
    return file;
}
