/* upstream-trust.c - the providers' trust as one CA file per configuration
 * (see upstream-trust.h). */
#include "upstream-trust.h"

#include <errno.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define PREFIX "upstream-ca."
#define SUFFIX ".pem"

struct _LwUpstreamTrust {
    gint refs;
    char *file;
};

LwUpstreamTrust *lw_upstream_trust_new(const char *ca_file, const char *system_bundle,
                                       const char *dir, GError **error)
{
    if (ca_file == NULL)
        return NULL;
    g_autofree char *anchors = NULL;
    gsize anchors_len = 0;
    if (!g_file_get_contents(ca_file, &anchors, &anchors_len, NULL)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "cannot read %s", ca_file);
        return NULL;
    }
    /* Checked when the configuration loaded; the file may have changed. */
    if (lw_config_count_pem_certificates(anchors, anchors_len) == 0) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                    "%s holds no PEM certificate", ca_file);
        return NULL;
    }
    g_autoptr(GString) pem = g_string_new(NULL);
    g_autofree char *system = NULL;
    gsize system_len = 0;
    if (system_bundle != NULL && g_file_get_contents(system_bundle, &system, &system_len, NULL)) {
        g_string_append_len(pem, system, (gssize)system_len);
        g_string_append_c(pem, '\n');
    } else {
        g_warning("upstream: the system CA bundle (%s) cannot be read: only the anchors of %s "
                  "are trusted",
                  system_bundle != NULL ? system_bundle : "none built into libcurl", ca_file);
    }
    g_string_append_len(pem, anchors, (gssize)anchors_len);

    static guint generation;
    g_autofree char *name =
        g_strdup_printf(PREFIX "%ld.%u" SUFFIX, (long)getpid(), ++generation);
    g_autofree char *file = g_build_filename(dir, name, NULL);
    g_autoptr(GError) local = NULL;
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "cannot create %s: %s", dir,
                    g_strerror(e));
        return NULL;
    }
    if (!g_file_set_contents_full(file, pem->str, (gssize)pem->len,
                                  G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "cannot write the upstream CA file: %s", local->message);
        return NULL;
    }
    LwUpstreamTrust *trust = g_new0(LwUpstreamTrust, 1);
    trust->refs = 1;
    trust->file = g_steal_pointer(&file);
    return trust;
}

LwUpstreamTrust *lw_upstream_trust_ref(LwUpstreamTrust *trust)
{
    if (trust != NULL)
        trust->refs++;
    return trust;
}

void lw_upstream_trust_unref(LwUpstreamTrust *trust)
{
    if (trust == NULL || --trust->refs > 0)
        return;
    g_unlink(trust->file);
    g_free(trust->file);
    g_free(trust);
}

const char *lw_upstream_trust_file(const LwUpstreamTrust *trust)
{
    return trust->file;
}

void lw_upstream_trust_clean_stale(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        if (!g_str_has_prefix(name, PREFIX) || !g_str_has_suffix(name, SUFFIX))
            continue;
        char *end = NULL;
        long pid = strtol(name + strlen(PREFIX), &end, 10);
        if (end == name + strlen(PREFIX) || *end != '.' || pid <= 0 || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
            g_autofree char *file = g_build_filename(dir, name, NULL);
            g_unlink(file);
        }
    }
}
