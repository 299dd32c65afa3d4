/* shim.h - runtime state shared by the hook files of libllmwrap-preload.so.
 *
 * Everything here is written once, by the constructor in shim.c, before
 * main() and before the program can start threads; hooks only read it. A
 * hook that runs earlier (another library's constructor) sees a zeroed
 * configuration (nothing is synthetic, nothing is propagated) and reaches
 * libc through a fallback: a raw syscall, or a lazy dlsym(RTLD_NEXT).
 */
#pragma once

#include "shim-core.h"

#include <netdb.h>
#include <spawn.h>
#include <sys/socket.h>

/* Hooks are the only symbols the .so exports (exports.map repeats the list;
 * everything else is compiled with -fvisibility=hidden). */
#define LW_EXPORT __attribute__((visibility("default")))

/* Real libc functions, resolved with dlsym(RTLD_NEXT) in the constructor. */
typedef struct {
    int (*connect)(int, const struct sockaddr *, socklen_t);
    ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
    ssize_t (*sendmsg)(int, const struct msghdr *, int);
    int (*getaddrinfo)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    struct hostent *(*gethostbyname)(const char *);
    struct hostent *(*gethostbyname2)(const char *, int);
    int (*gethostbyname_r)(const char *, struct hostent *, char *, size_t, struct hostent **,
                           int *);
    int (*gethostbyname2_r)(const char *, int, struct hostent *, char *, size_t, struct hostent **,
                            int *);
    struct hostent *(*gethostbyaddr)(const void *, socklen_t, int);
    int (*gethostbyaddr_r)(const void *, socklen_t, int, struct hostent *, char *, size_t,
                           struct hostent **, int *);
    int (*getnameinfo)(const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t,
                       int);
    int (*execve)(const char *, char *const[], char *const[]);
    int (*fexecve)(int, char *const[], char *const[]);
    int (*execveat)(int, const char *, char *const[], char *const[], int);
    int (*execvpe)(const char *, char *const[], char *const[]);
    int (*posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                       const posix_spawnattr_t *, char *const[], char *const[]);
    int (*posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                        const posix_spawnattr_t *, char *const[], char *const[]);
} LwReal;

extern LwReal lw_real;
/* Whether the shim acts in this process (configured, not the collector). */
extern bool lw_active;
extern LwShimConfig lw_cfg;
extern LwShimEnvSnapshot lw_snap;
/* /proc/self/exe, cut for attribution; lw_exe_len may be 0. */
extern char lw_exe[LW_SHIM_ATTRIB_EXE_MAX + 4];
extern size_t lw_exe_len;

/* dlsym(RTLD_NEXT, name), aborting with a message if that is `self` (the
 * shim would recurse forever). NULL if libc lacks the symbol. */
void *lw_shim_next(const char *name, void *self);

/* The real function, resolving it lazily when a hook runs before the
 * constructor did. */
#define LW_REAL(fn)                                                                                \
    (lw_real.fn != NULL ? lw_real.fn : (__typeof__(lw_real.fn))lw_shim_next(#fn, (void *)(fn)))

/* Writes "llmwrap: <message>\n" to stderr in one write(2). errno preserved. */
void lw_shim_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Returns true the first time it is called for `*flag` in this process
 * (a forked child starts afresh: the flag holds the pid that used it).
 * Thread-safe. */
bool lw_shim_first_in_process(pid_t *flag);
