/* ledger-fixture.h - a ledger path in a fresh temporary directory, removed
 * with everything SQLite put next to it; for the ledger unit tests
 * (g_test_add with Fixture, fixture_setup and fixture_teardown). */
#pragma once

#include <glib.h>

#include "ledger.h"

typedef struct {
    char *dir;  /* removed with everything in it */
    char *path; /* DIR/ledger.db, not created yet */
} Fixture;

void fixture_setup(Fixture *f, gconstpointer data);
void fixture_teardown(Fixture *f, gconstpointer data);

/* Opens the fixture's ledger read-write (creating it), or fails the test. */
LwLedger *open_rw(const Fixture *f);

/* A row with every field set to something distinguishable. */
LwLedgerRequest fixture_full_row(void);

/* Asserts two rows are the same, field by field, except tags_json and
 * raw_usage (which a listing may not carry). */
void fixture_assert_same_row(const LwLedgerRequest *a, const LwLedgerRequest *b);
