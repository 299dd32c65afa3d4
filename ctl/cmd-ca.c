/* cmd-ca.c - `llmctl ca show|rotate`: the local CA that wrapped programs
 * trust.
 *
 * `show` reads root.pem itself with OpenSSL (llmctl does not link the
 * collector's CA code): subject, validity, SHA-256 fingerprint, the hosts
 * its name constraints permit, and where the files are.
 *
 * `rotate` replaces the chain by removing it: the root's private key was
 * discarded once it had signed the intermediate (collector/ca.h), so no
 * tool can sign with it again, and a new chain needs the provider table
 * the collector runs with. The collector generates a new chain when it
 * finds none at start. While a collector runs it keeps serving leaves of
 * the old chain and wrapped programs trust the old root.pem, so rotate
 * refuses then: stop it, rotate, and the next `llmwrap` starts a collector
 * with the new chain. Holding the collector's pid-file lock while removing
 * the files keeps one from starting half-way through.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "ctl.h"
#include "ipc.h"
#include "json.h"
#include "output.h"

#define NAME "ca"
/* The collector's file names (collector/ca.h). */
#define ROOT_FILE             "root.pem"
#define INTERMEDIATE_FILE     "intermediate.pem"
#define INTERMEDIATE_KEY_FILE "intermediate.key"
/* A CA certificate is a few hundred bytes; anything larger is not ours. */
#define MAX_CERT_FILE (64 * 1024)

/* The one translation of OpenSSL's error queue: the first queued reason,
 * and the queue emptied. */
static char *openssl_error(void)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "unknown error";
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    return g_strdup(buf);
}

static X509 *read_cert(const char *path, GError **error)
{
    g_autofree char *pem = NULL;
    gsize len = 0;
    if (!g_file_get_contents(path, &pem, &len, error))
        return NULL;
    if (len > MAX_CERT_FILE) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s is too large for a certificate",
                    path);
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (x == NULL) {
        g_autofree char *why = openssl_error();
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s is not a PEM certificate: %s",
                    path, why);
    }
    return x;
}

static char *subject_of(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL)
        return g_strdup("?");
    X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *s = g_strndup(data, n > 0 ? (gsize)n : 0);
    BIO_free(bio);
    return s;
}

/* Unix ms of an ASN1_TIME, or FALSE. */
static gboolean time_ms(const ASN1_TIME *t, gint64 *ret)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return FALSE;
    g_autoptr(GDateTime) d = g_date_time_new_utc(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                                                 tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (d == NULL)
        return FALSE;
    *ret = g_date_time_to_unix(d) * 1000;
    return TRUE;
}

/* "AB:CD:...", as `openssl x509 -fingerprint -sha256` prints it. */
static char *fingerprint_of(X509 *x)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (X509_digest(x, EVP_sha256(), md, &n) != 1) {
        g_free(openssl_error());
        return NULL;
    }
    GString *s = g_string_new(NULL);
    for (unsigned int i = 0; i < n; i++)
        g_string_append_printf(s, "%s%02X", i > 0 ? ":" : "", md[i]);
    return g_string_free(s, FALSE);
}

/* The dNSName subtrees the name constraints permit (char*), and whether
 * IP addresses are excluded. NULL when the certificate has no name
 * constraints. */
static GPtrArray *permitted_hosts(X509 *x, gboolean *ret_excludes_ip)
{
    int crit = 0;
    NAME_CONSTRAINTS *nc = X509_get_ext_d2i(x, NID_name_constraints, &crit, NULL);
    *ret_excludes_ip = FALSE;
    if (nc == NULL)
        return NULL;
    GPtrArray *hosts = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++) {
        const GENERAL_SUBTREE *t = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
        if (t->base->type != GEN_DNS)
            continue;
        const ASN1_IA5STRING *s = t->base->d.dNSName;
        g_ptr_array_add(
            hosts, g_strndup((const char *)ASN1_STRING_get0_data(s), (gsize)ASN1_STRING_length(s)));
    }
    for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc->excludedSubtrees); i++)
        if (sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, i)->base->type == GEN_IPADD)
            *ret_excludes_ip = TRUE;
    NAME_CONSTRAINTS_free(nc);
    return hosts;
}

