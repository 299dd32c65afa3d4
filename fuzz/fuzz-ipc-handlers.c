/* fuzz-ipc-handlers.c - libFuzzer target for the collector's IPC request
 * handlers: collector/ipc-server.c (dispatch, status, tail, ledger sync),
 * ipc-runs.c with runs.c, and ipc-budgets.c with budget.c and guard.c.
 *
 * The input is a script of up to 64 steps, each starting with a byte:
 *   below 0xe0  a request built from the bytes that follow: any body, with
 *               odd values (huge and overflowing ids, negative and extreme
 *               amounts, empty and invalid UTF-8 strings, parents that are
 *               the run itself or a loop);
 *   0xe0-0xee   a raw frame: a length byte and that many bytes of payload;
 *   0xef        a frame header announcing more than the 1 MiB cap;
 *   0xf0-0xff   wait for the answers, then go on on the other of the two
 *               connections (even) or on a new one in place of this one
 *               (odd: the collector ends the runs the old one owned).
 * Requests go to a real LwIpcServer on the collector's loop through real
 * client connections, pipelined as a client may send them.
 *
 * The state is real too, made once per process in a temporary directory: a
 * ledger (its syncs off: a scratch file) with budgets and guards defined,
 * request rows with costs (two whose sum overflows), the spool, the
 * budgets and the guards. Before each input the runs table is emptied and
 * seeded with run 1 (its own parent) and runs 2 and 3 (each the other's
 * parent; 3 ended), and the run registry is new, so every input starts from
 * the same runs. Not made, because no IPC handler touches them: TLS, the
 * CA, the prices, libcurl (upstream), the listeners (status reports none)
 * and the attribution socket; lw_server_conn_closed, which main.c defines
 * for client connections, is empty here.
 *
 * Besides crashes, sanitizer reports and leaks, the target aborts when a
 * request is left without its one answer (or an answer comes for nothing),
 * an answer carries both or neither of an error and a body, names another
 * id or body than its request's, a request that cannot fail (status, tail,
 * budget status, reload, ledger sync, opening a run) fails, a run the
 * ledger does not hold can be closed, killed or attached, an open run
 * cannot be attached, a budget shows a reservation or a negative spend, a
 * run opens with a parent the ledger did not hold or with tags that are
 * not a JSON object, a closed connection leaves its runs open, or the loop
 * does not settle within 5 s (a hang).
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "budget.h"
#include "config.h"
#include "guard.h"
#include "ipc-budgets.h"
#include "ipc-runs.h"
#include "ipc-server.h"
#include "ipc.h"
#include "ledger-budgets.h"
#include "ledger-runs.h"
#include "ledger-spool.h"
#include "ledger.h"
#include "runs.h"
#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STEPS   64
#define SEEDED_RUNS 3
#define MAX_RUNS    (SEEDED_RUNS + MAX_STEPS)
#define HANG_MS     5000

static void require(bool ok)
{
    if (!ok)
        abort();
}

void lw_server_conn_closed(LwServer *server)
{
}

/* ---- the collector, once per process ---- */

static LwServer server;
static char *dir;
static char *socket_path;

/* Warnings are the handlers' normal output (a parent the ledger does not
 * hold, a spend that cannot be read): dropped, or the fuzzer would spend
 * its time printing them. A critical is a broken precondition. */
static GLogWriterOutput quiet_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                                     gpointer data)
{
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) {
        g_log_writer_default(level, fields, n_fields, data);
        abort();
    }
    return G_LOG_WRITER_HANDLED;
}

static LwBudgetDef *budget_def(const char *name, gint64 limit, LwPeriod period, const char *scope)
{
    LwBudgetDef *d = g_new0(LwBudgetDef, 1);
    d->name = g_strdup(name);
    d->limit_pusd = limit;
    d->period = period;
    require(lw_scope_parse(scope, &d->scope, &d->scope_key, &d->scope_value));
    d->alerts[0] = 50;
    d->n_alerts = 1;
    return d;
}

/* What budgets and summaries read: definitions of every period and scope,
 * and request rows of runs 1, 2 and 4 (4 is the first run an input opens),
 * two of them with costs whose sum overflows. */
