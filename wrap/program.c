/* program.c - PATH lookup, "#!" interpreters and ELF facts.
 *
 * The ELF reader trusts nothing in the file: every offset and size is
 * checked against the file and capped before it is used, and reads are
 * pread()s of bounded length. Only the build's own ELF class, byte order
 * and machine are parsed; anything else is "foreign" (the shim could not
 * load into it anyway).
 */
#include "program.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_PHDRS   512
#define MAX_DYN     8192
#define MAX_STRTAB  (4 * 1024 * 1024)
#define MAX_NOTE    (64 * 1024)
#define SHEBANG_MAX 256 /* the kernel's BINPRM_BUF_SIZE */

#if defined(__x86_64__)
#define NATIVE_MACHINE EM_X86_64
#define MULTIARCH      "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define NATIVE_MACHINE EM_AARCH64
#define MULTIARCH      "aarch64-linux-gnu"
#elif defined(__i386__)
#define NATIVE_MACHINE EM_386
#define MULTIARCH      "i386-linux-gnu"
#else
#define NATIVE_MACHINE EM_NONE
#define MULTIARCH      NULL
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_DATA ELFDATA2LSB
#else
#define NATIVE_DATA ELFDATA2MSB
#endif

#if __SIZEOF_POINTER__ == 8
#define NATIVE_CLASS ELFCLASS64
#else
#define NATIVE_CLASS ELFCLASS32
#endif

/* ---- lookup ---- */

static int check_executable(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return errno;
    if (S_ISDIR(st.st_mode))
        return EISDIR;
    if (!S_ISREG(st.st_mode) || access(path, X_OK) != 0)
        return EACCES;
    return 0;
}

LwLookup lw_program_lookup(const char *cmd, const char *path_env, char **ret_path, int *ret_errno)
{
    if (cmd == NULL || *cmd == '\0') {
        *ret_errno = ENOENT;
        return LW_LOOKUP_NOT_FOUND;
    }
    if (strchr(cmd, '/') != NULL) {
        int e = check_executable(cmd);
        if (e == 0) {
            *ret_path = g_strdup(cmd);
            return LW_LOOKUP_FOUND;
        }
        *ret_errno = e;
        return (e == ENOENT || e == ENOTDIR) ? LW_LOOKUP_NOT_FOUND : LW_LOOKUP_NOT_EXECUTABLE;
    }
    /* As execvp: a file found but not executable is remembered, and
     * reported only if nothing later on PATH is executable. */
    gboolean seen_denied = FALSE;
    g_auto(GStrv) dirs = g_strsplit(path_env != NULL ? path_env : "/bin:/usr/bin", ":", -1);
    for (guint i = 0; dirs[i] != NULL; i++) {
        g_autofree char *candidate = g_build_filename(*dirs[i] != '\0' ? dirs[i] : ".", cmd, NULL);
        int e = check_executable(candidate);
        if (e == 0) {
            /* Keep the form execvp would use ("./x" for an empty entry). */
            *ret_path =
                *dirs[i] != '\0' ? g_steal_pointer(&candidate) : g_strconcat("./", cmd, NULL);
            return LW_LOOKUP_FOUND;
        }
        if (e == EACCES)
            seen_denied = TRUE;
    }
    *ret_errno = seen_denied ? EACCES : ENOENT;
    return seen_denied ? LW_LOOKUP_NOT_EXECUTABLE : LW_LOOKUP_NOT_FOUND;
}

/* ---- ELF ---- */

typedef struct {
    int fd;
    off_t size;
    ElfW(Ehdr) eh;
    ElfW(Phdr) * ph;
    guint n_ph;
} Elf;

static gboolean read_at(const Elf *elf, void *buf, size_t len, guint64 off)
{
    if (off > (guint64)elf->size || len > (guint64)elf->size - off)
        return FALSE;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(elf->fd, (char *)buf + done, len - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return FALSE;
        done += (size_t)n;
    }
    return TRUE;
}

/* File offset of a virtual address, through the PT_LOAD that maps it. */
static gboolean vaddr_to_offset(const Elf *elf, guint64 vaddr, guint64 *ret_off)
{
    for (guint i = 0; i < elf->n_ph; i++) {
        const ElfW(Phdr) *ph = &elf->ph[i];
        if (ph->p_type == PT_LOAD && vaddr >= ph->p_vaddr && vaddr - ph->p_vaddr < ph->p_filesz) {
            *ret_off = vaddr - ph->p_vaddr + ph->p_offset;
            return TRUE;
        }
    }
    return FALSE;
}

