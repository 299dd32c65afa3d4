/* launch.h - finding the collector and the shim, and starting or joining
 * the collector of this state directory.
 *
 * One collector serves a state directory (LLMWRAP_HOME). llmwrap connects
 * to its IPC socket; when nothing answers it runs `llm-collector --daemon`,
 * which returns only once the collector serves (exit 0), or exits 3 when
 * another collector holds the pid-file lock: then someone else (another
 * llmwrap starting at the same moment) is starting it, and llmwrap waits
 * for it to answer. The lock makes the collector unique; nothing here
 * needs to be.
 *
 * Thread-safety: one thread.
 */
#pragma once

#include <glib.h>
#include <signal.h>

#include "ipc.h"
#include "paths.h"

#define LW_LAUNCH_ERROR (lw_launch_error_quark())
GQuark lw_launch_error_quark(void);

typedef enum {
    LW_LAUNCH_ERROR_NOT_FOUND, /* no llm-collector / shim binary */
    LW_LAUNCH_ERROR_BAD_PATH,  /* the shim's path cannot be put in LD_PRELOAD */
    LW_LAUNCH_ERROR_START,     /* llm-collector failed to start */
    LW_LAUNCH_ERROR_TIMEOUT,   /* nothing answered in time */
} LwLaunchError;

/* Exit statuses of `llm-collector`: a bad configuration (no retry helps),
 * and another one holding the lock. */
#define LW_COLLECTOR_EXIT_CONFIG 2
#define LW_COLLECTOR_EXIT_RUNNING 3
/* Spawn attempts per lw_launch_connect() call (within its deadline). */
#define LW_LAUNCH_MAX_ATTEMPTS 20

/* Where llm-collector is: $LLMWRAP_COLLECTOR_BIN, else next to llmwrap in a
 * build tree (../collector/llm-collector), else in llmwrap's directory,
 * else the install path. Transfer full; NULL with an error when none
 * exists. */
char *lw_launch_find_collector(GError **error);

/* Where the shim is, as an absolute path: $LLMWRAP_PRELOAD_PATH, else the
 * build tree's ../preload/libllmwrap-preload.so, else the install path.
 * Transfer full; NULL with an error when none exists, or (BAD_PATH) when
 * its path holds a space, tab or ':', where ld.so would split it. */
char *lw_launch_find_preload(GError **error);

typedef struct {
    const LwPaths *paths; /* borrowed */
    char *collector_bin;
    char **env;    /* the collector's environment */
    sigset_t mask; /* the signal mask the collector starts with */
} LwLaunch;

/* `paths` is borrowed and must outlive the result; `env` and `mask` (the
 * signal mask the collector starts with) are copied. */
LwLaunch *lw_launch_new(const LwPaths *paths, const char *collector_bin, char **env,
                        const sigset_t *mask);
void lw_launch_free(LwLaunch *l);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwLaunch, lw_launch_free)

/* Connects to the collector, starting it when none answers (with
 * `--port PORT` when port > 0, so a restart keeps the port the running
 * programs were given). A collector that dies before it answers, or the
 * lock of one that just died, only costs another attempt; only a bad
 * configuration ends the attempts early. Waits at most timeout_ms in all.
 * *ret_started (may be NULL) says whether this call started it. Transfer
 * full. */
LwIpcClient *lw_launch_connect(LwLaunch *l, guint16 port, int timeout_ms, gboolean *ret_started,
                               GError **error);