static void seed_ledger(LwLedger *ledger)
{
    LwBudgetDef *defs[] = {
        budget_def("global-day", 10 * G_GINT64_CONSTANT(1000000000000), LW_PERIOD_DAY, "global"),
        budget_def("openai-month", 1, LW_PERIOD_MONTH, "provider:openai"),
        budget_def("team-hour", G_MAXINT64, LW_PERIOD_HOUR, "tag:team=x"),
        budget_def("per-run", 5000, LW_PERIOD_RUN, "model:gpt-4o"),
        budget_def("per-request", 7, LW_PERIOD_REQUEST, "global"),
    };
    defs[1]->action = LW_ACTION_WARN;
    defs[3]->action = LW_ACTION_DOWNGRADE;
    defs[3]->action_model = g_strdup("gpt-4o-mini");
    for (guint i = 0; i < G_N_ELEMENTS(defs); i++) {
        require(lw_ledger_budget_put(ledger, defs[i], NULL));
        lw_budget_def_free(defs[i]);
    }
    LwGuardDef guard = {
        .name = "loop", .kind = LW_GUARD_LOOP, .threshold = 3, .window_ms = 60000, .block = TRUE};
    require(lw_ledger_guard_put(ledger, &guard, NULL));

    static const struct {
        guint64 run_id;
        const char *provider;
        const char *model;
        gboolean known;
        gint64 cost;
        const char *tags;
    } rows[] = {
        {1, "openai", "gpt-4o", TRUE, 1000, "{\"team\":\"x\"}"},
        {1, "anthropic", "claude-sonnet-4-5", FALSE, 0, NULL},
        {2, "openai", "gpt-4o", TRUE, G_MAXINT64 / 2 + 1, NULL},
        {4, "openai", "gpt-4o", TRUE, G_MAXINT64 / 2 + 1, "{\"team\":\"x\"}"},
        {4, "gemini", "", TRUE, 3, NULL},
    };
    for (guint i = 0; i < G_N_ELEMENTS(rows); i++) {
        LwLedgerRequest r = {
            .time_ms = g_get_real_time() / 1000,
            .run_id = rows[i].run_id,
            .provider = rows[i].provider,
            .host = "api.example",
            .endpoint = "chat",
            .model_requested = rows[i].model,
            .status = 200,
            .input_tokens = G_MAXINT64 / 3,
            .output_tokens = 1,
            .cost = {rows[i].known, rows[i].cost},
            .tags_json = rows[i].tags,
            .ttft_ms = -1,
        };
        require(lw_ledger_insert(ledger, &r, NULL) > 0);
    }
}

static void teardown(void)
{
    lw_ipc_server_free(server.ipc);
    lw_guards_free(server.guards);
    lw_budgets_free(server.budgets);
    lw_spool_close(server.spool);
    lw_ledger_close(server.ledger);
    lw_loop_free(server.loop);
    lw_config_free(server.config);
    g_free(server.ca_root_file);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        unlink(path);
    }
    rmdir(dir);
    g_free(dir);
    g_free(socket_path);
}

static void setup_once(void)
{
    g_log_set_writer_func(quiet_writer, NULL, NULL);
    dir = g_dir_make_tmp("llmwrap-fuzz-ipc-XXXXXX", NULL);
    require(dir != NULL);
    g_autofree char *ledger_path = g_build_filename(dir, "ledger.db", NULL);
    g_autofree char *spool_path = g_build_filename(dir, "ledger.spool", NULL);
    socket_path = g_build_filename(dir, "collector.sock", NULL);

    server.config = lw_config_new_default();
    server.providers = server.config->providers;
    server.started_us = lw_loop_now_us();
    server.ca_root_file = g_build_filename(dir, "root.pem", NULL);
    g_queue_init(&server.conns);
    server.loop = lw_loop_new(NULL);
    server.ledger = lw_ledger_open(ledger_path, FALSE, NULL);
    require(server.loop != NULL && server.ledger != NULL);
    /* A scratch ledger: nothing needs it to outlive a crash, and a sync to
     * disk would cost more than the input's run. */
    require(sqlite3_exec(lw_ledger_db(server.ledger), "PRAGMA synchronous = OFF", NULL, NULL,
                         NULL) == SQLITE_OK);
    seed_ledger(server.ledger);
    server.spool = lw_spool_open(spool_path, ledger_path, NULL);
    server.ipc = lw_ipc_server_new(&server, socket_path, NULL);
    require(server.spool != NULL && server.ipc != NULL);
    server.budgets = lw_budgets_new(&server);
    server.guards = lw_guards_new(&server);
    lw_ipc_budgets_register(server.ipc);
    atexit(teardown);
}

