/* pricing.c - the price table, its overrides, and cost arithmetic.
 *
 * The data file is parsed with yajl's callback API into a small tree that
 * keeps every number as the text it was written as: prices become exact
 * micro-USD through lw_config_parse_micro_usd and never pass through a
 * double. Each node remembers its line so an error points at the entry the
 * user has to fix.
 */
#include "pricing.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_parse.h>

#ifndef LW_DATA_DIR
#error "LW_DATA_DIR (the installed data directory) must be defined by the build"
#endif

#define PRICES_FILE "prices.json"
#define UNIT        "USD per 1M tokens"

/* A price table is a few hundred KiB at most; the cap keeps a wrong path
 * (a log, a disk image) from being slurped into memory. */
#define MAX_FILE_BYTES (16 * 1024 * 1024)
/* The format nests five levels deep; anything deeper is not a price table,
 * and the bound keeps the tree's recursive walks shallow. */
#define MAX_DEPTH 16
#define MAX_TIERS 16
/* Token limits and tier thresholds beyond this are typos. */
#define MAX_TOKEN_COUNT G_GINT64_CONSTANT(1000000000000)

G_DEFINE_QUARK(lw-pricing-error-quark, lw_pricing_error)

/* ---------------------------------------------------------------------- */
/* JSON tree */

typedef enum {
    NODE_NULL,
    NODE_BOOL,
    NODE_NUMBER,
    NODE_STRING,
    NODE_OBJECT,
    NODE_ARRAY,
} NodeType;

typedef struct Node Node;
struct Node {
    NodeType type;
    guint line;
    char *key;        /* member name when inside an object */
    char *text;       /* number as written, or string value */
    GPtrArray *items; /* Node*, object members or array elements */
};

static void node_free(gpointer p)
{
    Node *n = p;
    if (n == NULL)
        return;
    g_free(n->key);
    g_free(n->text);
    if (n->items != NULL)
        g_ptr_array_unref(n->items);
    g_free(n);
}

typedef struct {
    yajl_handle yajl;
    const char *buf;
    gsize line_scanned; /* bytes of buf already counted into `line` */
    guint line;
    Node *root;
    GPtrArray *stack; /* open containers, Node* (borrowed) */
    char *pending_key;
    char *error; /* why a callback stopped the parse */
} TreeBuilder;

/* Line (1-based) of the byte just before `offset`; offsets only grow during
 * one parse, so counting is linear overall. */
static guint line_at(TreeBuilder *b, gsize offset)
{
    if (offset > 0)
        offset--;
    for (; b->line_scanned < offset; b->line_scanned++)
        if (b->buf[b->line_scanned] == '\n')
            b->line++;
    return b->line;
}

static int add_node(TreeBuilder *b, NodeType type, const char *text, gsize len)
{
    Node *n = g_new0(Node, 1);
    n->type = type;
    n->line = line_at(b, yajl_get_bytes_consumed(b->yajl));
    if (text != NULL)
        n->text = g_strndup(text, len);
    if (type == NODE_OBJECT || type == NODE_ARRAY)
        n->items = g_ptr_array_new_with_free_func(node_free);

    if (b->stack->len == 0) {
        b->root = n;
    } else {
        Node *parent = g_ptr_array_index(b->stack, b->stack->len - 1);
        if (parent->type == NODE_OBJECT)
            n->key = g_steal_pointer(&b->pending_key);
        g_ptr_array_add(parent->items, n);
    }
    if (type == NODE_OBJECT || type == NODE_ARRAY) {
        if (b->stack->len >= MAX_DEPTH) {
            b->error = g_strdup_printf("nested more than %d levels deep", MAX_DEPTH);
            return 0;
        }
        g_ptr_array_add(b->stack, n);
    }
    return 1;
}

static int on_null(void *ctx)
{
    return add_node(ctx, NODE_NULL, NULL, 0);
}

static int on_boolean(void *ctx, int value)
{
    return add_node(ctx, NODE_BOOL, value ? "true" : "false", value ? 4 : 5);
}

static int on_number(void *ctx, const char *s, size_t len)
{
    return add_node(ctx, NODE_NUMBER, s, len);
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
    if (memchr(s, '\0', len) != NULL) {
        ((TreeBuilder *)ctx)->error = g_strdup("a string contains a NUL character");
        return 0;
    }
    return add_node(ctx, NODE_STRING, (const char *)s, len);
}

