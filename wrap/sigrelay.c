/* sigrelay.c - passing on only the signals the program did not get. */
#include "sigrelay.h"

#include <string.h>

void lw_sigrelay_init(LwSigRelay *r, gboolean witnessed)
{
    memset(r, 0, sizeof *r);
    r->witnessed = witnessed;
}

static gboolean is_tracked(int sig)
{
    return sig > 0 && sig < LW_SIGRELAY_NSIG;
}

gboolean lw_sigrelay_got(LwSigRelay *r, int sig, pid_t sender, gint64 now_us)
{
    if (!r->witnessed || !is_tracked(sig))
        return TRUE;
    const LwSighting *seen = &r->seen[sig];
    if (seen->sig != 0 && seen->sender == sender && now_us - seen->at_us <= LW_SIGRELAY_WAIT_US)
        return FALSE; /* the group got it */
    LwSighting *free_slot = NULL;
    for (guint i = 0; i < LW_SIGRELAY_HELD; i++) {
        LwSighting *h = &r->held[i];
        if (h->sig == sig && h->sender == sender)
            return FALSE; /* one event, held already */
        if (h->sig == 0 && free_slot == NULL)
            free_slot = h;
    }
    if (free_slot == NULL)
        return TRUE; /* at worst twice, never lost */
    *free_slot = (LwSighting){.sig = sig, .sender = sender, .at_us = now_us + LW_SIGRELAY_WAIT_US};
    return FALSE;
}

void lw_sigrelay_witnessed(LwSigRelay *r, int sig, pid_t sender, gint64 now_us)
{
    if (!is_tracked(sig))
        return;
    r->seen[sig] = (LwSighting){.sig = sig, .sender = sender, .at_us = now_us};
    for (guint i = 0; i < LW_SIGRELAY_HELD; i++) {
        if (r->held[i].sig == sig && r->held[i].sender == sender)
            r->held[i].sig = 0;
    }
}

void lw_sigrelay_lose_witness(LwSigRelay *r)
{
    r->witnessed = FALSE;
    for (guint i = 0; i < LW_SIGRELAY_HELD; i++)
        r->held[i].at_us = 0;
}

/* The index of the held signal due first, or -1. */
static int first_held(const LwSigRelay *r)
{
    int first = -1;
    for (int i = 0; i < LW_SIGRELAY_HELD; i++) {
        if (r->held[i].sig != 0 && (first < 0 || r->held[i].at_us < r->held[first].at_us))
            first = i;
    }
    return first;
}

int lw_sigrelay_take_due(LwSigRelay *r, gint64 now_us)
{
    int first = first_held(r);
    if (first < 0 || r->held[first].at_us > now_us)
        return 0;
    int sig = r->held[first].sig;
    r->held[first].sig = 0;
    return sig;
}

gint64 lw_sigrelay_next_due(const LwSigRelay *r)
{
    int first = first_held(r);
    return first >= 0 ? r->held[first].at_us : -1;
}