/* Every input starts from the same runs: ids from 1 again (the table's
 * AUTOINCREMENT counter is reset too), run 1 its own parent, runs 2 and 3
 * each the other's, 3 ended. A loop is what no collector makes now, but a
 * ledger from an older one may hold it. */
static void seed_runs(void)
{
    lw_spool_hold(server.spool);
    sqlite3 *db = lw_ledger_db(server.ledger);
    require(sqlite3_exec(db,
                         "BEGIN; DELETE FROM runs; DELETE FROM sqlite_sequence WHERE name = 'runs'",
                         NULL, NULL, NULL) == SQLITE_OK);
    static const guint64 parents[SEEDED_RUNS] = {1, 3, 2};
    char *argv[] = {"seeded", NULL};
    for (guint i = 0; i < SEEDED_RUNS; i++) {
        LwLedgerRun run = {.parent_id = parents[i],
                           .started_ms = 1,
                           .argv = argv,
                           .budget_pusd = i == 0 ? 100 : -1};
        require(lw_ledger_run_start(server.ledger, &run, NULL) == i + 1);
    }
    require(lw_ledger_run_end(server.ledger, 3, 2, 0, NULL));
    require(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
    lw_spool_release(server.spool);
}

/* ---- reading the input ---- */

typedef struct {
    const uint8_t *p;
    size_t n;
} Reader;

static uint8_t take_u8(Reader *r)
{
    if (r->n == 0)
        return 0;
    r->n--;
    return *r->p++;
}

static uint64_t take_raw64(Reader *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | take_u8(r);
    return v;
}

/* A run id or another unsigned number: mostly small (the seeded runs and
 * the ones an input opens are 1..67), else an edge of a type, else any. */
static uint64_t take_id(Reader *r)
{
    static const uint64_t edges[] = {G_MAXUINT64,
                                     G_MAXINT64,
                                     (uint64_t)G_MAXINT64 + 1,
                                     G_MAXUINT32,
                                     (uint64_t)G_MAXUINT32 + 1,
                                     G_MAXINT32,
                                     (uint64_t)1 << 53,
                                     0};
    uint8_t b = take_u8(r);
    if (b < 0xc0)
        return b & 0x3f;
    if (b < 0xf0)
        return edges[b % G_N_ELEMENTS(edges)];
    return take_raw64(r);
}

static int64_t take_amount(Reader *r)
{
    static const int64_t edges[] = {
        -1, 0, 1, G_MININT64, G_MAXINT64, -2, G_MININT64 + 1, G_MAXINT64 - 1};
    uint8_t b = take_u8(r);
    if (b < 0xc0)
        return edges[b % G_N_ELEMENTS(edges)];
    if (b < 0xf0)
        return (int64_t)(b - 0xd8);
    return (int64_t)take_raw64(r);
}

/* A string of the input's bytes, any of them but NUL (protobuf-c strings
 * are C strings); malloc'd, as protobuf-c frees it. */
static char *take_str(Reader *r)
{
    size_t len = take_u8(r) % 48;
    if (len > r->n)
        len = r->n;
    char *s = malloc(len + 1);
    require(s != NULL);
    size_t out = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = take_u8(r);
        if (c != 0)
            s[out++] = (char)c;
    }
    s[out] = '\0';
    return s;
}

/* ---- what the collector should answer ---- */

typedef enum {
    RUN_UNKNOWN = 0, /* the ledger does not hold it */
    RUN_OPEN,
    RUN_ENDED,
} RunState;