static gboolean notes_have_go(const Elf *elf, const ElfW(Phdr) * ph)
{
    if (ph->p_filesz == 0 || ph->p_filesz > MAX_NOTE)
        return FALSE;
    g_autofree guint8 *buf = g_malloc(ph->p_filesz);
    if (!read_at(elf, buf, ph->p_filesz, ph->p_offset))
        return FALSE;
    guint64 align = ph->p_align == 8 ? 8 : 4;
    guint64 pos = 0;
    while (pos + sizeof(ElfW(Nhdr)) <= ph->p_filesz) {
        ElfW(Nhdr) nh;
        memcpy(&nh, buf + pos, sizeof nh);
        guint64 name_off = pos + sizeof nh;
        guint64 desc_off = name_off + ((nh.n_namesz + align - 1) & ~(align - 1));
        guint64 next = desc_off + ((nh.n_descsz + align - 1) & ~(align - 1));
        if (desc_off > ph->p_filesz || next > ph->p_filesz || next <= pos)
            return FALSE;
        /* Go's linker writes name "Go" (NUL-padded), type 4: the build ID. */
        if (nh.n_namesz >= 2 && nh.n_namesz <= 4 && memcmp(buf + name_off, "Go", 2) == 0 &&
            nh.n_type == 4)
            return TRUE;
        pos = next;
    }
    return FALSE;
}

static gboolean sections_have_go(const Elf *elf)
{
    const ElfW(Ehdr) *eh = &elf->eh;
    if (eh->e_shoff == 0 || eh->e_shnum == 0 || eh->e_shnum > LW_PROGRAM_MAX_SECTIONS ||
        eh->e_shentsize != sizeof(ElfW(Shdr)) || eh->e_shstrndx >= eh->e_shnum)
        return FALSE;
    g_autofree ElfW(Shdr) *sh = g_new(ElfW(Shdr), eh->e_shnum);
    if (!read_at(elf, sh, sizeof *sh * eh->e_shnum, eh->e_shoff))
        return FALSE;
    const ElfW(Shdr) *strs = &sh[eh->e_shstrndx];
    if (strs->sh_size == 0 || strs->sh_size > MAX_STRTAB)
        return FALSE;
    g_autofree char *names = g_malloc(strs->sh_size + 1);
    if (!read_at(elf, names, strs->sh_size, strs->sh_offset))
        return FALSE;
    names[strs->sh_size] = '\0';
    for (guint i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_name >= strs->sh_size)
            continue;
        const char *n = names + sh[i].sh_name;
        if (strcmp(n, ".go.buildinfo") == 0 || strcmp(n, ".note.go.buildid") == 0)
            return TRUE;
    }
    return FALSE;
}

static char *expand_origin(const char *entry, const char *origin)
{
    GString *s = g_string_new(NULL);
    for (const char *p = entry; *p != '\0';) {
        if (g_str_has_prefix(p, "$ORIGIN")) {
            g_string_append(s, origin);
            p += strlen("$ORIGIN");
        } else if (g_str_has_prefix(p, "${ORIGIN}")) {
            g_string_append(s, origin);
            p += strlen("${ORIGIN}");
        } else {
            g_string_append_c(s, *p++);
        }
    }
    return g_string_free(s, FALSE);
}

static void read_dynamic(LwProgram *p, const Elf *elf, const ElfW(Phdr) * dyn_ph)
{
    guint64 n = dyn_ph->p_filesz / sizeof(ElfW(Dyn));
    if (n == 0 || n > MAX_DYN)
        return;
    g_autofree ElfW(Dyn) *dyn = g_new(ElfW(Dyn), n);
    if (!read_at(elf, dyn, n * sizeof *dyn, dyn_ph->p_offset))
        return;
    guint64 strtab = 0, strsz = 0;
    gboolean has_strtab = FALSE;
    for (guint64 i = 0; i < n && dyn[i].d_tag != DT_NULL; i++) {
        if (dyn[i].d_tag == DT_STRTAB) {
            strtab = dyn[i].d_un.d_ptr;
            has_strtab = TRUE;
        } else if (dyn[i].d_tag == DT_STRSZ) {
            strsz = dyn[i].d_un.d_val;
        }
    }
    guint64 str_off = 0;
    if (!has_strtab || strsz == 0 || strsz > MAX_STRTAB || !vaddr_to_offset(elf, strtab, &str_off))
        return;
    g_autofree char *strs = g_malloc(strsz + 1);
    if (!read_at(elf, strs, strsz, str_off))
        return;
    strs[strsz] = '\0';
    g_autofree char *origin = g_path_get_dirname(p->real_path);
    GPtrArray *needed = g_ptr_array_new();
    GPtrArray *runpath = g_ptr_array_new();
    for (guint64 i = 0; i < n && dyn[i].d_tag != DT_NULL; i++) {
        if (dyn[i].d_un.d_val >= strsz)
            continue;
        const char *s = strs + dyn[i].d_un.d_val;
        if (dyn[i].d_tag == DT_NEEDED && needed->len < LW_PROGRAM_MAX_NEEDED) {
            g_ptr_array_add(needed, g_strdup(s));
        } else if (dyn[i].d_tag == DT_RUNPATH || dyn[i].d_tag == DT_RPATH) {
            g_auto(GStrv) parts = g_strsplit(s, ":", 16);
            for (guint k = 0; parts[k] != NULL; k++) {
                if (*parts[k] != '\0')
                    g_ptr_array_add(runpath, expand_origin(parts[k], origin));
            }
        }
    }
    g_ptr_array_add(needed, NULL);
    g_ptr_array_add(runpath, NULL);
    g_strfreev(p->needed);
    g_strfreev(p->runpath);
    p->needed = (char **)g_ptr_array_free(needed, FALSE);
    p->runpath = (char **)g_ptr_array_free(runpath, FALSE);
}

