/* doctor.c - will a program's provider traffic be intercepted and trusted? */
#include "doctor.h"

#include <errno.h>
#include <string.h>

typedef enum {
    RT_GENERIC,
    RT_SHELL,
    RT_NODE,
    RT_BUN,
    RT_DENO,
    RT_PYTHON,
    RT_CURL,
    RT_GIT,
    RT_JAVA,
} Runtime;

static gboolean is_versioned_name(const char *name, const char *stem)
{
    if (!g_str_has_prefix(name, stem))
        return FALSE;
    for (const char *p = name + strlen(stem); *p != '\0'; p++) {
        if (!g_ascii_isdigit(*p) && *p != '.')
            return FALSE;
    }
    return TRUE;
}

static Runtime runtime_of(const LwProgram *f)
{
    const char *n = f->name;
    static const char *const shells[] = {"sh",   "bash", "dash", "zsh",     "ksh",
                                         "mksh", "ash",  "fish", "busybox", NULL};
    if (g_strv_contains(shells, n))
        return RT_SHELL;
    if (strcmp(n, "node") == 0 || strcmp(n, "nodejs") == 0 || lw_program_needs(f, "libnode.so"))
        return RT_NODE;
    if (strcmp(n, "bun") == 0)
        return RT_BUN;
    if (strcmp(n, "deno") == 0)
        return RT_DENO;
    if (is_versioned_name(n, "python") || lw_program_needs(f, "libpython"))
        return RT_PYTHON;
    if (strcmp(n, "curl") == 0)
        return RT_CURL;
    if (strcmp(n, "git") == 0)
        return RT_GIT;
    if (strcmp(n, "java") == 0 || lw_program_needs(f, "libjli.so"))
        return RT_JAVA;
    return RT_GENERIC;
}

/* How a Python interpreter gets its OpenSSL: its _ssl extension module in
 * PREFIX/lib/pythonX.Y/lib-dynload. */
typedef enum { PY_SSL_UNKNOWN, PY_SSL_DYNAMIC, PY_SSL_EMBEDDED } PySsl;

static PySsl python_ssl(const LwProgram *f)
{
    g_autofree char *bindir = g_path_get_dirname(f->real_path);
    g_autofree char *prefix = g_path_get_dirname(bindir);
    g_autofree char *libdir = g_build_filename(prefix, "lib", NULL);
    g_autoptr(GDir) d = g_dir_open(libdir, 0, NULL);
    if (d == NULL)
        return PY_SSL_UNKNOWN;
    PySsl result = PY_SSL_UNKNOWN;
    const char *entry;
    for (guint seen = 0; (entry = g_dir_read_name(d)) != NULL && seen < 4096; seen++) {
        if (!is_versioned_name(entry, "python3."))
            continue;
        g_autofree char *dynload = g_build_filename(libdir, entry, "lib-dynload", NULL);
        g_autoptr(GDir) dd = g_dir_open(dynload, 0, NULL);
        if (dd == NULL)
            continue;
        result = PY_SSL_EMBEDDED; /* a stdlib without an _ssl module: built in */
        const char *m;
        for (guint k = 0; (m = g_dir_read_name(dd)) != NULL && k < 4096; k++) {
            if (!g_str_has_prefix(m, "_ssl.") || !g_str_has_suffix(m, ".so"))
                continue;
            g_autofree char *path = g_build_filename(dynload, m, NULL);
            g_autoptr(LwProgram) mod = lw_program_inspect(path, NULL);
            return lw_program_needs_deep(mod, "libssl.so", 1) ? PY_SSL_DYNAMIC : PY_SSL_EMBEDDED;
        }
    }
    return result;
}

typedef struct {
    LwVerdict *v;
    const char *label;
} Ctx;

