/* ipc-budgets.h - IPC requests about budgets and guards: reload (llmctl
 * changed them in the ledger) and the live budget view (reservations exist
 * only here). */
#pragma once

#include "ipc-server.h"

/* Registers the handlers on `ipc`; uses server->budgets and server->guards. */
void lw_ipc_budgets_register(LwIpcServer *ipc);
