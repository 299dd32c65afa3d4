/* run-summary.c - what one llmwrap run spent. */
#include "run-summary.h"

void lw_run_model_spend_free(gpointer p)
{
    LwRunModelSpend *m = p;
    g_free(m->provider);
    g_free(m->model);
    g_free(m);
}

void lw_run_summary_clear(LwRunSummary *s)
{
    g_clear_pointer(&s->models, g_ptr_array_unref);
    g_clear_pointer(&s->refused_by, g_ptr_array_unref);
    g_clear_pointer(&s->warnings, g_ptr_array_unref);
}