typedef struct {
    RunState state;
    gboolean exit_known; /* RUN_ENDED with an exit status: closing it again fails */
    int owner; /* the connection that opened or attached to it; 0 = none */
    guint64 parent_asked;
    gboolean check_open; /* opened by this input: check its row */
} Model;

static Model runs[MAX_RUNS + 1]; /* by run id */
static guint64 last_opened;

static Model *model_of(guint64 id)
{
    return id >= 1 && id <= MAX_RUNS ? &runs[id] : NULL;
}

typedef struct {
    gboolean bad; /* a frame the collector cannot decode: it closes the connection */
    gboolean has_id;
    uint64_t id;
    Lw__Request__BodyCase body;
    guint64 run_id; /* close, kill, attach, summary */
    gboolean has_run_id;
    guint64 parent; /* open */
    gboolean exit_known; /* close: with an exit status (a negative one is unknown) */
} Expect;

typedef struct {
    int fd;     /* -1 when closed */
    int number; /* unique per input: the owner in Model */
    GByteArray *in;
    GQueue expect; /* Expect*, in the order sent */
    gboolean eof;
} Conn;

static void on_settled(LwLoop *loop, void *data)
{
    lw_loop_quit(loop);
}

/* One loop iteration, so the collector sees what the kernel already holds
 * for it (a connection, a hang-up). */
static void settle(void)
{
    LwTimer t;
    lw_timer_init(&t);
    lw_timer_start(server.loop, &t, 0, on_settled, NULL);
    lw_loop_run(server.loop);
}

/* A new client; the collector accepts it at once, so the clients' numbers
 * follow the order they connect in. */