static void inspect_elf(LwProgram *p, int fd, off_t size)
{
    Elf elf = {.fd = fd, .size = size};
    unsigned char ident[EI_NIDENT];
    if (!read_at(&elf, ident, sizeof ident, 0) || memcmp(ident, ELFMAG, SELFMAG) != 0)
        return;
    p->is_elf = TRUE;
    if (ident[EI_CLASS] != NATIVE_CLASS || ident[EI_DATA] != NATIVE_DATA ||
        !read_at(&elf, &elf.eh, sizeof elf.eh, 0) || elf.eh.e_machine != NATIVE_MACHINE) {
        p->is_foreign = TRUE;
        return;
    }
    if (elf.eh.e_phentsize != sizeof(ElfW(Phdr)) || elf.eh.e_phnum == 0 ||
        elf.eh.e_phnum > MAX_PHDRS)
        return;
    elf.n_ph = elf.eh.e_phnum;
    g_autofree ElfW(Phdr) *ph = g_new(ElfW(Phdr), elf.n_ph);
    if (!read_at(&elf, ph, sizeof *ph * elf.n_ph, elf.eh.e_phoff))
        return;
    elf.ph = ph;
    const ElfW(Phdr) *dyn = NULL;
    for (guint i = 0; i < elf.n_ph; i++) {
        if (ph[i].p_type == PT_INTERP && ph[i].p_filesz > 1 && ph[i].p_filesz < 4096) {
            g_autofree char *interp = g_malloc0(ph[i].p_filesz + 1);
            if (read_at(&elf, interp, ph[i].p_filesz, ph[i].p_offset)) {
                g_free(p->elf_interp);
                p->elf_interp = g_steal_pointer(&interp);
                p->is_dynamic = TRUE;
            }
        } else if (ph[i].p_type == PT_DYNAMIC) {
            dyn = &ph[i];
        } else if (ph[i].p_type == PT_NOTE && !p->is_go) {
            p->is_go = notes_have_go(&elf, &ph[i]);
        }
    }
    if (p->elf_interp != NULL && strstr(p->elf_interp, "ld-musl") != NULL)
        p->is_musl = TRUE;
    if (dyn != NULL)
        read_dynamic(p, &elf, dyn);
    if (!p->is_go)
        p->is_go = sections_have_go(&elf);
}

/* ---- scripts ---- */

/* The command that runs a "#!" script: the interpreter, or for
 * "/usr/bin/env [-S] [-options] [NAME=VALUE]... CMD" the CMD. */
static char *shebang_command(const char *line)
{
    g_auto(GStrv) words = g_strsplit_set(line, " \t", -1);
    guint i = 0;
    while (words[i] != NULL && *words[i] == '\0')
        i++;
    if (words[i] == NULL)
        return NULL;
    g_autofree char *base = g_path_get_basename(words[i]);
    if (strcmp(base, "env") != 0)
        return g_strdup(words[i]);
    for (i++; words[i] != NULL; i++) {
        if (*words[i] == '\0' || *words[i] == '-' || strchr(words[i], '=') != NULL)
            continue;
        return g_strdup(words[i]);
    }
    return NULL;
}

static void inspect_at(LwProgram *p, const char *path_env, guint depth);

static void inspect_script(LwProgram *p, int fd, const char *path_env, guint depth)
{
    char buf[SHEBANG_MAX + 1];
    ssize_t n = pread(fd, buf, SHEBANG_MAX, 0);
    if (n < 2 || buf[0] != '#' || buf[1] != '!')
        return;
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl != NULL)
        *nl = '\0';
    p->is_script = TRUE;
    p->shebang = g_strstrip(g_strdup(buf + 2));
    p->interpreter_cmd = shebang_command(p->shebang);
    if (p->interpreter_cmd == NULL || depth >= LW_PROGRAM_MAX_DEPTH)
        return;
    g_autofree char *resolved = NULL;
    int err = 0;
    if (lw_program_lookup(p->interpreter_cmd, path_env, &resolved, &err) != LW_LOOKUP_FOUND)
        return;
    LwProgram *in = g_new0(LwProgram, 1);
    in->path = g_steal_pointer(&resolved);
    inspect_at(in, path_env, depth + 1);
    p->interpreter = in;
}