static int on_start_map(void *ctx)
{
    return add_node(ctx, NODE_OBJECT, NULL, 0);
}

static int on_map_key(void *ctx, const unsigned char *s, size_t len)
{
    TreeBuilder *b = ctx;
    if (memchr(s, '\0', len) != NULL) {
        b->error = g_strdup("a key contains a NUL character");
        return 0;
    }
    g_free(b->pending_key);
    b->pending_key = g_strndup((const char *)s, len);
    return 1;
}

static int on_end(void *ctx)
{
    TreeBuilder *b = ctx;
    g_ptr_array_set_size(b->stack, b->stack->len - 1);
    return 1;
}

static int on_start_array(void *ctx)
{
    return add_node(ctx, NODE_ARRAY, NULL, 0);
}

static const yajl_callbacks tree_callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end,
};

/* The one place yajl's status becomes a GError. */
static Node *parse_tree(const char *path, const char *buf, gsize len, GError **error)
{
    TreeBuilder b = {.buf = buf, .line = 1, .stack = g_ptr_array_new()};
    b.yajl = yajl_alloc(&tree_callbacks, NULL, &b);
    yajl_status st = yajl_parse(b.yajl, (const unsigned char *)buf, len);
    /* Where it stopped; a document that ends too early stops at the end. */
    gsize stop = yajl_get_bytes_consumed(b.yajl);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(b.yajl);
        stop = len;
    }

    Node *root = NULL;
    if (st == yajl_status_ok) {
        root = g_steal_pointer(&b.root);
    } else {
        guint line = line_at(&b, stop);
        if (b.error != NULL) {
            g_set_error(error, LW_PRICING_ERROR, LW_PRICING_ERROR_PARSE, "%s:%u: %s", path, line,
                        b.error);
        } else {
            unsigned char *msg = yajl_get_error(b.yajl, 0, (const unsigned char *)buf, len);
            g_set_error(error, LW_PRICING_ERROR, LW_PRICING_ERROR_PARSE, "%s:%u: not JSON: %s",
                        path, line, g_strstrip((char *)msg));
            yajl_free_error(b.yajl, msg);
        }
    }
    yajl_free(b.yajl);
    node_free(b.root);
    g_free(b.pending_key);
    g_free(b.error);
    g_ptr_array_unref(b.stack);
    return root;
}

static const char *node_type_name(NodeType t)
{
    static const char *const names[] = {"null",     "a boolean", "a number",
                                        "a string", "an object", "an array"};
    return names[t];
}

/* ---------------------------------------------------------------------- */
/* The table */

typedef struct {
    LwPrice price; /* provider, model: interned in LwPricing.strings */
    LwPriceTier *tiers;
} Entry;

struct _LwPricing {
    gatomicrefcount refs;
    char *version;
    GStringChunk *strings;
    GPtrArray *entries; /* Entry*, owned; one per priced (provider, model) */
    /* provider -> (model or listed snapshot -> Entry*, borrowed) */
    GHashTable *providers;
};

static void entry_free(gpointer p)
{
    Entry *e = p;
    g_free(e->tiers);
    g_free(e);
}

static const LwRates no_rates = {-1, -1, -1, -1, -1};

LwPricing *lw_pricing_ref(LwPricing *pricing)
{
    g_return_val_if_fail(pricing != NULL, NULL);
    g_atomic_ref_count_inc(&pricing->refs);
    return pricing;
}

void lw_pricing_free(LwPricing *pricing)
{
    if (pricing == NULL || !g_atomic_ref_count_dec(&pricing->refs))
        return;
    g_free(pricing->version);
    g_hash_table_unref(pricing->providers);
    g_ptr_array_unref(pricing->entries);
    g_string_chunk_free(pricing->strings);
    g_free(pricing);
}

static LwPricing *pricing_new(void)
{
    LwPricing *p = g_new0(LwPricing, 1);
    g_atomic_ref_count_init(&p->refs);
    p->strings = g_string_chunk_new(4096);
    p->entries = g_ptr_array_new_with_free_func(entry_free);
    p->providers =
        g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)g_hash_table_unref);
    return p;
}

static GHashTable *provider_models(LwPricing *p, const char *provider, gboolean create)
{
    GHashTable *models = g_hash_table_lookup(p->providers, provider);
    if (models == NULL && create) {
        models = g_hash_table_new(g_str_hash, g_str_equal);
        g_hash_table_insert(p->providers, g_string_chunk_insert_const(p->strings, provider),
                            models);
    }
    return models;
}

