/* hook-exec.c - every exec function glibc exports, and posix_spawn{,p}:
 * keep llmwrap's variables in the environment of programs started with a
 * clean or custom one (Python's subprocess env={}, env -i, Node's
 * spawn({env})). Each is hooked on its own, because glibc's execl, execvp,
 * fexecve, ... reach the kernel through its internal execve or a system
 * call, never through the exported execve. system() and popen() spawn
 * through glibc's internal posix_spawn and syscall(SYS_execve) through
 * nothing, so those stay out of reach (README's known limits).
 *
 * These hooks may run in a vfork child that shares the parent's memory
 * (Python's _posixsubprocess, glibc's posix_spawn): no allocation, no locks,
 * no writes to globals. The merged environment lives on this stack frame,
 * bounded by LW_SHIM_ENVP_MAX entries; a larger one is passed unchanged.
 */
#include "shim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef int (*ExecFn)(void *ctx, char *const envp[]);

/* Calls fn with envp, or with the merged environment when llmwrap's
 * variables need restoring. */
static int with_env(char *const envp[], ExecFn fn, void *ctx)
{
    if (!lw_active || !lw_cfg.propagate)
        return fn(ctx, envp);
    size_t n = lw_shim_envp_count(envp, LW_SHIM_ENVP_MAX);
    if (n == SIZE_MAX)
        return fn(ctx, envp);
    size_t cap = n + LW_SHIM_SNAP_MAX_VARS + 2;
    char *merged[cap];
    char preload[LW_SHIM_PRELOAD_MAX];
    if (lw_shim_envp_merge(&lw_snap, envp, merged, cap, preload, sizeof preload) < 0)
        return fn(ctx, envp);
    return fn(ctx, merged);
}

typedef struct {
    const char *path;
    char *const *argv;
} ExecCtx;

static int do_execve(void *p, char *const envp[])
{
    const ExecCtx *c = p;
    if (lw_real.execve == NULL) /* before the constructor: no dlsym in a vfork child */
        return (int)syscall(SYS_execve, c->path, c->argv, envp);
    return lw_real.execve(c->path, c->argv, envp);
}

typedef struct {
    int dirfd;
    const char *path;
    char *const *argv;
    int flags;
} ExecAtCtx;

/* Both fall back to the system call glibc makes when the constructor has
 * not run (or libc lacks the function): no dlsym in a vfork child. */
static int do_execveat(void *p, char *const envp[])
{
    const ExecAtCtx *c = p;
    if (lw_real.execveat == NULL)
        return (int)syscall(SYS_execveat, c->dirfd, c->path, c->argv, envp, c->flags);
    return lw_real.execveat(c->dirfd, c->path, c->argv, envp, c->flags);
}

static int do_fexecve(void *p, char *const envp[])
{
    const ExecAtCtx *c = p;
    if (lw_real.fexecve == NULL)
        return (int)syscall(SYS_execveat, c->dirfd, "", c->argv, envp, AT_EMPTY_PATH);
    return lw_real.fexecve(c->dirfd, c->argv, envp);
}

static int do_execvpe(void *p, char *const envp[])
{
    const ExecCtx *c = p;
    int (*fn)(const char *, char *const[], char *const[]) = LW_REAL(execvpe);
    if (fn == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return fn(c->path, c->argv, envp);
}

LW_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
    ExecCtx c = {path, argv};
    return with_env(envp, do_execve, &c);
}

LW_EXPORT int execv(const char *path, char *const argv[])
{
    ExecCtx c = {path, argv};
    return with_env(environ, do_execve, &c);
}

LW_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
    ExecAtCtx c = {fd, "", argv, AT_EMPTY_PATH};
    /* glibc refuses a NULL environment (EINVAL) rather than run the
     * program with an empty one: keep that. */
    if (envp == NULL)
        return do_fexecve(&c, envp);
    return with_env(envp, do_fexecve, &c);
}

LW_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
                       int flags)
{
    ExecAtCtx c = {dirfd, path, argv, flags};
    return with_env(envp, do_execveat, &c);
}

LW_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
    ExecCtx c = {file, argv};
    return with_env(envp, do_execvpe, &c);
}

LW_EXPORT int execvp(const char *file, char *const argv[])
{
    ExecCtx c = {file, argv};
    return with_env(environ, do_execvpe, &c);
}

/* Number of arguments (counting `arg`) before the terminating NULL, or
 * SIZE_MAX past glibc's own limit. */
static size_t count_args(va_list *ap)
{
    size_t n = 1;
    while (va_arg(*ap, char *) != NULL) {
        if (n == INT_MAX - 1)
            return SIZE_MAX;
        n++;
    }
    return n;
}

/* argv[0..argc] from `arg` and the variadic list, NULL included. */
static void collect_args(const char *arg, va_list *ap, char **argv, size_t argc)
{
    argv[0] = (char *)arg;
    for (size_t i = 1; i <= argc; i++)
        argv[i] = va_arg(*ap, char *);
}

/* execl, execlp and execle: argv is built on the stack, as glibc does. */
#define EXEC_LIST(first, arg, exec_fn, take_envp)                                                  \
    do {                                                                                           \
        va_list ap;                                                                                \
        va_start(ap, arg);                                                                         \
        size_t argc = count_args(&ap);                                                             \
        va_end(ap);                                                                                \
        if (argc == SIZE_MAX) {                                                                    \
            errno = E2BIG;                                                                         \
            return -1;                                                                             \
        }                                                                                          \
        char *argv[argc + 1];                                                                      \
        char *const *envp = environ;                                                               \
        va_start(ap, arg);                                                                         \
        collect_args(arg, &ap, argv, argc);                                                        \
        if (take_envp)                                                                             \
            envp = va_arg(ap, char *const *);                                                      \
        va_end(ap);                                                                                \
        ExecCtx c = {first, argv};                                                                 \
        return with_env(envp, exec_fn, &c);                                                        \
    } while (0)

LW_EXPORT int execl(const char *path, const char *arg, ...)
{
    EXEC_LIST(path, arg, do_execve, false);
}

LW_EXPORT int execlp(const char *file, const char *arg, ...)
{
    EXEC_LIST(file, arg, do_execvpe, false);
}

LW_EXPORT int execle(const char *path, const char *arg, ...)
{
    EXEC_LIST(path, arg, do_execve, true);
}

typedef struct {
    bool search_path;
    pid_t *pid;
    const char *path;
    const posix_spawn_file_actions_t *actions;
    const posix_spawnattr_t *attr;
    char *const *argv;
} SpawnCtx;

static int do_spawn(void *p, char *const envp[])
{
    const SpawnCtx *c = p;
    int (*fn)(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
              char *const[], char *const[]) =
        c->search_path ? LW_REAL(posix_spawnp) : LW_REAL(posix_spawn);
    if (fn == NULL)
        return ENOSYS;
    return fn(c->pid, c->path, c->actions, c->attr, c->argv, envp);
}

LW_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                          const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    SpawnCtx c = {false, pid, path, actions, attr, argv};
    return with_env(envp, do_spawn, &c);
}

LW_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
                           const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
    SpawnCtx c = {true, pid, file, actions, attr, argv};
    return with_env(envp, do_spawn, &c);
}
