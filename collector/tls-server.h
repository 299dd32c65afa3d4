/* tls-server.h - TLS termination for client connections.
 *
 * One SSL_CTX serves every provider. The ClientHello callback reads SNI and
 * installs that provider's leaf (minted by ca.c at start and re-minted a week
 * before it expires). A hello without SNI, with an SNI that is not a
 * provider, or whose SNI names another provider than the synthetic address
 * the client connected to, fails the handshake. ALPN selects http/1.1
 * whenever the client offers it; a client offering only h2 gets no ALPN.
 *
 * Thread: the loop thread only.
 */
#pragma once

#include <glib.h>
#include <openssl/ssl.h>

#include "ca.h"
#include "providers.h"

typedef struct _LwTls LwTls;

/* Builds the server context and mints a leaf for every provider in
 * `providers`. `ca` and `providers` are borrowed and must outlive the
 * LwTls. Returns NULL with error set on failure. */
LwTls *lw_tls_new(LwCa *ca, const LwProviderTable *providers, GError **error);
void lw_tls_free(LwTls *tls);

/* A server-side SSL for an accepted socket. `expected` is the provider of
 * the synthetic address (SNI must match it) or NULL on a listen address
 * (any provider's SNI is accepted). Transfer full. */
SSL *lw_tls_new_ssl(LwTls *tls, int fd, const LwProvider *expected, GError **error);

/* The provider chosen by SNI, after a successful handshake; NULL before. */
const LwProvider *lw_tls_provider(SSL *ssl);
