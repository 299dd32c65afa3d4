/* paths.h - where every file of the system lives.
 *
 * LLMWRAP_HOME=DIR puts everything under DIR:
 *   DIR/config.ini  DIR/ca/  DIR/ledger.db (+ ledger.spool)  DIR/cache/  DIR/run/  DIR/log/
 * Without it, the XDG base directories:
 *   config.ini  in $XDG_CONFIG_HOME/llmwrap   (~/.config/llmwrap)
 *   ca/, ledger.* in $XDG_DATA_HOME/llmwrap   (~/.local/share/llmwrap)
 *   cache/      in $XDG_CACHE_HOME/llmwrap    (~/.cache/llmwrap)
 *   log/        in $XDG_STATE_HOME/llmwrap    (~/.local/state/llmwrap)
 *   run/        in $XDG_RUNTIME_DIR/llmwrap (a directory of this user's),
 *               else the state directory
 * A relative XDG_*_HOME is ignored for its default, as the XDG spec says.
 * run/ holds the IPC socket, the attribution socket, the pid file and the
 * start lock. Directories are created 0700 by lw_paths_ensure().
 *
 * Thread-safety: an LwPaths is immutable.
 */
#pragma once

#include <glib.h>

typedef struct {
    char *home;        /* LLMWRAP_HOME, or NULL when XDG directories are used */
    char *config_file;
    char *ca_dir;
    char *ledger_file;
    char *spool_file;  /* rows not yet in the ledger (common/ledger-spool.h) */
    char *cache_dir;
    char *run_dir;
    char *log_dir;
    char *ipc_socket;    /* run/collector.sock  (stream, protobuf frames) */
    char *attrib_socket; /* run/attrib.sock     (datagrams from the shim) */
    char *pid_file;      /* run/collector.pid */
    char *lock_file;     /* run/collector.lock  (serialises collector start) */
    char *log_file;      /* log/collector.log   (daemon mode) */
} LwPaths;

/* Computes the paths from the environment. Never fails; no I/O but a
 * stat() of $XDG_RUNTIME_DIR. Transfer full. */
LwPaths *lw_paths_new(void);
void lw_paths_free(LwPaths *paths);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwPaths, lw_paths_free)

/* Creates every directory (0700, parents as needed) and checks that the
 * socket paths fit in sun_path. Refuses (G_FILE_ERROR_PERM) a directory of
 * another user or one every user may write, and such a config.ini (one of
 * root's is accepted): another user could redirect the collector. */
gboolean lw_paths_ensure(const LwPaths *paths, GError **error);