static void reason(Ctx *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void reason(Ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_ptr_array_add(c->v->reasons, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

static void set_kind(Ctx *c, LwVerdictKind kind, const char *warning)
{
    c->v->kind = kind;
    if (warning != NULL) {
        g_free(c->v->warning);
        c->v->warning = g_strdup_printf("%s: %s", c->label, warning);
    }
}

static const char *const REDIRECTED =
    "redirected: it resolves names with libc's getaddrinfo() and connects with libc's "
    "connect(), which the shim answers for provider hosts and sends to the collector";

static const char *runtime_label(Runtime rt)
{
    static const char *const labels[] = {
        [RT_GENERIC] = NULL, [RT_SHELL] = "a shell", [RT_NODE] = "Node.js",
        [RT_BUN] = "Bun",    [RT_DENO] = "Deno",     [RT_PYTHON] = "Python",
        [RT_CURL] = "curl",  [RT_GIT] = "git",       [RT_JAVA] = "Java",
    };
    return labels[rt];
}

static char *describe(const LwProgram *p, const LwProgram *f, Runtime rt)
{
    GString *s = g_string_new(p->path);
    if (strcmp(p->path, p->real_path) != 0)
        g_string_append_printf(s, " (%s)", p->real_path);
    g_string_append(s, ": ");
    if (p != f)
        g_string_append_printf(s, "a script run by %s (#!%s); ", f->path, p->shebang);
    if (!f->is_elf && !f->is_script)
        g_string_append(s, "not an ELF executable or a #! script");
    else if (f->is_foreign)
        g_string_append(s, "an ELF executable for another architecture or word size");
    else if (f->is_go)
        g_string_append_printf(s, "a Go program (%s)",
                               f->is_dynamic ? "dynamically linked" : "statically linked");
    else if (!f->is_dynamic)
        g_string_append(s, "a statically linked executable");
    else if (f->is_musl)
        g_string_append(s, "a dynamically linked musl executable");
    else
        g_string_append(s, "a dynamically linked glibc executable");
    if (f->is_elf && !f->is_foreign && runtime_label(rt) != NULL)
        g_string_append_printf(s, " (%s)", runtime_label(rt));
    if (f->setuid || f->setgid || f->has_caps)
        g_string_append_printf(s, ", %s%s%s", f->setuid ? "setuid " : "",
                               f->setgid ? "setgid " : "",
                               f->has_caps ? "with file capabilities " : "");
    return g_string_free(s, FALSE);
}

/* The verdict when ld.so will not load the shim, or the program bypasses
 * libc. TRUE when it applied. */
static gboolean assess_unreachable(Ctx *c, const LwProgram *f)
{
    if (f->is_foreign) {
        reason(c, "not intercepted: the shim is built for this machine's architecture and word "
                  "size; ld.so cannot load it into this program");
        set_kind(c, LW_VERDICT_NOT_INTERCEPTED,
                 "foreign-architecture executable: its traffic is not intercepted");
        return TRUE;
    }
    if (f->secure_exec) {
        reason(c,
               "not intercepted: it is %s, so ld.so runs it in secure-execution mode and "
               "ignores LD_PRELOAD",
               f->setuid   ? "setuid"
               : f->setgid ? "setgid"
                           : "granted file capabilities");
        set_kind(c, LW_VERDICT_NOT_INTERCEPTED,
                 "setuid/setgid/capabilities: LD_PRELOAD is ignored, its traffic is not "
                 "intercepted");
        return TRUE;
    }
    if (f->is_go) {
        reason(c, "not intercepted: Go's net package resolves names with its own DNS client "
                  "(llmwrap sets GODEBUG=netdns=go) and connects with raw system calls, so the "
                  "shim never sees its connections; they go to the providers unmetered");
        set_kind(c, LW_VERDICT_NOT_INTERCEPTED,
                 "Go program: its traffic bypasses the shim and is not metered");
        return TRUE;
    }
    if (f->is_elf && !f->is_dynamic) {
        reason(c, "not intercepted: a static executable has no dynamic loader, so LD_PRELOAD "
                  "has no effect; its traffic goes to the providers unmetered");
        set_kind(c, LW_VERDICT_NOT_INTERCEPTED,
                 "statically linked: LD_PRELOAD has no effect, its traffic is not metered");
        return TRUE;
    }
    if (f->is_musl) {
        reason(c, "not intercepted: the shim is built for glibc and cannot load into a musl "
                  "program");
        set_kind(c, LW_VERDICT_NOT_INTERCEPTED,
                 "musl executable: the shim cannot load, its traffic is not metered");
        return TRUE;
    }
    return FALSE;
}

static void assess_python(Ctx *c, const LwProgram *f, gboolean deep)
{
    reason(c, "%s", REDIRECTED);
    set_kind(c, LW_VERDICT_TRUSTED, NULL);
    reason(c, "trusted: urllib, http.client, httpx and the OpenAI/Anthropic/Google SDKs read "
              "SSL_CERT_FILE, requests reads REQUESTS_CA_BUNDLE; llmwrap points both at a "
              "bundle holding the llmwrap CA");
    PySsl ssl = deep ? python_ssl(f) : PY_SSL_UNKNOWN;
    if (ssl == PY_SSL_DYNAMIC)
        reason(c, "its _ssl module links OpenSSL dynamically, so the SSL_new hook also adds the "
                  "CA to stores a program loads itself (certifi)");
    else if (ssl == PY_SSL_EMBEDDED)
        reason(c, "its OpenSSL is built in (python-build-standalone, as uv/rye/mise install): "
                  "only the environment variables apply, so code that loads certifi itself "
                  "will not trust the CA");
    reason(c, "not covered: aiohttp with aiodns (c-ares DNS); grpcio unless "
              "GRPC_DNS_RESOLVER=native, which llmwrap sets");
}

static void assess_generic(Ctx *c, const LwProgram *f, gboolean deep)
{
    reason(c, "%s", REDIRECTED);
    if (!deep) {
        set_kind(c, LW_VERDICT_UNCERTAIN, NULL);
        return;
    }
    if (lw_program_needs_deep(f, "libssl.so", 3)) {
        set_kind(c, LW_VERDICT_TRUSTED, NULL);
        reason(c, "trusted: it links OpenSSL dynamically; SSL_CERT_FILE points at a bundle "
                  "holding the llmwrap CA and the SSL_new hook adds the CA to stores the "
                  "program loads itself");
    } else if (lw_program_needs_deep(f, "libgnutls.so", 3)) {
        set_kind(c, LW_VERDICT_UNCERTAIN, NULL);
        reason(c, "trust not certain: it uses GnuTLS, which the SSL_new hook does not reach; it "
                  "trusts the llmwrap CA only if it reads SSL_CERT_FILE (or the variable its "
                  "library documents)");
    } else if (lw_program_needs_deep(f, "libnss3.so", 3)) {
        set_kind(c, LW_VERDICT_UNCERTAIN, NULL);
        reason(c, "trust not certain: it uses NSS, which keeps its own certificate database");
    } else {
        set_kind(c, LW_VERDICT_UNCERTAIN, NULL);
        reason(c, "trust not certain: it links no TLS library dynamically; if it embeds one "
                  "(rustls, BoringSSL, a static OpenSSL) it trusts the llmwrap CA only if it "
                  "reads SSL_CERT_FILE");
    }
}

LwVerdict *lw_doctor_assess(const LwProgram *p, const char *label, gboolean deep)
{
    LwVerdict *v = g_new0(LwVerdict, 1);
    v->reasons = g_ptr_array_new_with_free_func(g_free);
    Ctx c = {.v = v, .label = label};
    const LwProgram *f = lw_program_final(p);
    Runtime rt = f->is_elf ? runtime_of(f) : RT_GENERIC;
    v->description = describe(p, f, rt);

    if (p->is_script && p->interpreter == NULL) {
        reason(&c, "its interpreter (%s) was not found",
               p->interpreter_cmd != NULL ? p->interpreter_cmd : p->shebang);
        set_kind(&c, LW_VERDICT_UNCERTAIN, NULL);
        return v;
    }
    if (!f->is_elf && !f->is_script) {
        /* execvp runs a file the kernel refuses (ENOEXEC) with /bin/sh. */
        reason(&c, "it is run by /bin/sh; the commands it runs inherit the shim");
        set_kind(&c, LW_VERDICT_TRUSTED, NULL);
        return v;
    }
    if (assess_unreachable(&c, f))
        return v;

    switch (rt) {
    case RT_SHELL:
        set_kind(&c, LW_VERDICT_TRUSTED, NULL);
        reason(&c, "a shell makes no provider connections itself; the programs it runs inherit "
                   "the shim (LD_PRELOAD and the llmwrap variables survive exec): check them "
                   "with llmwrap --doctor");
        break;
    case RT_NODE:
        set_kind(&c, LW_VERDICT_TRUSTED, NULL);
        reason(&c, "redirected: Node's http, https and fetch resolve with dns.lookup() "
                   "(libc getaddrinfo on libuv's thread pool) and connect through libc");
        reason(&c, "trusted: Node reads NODE_EXTRA_CA_CERTS at start-up, which llmwrap points "
                   "at the llmwrap CA");
        reason(&c, "not covered: code that calls dns.resolve*() (c-ares), or passes its own "
                   "`ca` option");
        break;
    case RT_BUN:
        reason(&c, "not intercepted: Bun resolves names with c-ares, not getaddrinfo, so it "
                   "reaches the real provider addresses directly and unmetered");
        set_kind(&c, LW_VERDICT_NOT_INTERCEPTED,
                 "Bun resolves names with c-ares: its traffic is not intercepted");
        break;
    case RT_DENO:
        set_kind(&c, LW_VERDICT_TRUSTED, NULL);
        reason(&c, "redirected: Deno resolves with getaddrinfo (tokio's lookup_host) and "
                   "connects through libc (not yet verified by llmwrap's tests)");
        reason(&c, "trusted: Deno adds the certificate in DENO_CERT, which llmwrap points at "
                   "the llmwrap CA");
        break;
    case RT_PYTHON:
        assess_python(&c, f, deep);
        break;
    case RT_CURL:
        reason(&c, "%s", REDIRECTED);
        set_kind(&c, LW_VERDICT_TRUSTED, NULL);
        reason(&c, "trusted: the curl command reads CURL_CA_BUNDLE, which llmwrap points at a "
                   "bundle holding the llmwrap CA");
        if (deep) {
            if (lw_program_needs_deep(f, "libcurl-gnutls.so", 1))
                reason(&c, "its libcurl uses GnuTLS: programs embedding that libcurl are not "
                           "reached by the SSL_new hook");
            else if (lw_program_needs_deep(f, "libssl.so", 2))
                reason(&c, "its libcurl uses OpenSSL, linked dynamically: the SSL_new hook "
                           "covers programs that embed it too");
        }
        break;
    case RT_GIT:
        reason(&c, "%s", REDIRECTED);
        set_kind(&c, LW_VERDICT_TRUSTED, NULL);
        reason(&c, "trusted: git's HTTPS helper uses libcurl with GnuTLS, which the SSL_new "
                   "hook does not reach, but git reads GIT_SSL_CAINFO, which llmwrap sets");
        break;
    case RT_JAVA:
        reason(&c, "redirected: the JDK resolves with getaddrinfo and connects through libc "
                   "(dual-stack sockets with v4-mapped addresses, which the shim handles)");
        reason(&c, "NOT trusted: Java's TLS (JSSE) reads no trust variable; it needs "
                   "-Djavax.net.ssl.trustStore, which llmwrap does not set yet, so its "
                   "connections to providers will fail certificate verification");
        set_kind(&c, LW_VERDICT_NOT_TRUSTED,
                 "Java does not trust the llmwrap CA: its provider connections will fail TLS "
                 "verification");
        break;
    case RT_GENERIC:
    default:
        assess_generic(&c, f, deep);
        break;
    }
    return v;
}

void lw_verdict_free(LwVerdict *v)
{
    if (v == NULL)
        return;
    g_free(v->description);
    g_ptr_array_unref(v->reasons);
    g_free(v->warning);
    g_free(v);
}

static const char *verdict_line(LwVerdictKind kind)
{
    switch (kind) {
    case LW_VERDICT_TRUSTED:
        return "will be intercepted and trusted";
    case LW_VERDICT_UNCERTAIN:
        return "will be intercepted; whether it trusts the llmwrap CA depends on the program";
    case LW_VERDICT_NOT_TRUSTED:
        return "will be redirected but will NOT trust the llmwrap CA: its provider "
               "connections will fail";
    case LW_VERDICT_NOT_INTERCEPTED:
    default:
        return "will NOT be intercepted: its provider traffic is not metered";
    }
}

int lw_doctor_run(const char *cmd, const char *path_env, FILE *out)
{
    g_autofree char *path = NULL;
    int err = 0;
    switch (lw_program_lookup(cmd, path_env, &path, &err)) {
    case LW_LOOKUP_NOT_FOUND:
        fprintf(out, "%s: not found%s\n", cmd, strchr(cmd, '/') != NULL ? "" : " (searched PATH)");
        return 1;
    case LW_LOOKUP_NOT_EXECUTABLE:
        fprintf(out, "%s: cannot be run: %s\n", cmd, g_strerror(err));
        return 1;
    case LW_LOOKUP_FOUND:
    default:
        break;
    }
    g_autoptr(LwProgram) p = lw_program_inspect(path, path_env);
    g_autoptr(LwVerdict) v = lw_doctor_assess(p, cmd, TRUE);
    fprintf(out, "%s: %s\n", cmd, verdict_line(v->kind));
    fprintf(out, "  %s\n", v->description);
    for (guint i = 0; i < v->reasons->len; i++)
        fprintf(out, "  - %s\n", (const char *)v->reasons->pdata[i]);
    return v->kind == LW_VERDICT_TRUSTED ? 0 : 1;
}