static int ca_show(LwCtl *ctl, int argc, char **argv)
{
    const char *cmd = NAME " show";
    gboolean json = FALSE;
    const GOptionEntry entries[] = {
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = lw_ctl_options_new(
        NULL, entries,
        "The root certificate wrapped programs trust: compare its fingerprint with what\n"
        "a program reports, or trust root.pem in a program llmwrap cannot reach.");
    if (!lw_ctl_options_parse(ctx, cmd, &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc > 1)
        return lw_ctl_usage_error(cmd, "unexpected argument '%s'", argv[1]);

    g_autofree char *root_path = g_build_filename(ctl->paths->ca_dir, ROOT_FILE, NULL);
    g_autofree char *inter_path = g_build_filename(ctl->paths->ca_dir, INTERMEDIATE_FILE, NULL);
    if (!g_file_test(root_path, G_FILE_TEST_EXISTS))
        return lw_ctl_error(cmd,
                            "there is no CA yet (%s does not exist): the collector creates it "
                            "when it first starts",
                            root_path);
    g_autoptr(GError) error = NULL;
    X509 *root = read_cert(root_path, &error);
    if (root == NULL)
        return lw_ctl_error(cmd, "%s", error->message);
    g_autofree char *subject = subject_of(root);
    g_autofree char *fp = fingerprint_of(root);
    gint64 nb = 0, na = 0;
    gboolean times =
        time_ms(X509_get0_notBefore(root), &nb) && time_ms(X509_get0_notAfter(root), &na);
    gboolean excludes_ip = FALSE;
    g_autoptr(GPtrArray) hosts = permitted_hosts(root, &excludes_ip);
    X509_free(root);
    /* The intermediate expires with the root; show its end too when it
     * is readable (the collector renews it before it runs out). */
    gint64 inter_na = 0;
    X509 *inter = read_cert(inter_path, NULL);
    gboolean has_inter = inter != NULL && time_ms(X509_get0_notAfter(inter), &inter_na);
    X509_free(inter);
    ERR_clear_error();

    if (json) {
        g_autoptr(GString) out = g_string_new("{\"path\": ");
        lw_json_append_string(out, root_path, -1);
        g_string_append(out, ", \"subject\": ");
        lw_json_append_string(out, subject, -1);
        g_autofree char *a = times ? lw_output_time_iso(nb) : NULL;
        g_autofree char *b = times ? lw_output_time_iso(na) : NULL;
        g_string_append(out, ", \"not_before\": ");
        if (a != NULL)
            lw_json_append_string(out, a, -1);
        else
            g_string_append(out, "null");
        g_string_append(out, ", \"not_after\": ");
        if (b != NULL)
            lw_json_append_string(out, b, -1);
        else
            g_string_append(out, "null");
        g_string_append(out, ", \"sha256\": ");
        if (fp != NULL)
            lw_json_append_string(out, fp, -1);
        else
            g_string_append(out, "null");
        g_string_append(out, ", \"permitted_hosts\": ");
        if (hosts != NULL) {
            g_string_append_c(out, '[');
            for (guint i = 0; i < hosts->len; i++) {
                g_string_append(out, i > 0 ? ", " : "");
                lw_json_append_string(out, g_ptr_array_index(hosts, i), -1);
            }
            g_string_append_c(out, ']');
        } else {
            g_string_append(out, "null");
        }
        g_string_append_printf(
            out, ", \"excludes_ip\": %s, \"intermediate\": ", excludes_ip ? "true" : "false");
        if (has_inter) {
            g_autofree char *c = lw_output_time_iso(inter_na);
            g_string_append(out, "{\"path\": ");
            lw_json_append_string(out, inter_path, -1);
            g_string_append(out, ", \"not_after\": ");
            lw_json_append_string(out, c, -1);
            g_string_append_c(out, '}');
        } else {
            g_string_append(out, "null");
        }
        g_string_append(out, "}\n");
        fputs(out->str, stdout);
    } else {
        g_autofree char *shown_subject = lw_output_printable(subject);
        printf("Root certificate: %s\n", root_path);
        printf("  subject:    %s\n", shown_subject);
        if (times) {
            g_autofree char *a = lw_output_time_human(nb);
            g_autofree char *b = lw_output_time_human(na);
            printf("  valid:      %s to %s UTC\n", a, b);
        }
        printf("  SHA-256:    %s\n", fp != NULL ? fp : "?");
        if (hosts == NULL) {
            printf("  hosts:      NOT name-constrained\n");
        } else {
            g_autoptr(GString) list = g_string_new(NULL);
            for (guint i = 0; i < hosts->len; i++) {
                g_autofree char *h = lw_output_printable(g_ptr_array_index(hosts, i));
                g_string_append_printf(list, "%s%s", i > 0 ? ", " : "", h);
            }
            printf("  hosts:      %s%s\n", list->str,
                   excludes_ip ? " (IP addresses excluded)" : "");
        }
        if (has_inter) {
            g_autofree char *c = lw_output_time_human(inter_na);
            printf("  intermediate: %s, valid until %s UTC\n", inter_path, c);
        }
    }
    return lw_ctl_flush(NAME) ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}

/* Holds the collector's pid-file lock, or says who holds it. Returns the
 * locked fd, -1 when no collector has used this state directory (nothing
 * to lock), or -2 with *ret_pid (0 if unknown) when a collector runs. */
static int lock_out_collector(LwCtl *ctl, long *ret_pid, GError **error)
{
    int fd = open(ctl->paths->pid_file, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            return -1;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(e), "cannot open %s: %s",
                    ctl->paths->pid_file, g_strerror(e));
        return -3;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return fd;
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    *ret_pid = (long)g_ascii_strtoll(buf, NULL, 10);
    close(fd);
    return -2;
}

static int ca_rotate(LwCtl *ctl, int argc, char **argv)
{
    const char *cmd = NAME " rotate";
    g_autoptr(GOptionContext) ctx = lw_ctl_options_new(
        NULL, NULL,
        "Removes the CA so that the collector generates a new root and intermediate the\n"
        "next time it starts. Needs the collector stopped: programs it serves trust the\n"
        "current root. Programs started after the rotation trust the new one.");
    if (!lw_ctl_options_parse(ctx, cmd, &argc, &argv))
        return LW_CTL_EXIT_USAGE;
    if (argc > 1)
        return lw_ctl_usage_error(cmd, "unexpected argument '%s'", argv[1]);

    g_autoptr(GError) error = NULL;
    long pid = 0;
    int lock = lock_out_collector(ctl, &pid, &error);
    if (lock == -3)
        return lw_ctl_error(cmd, "%s", error->message);
    /* Also ask the socket: a collector from another build may not use the
     * pid file the way this one expects. */
    g_autoptr(LwIpcClient) client =
        lock != -2 ? lw_ipc_client_connect(ctl->paths->ipc_socket, NULL) : NULL;
    if (lock == -2 || client != NULL) {
        if (lock >= 0)
            close(lock);
        g_autofree char *who = pid > 0 ? g_strdup_printf(" (pid %ld)", pid) : g_strdup("");
        g_autofree char *how = pid > 0 ? g_strdup_printf(" (kill %ld)", pid) : g_strdup("");
        return lw_ctl_error(cmd,
                            "the collector is running%s and serves certificates of the current "
                            "CA. Stop it%s, then run `llmctl ca rotate` again; the next "
                            "llmwrap starts it with a new CA",
                            who, how);
    }

    const char *files[] = {ROOT_FILE, INTERMEDIATE_FILE, INTERMEDIATE_KEY_FILE};
    guint removed = 0;
    int status = LW_CTL_EXIT_OK;
    for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *path = g_build_filename(ctl->paths->ca_dir, files[i], NULL);
        if (g_unlink(path) == 0) {
            removed++;
        } else if (errno != ENOENT) {
            int e = errno;
            status = lw_ctl_error(cmd, "cannot remove %s: %s", path, g_strerror(e));
            break;
        }
    }
    if (lock >= 0)
        close(lock);
    if (status != LW_CTL_EXIT_OK)
        return status;
    if (removed == 0)
        printf("There is no CA in %s: the collector creates one when it starts.\n",
               ctl->paths->ca_dir);
    else
        printf("CA removed from %s. The collector generates a new one when it next starts;\n"
               "programs that trusted the old root.pem directly need the new one.\n",
               ctl->paths->ca_dir);
    return lw_ctl_flush(NAME) ? LW_CTL_EXIT_OK : LW_CTL_EXIT_ERROR;
}

int lw_cmd_ca(LwCtl *ctl, int argc, char **argv)
{
    static const char usage[] =
        "Usage:\n"
        "  llmctl ca show [--json]\n"
        "  llmctl ca rotate\n\n"
        "The local CA: a root that only signed an intermediate (its key is gone), both\n"
        "name-constrained to the provider hosts. Wrapped programs trust root.pem.\n";
    if (argc >= 2) {
        if (strcmp(argv[1], "show") == 0)
            return ca_show(ctl, argc - 1, argv + 1);
        if (strcmp(argv[1], "rotate") == 0)
            return ca_rotate(ctl, argc - 1, argv + 1);
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
            fputs(usage, stdout);
            return LW_CTL_EXIT_OK;
        }
        return lw_ctl_usage_error(NAME, "unknown subcommand '%s': expected show or rotate",
                                  argv[1]);
    }
    return lw_ctl_usage_error(NAME, "expected show or rotate");
}
