/* redact.c - secrets out of the command line before it leaves llmwrap. */
#include "redact.h"

#include <string.h>

/* Header names whose value is a credential. */
static const char *const auth_headers[] = {
    "proxy-authorization", "authorization", "x-goog-api-key", "x-api-key", "api-key",
};

/* How the providers' keys start (sk- covers sk-ant-, sk-proj- and
 * OpenRouter's sk-or-; pplx- is Perplexity's, fw_ Fireworks'). */
static const char *const key_prefixes[] = {"sk-", "AIza", "xai-", "gsk_", "pplx-", "fw_"};
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

/* Replaces `s`[from, to) by LW_REDACTED; returns the index just past it. */
static gsize replace_span(GString *s, gsize from, gsize to)
{
    g_string_erase(s, (gssize)from, (gssize)(to - from));
    g_string_insert(s, (gssize)from, LW_REDACTED);
    return from + strlen(LW_REDACTED);
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
            i = replace_span(s, i, end) - 1;
            break;
        }
    }
}

/* Replaces the password of every URL with user info ("https://u:PW@host"). */
static void redact_url_passwords(GString *s)
{
    for (gsize i = 0; i + 3 <= s->len; i++) {
        if (memcmp(s->str + i, "://", 3) != 0)
            continue;
        gsize start = i + 3, end = start, colon = 0;
        while (end < s->len && strchr("/?#@ \t'\"", s->str[end]) == NULL) {
            if (s->str[end] == ':' && colon == 0)
                colon = end;
            end++;
        }
        if (end < s->len && s->str[end] == '@' && colon > start && colon + 1 < end)
            i = replace_span(s, colon + 1, end);
    }
}

/* Replaces the value of every query or form parameter whose name says it
 * holds a secret ("?key=X&alt=sse", "&access_token=X"). */
static void redact_query_secrets(GString *s)
{
    for (gsize i = 0; i < s->len; i++) {
        if (s->str[i] != '?' && s->str[i] != '&')
            continue;
        gsize name = i + 1, eq = name;
        while (eq < s->len && is_key_char(s->str[eq]))
            eq++;
        if (eq == name || eq >= s->len || s->str[eq] != '=' ||
            !is_secret_name(s->str + name, eq - name))
            continue;
        gsize end = eq + 1;
        while (end < s->len && strchr("&# \t'\"", s->str[end]) == NULL)
            end++;
        if (end > eq + 1)
            i = replace_span(s, eq + 1, end) - 1;
    }
}

/* Replaces the string value of every JSON member whose name says it holds
 * a secret ('{"api_key": "X"}'). */
static void redact_json_secrets(GString *s)
{
    for (gsize i = 0; i < s->len; i++) {
        if (s->str[i] != '"')
            continue;
        gsize name = i + 1, close = name;
        while (close < s->len && is_key_char(s->str[close]))
            close++;
        if (close == name || close >= s->len || s->str[close] != '"' ||
            !is_secret_name(s->str + name, close - name))
            continue;
        gsize v = close + 1;
        while (v < s->len && (s->str[v] == ' ' || s->str[v] == '\t'))
            v++;
        if (v >= s->len || s->str[v] != ':')
            continue;
        v++;
        while (v < s->len && (s->str[v] == ' ' || s->str[v] == '\t'))
            v++;
        if (v >= s->len || s->str[v] != '"')
            continue;
        gsize end = v + 1;
        while (end < s->len && s->str[end] != '"')
            end += s->str[end] == '\\' && end + 1 < s->len ? 2 : 1;
        if (end > v + 1)
            i = replace_span(s, v + 1, MIN(end, s->len));
    }
}

/* Characters after which a word may start an assignment inside an
 * argument: a shell command line ("sh -c 'cd x && OPENAI_API_KEY=X
 * python3 a.py'", "export KEY=X; ..."), an option that passes one on
 * ("--env=OPENAI_API_KEY=X", "--build-arg=..."; glued to a short option,
 * "-eOPENAI_API_KEY=X", it starts at the third character), a dotted or
 * listed setting ("--set secrets.apiKey=X,n=1"). */
static gboolean is_assignment_boundary(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' ||
           c == '`' || c == '\'' || c == '"' || c == '=' || c == '.' || c == ',';
}

/* Replaces the value of every environment assignment with a secret name
 * that starts after such a boundary; an assignment that is the whole
 * argument is redact_arg's. The value ends where the shell's word would:
 * at the matching quote when it is quoted, else at a blank or ;&|)'". */