static Entry *entry_new(LwPricing *p, const char *provider, const char *model)
{
    Entry *e = g_new0(Entry, 1);
    e->price.provider = g_string_chunk_insert_const(p->strings, provider);
    e->price.model = g_string_chunk_insert_const(p->strings, model);
    e->price.rates = no_rates;
    e->price.max_input_tokens = -1;
    e->price.max_output_tokens = -1;
    g_ptr_array_add(p->entries, e);
    g_hash_table_insert(provider_models(p, provider, TRUE), (char *)e->price.model, e);
    return e;
}

/* ---------------------------------------------------------------------- */
/* Loading */

typedef struct {
    const char *path;
    const char *provider; /* where we are, for messages; NULL at top level */
    const char *model;
} Where;

G_GNUC_PRINTF(4, 5)
static void fail(GError **error, const Where *w, const Node *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (w->model != NULL)
        g_set_error(error, LW_PRICING_ERROR, LW_PRICING_ERROR_PARSE, "%s:%u: %s model '%s': %s",
                    w->path, n->line, w->provider, w->model, what);
    else if (w->provider != NULL)
        g_set_error(error, LW_PRICING_ERROR, LW_PRICING_ERROR_PARSE, "%s:%u: provider '%s': %s",
                    w->path, n->line, w->provider, what);
    else
        g_set_error(error, LW_PRICING_ERROR, LW_PRICING_ERROR_PARSE, "%s:%u: %s", w->path, n->line,
                    what);
}

static gboolean expect_type(const Where *w, const Node *n, NodeType type, GError **error)
{
    if (n->type == type)
        return TRUE;
    if (n->key != NULL)
        fail(error, w, n, "key '%s' must be %s, not %s", n->key, node_type_name(type),
             node_type_name(n->type));
    else
        fail(error, w, n, "must be %s, not %s", node_type_name(type), node_type_name(n->type));
    return FALSE;
}

/* A misspelt key would silently drop a rate, so every key is known and
 * appears once. */
static gboolean check_keys(const Where *w, const Node *obj, const char *const *known,
                           const char *what, GError **error)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < obj->items->len; i++) {
        const Node *m = g_ptr_array_index(obj->items, i);
        if (known != NULL && !g_strv_contains(known, m->key)) {
            g_autofree char *list = g_strjoinv(", ", (char **)known);
            fail(error, w, m, "unknown key '%s' in %s (known: %s)", m->key, what, list);
            return FALSE;
        }
        if (!g_hash_table_add(seen, m->key)) {
            fail(error, w, m, "key '%s' appears twice", m->key);
            return FALSE;
        }
    }
    return TRUE;
}

static const Node *member(const Node *obj, const char *key)
{
    for (guint i = 0; i < obj->items->len; i++) {
        const Node *m = g_ptr_array_index(obj->items, i);
        if (strcmp(m->key, key) == 0)
            return m;
    }
    return NULL;
}

static gboolean parse_price(const Where *w, const Node *n, gint64 *ret, GError **error)
{
    if (!expect_type(w, n, NODE_NUMBER, error))
        return FALSE;
    const char *t = n->text;
    if (t[0] == '-') {
        fail(error, w, n, "key '%s': price %s is negative", n->key, t);
        return FALSE;
    }
    if (strpbrk(t, "eE") != NULL) {
        fail(error, w, n, "key '%s': write price %s as a plain decimal (no exponent)", n->key, t);
        return FALSE;
    }
    if (!lw_config_parse_micro_usd(t, ret)) {
        const char *dot = strchr(t, '.');
        if (dot != NULL && strlen(dot + 1) > 6)
            fail(error, w, n,
                 "key '%s': price %s has more than 6 decimals (a price is never rounded)", n->key,
                 t);
        else
            fail(error, w, n, "key '%s': price %s is too large", n->key, t);
        return FALSE;
    }
    return TRUE;
}

static gboolean parse_count(const Where *w, const Node *n, gint64 *ret, GError **error)
{
    if (!expect_type(w, n, NODE_NUMBER, error))
        return FALSE;
    guint64 v = 0;
    if (!g_ascii_string_to_unsigned(n->text, 10, 1, (guint64)MAX_TOKEN_COUNT, &v, NULL)) {
        fail(error, w, n,
             "key '%s': %s is not a whole number of tokens between 1 and %" G_GINT64_FORMAT, n->key,
             n->text, MAX_TOKEN_COUNT);
        return FALSE;
    }
    *ret = (gint64)v;
    return TRUE;
}

