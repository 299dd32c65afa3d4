/* ipc-runs.h - IPC requests about runs: open (llmwrap starts a program),
 * close (it exited), kill (llmctl kill). */
#pragma once

#include "ipc-server.h"
#include "runs.h"

/* Registers the handlers on `ipc`; `runs` must outlive it. */
void lw_ipc_runs_register(LwIpcServer *ipc, LwRuns *runs);
