/* ca.h - the collector's local certificate authority.
 *
 * Programs that llmwrap wraps trust one certificate: root.pem. It is a
 * self-signed ECDSA P-256 root whose only job was to sign the intermediate;
 * its private key is discarded (freed, never written) right after that. The
 * intermediate signs short-lived leaves, one per provider host. Both CA
 * certificates carry a critical NameConstraints extension that permits
 * exactly the provider hosts (as dNSName subtrees) and excludes every IPv4
 * and IPv6 address, and an extended key usage of TLS server authentication
 * only, so a leaked intermediate key can only impersonate the providers, and
 * only to wrapped programs (DESIGN §2). The constraint sits
 * in both certificates because some verifiers ignore constraints on a trust
 * anchor (Java), and a DNS-only constraint would leave IP SANs unrestricted.
 *
 * Files in the CA directory (which must be 0700 and owned by the caller):
 *   root.pem          the root certificate (0644)
 *   intermediate.pem  the intermediate certificate (0644)
 *   intermediate.key  the intermediate's PKCS#8 private key (0600)
 * Each is replaced atomically (temp file, fsync, rename). Any other state of
 * the directory - files missing, unparsable, not matching each other, a
 * host set that no longer matches the configuration, an intermediate close
 * to expiry - makes lw_ca_open() generate a whole new chain and say why.
 *
 * Validity: root and intermediate 2 years, leaves 45 days, each backdated
 * one day against clock skew (see LW_CA_*_DAYS below for the reasons).
 *
 * Thread-safety: lw_ca_open(), lw_ca_rotate() and lw_ca_free() must not run
 * concurrently with any other call on the same LwCa (nor two of them on the
 * same directory). Everything else may be called from any thread at once;
 * an LwCa does not change after it is returned.
 */
#pragma once

#include <glib.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/* ---- Constants ---------------------------------------------------------- */

#define LW_CA_ROOT_FILE             "root.pem"
#define LW_CA_INTERMEDIATE_FILE     "intermediate.pem"
#define LW_CA_INTERMEDIATE_KEY_FILE "intermediate.key"

/* Root and intermediate lifetime. Trust reaches programs through per-process
 * environment variables, not a system store, so replacing the CA is cheap;
 * two years bounds how long a copied intermediate key stays useful without
 * making long-lived wrapped programs (which read their trust file once) see a
 * new CA often. Both certificates are regenerated together. */
#define LW_CA_CA_VALIDITY_DAYS 730

/* An intermediate that expires within this many days is replaced at load,
 * so a collector started now can run a month and still mint valid leaves. */
#define LW_CA_RENEW_BEFORE_DAYS 30

/* Total leaf lifetime, backdating included. Clients increasingly reject
 * long-lived leaves (CA/B ballot SC-081 brings public ones down to 47 days);
 * leaves are minted at collector start and cost nothing to remint. A leaf
 * never outlives the intermediate. */
#define LW_CA_LEAF_VALIDITY_DAYS 45

/* The extended key usage of the root and the intermediate: they vouch for
 * TLS servers only. Name constraints bind the names in a certificate; a
 * client certificate need carry none, so without this a wrapped program
 * that verifies client certificates with OpenSSL (the shim adds root.pem
 * to its stores) would accept any one signed with intermediate.key. */
#define LW_CA_PURPOSE "serverAuth"

/* notBefore is set this far in the past, so a client whose clock lags the
 * collector's still accepts a fresh certificate. */
#define LW_CA_BACKDATE_DAYS 1

/* Caps on the host set: the provider table has at most 64 slots and a DNS
 * name is at most 253 characters. */
#define LW_CA_MAX_HOSTS    64
#define LW_CA_MAX_HOST_LEN 253

/* Each CA file is read whole; anything larger is not ours. */
#define LW_CA_MAX_FILE_SIZE (64 * 1024)

/* ---- Types -------------------------------------------------------------- */

#define LW_CA_ERROR (lw_ca_error_quark())
GQuark lw_ca_error_quark(void);

typedef enum {
    LW_CA_ERROR_CRYPTO,        /* OpenSSL failed; the message carries its error queue */
    LW_CA_ERROR_INSECURE,      /* CA directory or key file group/world accessible, or not ours */
    LW_CA_ERROR_INVALID_HOSTS, /* the host list is empty, too long, or holds a bad name */
    LW_CA_ERROR_HOST_NOT_PERMITTED, /* lw_ca_mint_leaf() for a host outside the CA's set */
} LwCaError;
/* File system failures (open, write, rename) use G_FILE_ERROR. */

/* What lw_ca_open() found in the directory, i.e. why the chain it returns is
 * new (everything but LW_CA_LOADED means a new root: clients that read the
 * old root.pem must be restarted). */
typedef enum {
    LW_CA_LOADED = 0,     /* the existing chain was valid and is reused */
    LW_CA_CREATED,        /* the directory held no CA: first run */
    LW_CA_REGEN_HOSTS,    /* its name constraints differ from the requested hosts */
    LW_CA_REGEN_EXPIRING, /* it expires within LW_CA_RENEW_BEFORE_DAYS, or is not yet valid */
    LW_CA_REGEN_INVALID,  /* a file is missing, unreadable, corrupt, or they do not match */
    LW_CA_REGEN_PURPOSE,  /* it is not limited to TLS servers (made before LW_CA_PURPOSE was) */
} LwCaOrigin;