static const char *const rate_keys[] = {"input", "output", "cached_input", "cache_write",
                                        "cache_write_1h"};

/* The rate named rate_keys[i]. */
static gint64 *rate_field(LwRates *r, guint i)
{
    switch (i) {
    case 0:
        return &r->input;
    case 1:
        return &r->output;
    case 2:
        return &r->cached_input;
    case 3:
        return &r->cache_write;
    default:
        return &r->cache_write_1h;
    }
}

/* Reads the rate keys of `obj` into `r` (absent ones stay -1); input and
 * output are required. */
static gboolean parse_rates(const Where *w, const Node *obj, LwRates *r, GError **error)
{
    *r = no_rates;
    for (guint i = 0; i < G_N_ELEMENTS(rate_keys); i++) {
        const Node *n = member(obj, rate_keys[i]);
        if (n != NULL && !parse_price(w, n, rate_field(r, i), error))
            return FALSE;
        if (n == NULL && i < 2) {
            fail(error, w, obj, "key '%s' is missing (USD per 1M tokens)", rate_keys[i]);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean parse_tiers(const Where *w, const Node *arr, Entry *e, GError **error)
{
    static const char *const tier_keys[] = {
        "above_input_tokens", "input",          "output", "cached_input",
        "cache_write",        "cache_write_1h", NULL};
    if (!expect_type(w, arr, NODE_ARRAY, error))
        return FALSE;
    if (arr->items->len > MAX_TIERS) {
        fail(error, w, arr, "key 'tiers': more than %d tiers", MAX_TIERS);
        return FALSE;
    }
    e->tiers = g_new0(LwPriceTier, MAX(arr->items->len, 1));
    for (guint i = 0; i < arr->items->len; i++) {
        const Node *t = g_ptr_array_index(arr->items, i);
        if (t->type != NODE_OBJECT) {
            fail(error, w, t, "key 'tiers': tier %u must be an object, not %s", i + 1,
                 node_type_name(t->type));
            return FALSE;
        }
        if (!check_keys(w, t, tier_keys, "a tier", error))
            return FALSE;
        LwPriceTier *tier = &e->tiers[i];
        const Node *above = member(t, "above_input_tokens");
        if (above == NULL) {
            fail(error, w, t, "key 'tiers': tier %u has no 'above_input_tokens'", i + 1);
            return FALSE;
        }
        if (!parse_count(w, above, &tier->above_input_tokens, error) ||
            !parse_rates(w, t, &tier->rates, error))
            return FALSE;
        if (i > 0 && tier->above_input_tokens <= e->tiers[i - 1].above_input_tokens) {
            fail(error, w, above,
                 "key 'tiers': thresholds must ascend (%" G_GINT64_FORMAT " after %" G_GINT64_FORMAT
                 ")",
                 tier->above_input_tokens, e->tiers[i - 1].above_input_tokens);
            return FALSE;
        }
    }
    e->price.tiers = e->tiers;
    e->price.n_tiers = arr->items->len;
    return TRUE;
}

static gboolean parse_model(LwPricing *p, const Where *w, const Node *obj, GError **error)
{
    static const char *const model_keys[] = {"input",
                                             "output",
                                             "cached_input",
                                             "cache_write",
                                             "cache_write_1h",
                                             "max_input_tokens",
                                             "max_output_tokens",
                                             "tiers",
                                             "snapshots",
                                             "note",
                                             NULL};
    if (w->model[0] == '\0') {
        fail(error, w, obj, "a model name is empty");
        return FALSE;
    }
    if (obj->type != NODE_OBJECT) {
        fail(error, w, obj, "must be an object of prices, not %s", node_type_name(obj->type));
        return FALSE;
    }
    if (!check_keys(w, obj, model_keys, "a model", error))
        return FALSE;
    Entry *e = entry_new(p, w->provider, w->model);
    if (!parse_rates(w, obj, &e->price.rates, error))
        return FALSE;
    const Node *n;
    if ((n = member(obj, "max_input_tokens")) != NULL &&
        !parse_count(w, n, &e->price.max_input_tokens, error))
        return FALSE;
    if ((n = member(obj, "max_output_tokens")) != NULL &&
        !parse_count(w, n, &e->price.max_output_tokens, error))
        return FALSE;
    if ((n = member(obj, "tiers")) != NULL && !parse_tiers(w, n, e, error))
        return FALSE;
    if ((n = member(obj, "note")) != NULL && !expect_type(w, n, NODE_STRING, error))
        return FALSE;
    if ((n = member(obj, "snapshots")) != NULL) {
        if (!expect_type(w, n, NODE_ARRAY, error))
            return FALSE;
        for (guint i = 0; i < n->items->len; i++) {
            const Node *s = g_ptr_array_index(n->items, i);
            if (s->type != NODE_STRING || s->text[0] == '\0') {
                fail(error, w, s, "key 'snapshots': entry %u must be a non-empty string", i + 1);
                return FALSE;
            }
        }
    }
    return TRUE;
}

/* Snapshots go in after every model, so a snapshot that names a separately
 * priced model (or another family's snapshot) is caught whatever the order. */
static gboolean add_snapshots(LwPricing *p, const Where *pw, const Node *models, GError **error)
{
    for (guint i = 0; i < models->items->len; i++) {
        const Node *m = g_ptr_array_index(models->items, i);
        const Node *snaps = member(m, "snapshots");
        if (snaps == NULL)
            continue;
        Where w = {pw->path, pw->provider, m->key};
        GHashTable *table = provider_models(p, pw->provider, FALSE);
        Entry *family = g_hash_table_lookup(table, m->key);
        for (guint j = 0; j < snaps->items->len; j++) {
            const Node *s = g_ptr_array_index(snaps->items, j);
            g_autofree char *name = g_strconcat(m->key, "-", s->text, NULL);
            Entry *other = g_hash_table_lookup(table, name);
            if (other != NULL) {
                if (strcmp(other->price.model, name) == 0)
                    fail(error, &w, s,
                         "snapshot '%s' is also priced as a model of its own: list it in one "
                         "place only",
                         name);
                else
                    fail(error, &w, s, "snapshot '%s' is already listed under '%s'", name,
                         other->price.model);
                return FALSE;
            }
            g_hash_table_insert(table, g_string_chunk_insert_const(p->strings, name), family);
        }
    }
    return TRUE;
}

static gboolean build_table(LwPricing *p, const char *path, const Node *root, GError **error)
{
    static const char *const top_keys[] = {"version", "source", "unit", "providers", NULL};
    Where w = {path, NULL, NULL};
    if (!expect_type(&w, root, NODE_OBJECT, error) ||
        !check_keys(&w, root, top_keys, "the top level", error))
        return FALSE;

    const Node *version = member(root, "version");
    const Node *providers = member(root, "providers");
    const Node *n;
    if (version == NULL || providers == NULL) {
        fail(error, &w, root, "key '%s' is missing", version == NULL ? "version" : "providers");
        return FALSE;
    }
    if (!expect_type(&w, version, NODE_STRING, error) ||
        !expect_type(&w, providers, NODE_OBJECT, error) ||
        !check_keys(&w, providers, NULL, "providers", error))
        return FALSE;
    if ((n = member(root, "source")) != NULL && !expect_type(&w, n, NODE_STRING, error))
        return FALSE;
    if ((n = member(root, "unit")) != NULL) {
        if (!expect_type(&w, n, NODE_STRING, error))
            return FALSE;
        if (strcmp(n->text, UNIT) != 0) {
            fail(error, &w, n, "key 'unit' is '%s'; prices must be in %s", n->text, UNIT);
            return FALSE;
        }
    }
    if (version->text[0] == '\0') {
        fail(error, &w, version, "key 'version' is empty");
        return FALSE;
    }
    p->version = g_strdup(version->text);

    for (guint i = 0; i < providers->items->len; i++) {
        const Node *prov = g_ptr_array_index(providers->items, i);
        Where pw = {path, prov->key, NULL};
        if (prov->key[0] == '\0') {
            fail(error, &w, prov, "a provider name is empty");
            return FALSE;
        }
        if (prov->type != NODE_OBJECT) {
            fail(error, &pw, prov, "must be an object of models, not %s",
                 node_type_name(prov->type));
            return FALSE;
        }
        if (!check_keys(&pw, prov, NULL, "models", error))
            return FALSE;
        provider_models(p, prov->key, TRUE);
        for (guint j = 0; j < prov->items->len; j++) {
            const Node *model = g_ptr_array_index(prov->items, j);
            Where mw = {path, prov->key, model->key};
            if (!parse_model(p, &mw, model, error))
                return FALSE;
        }
        if (!add_snapshots(p, &pw, prov, error))
            return FALSE;
    }
    return TRUE;
}

/* Reads at most MAX_FILE_BYTES. A missing or unreadable file is a
 * G_FILE_ERROR naming the path. */
static char *read_capped(const char *path, gsize *ret_len, GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "%s: cannot open: %s", path,
                    g_strerror(e));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        g_set_error(error, LW_PRICING_ERROR, LW_PRICING_ERROR_PARSE, "%s: not a regular file",
                    path);
        close(fd);
        return NULL;
    }
    if (st.st_size > MAX_FILE_BYTES) {
        g_set_error(error, LW_PRICING_ERROR, LW_PRICING_ERROR_PARSE,
                    "%s: %lld bytes is more than a price table may have (16 MiB)", path,
                    (long long)st.st_size);
        close(fd);
        return NULL;
    }
    /* The file may grow after fstat: read one byte past the cap to see it. */
    gsize cap = (gsize)st.st_size + 1, len = 0;
    char *buf = g_malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            if (cap > MAX_FILE_BYTES)
                break;
            cap = MIN(cap * 2, (gsize)MAX_FILE_BYTES + 1);
            buf = g_realloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "%s: cannot read: %s",
                        path, g_strerror(e));
            close(fd);
            g_free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        len += (gsize)r;
    }
    close(fd);
    if (len > MAX_FILE_BYTES) {
        g_set_error(error, LW_PRICING_ERROR, LW_PRICING_ERROR_PARSE,
                    "%s: more than a price table may have (16 MiB)", path);
        g_free(buf);
        return NULL;
    }
    buf[len] = '\0';
    *ret_len = len;
    return buf;
}