static void conn_open(Conn *c, int number)
{
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    require(c->fd >= 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    g_strlcpy(sun.sun_path, socket_path, sizeof sun.sun_path);
    require(connect(c->fd, (struct sockaddr *)&sun, sizeof sun) == 0);
    c->number = number;
    c->in = g_byte_array_new();
    g_queue_init(&c->expect);
    c->eof = FALSE;
    settle();
}

static gboolean expects_ok(Lw__Request__BodyCase body)
{
    switch (body) {
    case LW__REQUEST__BODY_CLOSE_RUN:
    case LW__REQUEST__BODY_TAIL:
    case LW__REQUEST__BODY_RELOAD:
    case LW__REQUEST__BODY_KILL_RUN:
    case LW__REQUEST__BODY_LEDGER_SYNC:
    case LW__REQUEST__BODY_ATTACH_RUN:
        return TRUE;
    default:
        return FALSE;
    }
}

static Lw__Response__BodyCase reply_body_for(Lw__Request__BodyCase body)
{
    switch (body) {
    case LW__REQUEST__BODY_STATUS:
        return LW__RESPONSE__BODY_STATUS;
    case LW__REQUEST__BODY_OPEN_RUN:
        return LW__RESPONSE__BODY_OPEN_RUN;
    case LW__REQUEST__BODY_RUN_SUMMARY:
        return LW__RESPONSE__BODY_RUN_SUMMARY;
    case LW__REQUEST__BODY_BUDGET_STATUS:
        return LW__RESPONSE__BODY_BUDGET_STATUS;
    default:
        require(expects_ok(body));
        return LW__RESPONSE__BODY_OK;
    }
}

/* Requests that need no run and find the ledger healthy cannot fail. */
static gboolean cannot_fail(Lw__Request__BodyCase body)
{
    return body == LW__REQUEST__BODY_STATUS || body == LW__REQUEST__BODY_TAIL ||
           body == LW__REQUEST__BODY_BUDGET_STATUS || body == LW__REQUEST__BODY_RELOAD ||
           body == LW__REQUEST__BODY_LEDGER_SYNC || body == LW__REQUEST__BODY_OPEN_RUN;
}

static void check_budgets(const Lw__BudgetStatusReply *b)
{
    for (size_t i = 0; i < b->n_budgets; i++) {
        const Lw__BudgetState *s = b->budgets[i];
        require(s->name != NULL && s->name[0] != '\0');
        require(s->limit_pusd > 0);
        require(s->reserved_pusd == 0); /* no request is in flight */
        require(s->spent_pusd >= 0);
        require(s->window_start_ms <= s->window_end_ms || s->window_end_ms == 0);
    }
}

/* The answer to `e`, sent on connection `c`. */
static void check_answer(Conn *c, const Expect *e, const Lw__Response *resp)
{
    require(!e->bad);
    require(resp->has_id == e->has_id && (!e->has_id || resp->id == e->id));
    gboolean failed = resp->error != NULL;
    require(failed != (resp->body_case != LW__RESPONSE__BODY__NOT_SET));
    if (failed) {
        require(resp->error->message != NULL && resp->error->message[0] != '\0');
        require(!cannot_fail(e->body));
    } else {
        require(resp->body_case == reply_body_for(e->body));
    }

    Model *m = e->has_run_id ? model_of(e->run_id) : NULL;
    RunState state = m != NULL ? m->state : RUN_UNKNOWN;
    switch (e->body) {
    case LW__REQUEST__BODY_OPEN_RUN: {
        const Lw__OpenRunReply *o = resp->open_run;
        require(o->has_run_id && o->run_id > last_opened && o->status != NULL);
        last_opened = o->run_id;
        Model *n = model_of(o->run_id);
        require(n != NULL);
        n->state = RUN_OPEN;
        n->owner = c->number;
        n->check_open = TRUE;
        n->parent_asked = e->parent;
        break;
    }
    case LW__REQUEST__BODY_CLOSE_RUN:
        require(failed ==
                (!e->has_run_id || state == RUN_UNKNOWN || (state == RUN_ENDED && m->exit_known)));
        if (!failed) {
            m->state = RUN_ENDED;
            m->exit_known = e->exit_known;
        }
        break;
    case LW__REQUEST__BODY_KILL_RUN:
        require(failed == (!e->has_run_id || state == RUN_UNKNOWN));
        break;
    case LW__REQUEST__BODY_ATTACH_RUN:
        require(failed == (state != RUN_OPEN));
        if (!failed)
            m->owner = c->number;
        break;
    case LW__REQUEST__BODY_BUDGET_STATUS:
        check_budgets(resp->budget_status);
        break;
    case LW__REQUEST__BODY_RUN_SUMMARY:
        require(failed ||
                (resp->run_summary->has_run_id && resp->run_summary->run_id == e->run_id));
        break;
    default:
        break;
    }
}

/* The collector ends the open runs a connection owned when it closes. */
static void owner_gone(int number)
{
    for (guint64 id = 1; id <= MAX_RUNS; id++) {
        if (runs[id].state == RUN_OPEN && runs[id].owner == number)
            runs[id].state = RUN_ENDED;
    }
}

static void on_readable(LwLoop *loop, int fd, uint32_t events, void *data)
{
    Conn *c = data;
    guint8 buf[16384];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            c->eof = TRUE;
            break;
        }
        g_byte_array_append(c->in, buf, (guint)n);
    }
    for (;;) {
        size_t payload = 0;
        LwIpcFrameResult r = lw_ipc_frame_peek(c->in->data, c->in->len, &payload);
        if (r == LW_IPC_FRAME_INCOMPLETE)
            break;
        require(r == LW_IPC_FRAME_COMPLETE);
        Lw__Response *resp = lw__response__unpack(NULL, payload, c->in->data + LW_IPC_HEADER_LEN);
        require(resp != NULL);
        g_byte_array_remove_range(c->in, 0, (guint)(LW_IPC_HEADER_LEN + payload));
        Expect *e = g_queue_pop_head(&c->expect);
        require(e != NULL); /* an answer for nothing */
        check_answer(c, e, resp);
        g_free(e);
        lw__response__free_unpacked(resp, NULL);
    }
    if (c->eof) {
        /* Only a bad frame ends a connection: the requests before it were
         * answered, those after it are dropped. */
        Expect *e = g_queue_pop_head(&c->expect);
        require(e != NULL && e->bad && c->in->len == 0);
        g_free(e);
        while ((e = g_queue_pop_head(&c->expect)) != NULL)
            g_free(e);
        lw_loop_unwatch(loop, fd);
        owner_gone(c->number);
    }
    if (g_queue_is_empty(&c->expect))
        lw_loop_quit(loop);
}

