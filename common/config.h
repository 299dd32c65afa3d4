/* config.h - config.ini: loading, validation, defaults.
 *
 * config.ini is a GLib key file. Every group and key is known: an unknown
 * key, a bad value or an unreadable file is an error that names the file,
 * the line and the key (G_KEY_FILE_ERROR domain, or LW_CONFIG_ERROR), and
 * the commands exit with status 2 on it. A missing file is not an error: the
 * defaults apply.
 *
 * Thread-safety: an LwConfig is immutable once loaded; reloading makes a new
 * one (the collector swaps pointers on SIGHUP).
 */
#pragma once

#include <glib.h>

#include "providers.h"

#define LW_CONFIG_ERROR (lw_config_error_quark())
GQuark lw_config_error_quark(void);

typedef enum {
    LW_CONFIG_ERROR_SYNTAX,
    LW_CONFIG_ERROR_UNKNOWN_GROUP,
    LW_CONFIG_ERROR_UNKNOWN_KEY,
    LW_CONFIG_ERROR_BAD_VALUE,
    LW_CONFIG_ERROR_UNREADABLE,
} LwConfigError;

/* A user's price override from a [price.MODEL] group, in micro-USD per 1M
 * tokens (config.ini says USD per 1M tokens; -1 = not given). Any subset
 * of the rates may be given: whether a model the price table lacks has
 * 'input' and 'output' is for lw_pricing_load to tell, with `line`. */
typedef struct {
    char *model;
    gint64 input, output, cached_input, cache_write, cache_write_1h;
    guint line; /* of the [price.MODEL] header in the config's file */
} LwPriceOverride;

typedef struct {
    char *path; /* the file this came from (may not exist) */

    /* [collector] */
    char **listen;          /* extra listen addresses "127.0.0.1:0", "[::1]:8080"; NULL-terminated, may be empty */
    guint8 synthetic_net;   /* X in 127.X.0.i (default 241) */
    guint16 port;           /* port of the synthetic listeners, 0 = pick one */
    guint64 max_body;       /* request body cap in bytes, 413 above (default 32 MiB) */
    guint max_head;         /* request head cap in bytes, 431 above (default 64 KiB) */
    guint max_headers;      /* field count cap, 431 above (default 128) */
    guint max_connections;  /* client connections (default 4096) */
    guint idle_timeout_ms;  /* keep-alive idle timeout (default 75 s) */
    guint header_timeout_ms; /* time to receive a request head (default 15 s) */
    guint drain_timeout_ms; /* SIGTERM: longest wait for in-flight requests (default 30 s) */
    guint release_memory_after_ms; /* quiet spell before freed heap goes back, 0 = never (250 ms) */
    char *log_level;        /* "debug" | "info" | "warning" (default "info") */
    guint64 log_max_size;   /* a daemon's log moves to .1 at this size, 0 = never (10 MiB) */

    /* [budget] */
    guint clamp_floor;      /* clamp refuses below this many output tokens (default 64) */

    /* [upstream] */
    char *ca_file;          /* extra trust anchors (PEM), NULL if none */
    char *proxy;            /* explicit upstream proxy URL, NULL = none (environment proxies are ignored) */
    guint connect_timeout_ms; /* default 10 s */
    guint first_byte_timeout_ms; /* time to the response head, 504 above (default 600 s) */
    guint stall_timeout_ms;  /* longest silence inside an answer body, cut above (default 600 s) */
    gboolean http2;          /* offer h2 upstream (default TRUE) */

    /* [provider.NAME] merged over the built-ins, sealed. */
    LwProviderTable *providers;

    /* [price.MODEL] overrides, in file order. Element type LwPriceOverride*. */
    GPtrArray *price_overrides;

    /* [guard.NAME] runaway guards, in file order. Element type LwGuardDef*
     * (budget-def.h), from_config set. */
    GPtrArray *guards;
} LwConfig;

/* Loads `path` (NULL: the default path from lw_paths). A missing file gives
 * the defaults. Returns NULL and sets error on any problem; the message
 * starts with "FILE:LINE: " and names the group and key. Transfer full. */
LwConfig *lw_config_load(const char *path, GError **error);

/* The defaults, as if from an empty file. Transfer full. */
LwConfig *lw_config_new_default(void);

void lw_config_free(LwConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwConfig, lw_config_free)

/* Parses "250ms", "15s", "2m", "1h" or a bare number of seconds. 0 is
 * accepted (callers decide whether it means anything); a positive value
 * below 1 ms is refused, as it would become 0. */
gboolean lw_config_parse_duration_ms(const char *s, guint *ret_ms);

/* Parses "65536", "64KiB", "32MiB", "1GiB" (also k/K, M, G = 1024 multiples). */
gboolean lw_config_parse_size(const char *s, guint64 *ret_bytes);

/* Parses a price in USD per 1M tokens ("0.075") exactly, into micro-USD
 * per 1M tokens (75000). Non-negative decimals with at most 6 fractional
 * digits only: a price is never silently rounded. */
gboolean lw_config_parse_micro_usd(const char *s, gint64 *ret_micro);

/* The number of PEM certificates in `pem` (`len` bytes): [upstream]
 * ca_file must hold one at least. Clears OpenSSL's error queue. */
guint lw_config_count_pem_certificates(const char *pem, gsize len);

/* Parses a listen address: "127.0.0.1:8080", "[::1]:0", "localhost:0"
 * (numeric only apart from "localhost": no name resolution). */
struct sockaddr_storage;
gboolean lw_config_parse_listen(const char *s, struct sockaddr_storage *ret_addr,
                                unsigned int *ret_len);
