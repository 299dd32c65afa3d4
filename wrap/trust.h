/* trust.h - the files that make wrapped programs trust the collector's CA.
 *
 * run/trust/ (0700) holds these files (0644), written atomically (temporary +
 * rename) and only when missing or different, so wrapping a short command
 * does not copy the system bundle every time:
 *   combined.pem  the system bundle plus our root: for the variables that
 *                 replace the trust store
 *   combined-HASH.pem  the same for a bundle of the user's own (HASH of its
 *                 path): SSL_CERT_FILE, or any trust variable the user set,
 *                 so users of one state directory with different bundles
 *                 never rewrite each other's file
 *   ca.pem        our root alone: for NODE_EXTRA_CA_CERTS and DENO_CERT
 *                 when the user did not set them
 *   dir-HASH/     for a CA directory of the user's (SSL_CERT_DIR, or a
 *                 capath in REQUESTS_CA_BUNDLE): a link to each of its
 *                 entries plus a link to ca.pem under our root's subject
 *                 hash name, which is how OpenSSL looks a CA up in a
 *                 directory
 * Concurrent llmwraps may write at once: each renames a complete file (or
 * link) with the same content into place.
 *
 * Thread-safety: reentrant.
 */
#pragma once

#include <glib.h>

/* A root certificate is well under this; the shim holds at most 8 KiB of
 * DER (LW_SHIM_MAX_CA_DER). */
#define LW_TRUST_MAX_DER 8192
/* Cap on the bundle copied into combined.pem. */
#define LW_TRUST_MAX_BUNDLE (16 * 1024 * 1024)
/* Cap on the entries of a user's CA directory linked into dir-HASH (a
 * distribution's /etc/ssl/certs holds a few hundred). */
#define LW_TRUST_MAX_DIR_ENTRIES 4096

typedef struct {
    char *dir;           /* run/trust */
    char *combined_file; /* run/trust/combined.pem */
    char *ca_file;       /* run/trust/ca.pem */
    char *ca_der_b64;    /* base64 of the root's DER, no newlines */
    char *bundle_source; /* the bundle combined.pem starts with, NULL if none was readable */
    char *root_block;    /* our root, as a PEM block */
    guint32 root_hash;   /* OpenSSL's subject hash of our root */
    gboolean has_root_hash;
} LwTrust;

/* The trust directory for a run directory. Transfer full. */
char *lw_trust_dir(const char *run_dir);

/* Reads the root certificate at `root_pem` (the collector's
 * StatusReply.ca_file) and writes ca.pem and the combined file under
 * run_dir/trust. `user_bundle` is the user's SSL_CERT_FILE (NULL if
 * unset): the combined file is that bundle plus our root (a file of the
 * trust directory that already ends with our root, a nested llmwrap's
 * inherited value, is used as it is); when it is not a readable regular
 * file, the system bundle plus our root. Transfer full. */
LwTrust *lw_trust_prepare(const char *run_dir, const char *root_pem, const char *user_bundle,
                          GError **error);
void lw_trust_free(LwTrust *trust);

/* What replaces the value the user gave a trust variable: for a bundle
 * (CURL_CA_BUNDLE=corp.pem), that bundle plus our root, written like
 * combined.pem, one file per source; for a CA directory
 * (SSL_CERT_DIR=/etc/corp/certs), dir-HASH. A file in the trust directory
 * that already ends with our root, or a directory there that links it (a
 * nested llmwrap's inherited value), is used as it is. Returns NULL with
 * no error when `user_value` is NULL or empty, or names nothing llmwrap can
 * add our root to (missing, unreadable, over the caps, not a file or a
 * directory): the caller then leaves the variable exactly as the user set
 * it. NULL with `error` set when a file cannot be written. Transfer full. */
char *lw_trust_combined_for(const LwTrust *t, const char *user_value, GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwTrust, lw_trust_free)

/* The system bundle: OpenSSL's default certificate file when readable,
 * else /etc/ssl/certs/ca-certificates.crt when readable, else NULL.
 * Transfer none (static strings). */
const char *lw_trust_system_bundle(void);

/* OpenSSL's X509_NAME_hash of the subject of the DER certificate `der`:
 * the name of its file in a CA directory is "%08x.N". FALSE when the
 * certificate does not parse or its subject needs what is not implemented
 * (a multi-valued RDN; a T61, BMP or Universal string). */
gboolean lw_trust_subject_hash(const guchar *der, gsize len, guint32 *ret_hash);

/* The first PEM certificate in `pem`: its base64 DER (no newlines) and the
 * normalised PEM block. FALSE when there is none or it is not DER-shaped.
 * Both outputs transfer full. */
gboolean lw_trust_parse_root(const char *pem, gsize len, char **ret_der_b64, char **ret_pem,
                             GError **error);
