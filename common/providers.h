/* providers.h - the provider table: names, hosts, wire formats, synthetic slots.
 *
 * Provider i (1-based) owns the synthetic address 127.X.0.i (DESIGN §1). The
 * built-in providers hold slots 1..LW_BUILTIN_PROVIDER_COUNT in the order of
 * lw_builtin_providers[]; providers a user adds in config.ini get the next
 * slots in name order. The same table reaches the preload shim through the
 * environment (lw_providers_env_hosts), so both sides agree without sharing
 * memory.
 *
 * Thread-safety: the builtin table is immutable; LwProviderTable is not
 * synchronised (the collector owns one per loaded configuration).
 */
#pragma once

#include <glib.h>
#include <netinet/in.h>

/* The request/response dialect a provider speaks. */
typedef enum {
    LW_FORMAT_OPENAI = 0, /* Chat Completions, Responses, Embeddings, Completions */
    LW_FORMAT_ANTHROPIC,  /* Messages */
    LW_FORMAT_GEMINI,     /* generateContent / streamGenerateContent */
} LwFormat;

#define LW_BUILTIN_PROVIDER_COUNT 11
#define LW_MAX_PROVIDERS 64 /* slots 1..64: the shim's static table has this capacity */
#define LW_MAX_HOST_LEN 253

#define LW_PROVIDER_ERROR (lw_provider_error_quark())
GQuark lw_provider_error_quark(void);

typedef enum {
    LW_PROVIDER_ERROR_INVALID, /* a bad name, host or URL, or a host used twice */
} LwProviderError;

typedef struct {
    const char *name;     /* "openai" */
    const char *host;     /* "api.openai.com" */
    LwFormat format;
} LwBuiltinProvider;

extern const LwBuiltinProvider lw_builtin_providers[LW_BUILTIN_PROVIDER_COUNT];

/* One configured provider. Strings are owned by the table. */
typedef struct {
    char *name;     /* config name: "openai", or a user's "[provider.NAME]" */
    char *host;     /* the name programs connect to, lowercase, no trailing dot */
    LwFormat format;
    char *upstream; /* base URL to forward to: "https://api.openai.com" or an override
                     * ("https://127.0.0.1:18443"); scheme://authority[/prefix], no trailing '/' */
    guint slot;     /* 1-based synthetic slot: 127.X.0.slot */
    gboolean is_builtin;
} LwProvider;

typedef struct _LwProviderTable LwProviderTable;

/* Parses "openai" / "anthropic" / "gemini". Returns FALSE on anything else. */
gboolean lw_format_from_string(const char *s, LwFormat *ret_format);
const char *lw_format_to_string(LwFormat format);

/* Creates a table holding the built-in providers with their real upstreams. */
LwProviderTable *lw_provider_table_new(void);
void lw_provider_table_free(LwProviderTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwProviderTable, lw_provider_table_free)

/* Overrides or adds a provider. `host`, `upstream` and `format` may be NULL
 * to keep a built-in's value; a new (non-built-in) provider needs `host`.
 * Slots are (re)assigned by lw_provider_table_seal(). Returns FALSE with
 * LW_PROVIDER_ERROR_INVALID for a bad host or URL, or a host already used
 * by another provider. */
gboolean lw_provider_table_set(LwProviderTable *table, const char *name, const char *host,
                               const char *upstream, const LwFormat *format, GError **error);

/* Assigns slots (built-ins first, then added providers by name). Call once,
 * after the last lw_provider_table_set(). */
void lw_provider_table_seal(LwProviderTable *table);

guint lw_provider_table_count(const LwProviderTable *table);

/* Provider at 0-based position i (slot i+1). Borrowed, lives as long as the table. */
const LwProvider *lw_provider_table_nth(const LwProviderTable *table, guint i);
const LwProvider *lw_provider_table_by_slot(const LwProviderTable *table, guint slot);
const LwProvider *lw_provider_table_by_name(const LwProviderTable *table, const char *name);

/* Case-insensitive, one trailing dot ignored. NULL if `host` is not a provider. */
const LwProvider *lw_provider_table_by_host(const LwProviderTable *table, const char *host);

/* Comma-separated hosts in slot order, the value of LLMWRAP_HOSTS for the shim.
 * Transfer full. */
char *lw_provider_table_env_hosts(const LwProviderTable *table);

/* NULL-terminated array of hosts in slot order (for CA name constraints).
 * Transfer container: free the array with g_free, not the strings. */
const char **lw_provider_table_hosts(const LwProviderTable *table);

/* Synthetic address of a slot under prefix 127.X: fills sin (port 0). */
void lw_provider_synthetic_addr(guint8 net_octet, guint slot, struct sockaddr_in *sin);

/* Slot of a synthetic IPv4 address (network byte order) under prefix 127.X,
 * or 0 when the address is not synthetic. */
guint lw_provider_slot_of_addr(guint8 net_octet, in_addr_t addr);
