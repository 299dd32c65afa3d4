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
 * Concurrent llmwraps may write at once: each renames a complete file with
 * the same content into place.
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

typedef struct {
    char *dir;           /* run/trust */
    char *combined_file; /* run/trust/combined.pem */
    char *ca_file;       /* run/trust/ca.pem */
    char *ca_der_b64;    /* base64 of the root's DER, no newlines */
    char *bundle_source; /* the bundle combined.pem starts with, NULL if none was readable */
    char *root_block;    /* our root, as a PEM block */
} LwTrust;

/* The trust directory for a run directory. Transfer full. */
char *lw_trust_dir(const char *run_dir);

/* Reads the root certificate at `root_pem` (the collector's
 * StatusReply.ca_file) and writes the two files under run_dir/trust.
 * `user_bundle` is the user's SSL_CERT_FILE (NULL if unset); it is ignored
 * when it lies in the trust directory itself (a nested llmwrap inherits our
 * own combined.pem) or cannot be read, and the system bundle is used
 * instead. Transfer full. */
LwTrust *lw_trust_prepare(const char *run_dir, const char *root_pem, const char *user_bundle,
                          GError **error);
void lw_trust_free(LwTrust *trust);

/* The combined file for a bundle the user gave in a trust variable
 * (CURL_CA_BUNDLE=corp.pem): `user_bundle` plus our root, written like
 * combined.pem, one file per source. A file in the trust directory that
 * already ends with our root (a nested llmwrap's inherited value) is used
 * as it is. Returns NULL with no error when `user_bundle` is NULL, empty
 * or cannot be read (the caller keeps its default); NULL with `error` set
 * when the file cannot be written. Transfer full. */
char *lw_trust_combined_for(const LwTrust *t, const char *user_bundle, GError **error);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwTrust, lw_trust_free)

/* The system bundle: OpenSSL's default certificate file when readable,
 * else /etc/ssl/certs/ca-certificates.crt when readable, else NULL.
 * Transfer none (static strings). */
const char *lw_trust_system_bundle(void);

/* The first PEM certificate in `pem`: its base64 DER (no newlines) and the
 * normalised PEM block. FALSE when there is none or it is not DER-shaped.
 * Both outputs transfer full. */
gboolean lw_trust_parse_root(const char *pem, gsize len, char **ret_der_b64, char **ret_pem,
                             GError **error);
