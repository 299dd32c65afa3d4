/* program.h - what kind of program a command is: PATH lookup, `#!`
 * interpreters, and the ELF facts that decide whether LD_PRELOAD reaches it.
 *
 * Used by `llmwrap --doctor` (in depth) and by every llmwrap start (the
 * cheap part: a few small reads of the command's file, to warn about
 * programs whose traffic cannot be intercepted). Only the file is read;
 * nothing is executed.
 *
 * Thread-safety: reentrant.
 */
#pragma once

#include <glib.h>

/* Bounds on what is read from untrusted files. */
#define LW_PROGRAM_MAX_DEPTH    4    /* #! interpreters followed */
#define LW_PROGRAM_MAX_NEEDED   256  /* DT_NEEDED entries kept */
#define LW_PROGRAM_MAX_SECTIONS 4096 /* section headers scanned for Go */

typedef enum {
    LW_LOOKUP_FOUND = 0,
    LW_LOOKUP_NOT_FOUND,      /* a shell says "command not found": 127 */
    LW_LOOKUP_NOT_EXECUTABLE, /* permission denied or a directory: 126 */
} LwLookup;

/* Resolves `cmd` as execvp does: a name with a '/' is used as it is;
 * otherwise each directory of `path_env` (NULL: "/bin:/usr/bin"; an empty
 * entry is the current directory) is tried in order and the first
 * executable regular file wins. On LW_LOOKUP_FOUND *ret_path is transfer
 * full; otherwise *ret_errno says why (ENOENT, EACCES, EISDIR). */
LwLookup lw_program_lookup(const char *cmd, const char *path_env, char **ret_path, int *ret_errno);

typedef struct _LwProgram LwProgram;
struct _LwProgram {
    char *path;      /* as resolved */
    char *real_path; /* symlinks resolved */
    char *name;      /* basename of real_path */

    /* Secure-execution mode: ld.so ignores LD_PRELOAD for this user. */
    gboolean setuid, setgid, has_caps;
    gboolean secure_exec;

    /* "#!" scripts */
    gboolean is_script;
    char *shebang;          /* the line after "#!", trimmed */
    char *interpreter_cmd;  /* the command that runs it (env's argument resolved by name) */
    LwProgram *interpreter; /* NULL when it could not be resolved or depth ran out */

    /* ELF */
    gboolean is_elf;
    gboolean is_foreign; /* another class, byte order or machine than this llmwrap */
    gboolean is_dynamic; /* has PT_INTERP: ld.so runs it, so LD_PRELOAD applies */
    char *elf_interp;    /* PT_INTERP */
    gboolean is_musl;    /* the interpreter is musl's: a glibc shim cannot load */
    gboolean is_go;      /* Go build ID note or .go.buildinfo section */
    char **needed;       /* DT_NEEDED, NULL-terminated (empty for static) */
    char **runpath;      /* DT_RUNPATH or DT_RPATH entries, $ORIGIN expanded */
};

/* Inspects the file at `path` (already resolved), following "#!" up to
 * LW_PROGRAM_MAX_DEPTH interpreters, resolving `env NAME` through
 * `path_env`. Never fails: what cannot be read stays unknown (all flags
 * FALSE). Transfer full. */
LwProgram *lw_program_inspect(const char *path, const char *path_env);
void lw_program_free(LwProgram *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LwProgram, lw_program_free)

/* The program that finally runs: follows `interpreter` to the end of the
 * "#!" chain. Borrowed from p. */
const LwProgram *lw_program_final(const LwProgram *p);

/* Whether p (an ELF) needs a library whose name starts with `prefix`
 * ("libssl.so"). */
gboolean lw_program_needs(const LwProgram *p, const char *prefix);

/* Finds a needed library the way ld.so would for the common layouts:
 * p's RUNPATH, then the multiarch and standard library directories.
 * Transfer full, NULL if not found. */
char *lw_program_find_library(const LwProgram *p, const char *soname);

/* Whether p or the libraries it needs, followed up to `depth` levels, need
 * a library whose name starts with `prefix`. */
gboolean lw_program_needs_deep(const LwProgram *p, const char *prefix, guint depth);
