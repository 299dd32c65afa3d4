/* paths.c - where every file of the system lives. */
#include "paths.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* A base directory of the XDG spec: `glib_dir`'s answer, unless `var` holds
 * a relative path, which the spec says to ignore for `fallback` under the
 * home directory. GLib takes it as it is: every command would put the state
 * under its own working directory, and llmwrap starts the collector in
 * "/", so the two would look for each other in different places. */
static char *xdg_dir(const char *(*glib_dir)(void), const char *var, const char *fallback)
{
    const char *value = g_getenv(var);
    if (value != NULL && value[0] != '\0' && !g_path_is_absolute(value))
        return g_build_filename(g_get_home_dir(), fallback, NULL);
    return g_strdup(glib_dir());
}

/* Whether $XDG_RUNTIME_DIR can hold the sockets: an absolute path to a
 * directory of this user. g_get_user_runtime_dir() falls back to the cache
 * dir itself when the variable is unset. One of another user's (`su`
 * keeps the caller's) would put our sockets where that user can replace
 * them with their own, and keep that user's own llmwrap from making its
 * run directory there. */
static gboolean is_own_runtime_dir(const char *dir)
{
    struct stat st;
    return dir != NULL && g_path_is_absolute(dir) && g_stat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
           st.st_uid == geteuid();
}

LwPaths *lw_paths_new(void)
{
    LwPaths *p = g_new0(LwPaths, 1);
    const char *home = g_getenv("LLMWRAP_HOME");
    g_autofree char *data_dir = NULL;
    g_autofree char *state_dir = NULL;

    if (home != NULL && home[0] != '\0') {
        p->home = g_canonicalize_filename(home, NULL);
        p->config_file = g_build_filename(p->home, "config.ini", NULL);
        data_dir = g_strdup(p->home);
        p->cache_dir = g_build_filename(p->home, "cache", NULL);
        p->log_dir = g_build_filename(p->home, "log", NULL);
        p->run_dir = g_build_filename(p->home, "run", NULL);
    } else {
        g_autofree char *config = xdg_dir(g_get_user_config_dir, "XDG_CONFIG_HOME", ".config");
        g_autofree char *data = xdg_dir(g_get_user_data_dir, "XDG_DATA_HOME", ".local/share");
        g_autofree char *cache = xdg_dir(g_get_user_cache_dir, "XDG_CACHE_HOME", ".cache");
        g_autofree char *state = xdg_dir(g_get_user_state_dir, "XDG_STATE_HOME", ".local/state");
        p->config_file = g_build_filename(config, "llmwrap", "config.ini", NULL);
        data_dir = g_build_filename(data, "llmwrap", NULL);
        p->cache_dir = g_build_filename(cache, "llmwrap", NULL);
        state_dir = g_build_filename(state, "llmwrap", NULL);
        p->log_dir = g_build_filename(state_dir, "log", NULL);
        const char *runtime = g_getenv("XDG_RUNTIME_DIR");
        if (is_own_runtime_dir(runtime))
            p->run_dir = g_build_filename(runtime, "llmwrap", NULL);
        else
            p->run_dir = g_build_filename(state_dir, "run", NULL);
    }
    p->ca_dir = g_build_filename(data_dir, "ca", NULL);
    p->ledger_file = g_build_filename(data_dir, "ledger.db", NULL);
    p->spool_file = g_build_filename(data_dir, "ledger.spool", NULL);
    p->ipc_socket = g_build_filename(p->run_dir, "collector.sock", NULL);
    p->attrib_socket = g_build_filename(p->run_dir, "attrib.sock", NULL);
    p->pid_file = g_build_filename(p->run_dir, "collector.pid", NULL);
    p->lock_file = g_build_filename(p->run_dir, "collector.lock", NULL);
    p->log_file = g_build_filename(p->log_dir, "collector.log", NULL);
    return p;
}

void lw_paths_free(LwPaths *p)
{
    if (p == NULL)
        return;
    g_free(p->home);
    g_free(p->config_file);
    g_free(p->ca_dir);
    g_free(p->ledger_file);
    g_free(p->spool_file);
    g_free(p->cache_dir);
    g_free(p->run_dir);
    g_free(p->log_dir);
    g_free(p->ipc_socket);
    g_free(p->attrib_socket);
    g_free(p->pid_file);
    g_free(p->lock_file);
    g_free(p->log_file);
    g_free(p);
}

static gboolean ensure_dir(const char *dir, GError **error)
{
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        int e = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot create %s: %s", dir,
                    g_strerror(e));
        return FALSE;
    }
    return TRUE;
}

/* Refuses a directory or file another user could change: one of theirs,
 * or one every user may write. Whoever controls config.ini sends the
 * program's API keys where they like (an upstream); whoever controls a
 * directory can swap what is in it, the sockets programs connect to
 * included. A file may be root's (an administrator's configuration). */
static gboolean check_private(const char *path, gboolean root_may_own, GError **error)
{
    struct stat st;
    if (g_stat(path, &st) != 0) {
        if (errno == ENOENT)
            return TRUE;
        int e = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot stat %s: %s", path,
                    g_strerror(e));
        return FALSE;
    }
    if (st.st_uid != geteuid() && !(root_may_own && st.st_uid == 0)) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM,
                    "%s belongs to uid %u, not to the current user (uid %u): another user "
                    "could change it",
                    path, (unsigned)st.st_uid, (unsigned)geteuid());
        return FALSE;
    }
    if ((st.st_mode & S_IWOTH) != 0) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_PERM,
                    "%s has mode %04o: every user may write it (chmod o-w %s)", path,
                    (unsigned)(st.st_mode & 07777), path);
        return FALSE;
    }
    return TRUE;
}

gboolean lw_paths_ensure(const LwPaths *p, GError **error)
{
    g_autofree char *config_dir = g_path_get_dirname(p->config_file);
    g_autofree char *data_dir = g_path_get_dirname(p->ledger_file);
    const char *dirs[] = {config_dir, data_dir, p->ca_dir, p->cache_dir, p->run_dir, p->log_dir};
    for (guint i = 0; i < G_N_ELEMENTS(dirs); i++) {
        if (!ensure_dir(dirs[i], error) || !check_private(dirs[i], FALSE, error))
            return FALSE;
    }
    if (!check_private(p->config_file, TRUE, error))
        return FALSE;
    /* The run directory holds the sockets: nobody else may even look. */
    if (g_chmod(p->run_dir, 0700) != 0) {
        int e = errno;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot chmod %s: %s",
                    p->run_dir, g_strerror(e));
        return FALSE;
    }
    const char *sockets[] = {p->ipc_socket, p->attrib_socket};
    for (guint i = 0; i < G_N_ELEMENTS(sockets); i++) {
        if (strlen(sockets[i]) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NAMETOOLONG,
                        "socket path %s is longer than a unix socket allows (%zu bytes); "
                        "use a shorter LLMWRAP_HOME",
                        sockets[i], sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
            return FALSE;
        }
    }
    return TRUE;
}