/* $LLMWRAP_DATA_DIR is an explicit choice and never falls through; the
 * source tree's copy lets tests and uninstalled builds run. */
static char *default_data_file(void)
{
    const char *env = g_getenv("LLMWRAP_DATA_DIR");
    if (env != NULL && env[0] != '\0')
        return g_build_filename(env, PRICES_FILE, NULL);
    char *installed = g_build_filename(LW_DATA_DIR, PRICES_FILE, NULL);
#ifdef LW_SOURCE_DATA_DIR
    if (!g_file_test(installed, G_FILE_TEST_EXISTS)) {
        g_free(installed);
        return g_build_filename(LW_SOURCE_DATA_DIR, PRICES_FILE, NULL);
    }
#endif
    return installed;
}

/* ---------------------------------------------------------------------- */
/* Overrides */

/* config.ini cannot express tiers, so an overridden model loses its table
 * tiers: the user's rates then hold for every request size, rather than
 * the table's (possibly stale) long-context rates taking over above the
 * threshold. */
static void apply_override(Entry *e, const LwPriceOverride *o)
{
    const gint64 given[] = {o->input, o->output, o->cached_input, o->cache_write,
                            o->cache_write_1h};
    for (guint i = 0; i < G_N_ELEMENTS(given); i++)
        if (given[i] >= 0)
            *rate_field(&e->price.rates, i) = given[i];
    g_clear_pointer(&e->tiers, g_free);
    e->price.tiers = NULL;
    e->price.n_tiers = 0;
    e->price.overridden = TRUE;
}