static void redact_inner_assignments(GString *s)
{
    gboolean short_option = s->len > 2 && s->str[0] == '-' && g_ascii_isalpha(s->str[1]);
    for (gsize i = 1; i < s->len; i++) {
        if (!(is_assignment_boundary(s->str[i - 1]) || (i == 2 && short_option)) ||
            !(g_ascii_isalpha(s->str[i]) || s->str[i] == '_'))
            continue;
        gsize eq = i + 1;
        while (eq < s->len && (g_ascii_isalnum(s->str[eq]) || s->str[eq] == '_'))
            eq++;
        if (eq >= s->len || s->str[eq] != '=' || !is_secret_name(s->str + i, eq - i))
            continue;
        gsize v = eq + 1, end = v;
        if (v < s->len && (s->str[v] == '\'' || s->str[v] == '"')) {
            const char *close = memchr(s->str + v + 1, s->str[v], s->len - v - 1);
            v++;
            end = close != NULL ? (gsize)(close - s->str) : s->len;
        } else {
            while (end < s->len && strchr(" \t\n;&|)'\"", s->str[end]) == NULL)
                end++;
        }
        if (end > v)
            i = replace_span(s, v, end) - 1;
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

/* What the argument after the current one holds. */
typedef enum {
    NEXT_PLAIN,
    NEXT_SECRET,    /* a secret, redacted whole */
    NEXT_USER_PASS, /* curl's user:password, the password redacted */
} NextArg;

/* curl's options whose value is user:password (-u, -U and their long names). */
static const char *const user_pass_options[] = {"--user", "--proxy-user", "-u", "-U"};

/* Where the value of a user:password option starts in `arg` ("-uU:P",
 * "--user=U:P"), "" when the value is the next argument, or NULL. */
static const char *user_pass_value(const char *arg)
{
    for (guint i = 0; i < G_N_ELEMENTS(user_pass_options); i++) {
        const char *opt = user_pass_options[i];
        size_t n = strlen(opt);
        if (strncmp(arg, opt, n) != 0)
            continue;
        if (arg[n] == '\0')
            return arg + n;
        if (opt[1] != '-') /* a short option glued to its value */
            return arg + n;
        if (arg[n] == '=')
            return arg + n + 1;
    }
    return NULL;
}

/* Where the password starts in a user:password value, or NULL. */
static const char *password_of(const char *value)
{
    const char *colon = strchr(value, ':');
    return colon != NULL && colon[1] != '\0' ? colon + 1 : NULL;
}

/* Redacts one argument, given what the one before said of it. Sets
 * *ret_next to what the argument says of the one after. Transfer full. */
static char *redact_arg(const char *arg, NextArg this_one, NextArg *ret_next)
{
    GString *out = g_string_new(NULL);
    *ret_next = NEXT_PLAIN;
    const char *value = NULL;
    if (this_one == NEXT_SECRET) {
        value = arg;
    } else if (this_one == NEXT_USER_PASS) {
        value = password_of(arg);
    } else if ((value = user_pass_value(arg)) != NULL) {
        if (*value == '\0')
            *ret_next = NEXT_USER_PASS;
        value = password_of(value);
    } else if (arg[0] == '-' && arg[1] != '\0' && arg[2] != '\0') {
        /* --api-key, and -api-key as Go's flag package and Java's
         * -Dapi.key=X spell it: a single dash before a name of two
         * characters or more (-k is a short option, never a secret name). */
        size_t dashes = arg[1] == '-' ? 2 : 1;
        const char *eq = strchr(arg, '=');
        size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
        if (len > dashes && is_secret_name(arg + dashes, len - dashes)) {
            if (eq == NULL)
                *ret_next = NEXT_SECRET;
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
            *ret_next = NEXT_SECRET;
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
    redact_url_passwords(out);
    redact_inner_assignments(out);
    redact_query_secrets(out);
    redact_json_secrets(out);
    redact_keys(out);
    return g_string_free(out, FALSE);
}

/* Cuts the redacted `argv` (n entries, owned) to LW_REDACT_MAX_BYTES, in
 * place; `argv` has room for n + 2 entries (a cut last argument, the note,
 * the NULL). It runs after redaction, so a cut never keeps part of a
 * secret that redaction would have replaced whole. */
static void cut_to_max(char **argv, guint n)
{
    gsize used = 0;
    guint i = 0;
    for (; i < n; i++) {
        gsize len = strlen(argv[i]) + 1;
        if (len > LW_REDACT_MAX_BYTES - used)
            break;
        used += len;
    }
    if (i == n)
        return;
    gsize left = 0;
    for (guint j = i; j < n; j++)
        left += strlen(argv[j]) + 1;
    /* The first argument that does not fit keeps what room is left, cut
     * before a UTF-8 continuation byte so a character is never split. */
    gsize keep = LW_REDACT_MAX_BYTES - used;
    keep = keep > 0 ? keep - 1 : 0;
    while (keep > 0 && ((guchar)argv[i][keep] & 0xc0) == 0x80)
        keep--;
    if (keep > 0) {
        argv[i][keep] = '\0';
        left -= keep + 1;
        i++;
    }
    for (guint j = i; j < n; j++)
        g_free(argv[j]);
    argv[i] = g_strdup_printf("[%" G_GSIZE_FORMAT " more bytes not recorded]", left);
    argv[i + 1] = NULL;
}

char **lw_redact_argv(char *const *argv)
{
    guint n = argv != NULL ? g_strv_length((char **)argv) : 0;
    char **out = g_new0(char *, n + 2);
    NextArg next = NEXT_PLAIN;
    for (guint i = 0; i < n; i++)
        out[i] = redact_arg(argv[i], next, &next);
    cut_to_max(out, n);
    return out;
}
