/* upstream-trust.h - what verifies the providers' certificates: the
 * system bundle, plus the anchors of [upstream] ca_file when set.
 *
 * With a ca_file, the trust is one PEM file written to the collector's run
 * directory: the system bundle followed by the anchors, under a name new
 * for every configuration, given to libcurl as CURLOPT_CAINFO. Why a file
 * and why a new name: libcurl parses a CA file into a store once and shares
 * it between connections, keyed by the file's name (CURLOPT_CA_CACHE_TIMEOUT,
 * 24 h by default). Anchors added to a connection's store from the
 * SSL_CTX callback ended up in (or missed) that shared store, so a reload
 * that removed or changed ca_file did not take effect. A new name makes
 * libcurl build a new store, and connections verified under the old trust
 * are not reused for new requests (libcurl matches them by CA file too).
 *
 * Transfers keep a reference to the trust they started with; a file is
 * removed when its last transfer ends and a newer trust replaced it.
 *
 * Thread: the loop thread only.
 */
#pragma once

#include <glib.h>

typedef struct _LwUpstreamTrust LwUpstreamTrust;

/* The trust for `ca_file` (NULL: none, the system bundle alone: returns
 * NULL without error). Reads ca_file now: unreadable or without a PEM
 * certificate is an error naming it. `system_bundle` is libcurl's default
 * CA file (may be NULL or missing: then the anchors alone). The file goes
 * to `dir`, created if needed. Transfer full. */
LwUpstreamTrust *lw_upstream_trust_new(const char *ca_file, const char *system_bundle,
                                       const char *dir, GError **error);

LwUpstreamTrust *lw_upstream_trust_ref(LwUpstreamTrust *trust);
/* Removes the file with the last reference. NULL is ignored. */
void lw_upstream_trust_unref(LwUpstreamTrust *trust);

/* For CURLOPT_CAINFO. */
const char *lw_upstream_trust_file(const LwUpstreamTrust *trust);

/* Removes trust files left in `dir` by collectors that are gone (killed
 * before they could remove their own). */
void lw_upstream_trust_clean_stale(const char *dir);
