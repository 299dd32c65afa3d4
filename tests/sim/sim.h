/* sim.h - the simulated LLM provider (llm-sim): shared types.
 *
 * The program is split by concern:
 *   llm-sim.c      event loop, TLS connections, HTTP/1 framing, faults, the /_sim endpoints
 *   sim-tls.c      test CA and server certificate, SSL_CTX
 *   sim-request.c  endpoint routing, request-body scan, [[sim ...]] directives
 *   sim-render.c   response bodies and stream events per API and flavour
 * Everything runs on the one event-loop thread.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>
#include <openssl/ssl.h>

#include "http1.h"

/* Caps; every one is exercised by the sim's own tests or documented in README.md. */
#define SIM_MODEL_MAX      200 /* longer model names are truncated */
#define SIM_TOOL_NAME_MAX  64
#define SIM_MAX_WORDS      100000     /* words=/out= above this are clamped */
#define SIM_MAX_DELAY_MS   600000     /* delay_ms=/chunk_delay_ms= clamp */
#define SIM_MAX_INPUTS     2048       /* embeddings inputs */
#define SIM_MAX_DIMENSIONS 4096       /* embeddings dimensions */
#define SIM_MAX_SEARCHES   1000       /* searches= clamp */
#define SIM_GEO_MAX        15         /* geo= longest value */
#define SIM_CREATED        1760000000 /* fixed "created" timestamp: output is deterministic */

/* Which API an endpoint speaks (the shape of request and response). */
typedef enum {
    SIM_API_NONE = 0,
    SIM_API_CHAT,            /* .../chat/completions */
    SIM_API_COMPLETIONS,     /* .../completions (legacy text completions) */
    SIM_API_RESPONSES,       /* .../responses */
    SIM_API_RESPONSES_COUNT, /* .../responses/input_tokens */
    SIM_API_EMBEDDINGS,      /* .../embeddings */
    SIM_API_MESSAGES,        /* .../messages (Anthropic) */
    SIM_API_MESSAGES_COUNT,  /* .../messages/count_tokens */
    SIM_API_GEMINI_GENERATE, /* .../models/M:generateContent */
    SIM_API_GEMINI_STREAM,   /* .../models/M:streamGenerateContent[?alt=sse] */
    SIM_API_GEMINI_COUNT,    /* .../models/M:countTokens */
} SimApi;

/* Provider quirks for OpenAI-shaped APIs; Anthropic and Gemini endpoints have
 * their own flavour. Order matches sim_flavor_name(). */
typedef enum {
    SIM_FLAVOR_OPENAI = 0,
    SIM_FLAVOR_DEEPSEEK,
    SIM_FLAVOR_XAI,
    SIM_FLAVOR_OPENROUTER,
    SIM_FLAVOR_GROQ,
    SIM_FLAVOR_MISTRAL,
    SIM_FLAVOR_TOGETHER,
    SIM_FLAVOR_FIREWORKS,
    SIM_FLAVOR_PERPLEXITY,
    SIM_FLAVOR_GEMINI_OPENAI,
    SIM_FLAVOR_ANTHROPIC,
    SIM_FLAVOR_GEMINI,
    SIM_FLAVOR_COUNT,
} SimFlavor;

typedef enum {
    SIM_FAULT_NONE = 0,
    SIM_FAULT_503,
    SIM_FAULT_429,
    SIM_FAULT_DROP,
    SIM_FAULT_RESET,
    SIM_FAULT_GARBAGE,
    SIM_FAULT_STALL,
} SimFault;

/* Parsed [[sim ...]] / x-sim directives. Integers are -1 when not given. */
typedef struct {
    int64_t in, out, cached, cache_write, cache_write_1h, reasoning, ticks;
    int64_t words, delay_ms, chunk_delay_ms, status, retry_after, drop_after;
    int64_t keepalive, lead_ws;
    int64_t searches; /* web searches the answer reports, in each API's own way */
    bool gzip, tools, snapshot;
    int flavor; /* SimFlavor, or -1 */
    SimFault fault;
    char cost[24]; /* decimal literal copied verbatim; "" when not given */
    char served[SIM_MODEL_MAX + 1]; /* the model the answer names; "" = the request's */
    char geo[SIM_GEO_MAX + 1];      /* Anthropic usage.inference_geo; "" = not reported */
} SimDirectives;