static gboolean apply_overrides(LwPricing *p, const LwConfig *config, GError **error)
{
    if (config == NULL || config->price_overrides == NULL)
        return TRUE;
    /* Providers added in config.ini (an OpenAI-compatible gateway, say) have
     * no prices in the table: there a [price.MODEL] with both rates prices
     * MODEL even when the table has it under another provider, since
     * nothing else could (and a gateway's price is not assumed to be the
     * original's). */
    g_autoptr(GPtrArray) added = g_ptr_array_new();
    if (config->providers != NULL)
        for (guint j = 0; j < lw_provider_table_count(config->providers); j++) {
            const char *name = lw_provider_table_nth(config->providers, j)->name;
            if (provider_models(p, name, FALSE) == NULL)
                g_ptr_array_add(added, (char *)name);
        }
    for (guint i = 0; i < config->price_overrides->len; i++) {
        const LwPriceOverride *o = g_ptr_array_index(config->price_overrides, i);
        gboolean found = FALSE;
        GHashTableIter it;
        gpointer key, value;
        /* Collect first: splitting a snapshot off inserts into the table. */
        g_autoptr(GPtrArray) hits = g_ptr_array_new();
        g_hash_table_iter_init(&it, p->providers);
        while (g_hash_table_iter_next(&it, &key, &value))
            if (g_hash_table_lookup(value, o->model) != NULL)
                g_ptr_array_add(hits, key);
        for (guint j = 0; j < hits->len; j++) {
            const char *provider = g_ptr_array_index(hits, j);
            Entry *e = g_hash_table_lookup(provider_models(p, provider, FALSE), o->model);
            if (strcmp(e->price.model, o->model) != 0) {
                /* A listed snapshot gets its own entry, so the family and its
                 * other snapshots keep the table's rates. */
                Entry *family = e;
                e = entry_new(p, provider, o->model);
                e->price.rates = family->price.rates;
                e->price.max_input_tokens = family->price.max_input_tokens;
                e->price.max_output_tokens = family->price.max_output_tokens;
            }
            apply_override(e, o);
            found = TRUE;
        }
        if (found) {
            if (o->input >= 0 && o->output >= 0)
                for (guint j = 0; j < added->len; j++) {
                    GHashTable *models = provider_models(p, g_ptr_array_index(added, j), TRUE);
                    if (g_hash_table_lookup(models, o->model) == NULL)
                        apply_override(entry_new(p, g_ptr_array_index(added, j), o->model), o);
                }
            continue;
        }

        /* A model no provider has: priced wherever it may be served. A
         * mistake in config.ini, so told as config.c tells its own. */
        if (o->input < 0 || o->output < 0) {
            const char *missing = o->input >= 0    ? "key 'output'"
                                  : o->output >= 0 ? "key 'input'"
                                                   : "keys 'input' and 'output'";
            g_set_error(error, LW_CONFIG_ERROR, LW_CONFIG_ERROR_BAD_VALUE,
                        "%s:%u: %s missing in [price.%s]: the price table has no model '%s', "
                        "so the override needs both 'input' and 'output' (USD per 1M tokens)",
                        config->path != NULL ? config->path : "config.ini", o->line, missing,
                        o->model, o->model);
            return FALSE;
        }
        g_autoptr(GPtrArray) names = g_ptr_array_new();
        g_hash_table_iter_init(&it, p->providers);
        while (g_hash_table_iter_next(&it, &key, NULL))
            g_ptr_array_add(names, key);
        if (config->providers != NULL)
            for (guint j = 0; j < lw_provider_table_count(config->providers); j++)
                g_ptr_array_add(names, lw_provider_table_nth(config->providers, j)->name);
        for (guint j = 0; j < names->len; j++) {
            const char *provider = g_ptr_array_index(names, j);
            GHashTable *models = provider_models(p, provider, TRUE);
            if (g_hash_table_lookup(models, o->model) == NULL)
                apply_override(entry_new(p, provider, o->model), o);
        }
    }
    return TRUE;
}