static void on_hang(LwLoop *loop, void *data)
{
    abort(); /* a request without an answer, or a handler that does not end */
}

/* Runs the loop until every request sent on `c` is answered. */
static void wait_answers(Conn *c)
{
    if (c->fd < 0 || g_queue_is_empty(&c->expect))
        return;
    LwTimer hang;
    lw_timer_init(&hang);
    lw_timer_start(server.loop, &hang, HANG_MS, on_hang, NULL);
    require(lw_loop_watch(server.loop, c->fd, EPOLLIN, on_readable, c, NULL));
    lw_loop_run(server.loop);
    if (!c->eof)
        lw_loop_unwatch(server.loop, c->fd);
    lw_timer_stop(server.loop, &hang);
}

static void conn_close(Conn *c)
{
    if (c->fd < 0)
        return;
    wait_answers(c);
    close(c->fd);
    c->fd = -1;
    g_byte_array_unref(c->in);
    Expect *e;
    while ((e = g_queue_pop_head(&c->expect)) != NULL)
        g_free(e);
    settle(); /* the collector sees the hang-up: the runs it owned end */
    owner_gone(c->number);
}

static void send_all(Conn *c, const guint8 *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            /* the collector has not read yet: let it */
            settle();
            continue;
        }
        if (n < 0)
            return; /* it closed the connection (a bad frame before) */
        buf += n;
        len -= (size_t)n;
    }
}

/* ---- building requests ---- */

