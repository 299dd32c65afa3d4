/* doctor.h - will a program's provider traffic be intercepted and trusted?
 *
 * The answer follows the runtime coverage matrix of the interception
 * design (DNS through libc getaddrinfo, connect through libc, a trust
 * variable or the SSL_new hook the runtime honours):
 *   - static, Go, musl, foreign-architecture and secure-execution (setuid,
 *     setgid, file capabilities) programs are not intercepted: LD_PRELOAD
 *     never reaches them, or Go bypasses libc;
 *   - Bun resolves with c-ares, so it reaches the real providers directly;
 *   - Java is redirected but does not trust the CA (no trust variable);
 *   - Node, Python, curl, git, Deno and programs linking OpenSSL
 *     dynamically are intercepted and trusted;
 *   - other dynamic programs are intercepted; trust depends on whether they
 *     read SSL_CERT_FILE.
 *
 * Thread-safety: reentrant.
 */
#pragma once

#include <glib.h>
#include <stdio.h>

#include "program.h"

typedef enum {
    LW_VERDICT_TRUSTED = 0,     /* intercepted and trusted */
    LW_VERDICT_UNCERTAIN,       /* intercepted; trust depends on the program */
    LW_VERDICT_NOT_TRUSTED,     /* redirected, but TLS to the collector will fail */
    LW_VERDICT_NOT_INTERCEPTED, /* its provider traffic is not metered */
} LwVerdictKind;

typedef struct {
    LwVerdictKind kind;
    char *description;  /* what the program is, one line */
    GPtrArray *reasons; /* char*: why, one line each */
    /* One line for llmwrap's start-up warning and the exit summary, set for
     * NOT_TRUSTED and NOT_INTERCEPTED; NULL otherwise. */
    char *warning;
} LwVerdict;

/* Assesses the program `p` (the command, possibly a "#!" script). `deep`
 * also walks the libraries it needs and the interpreter's modules (for
 * --doctor); without it only facts of the command's own file are used (for
 * every llmwrap start), and a program whose trust cannot be told cheaply is
 * UNCERTAIN. `label` names the command in the warning. Transfer full. */
LwVerdict *lw_doctor_assess(const LwProgram *p, const char *label, gboolean deep);
void lw_verdict_free(LwVerdict *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwVerdict, lw_verdict_free)

/* `llmwrap --doctor CMD`: resolves CMD through `path_env`, prints one
 * verdict line and its reasons to `out`. Returns the exit status: 0 when
 * CMD will be intercepted and trusted, 1 otherwise (also when CMD is not
 * found). */
int lw_doctor_run(const char *cmd, const char *path_env, FILE *out);
