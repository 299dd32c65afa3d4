/* shim.c - start-up of libllmwrap-preload.so: real symbols, configuration,
 * the exec snapshot.
 *
 * The constructor does all the work that may allocate or take loader locks
 * (dlsym, readlink, getenv-style parsing) so the hooks never have to: after
 * it ran, hooks read only immutable state.
 */
#include "shim.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

LwReal lw_real;
bool lw_active;
LwShimConfig lw_cfg;
LwShimEnvSnapshot lw_snap;
char lw_exe[LW_SHIM_ATTRIB_EXE_MAX + 4];
size_t lw_exe_len;

void lw_shim_say(const char *fmt, ...)
{
    int saved = errno;
    char buf[1024] = "llmwrap: ";
    size_t prefix = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + prefix, sizeof buf - prefix - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(buf);
    buf[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, buf, len);
    (void)w;
    errno = saved;
}

bool lw_shim_first_in_process(pid_t *flag)
{
    pid_t me = getpid();
    return __atomic_exchange_n(flag, me, __ATOMIC_RELAXED) != me;
}

void *lw_shim_next(const char *name, void *self)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (p == self && p != NULL) {
        lw_shim_say("dlsym(RTLD_NEXT, \"%s\") returned the shim's own %s(); aborting instead "
                    "of recursing forever (is the shim linked into the program?)",
                    name, name);
        abort();
    }
    return p;
}

#define RESOLVE(fn) lw_real.fn = (__typeof__(lw_real.fn))lw_shim_next(#fn, (void *)(fn))

static void resolve_real(void)
{
    RESOLVE(connect);
    RESOLVE(sendto);
    RESOLVE(sendmsg);
    RESOLVE(getaddrinfo);
    RESOLVE(gethostbyname);
    RESOLVE(gethostbyname2);
    RESOLVE(gethostbyname_r);
    RESOLVE(gethostbyname2_r);
    RESOLVE(gethostbyaddr);
    RESOLVE(gethostbyaddr_r);
    RESOLVE(getnameinfo);
    RESOLVE(execve);
    RESOLVE(fexecve);
    RESOLVE(execveat);
    RESOLVE(execvpe);
    RESOLVE(posix_spawn);
    RESOLVE(posix_spawnp);
}

/* The collector and llmwrap itself must never be intercepted, even when a
 * user's environment leaks the preload into them. */
static bool is_exempt_exe(const char *path, size_t len)
{
    const char *base = memrchr(path, '/', len);
    base = base != NULL ? base + 1 : path;
    size_t n = len - (size_t)(base - path);
    return (n == 13 && memcmp(base, "llm-collector", 13) == 0) ||
           (n == 7 && memcmp(base, "llmwrap", 7) == 0);
}

static const char *own_path(void)
{
    Dl_info info;
    if (dladdr((void *)own_path, &info) != 0 && info.dli_fname != NULL)
        return info.dli_fname;
    return NULL;
}

__attribute__((constructor)) static void lw_shim_init(void)
{
    int saved = errno;
    char exe[LW_SHIM_MAX_PATH];
    const char *bad_var = NULL;

    resolve_real();

    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe);
    if (n < 0)
        n = 0;
    lw_exe_len = (size_t)n < sizeof lw_exe ? (size_t)n : sizeof lw_exe;
    memcpy(lw_exe, exe, lw_exe_len);
    if (is_exempt_exe(exe, (size_t)n))
        goto out;

    switch (lw_shim_config_parse(&lw_cfg, environ, &bad_var)) {
    case LW_SHIM_ACTIVE:
        for (unsigned i = 0; i < lw_cfg.n_ignored; i++)
            lw_shim_say("%s is malformed; %s", lw_cfg.ignored[i].var, lw_cfg.ignored[i].instead);
        break;
    case LW_SHIM_INERT_MALFORMED:
        lw_shim_say("ignoring this process: %s is malformed (connections are not redirected)",
                    bad_var);
        goto out;
    case LW_SHIM_INERT_UNSET:
    case LW_SHIM_INERT_COLLECTOR:
        goto out;
    }

    if (lw_cfg.propagate)
        lw_shim_env_snapshot(&lw_snap, environ,
                             lw_cfg.preload[0] != '\0' ? lw_cfg.preload : own_path());
    lw_active = true;
out:
    errno = saved;
}