static Lw__Request *build_request(Reader *r, Expect *e)
{
    Lw__Request *req = malloc(sizeof *req);
    require(req != NULL);
    lw__request__init(req);
    uint8_t kind = take_u8(r);
    uint8_t presence = take_u8(r);
    req->has_id = (presence & 1) != 0;
    req->id = req->has_id ? take_id(r) : 0;
    switch (kind % 10) {
    case 0:
        req->body_case = LW__REQUEST__BODY_STATUS;
        req->status = malloc(sizeof *req->status);
        lw__status_request__init(req->status);
        break;
    case 1: {
        req->body_case = LW__REQUEST__BODY_OPEN_RUN;
        Lw__OpenRunRequest *o = malloc(sizeof *o);
        lw__open_run_request__init(o);
        req->open_run = o;
        o->n_argv = take_u8(r) % 5;
        o->argv = malloc(sizeof(char *) * (o->n_argv + 1));
        for (size_t i = 0; i < o->n_argv; i++)
            o->argv[i] = take_str(r);
        if (presence & 2)
            o->cwd = take_str(r);
        o->has_pid = (presence & 4) != 0;
        o->pid = o->has_pid ? (uint32_t)take_id(r) : 0;
        o->n_tags = (presence >> 5) % 5;
        o->tags = malloc(sizeof(Lw__Tag *) * (o->n_tags + 1));
        for (size_t i = 0; i < o->n_tags; i++) {
            Lw__Tag *t = malloc(sizeof *t);
            lw__tag__init(t);
            uint8_t which = take_u8(r);
            if (which & 1)
                t->key = take_str(r);
            if (which & 2)
                t->value = take_str(r);
            o->tags[i] = t;
        }
        o->has_parent_run_id = (presence & 8) != 0;
        o->parent_run_id = o->has_parent_run_id ? take_id(r) : 0;
        o->has_budget_pusd = (presence & 16) != 0;
        o->budget_pusd = o->has_budget_pusd ? take_amount(r) : 0;
        e->parent = o->parent_run_id;
        break;
    }
    case 2:
        req->body_case = LW__REQUEST__BODY_CLOSE_RUN;
        req->close_run = malloc(sizeof *req->close_run);
        lw__close_run_request__init(req->close_run);
        req->close_run->has_run_id = (presence & 2) == 0;
        req->close_run->run_id = req->close_run->has_run_id ? take_id(r) : 0;
        req->close_run->has_exit_status = (presence & 4) != 0;
        req->close_run->exit_status = req->close_run->has_exit_status ? (int32_t)take_amount(r) : 0;
        e->has_run_id = req->close_run->has_run_id;
        e->run_id = req->close_run->run_id;
        e->exit_known = req->close_run->has_exit_status && req->close_run->exit_status >= 0;
        break;
    case 3:
        req->body_case = LW__REQUEST__BODY_RUN_SUMMARY;
        req->run_summary = malloc(sizeof *req->run_summary);
        lw__run_summary_request__init(req->run_summary);
        req->run_summary->has_run_id = (presence & 2) == 0;
        req->run_summary->run_id = req->run_summary->has_run_id ? take_id(r) : 0;
        e->has_run_id = req->run_summary->has_run_id;
        e->run_id = req->run_summary->run_id;
        break;
    case 4:
        req->body_case = LW__REQUEST__BODY_TAIL;
        req->tail = malloc(sizeof *req->tail);
        lw__tail_request__init(req->tail);
        break;
    case 5:
        req->body_case = LW__REQUEST__BODY_RELOAD;
        req->reload = malloc(sizeof *req->reload);
        lw__reload_request__init(req->reload);
        break;
    case 6:
        req->body_case = LW__REQUEST__BODY_KILL_RUN;
        req->kill_run = malloc(sizeof *req->kill_run);
        lw__kill_run_request__init(req->kill_run);
        req->kill_run->has_run_id = (presence & 2) == 0;
        req->kill_run->run_id = req->kill_run->has_run_id ? take_id(r) : 0;
        e->has_run_id = req->kill_run->has_run_id;
        e->run_id = req->kill_run->run_id;
        break;
    case 7:
        req->body_case = LW__REQUEST__BODY_BUDGET_STATUS;
        req->budget_status = malloc(sizeof *req->budget_status);
        lw__budget_status_request__init(req->budget_status);
        break;
    case 8:
        req->body_case = LW__REQUEST__BODY_LEDGER_SYNC;
        req->ledger_sync = malloc(sizeof *req->ledger_sync);
        lw__ledger_sync_request__init(req->ledger_sync);
        break;
    default:
        req->body_case = LW__REQUEST__BODY_ATTACH_RUN;
        req->attach_run = malloc(sizeof *req->attach_run);
        lw__attach_run_request__init(req->attach_run);
        req->attach_run->has_run_id = (presence & 2) == 0;
        req->attach_run->run_id = req->attach_run->has_run_id ? take_id(r) : 0;
        e->has_run_id = req->attach_run->has_run_id;
        e->run_id = req->attach_run->run_id;
        break;
    }
    e->has_id = req->has_id;
    e->id = req->id;
    e->body = req->body_case;
    return req;
}

/* A frame of raw input bytes: what the collector does with it depends on
 * whether it decodes, which the target asks protobuf-c too. */
static void append_raw_frame(Reader *r, GByteArray *frame, Expect *e, gboolean too_large)
{
    if (too_large) {
        static const guint8 head[LW_IPC_HEADER_LEN] = {0, 0x10, 0, 1}; /* 1 MiB + 1 */
        g_byte_array_append(frame, head, sizeof head);
        e->bad = TRUE;
        return;
    }
    size_t len = take_u8(r);
    if (len > r->n)
        len = r->n;
    guint8 head[LW_IPC_HEADER_LEN] = {0, 0, 0, (guint8)len};
    g_byte_array_append(frame, head, sizeof head);
    g_byte_array_append(frame, r->p, (guint)len);
    Lw__Request *req = lw__request__unpack(NULL, len, r->p);
    r->p += len;
    r->n -= len;
    if (req == NULL || req->body_case == LW__REQUEST__BODY__NOT_SET) {
        e->bad = TRUE;
    } else {
        e->has_id = req->has_id;
        e->id = req->id;
        e->body = req->body_case;
        /* as build_request records them */
        if (req->body_case == LW__REQUEST__BODY_OPEN_RUN)
            e->parent = req->open_run->has_parent_run_id ? req->open_run->parent_run_id : 0;
#define RUN_ID(field)                                                                              \
    do {                                                                                           \
        e->has_run_id = req->field->has_run_id;                                                    \
        e->run_id = req->field->run_id;                                                            \
    } while (0)
        if (req->body_case == LW__REQUEST__BODY_CLOSE_RUN)
            RUN_ID(close_run);
        else if (req->body_case == LW__REQUEST__BODY_KILL_RUN)
            RUN_ID(kill_run);
        else if (req->body_case == LW__REQUEST__BODY_ATTACH_RUN)
            RUN_ID(attach_run);
        else if (req->body_case == LW__REQUEST__BODY_RUN_SUMMARY)
            RUN_ID(run_summary);
#undef RUN_ID
    }
    if (req != NULL)
        lw__request__free_unpacked(req, NULL);
}

