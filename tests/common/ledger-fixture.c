/* ledger-fixture.c - see ledger-fixture.h. */
#include "ledger-fixture.h"

#include <glib/gstdio.h>

void fixture_setup(Fixture *f, gconstpointer data)
{
    GError *error = NULL;
    f->dir = g_dir_make_tmp("test-ledger-XXXXXX", &error);
    g_assert_no_error(error);
    f->path = g_build_filename(f->dir, "ledger.db", NULL);
}

void fixture_teardown(Fixture *f, gconstpointer data)
{
    const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (guint i = 0; i < G_N_ELEMENTS(suffixes); i++) {
        g_autofree char *p = g_strconcat(f->path, suffixes[i], NULL);
        g_unlink(p);
    }
    g_rmdir(f->dir);
    g_free(f->path);
    g_free(f->dir);
}

LwLedger *open_rw(const Fixture *f)
{
    GError *error = NULL;
    LwLedger *l = lw_ledger_open(f->path, FALSE, &error);
    g_assert_no_error(error);
    g_assert_nonnull(l);
    return l;
}
