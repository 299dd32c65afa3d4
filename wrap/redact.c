/* redact.c - secrets out of the command line before it leaves llmwrap. */
#include "redact.h"

#include <string.h>

/* Header names whose value is a credential. */
static const char *const auth_headers[] = {
    "proxy-authorization", "authorization", "x-goog-api-key", "x-api-key", "api-key",
};

/* How the providers' keys start (sk- covers sk-ant- and sk-proj-). */
static const char *const key_prefixes[] = {"sk-", "AIza", "xai-", "gsk_"};
/* Characters after the prefix before a word counts as a key: "sk-test" in
 * an example is not one, "sk-" and 8 more characters may be. */
#define KEY_MIN_TAIL 8

static gboolean is_key_char(char c)
{
    return g_ascii_isalnum(c) || c == '-' || c == '_';
}

/* Whether `word` (len bytes) occurs in name[0..len) followed by the end, '-'
 * or '_': "api-key", "auth_token", "token" but not "max-tokens" or
 * "keyboard". Case-insensitive. */
static gboolean has_word(const char *name, size_t len, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i + n <= len; i++) {
        if (g_ascii_strncasecmp(name + i, word, n) != 0)
            continue;
        if (i + n == len || name[i + n] == '-' || name[i + n] == '_')
            return TRUE;
    }
    return FALSE;
}

static gboolean has_substring(const char *name, size_t len, const char *sub)
{
    size_t n = strlen(sub);
    for (size_t i = 0; i + n <= len; i++) {
        if (g_ascii_strncasecmp(name + i, sub, n) == 0)
            return TRUE;
    }
    return FALSE;
}

/* Whether an option or variable name says its value is a secret. */
static gboolean is_secret_name(const char *name, size_t len)
{
    return has_word(name, len, "key") || has_word(name, len, "token") ||
           has_word(name, len, "auth") || has_substring(name, len, "bearer") ||
           has_substring(name, len, "secret") || has_substring(name, len, "password") ||
           has_substring(name, len, "passwd");
}

/* Where the value of an auth header named in `arg` starts (after the colon
 * and blanks), or NULL. A name counts at the start of the argument or after
 * a character that cannot be part of a header name ("{\"x-api-key\": ...")
 * or after curl's -H ("-HAuthorization: ..."); a closing quote may stand
 * before the colon. */
static const char *auth_header_value(const char *arg)
{
    for (const char *p = arg; *p != '\0'; p++) {
        gboolean after_short_option = p == arg + 2 && strncmp(arg, "-H", 2) == 0;
        if (p > arg && is_key_char(p[-1]) && !after_short_option)
            continue;
        for (guint i = 0; i < G_N_ELEMENTS(auth_headers); i++) {
            size_t n = strlen(auth_headers[i]);
            if (g_ascii_strncasecmp(p, auth_headers[i], n) != 0)
                continue;
            const char *q = p + n;
            if (*q == '"' || *q == '\'')
                q++;
            while (*q == ' ' || *q == '\t')
                q++;
            if (*q != ':')
                continue;
            q++;
            while (*q == ' ' || *q == '\t')
                q++;
            return q;
        }
    }
    return NULL;
}

/* Replaces in `s` every word shaped like a provider key. */
static void redact_keys(GString *s)
{
    for (gsize i = 0; i < s->len; i++) {
        if (i > 0 && g_ascii_isalnum(s->str[i - 1]))
            continue;
        for (guint k = 0; k < G_N_ELEMENTS(key_prefixes); k++) {
            size_t n = strlen(key_prefixes[k]);
            if (strncmp(s->str + i, key_prefixes[k], n) != 0)
                continue;
            gsize end = i + n;
            while (end < s->len && is_key_char(s->str[end]))
                end++;
            if (end - i - n < KEY_MIN_TAIL)
                continue;
            g_string_erase(s, (gssize)i, (gssize)(end - i));
            g_string_insert(s, (gssize)i, LW_REDACTED);
            i += strlen(LW_REDACTED) - 1;
            break;
        }
    }
}

/* The length of the NAME in an environment assignment NAME=value, or 0. */
static size_t assignment_name(const char *arg)
{
    if (!g_ascii_isalpha(arg[0]) && arg[0] != '_')
        return 0;
    size_t n = 1;
    while (g_ascii_isalnum(arg[n]) || arg[n] == '_')
        n++;
    return arg[n] == '=' ? n : 0;
}

/* Redacts one argument. Sets *ret_next when the argument names a secret
 * whose value is the next argument. Transfer full. */
static char *redact_arg(const char *arg, gboolean *ret_next)
{
    GString *out = g_string_new(NULL);
    *ret_next = FALSE;
    const char *value = NULL;
    if (g_str_has_prefix(arg, "--") && arg[2] != '\0') {
        const char *eq = strchr(arg, '=');
        size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        if (is_secret_name(arg + 2, len - 2)) {
            if (eq == NULL)
                *ret_next = TRUE;
            else
                value = eq + 1;
        }
    } else {
        size_t len = assignment_name(arg);
        if (len > 0 && is_secret_name(arg, len))
            value = arg + len + 1;
    }
    if (value == NULL && (value = auth_header_value(arg)) != NULL) {
        if (*value == '\0') {
            *ret_next = TRUE;
            value = NULL;
        } else {
            /* Keep the scheme: "Bearer [redacted]" says what was there. */
            size_t word = 0;
            while (g_ascii_isalpha(value[word]))
                word++;
            if (word > 0 && value[word] == ' ' && value[word + 1] != '\0')
                value += word + 1;
        }
    }
    if (value != NULL) {
        g_string_append_len(out, arg, (gssize)(value - arg));
        g_string_append(out, LW_REDACTED);
    } else {
        g_string_append(out, arg);
    }
    redact_keys(out);
    return g_string_free(out, FALSE);
}

char **lw_redact_argv(char *const *argv)
{
    guint n = argv != NULL ? g_strv_length((char **)argv) : 0;
    char **out = g_new0(char *, n + 1);
    gboolean next = FALSE;
    for (guint i = 0; i < n; i++) {
        if (next) {
            out[i] = g_strdup(LW_REDACTED);
            next = FALSE;
            continue;
        }
        out[i] = redact_arg(argv[i], &next);
    }
    return out;
}