/* ---- the file ---- */

static void inspect_at(LwProgram *p, const char *path_env, guint depth)
{
    p->real_path = realpath(p->path, NULL);
    if (p->real_path == NULL)
        p->real_path = g_strdup(p->path);
    p->name = g_path_get_basename(p->real_path);
    p->needed = g_new0(char *, 1);
    p->runpath = g_new0(char *, 1);

    int fd = open(p->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return;
    }
    p->setuid = (st.st_mode & S_ISUID) != 0;
    p->setgid = (st.st_mode & S_ISGID) != 0 && (st.st_mode & S_IXGRP) != 0;
    p->has_caps = fgetxattr(fd, "security.capability", NULL, 0) > 0;
    /* ld.so runs in secure-execution mode (AT_SECURE) when the exec
     * changes the effective ids or grants capabilities; it then ignores
     * LD_PRELOAD. Root gains no capability from a file. */
    p->secure_exec = (p->setuid && st.st_uid != geteuid()) ||
                     (p->setgid && st.st_gid != getegid()) || (p->has_caps && geteuid() != 0);

    inspect_elf(p, fd, st.st_size);
    if (!p->is_elf)
        inspect_script(p, fd, path_env, depth);
    close(fd);
}

LwProgram *lw_program_inspect(const char *path, const char *path_env)
{
    LwProgram *p = g_new0(LwProgram, 1);
    p->path = g_strdup(path);
    inspect_at(p, path_env, 0);
    return p;
}

void lw_program_free(LwProgram *p)
{
    if (p == NULL)
        return;
    g_free(p->path);
    g_free(p->real_path);
    g_free(p->name);
    g_free(p->shebang);
    g_free(p->interpreter_cmd);
    lw_program_free(p->interpreter);
    g_free(p->elf_interp);
    g_strfreev(p->needed);
    g_strfreev(p->runpath);
    g_free(p);
}

const LwProgram *lw_program_final(const LwProgram *p)
{
    while (p->interpreter != NULL)
        p = p->interpreter;
    return p;
}

gboolean lw_program_needs(const LwProgram *p, const char *prefix)
{
    for (char **n = p->needed; n != NULL && *n != NULL; n++) {
        if (g_str_has_prefix(*n, prefix))
            return TRUE;
    }
    return FALSE;
}

char *lw_program_find_library(const LwProgram *p, const char *soname)
{
    if (strchr(soname, '/') != NULL)
        return access(soname, R_OK) == 0 ? g_strdup(soname) : NULL;
    GPtrArray *dirs = g_ptr_array_new_with_free_func(g_free);
    for (char **r = p->runpath; r != NULL && *r != NULL; r++)
        g_ptr_array_add(dirs, g_strdup(*r));
    if (MULTIARCH != NULL) {
        g_ptr_array_add(dirs, g_strdup("/lib/" MULTIARCH));
        g_ptr_array_add(dirs, g_strdup("/usr/lib/" MULTIARCH));
    }
    const char *std[] = {"/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"};
    for (guint i = 0; i < G_N_ELEMENTS(std); i++)
        g_ptr_array_add(dirs, g_strdup(std[i]));
    char *found = NULL;
    for (guint i = 0; i < dirs->len && found == NULL; i++) {
        g_autofree char *candidate = g_build_filename(dirs->pdata[i], soname, NULL);
        if (access(candidate, R_OK) == 0)
            found = g_steal_pointer(&candidate);
    }
    g_ptr_array_free(dirs, TRUE);
    return found;
}

static gboolean needs_deep(const LwProgram *p, const char *prefix, guint depth, GHashTable *seen)
{
    if (lw_program_needs(p, prefix))
        return TRUE;
    if (depth == 0)
        return FALSE;
    for (char **n = p->needed; n != NULL && *n != NULL; n++) {
        /* Bounded: each library once, and at most 64 of them. */
        if (g_hash_table_size(seen) >= 64 || g_hash_table_contains(seen, *n))
            continue;
        g_hash_table_add(seen, g_strdup(*n));
        g_autofree char *lib = lw_program_find_library(p, *n);
        if (lib == NULL)
            continue;
        g_autoptr(LwProgram) lp = lw_program_inspect(lib, NULL);
        if (needs_deep(lp, prefix, depth - 1, seen))
            return TRUE;
    }
    return FALSE;
}

gboolean lw_program_needs_deep(const LwProgram *p, const char *prefix, guint depth)
{
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return needs_deep(p, prefix, depth, seen);
}