typedef struct _LwCa LwCa;

/* ---- Opening and replacing the CA --------------------------------------- */

/* Loads the CA in `ca_dir`, or generates a new chain there when it is absent
 * or unusable (see LwCaOrigin). `hosts` is a NULL-terminated list of provider
 * hosts; they are compared case-insensitively with one trailing dot ignored,
 * order and duplicates do not matter. The directory must exist, belong to the
 * effective user and have no group/world permission bits; the same holds for
 * an existing intermediate.key. Permissions are never repaired silently.
 *
 * Returns the CA (transfer full, free with lw_ca_free()). `ret_origin` (may
 * be NULL) says whether the chain was reused and if not, why; `ret_detail`
 * (may be NULL) receives a human-readable reason for a regeneration
 * ("intermediate.key: does not match intermediate.pem"), transfer full, or
 * NULL when the chain was loaded or created. On failure returns NULL, sets
 * `error` (LW_CA_ERROR_INSECURE, LW_CA_ERROR_INVALID_HOSTS, G_FILE_ERROR,
 * LW_CA_ERROR_CRYPTO) and leaves the out parameters untouched. */
LwCa *lw_ca_open(const char *ca_dir, const char *const *hosts, LwCaOrigin *ret_origin,
                 char **ret_detail, GError **error);

/* Generates a new chain in `ca_dir` unconditionally, replacing any existing
 * one (for `llmctl ca rotate`). Same directory rules, hosts and errors as
 * lw_ca_open(). Returns the new CA, transfer full. */
LwCa *lw_ca_rotate(const char *ca_dir, const char *const *hosts, GError **error);

/* Frees the CA and its key material (zeroed by OpenSSL). Accepts NULL. */
void lw_ca_free(LwCa *ca);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwCa, lw_ca_free)

/* Constant name for an origin ("loaded", "regenerated: name constraints
 * changed", ...), for logs. */
const char *lw_ca_origin_to_string(LwCaOrigin origin);

/* ---- Minting leaves ------------------------------------------------------ */

/* TRUE if `host` is in the CA's host set (case-insensitive, one trailing dot
 * ignored). Subdomains of a host are not in the set even though the name
 * constraint would permit them: the collector only serves exact names. */
gboolean lw_ca_is_permitted_host(const LwCa *ca, const char *host);

/* Mints a server certificate for `host`, which must pass
 * lw_ca_is_permitted_host(); anything else fails with
 * LW_CA_ERROR_HOST_NOT_PERMITTED. The leaf has a fresh ECDSA P-256 key,
 * subject CN and SAN dNSName = the normalised host (lowercase, no trailing
 * dot; a host longer than a CN may be gets an empty subject and a critical
 * SAN instead), a random serial, LW_CA_LEAF_VALIDITY_DAYS of validity (capped at the
 * intermediate's notAfter), critical CA:FALSE, critical keyUsage
 * digitalSignature, extendedKeyUsage serverAuth, an Authority Key Identifier
 * equal to the intermediate's SKI, and no Subject Key Identifier.
 *
 * On success stores the key and certificate in `ret_key` and `ret_cert`
 * (transfer full: EVP_PKEY_free(), X509_free()). Serve the leaf followed by
 * lw_ca_get_intermediate(); re-mint before X509_get0_notAfter(*ret_cert).
 * On failure returns FALSE and leaves them untouched. Any thread. */
gboolean lw_ca_mint_leaf(LwCa *ca, const char *host, EVP_PKEY **ret_key, X509 **ret_cert,
                         GError **error);

/* ---- Accessors ----------------------------------------------------------- */

/* The intermediate certificate, to send after each leaf. Transfer none:
 * lives as long as `ca` (take a reference with X509_up_ref() to keep it). */
X509 *lw_ca_get_intermediate(const LwCa *ca);

/* The root certificate: the only certificate clients should trust. Transfer
 * none, lives as long as `ca`. */
X509 *lw_ca_get_root(const LwCa *ca);

/* Absolute or caller-relative path of root.pem, as built from `ca_dir`, for
 * llmwrap's trust files. Transfer none, lives as long as `ca`. */
const char *lw_ca_get_root_path(const LwCa *ca);

/* The normalised host set (lowercase, sorted, no duplicates), NULL-terminated.
 * Transfer none, lives as long as `ca`. */
const char *const *lw_ca_get_hosts(const LwCa *ca);

/* SHA-256 fingerprint of the root certificate as colon-separated uppercase
 * hex ("AB:CD:..."), the form `openssl x509 -fingerprint -sha256` prints, for
 * logs and `llmctl ca show`. Transfer full; NULL only if OpenSSL cannot
 * compute SHA-256. */
char *lw_ca_dup_root_fingerprint(const LwCa *ca);

/* ---- OpenSSL errors ------------------------------------------------------ */

/* The one place OpenSSL's thread-local error queue becomes a GError: sets
 * `error` (if not NULL) to LW_CA_ERROR_CRYPTO with the printf-style context
 * followed by each queued error's ERR_error_string_n() text (capped), and
 * empties the queue in every case so a stale entry cannot surface in a later,
 * unrelated SSL call. Call it right after the failing OpenSSL function, on
 * the same thread. Other collector modules that talk to OpenSSL use it too. */
void lw_ca_set_error_from_openssl(GError **error, const char *format, ...) G_GNUC_PRINTF(2, 3);
