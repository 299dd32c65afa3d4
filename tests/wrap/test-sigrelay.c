/* test-sigrelay.c - which signals llmwrap passes on (wrap/sigrelay.c). */
#include <glib.h>
#include <signal.h>

#include "sigrelay.h"

#define T0   G_GINT64_CONSTANT(1000000)
#define WAIT LW_SIGRELAY_WAIT_US
/* When the first held signal falls due. */
#define NONE    (-1)
#define AT(us)  (T0 + (us))
#define AT_ONCE 0

typedef enum {
    END,
    GOT,  /* llmwrap got sig from sender at T0 + us */
    SEEN, /* the witness did */
    LOST, /* the witness went away */
} RelayStep;

typedef struct {
    RelayStep step;
    int sig;
    pid_t sender;
    gint64 us;
    gboolean now; /* GOT: lw_sigrelay_got's answer, pass on now */
} RelayEvent;

typedef struct {
    gboolean witnessed;
    RelayEvent events[6];
    gint64 first_due; /* after the events: NONE, AT(us) or AT_ONCE */
    int passed_on[4]; /* the held signals, in the order they fall due */
} RelayCase;

static const RelayCase relay_cases[] = {
    /* Without a witness: everything at once. */
    {FALSE, {{GOT, SIGINT, 100, 0, TRUE}}, NONE, {0}},
    /* Sent to llmwrap alone (kill PID, a supervisor): passed on once the
     * witness had time to report it. */
    {TRUE, {{GOT, SIGTERM, 100, 0, FALSE}}, AT(WAIT), {SIGTERM}},
    /* Sent to the group (kill -PGID, kill %1), whichever copy is read
     * first: the program has it. */
    {TRUE, {{SEEN, SIGINT, 100, 0}, {GOT, SIGINT, 100, 5, FALSE}}, NONE, {0}},
    {TRUE, {{GOT, SIGINT, 100, 0, FALSE}, {SEEN, SIGINT, 100, 5}}, NONE, {0}},
    /* timeout(1): llmwrap's pid, then the group; llmwrap may read both. */
    {TRUE,
     {{GOT, SIGINT, 100, 0, FALSE},
      {GOT, SIGINT, 100, 1, FALSE},
      {SEEN, SIGINT, 100, 2},
      {GOT, SIGINT, 100, 3, FALSE}},
     NONE,
     {0}},
    /* systemd: the main process, the others a little later. */
    {TRUE, {{GOT, SIGTERM, 1, 0, FALSE}, {SEEN, SIGTERM, 1, WAIT - 1}}, NONE, {0}},
    /* The witness's copy came from someone else, or is another signal, or
     * is from an earlier event. */
    {TRUE, {{GOT, SIGTERM, 100, 0, FALSE}, {SEEN, SIGTERM, 200, 5}}, AT(WAIT), {SIGTERM}},
    {TRUE, {{SEEN, SIGINT, 100, 0}, {GOT, SIGTERM, 100, 5, FALSE}}, AT(5 + WAIT), {SIGTERM}},
    {TRUE,
     {{SEEN, SIGINT, 100, 0}, {GOT, SIGINT, 100, WAIT + 1, FALSE}},
     AT(2 * WAIT + 1),
     {SIGINT}},
    /* Two senders at once: one sent to the group, one to llmwrap. */
    {TRUE,
     {{GOT, SIGINT, 100, 0, FALSE}, {GOT, SIGINT, 200, 5, FALSE}, {SEEN, SIGINT, 100, 10}},
     AT(5 + WAIT),
     {SIGINT}},
    /* Passed on in the order they came. */
    {TRUE,
     {{GOT, SIGUSR1, 100, 0, FALSE}, {GOT, SIGTERM, 100, 5, FALSE}},
     AT(WAIT),
     {SIGUSR1, SIGTERM}},
    /* The witness died: what is held is due at once, what comes next
     * passes on at once. */
    {TRUE, {{GOT, SIGINT, 100, 0, FALSE}, {LOST}, {GOT, SIGTERM, 100, 5, TRUE}}, AT_ONCE, {SIGINT}},
    /* A signal out of the tracked range is not held. */
    {TRUE, {{GOT, LW_SIGRELAY_NSIG, 100, 0, TRUE}}, NONE, {0}},
};

static void test_relay(gconstpointer data)
{
    const RelayCase *c = data;
    LwSigRelay r;
    lw_sigrelay_init(&r, c->witnessed);
    for (guint i = 0; i < G_N_ELEMENTS(c->events) && c->events[i].step != END; i++) {
        const RelayEvent *e = &c->events[i];
        if (e->step == GOT)
            g_assert_cmpint(lw_sigrelay_got(&r, e->sig, e->sender, T0 + e->us), ==, e->now);
        else if (e->step == SEEN)
            lw_sigrelay_witnessed(&r, e->sig, e->sender, T0 + e->us);
        else
            lw_sigrelay_lose_witness(&r);
    }
    gint64 due = lw_sigrelay_next_due(&r);
    g_assert_cmpint(due, ==, c->first_due);
    if (due > 0)
        g_assert_cmpint(lw_sigrelay_take_due(&r, due - 1), ==, 0);
    for (guint i = 0; i < G_N_ELEMENTS(c->passed_on); i++)
        g_assert_cmpint(lw_sigrelay_take_due(&r, G_MAXINT64), ==, c->passed_on[i]);
}

/* With every slot taken, one more signal is passed on at once: at worst
 * twice, never lost. */
static void test_relay_full(void)
{
    LwSigRelay r;
    lw_sigrelay_init(&r, TRUE);
    for (pid_t sender = 1; sender <= LW_SIGRELAY_HELD; sender++)
        g_assert_false(lw_sigrelay_got(&r, SIGTERM, sender, T0));
    g_assert_true(lw_sigrelay_got(&r, SIGTERM, LW_SIGRELAY_HELD + 1, T0));
    for (int i = 0; i < LW_SIGRELAY_HELD; i++)
        g_assert_cmpint(lw_sigrelay_take_due(&r, T0 + WAIT), ==, SIGTERM);
    g_assert_cmpint(lw_sigrelay_take_due(&r, G_MAXINT64), ==, 0);
    g_assert_cmpint(lw_sigrelay_next_due(&r), ==, -1);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (guint i = 0; i < G_N_ELEMENTS(relay_cases); i++) {
        g_autofree char *name = g_strdup_printf("/sigrelay/%u", i);
        g_test_add_data_func(name, &relay_cases[i], test_relay);
    }
    g_test_add_func("/sigrelay/full", test_relay_full);
    return g_test_run();
}