/* Everything the renderer needs to know about one provider request. */
typedef struct {
    SimApi api;
    SimFlavor flavor;
    uint64_t seq; /* request counter: ids are derived from it */
    char model[SIM_MODEL_MAX + 1];
    char tool_name[SIM_TOOL_NAME_MAX + 1];
    bool stream;
    bool include_usage;
    bool gemini_sse;    /* streamGenerateContent with alt=sse */
    bool base64;        /* embeddings encoding_format:"base64" */
    int64_t max_tokens; /* smallest max-tokens field, -1 when absent */
    size_t body_len;
    unsigned n_inputs;   /* embeddings inputs (>= 1) */
    unsigned dimensions; /* embeddings dimensions */
    SimDirectives d;
} SimRequest;

/* Usage numbers resolved from the defaults and directives (see README.md). */
typedef struct {
    int64_t input;      /* total input, including cached and cache writes */
    int64_t cached;     /* cache reads */
    int64_t cw5m, cw1h; /* cache writes */
    int64_t words;      /* visible output words (= deltas) */
    int64_t reasoning;
    bool truncated; /* output was capped by the request's max-tokens field */
} SimUsage;

/* A rendered response: status, headers and the body as a list of segments
 * (one for a plain response, one per event for a stream). */
typedef struct {
    int status;
    const char *content_type;
    GString *headers; /* extra header lines, each ending in CRLF */
    GString *body;    /* all segments back to back */
    GArray *ends;     /* guint32 end offset of each segment in body */
    guint n_comments; /* leading segments that are SSE keep-alive comments */
    bool is_stream;
    int64_t retry_after; /* >= 0: send retry-after */
} SimResponse;

/* ---- sim-tls.c ---- */

/* Loads DIR/sim-server.{pem,key}, generating the CA and server certificate
 * first when DIR/sim-ca.pem is missing or the pair does not load (under an
 * flock on DIR/.sim-cert.lock; files are written to temporaries and renamed).
 * Returns a server SSL_CTX (transfer full) or NULL with error set. */
SSL_CTX *sim_tls_context(const char *dir, GError **error);

/* ---- sim-request.c ---- */

/* Maps a request path (query string excluded) to an API; SIM_API_NONE if the
 * path is not a provider endpoint. For Gemini, copies the model from the path
 * into ret_model (SIM_MODEL_MAX + 1 bytes). */
SimApi sim_route(const char *path, size_t path_len, char *ret_model);

/* Fills req from the request body (JSON) and directives. The body scan is a
 * streaming parse: no tree is built. Returns false when a JSON body does not
 * parse (the caller answers 400). */
bool sim_request_scan(SimRequest *req, const char *body, size_t body_len);

/* Applies directives found in `text` ("key=value;key=value" for the header
 * form, or the inside of one [[sim ...]] block). Unknown keys are ignored. */
void sim_directives_apply(SimDirectives *d, const char *text, size_t len);

/* Scans a body for [[sim ...]] blocks and applies each, in order. */
void sim_directives_scan_body(SimDirectives *d, const char *body, size_t len);

void sim_directives_init(SimDirectives *d);

/* Flavour of an OpenAI-shaped request from the model name. */
SimFlavor sim_flavor_for_model(const char *model);
const char *sim_flavor_name(SimFlavor f);
int sim_flavor_from_name(const char *name, size_t len);

/* ---- sim-render.c ---- */

void sim_response_init(SimResponse *resp);
void sim_response_clear(SimResponse *resp);
void sim_response_free(SimResponse *resp);

/* Resolves the usage numbers of a request (README.md "Usage formulas"). */
void sim_usage_resolve(const SimRequest *req, SimUsage *ret_usage);

/* Renders the successful answer to req into resp (cleared first). */
void sim_render(const SimRequest *req, SimResponse *resp);

/* Appends v[0..len) as a quoted JSON string (control bytes escaped). */
void sim_append_json_str(GString *s, const char *v, size_t len);

/* Renders an error answer with `status` in the API's/flavour's error shape. */
void sim_render_error(const SimRequest *req, int status, const char *message, SimResponse *resp);