/* ---------------------------------------------------------------------- */
/* Public */

LwPricing *lw_pricing_load(const char *data_file, const LwConfig *config, GError **error)
{
    g_autofree char *default_path = data_file == NULL ? default_data_file() : NULL;
    const char *path = data_file != NULL ? data_file : default_path;

    gsize len = 0;
    g_autofree char *text = read_capped(path, &len, error);
    if (text == NULL)
        return NULL;
    Node *root = parse_tree(path, text, len, error);
    if (root == NULL)
        return NULL;
    g_autoptr(LwPricing) p = pricing_new();
    gboolean ok = build_table(p, path, root, error);
    node_free(root);
    if (!ok || !apply_overrides(p, config, error))
        return NULL;
    return g_steal_pointer(&p);
}

const char *lw_pricing_version(const LwPricing *pricing)
{
    g_return_val_if_fail(pricing != NULL, NULL);
    return pricing->version;
}

char *lw_pricing_note(const LwPrice *price, const char *provider, const char *served,
                      const char *model)
{
    if (price == NULL)
        return g_strdup_printf(LW_PRICING_NOTE_PREFIX "%s model %s", provider,
                               model != NULL ? model : "(none)");
    if (served != NULL && model != NULL && strcmp(model, served) != 0)
        return g_strdup_printf(LW_PRICING_NOTE_PREFIX "%s: priced as %s", served, model);
    return NULL;
}