/* ---- after the input ---- */

/* What the ledger holds for the runs this input opened and ended. */
static void check_ledger(void)
{
    for (guint64 id = SEEDED_RUNS + 1; id <= MAX_RUNS; id++) {
        const Model *m = &runs[id];
        if (!m->check_open)
            continue;
        LwLedgerRunInfo info;
        require(lw_ledger_run_get(server.ledger, id, &info, NULL));
        const Model *parent = model_of(m->parent_asked);
        gboolean held = parent != NULL && parent->state != RUN_UNKNOWN && m->parent_asked < id;
        require(info.parent_id == (held ? m->parent_asked : 0));
        require(info.ended == (m->state == RUN_ENDED));
        if (info.tags_json != NULL) {
            yajl_val v = yajl_tree_parse(info.tags_json, NULL, 0);
            require(v != NULL && YAJL_IS_OBJECT(v));
            yajl_tree_free(v);
        }
        lw_ledger_run_info_clear(&info);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gboolean ready;
    if (!ready) {
        setup_once();
        ready = TRUE;
    }
    seed_runs();
    memset(runs, 0, sizeof runs);
    for (guint64 id = 1; id <= SEEDED_RUNS; id++) {
        runs[id].state = id == 3 ? RUN_ENDED : RUN_OPEN;
        runs[id].exit_known = id == 3; /* seed_runs ends it with status 0 */
    }
    last_opened = SEEDED_RUNS;

    LwRuns *registry = lw_runs_new(server.ledger, server.spool);
    server.runs = registry;
    lw_ipc_runs_register(server.ipc, registry);

    Reader r = {data, size};
    int numbers = 0;
    Conn conns[2];
    conn_open(&conns[0], ++numbers);
    conn_open(&conns[1], ++numbers);
    Conn *c = &conns[0];
    g_autoptr(GByteArray) frame = g_byte_array_new();
    for (int step = 0; step < MAX_STEPS && r.n > 0; step++) {
        uint8_t op = take_u8(&r);
        if (op >= 0xf0) {
            /* wait for the answers, then go on on the other connection,
             * or on a new one in place of this */
            wait_answers(c);
            if (op & 1) {
                conn_close(c);
                conn_open(c, ++numbers);
            } else {
                c = c == &conns[0] ? &conns[1] : &conns[0];
            }
            continue;
        }
        if (c->eof)
            continue; /* closed after a bad frame: nothing more goes through it */
        Expect *e = g_new0(Expect, 1);
        g_byte_array_set_size(frame, 0);
        if (op >= 0xe0) {
            append_raw_frame(&r, frame, e, op == 0xef);
        } else {
            Lw__Request *req = build_request(&r, e);
            lw_ipc_frame_append_request(frame, req);
            lw__request__free_unpacked(req, NULL);
        }
        g_queue_push_tail(&c->expect, e);
        send_all(c, frame->data, frame->len);
        if (e->bad)
            wait_answers(c);
    }
    /* Answered first: the collector would otherwise see the other
     * connection's hang-up in the same loop iteration as these requests,
     * in an order the model cannot know. */
    wait_answers(c);
    conn_close(&conns[0]);
    conn_close(&conns[1]);
    check_ledger();

    lw_runs_free(registry);
    server.runs = NULL;
    return 0;
}