const LwPrice *lw_pricing_lookup_answer(const LwPricing *pricing, const char *provider,
                                        const char *served, const char *sent,
                                        const char **ret_model)
{
    const char *names[] = {served, sent};
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        const LwPrice *p =
            names[i] != NULL ? lw_pricing_lookup(pricing, provider, names[i]) : NULL;
        if (p != NULL) {
            if (ret_model != NULL)
                *ret_model = names[i];
            return p;
        }
    }
    if (ret_model != NULL)
        *ret_model = served != NULL ? served : sent;
    return NULL;
}

const LwPrice *lw_pricing_lookup(const LwPricing *pricing, const char *provider, const char *model)
{
    g_return_val_if_fail(pricing != NULL, NULL);
    if (provider == NULL || model == NULL)
        return NULL;
    GHashTable *models = g_hash_table_lookup(pricing->providers, provider);
    const Entry *e = models != NULL ? g_hash_table_lookup(models, model) : NULL;
    return e != NULL ? &e->price : NULL;
}

/* The highest tier whose threshold input_tokens exceeds prices the whole
 * request; a rate that tier leaves out is the base rate. Unlisted cache
 * rates fall back to the input rate, except that 1-hour writes first use
 * cache_write, the only write rate some providers list. */
LwRates lw_pricing_rates(const LwPrice *price, gint64 input_tokens)
{
    const LwPriceTier *tier = NULL;
    for (guint i = 0; i < price->n_tiers; i++)
        if (input_tokens > price->tiers[i].above_input_tokens)
            tier = &price->tiers[i];
    LwRates r = price->rates;
    if (tier != NULL) {
        LwRates t = tier->rates;
        for (guint k = 0; k < G_N_ELEMENTS(rate_keys); k++)
            if (*rate_field(&t, k) >= 0)
                *rate_field(&r, k) = *rate_field(&t, k);
    }
    r.input = MAX(r.input, 0);
    r.output = MAX(r.output, 0);
    if (r.cached_input < 0)
        r.cached_input = r.input;
    if (r.cache_write < 0)
        r.cache_write = r.input;
    if (r.cache_write_1h < 0)
        r.cache_write_1h = r.cache_write;
    return r;
}

gint64 lw_pricing_cost(const LwPrice *price, const LwTokens *tokens)
{
    g_return_val_if_fail(price != NULL && tokens != NULL, 0);
    LwRates r = lw_pricing_rates(price, tokens->input_tokens);

    /* The cache counts are subsets of input_tokens (and 1-hour writes of
     * all writes). If a report breaks that, every detail is still billed in
     * full (a cache read is never free); only the uncached remainder
     * shrinks, to no less than zero. */
    gint64 cached = MAX(tokens->cached_input_tokens, 0);
    gint64 w1 = MAX(tokens->cache_write_1h_tokens, 0);
    gint64 writes = MAX(tokens->cache_write_tokens, w1);
    gint64 w5 = writes - w1;
    gint64 uncached = MAX(tokens->input_tokens, 0);
    uncached = MAX(uncached - cached, 0);
    uncached = MAX(uncached - writes, 0);

    /* reasoning_tokens is inside output_tokens, so it is not added. */
    gint64 cost = lw_pusd_mul(uncached, r.input);
    cost = lw_pusd_add(cost, lw_pusd_mul(cached, r.cached_input));
    cost = lw_pusd_add(cost, lw_pusd_mul(w5, r.cache_write));
    cost = lw_pusd_add(cost, lw_pusd_mul(w1, r.cache_write_1h));
    cost = lw_pusd_add(cost, lw_pusd_mul(MAX(tokens->output_tokens, 0), r.output));
    return cost;
}

static gint compare_prices(gconstpointer a, gconstpointer b)
{
    const LwPrice *pa = *(const LwPrice *const *)a;
    const LwPrice *pb = *(const LwPrice *const *)b;
    int c = strcmp(pa->provider, pb->provider);
    return c != 0 ? c : strcmp(pa->model, pb->model);
}

GPtrArray *lw_pricing_list(const LwPricing *pricing)
{
    g_return_val_if_fail(pricing != NULL, NULL);
    GPtrArray *list = g_ptr_array_sized_new(pricing->entries->len);
    for (guint i = 0; i < pricing->entries->len; i++) {
        const Entry *e = g_ptr_array_index(pricing->entries, i);
        g_ptr_array_add(list, (gpointer)&e->price);
    }
    g_ptr_array_sort(list, compare_prices);
    return list;
}
