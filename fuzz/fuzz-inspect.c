/* fuzz-inspect.c - libFuzzer target for collector/inspect.c: what the
 * collector reads from a client's request (method, path, JSON body) and the
 * edits it makes to it (model downgrade, max-tokens clamp, include_usage).
 *
 * Input: one byte choosing the provider format and the method, the path up
 * to the first newline, then the body. Besides crashes and sanitizer
 * reports, the target aborts when an edit of a valid JSON body does not
 * read back: the edited body must be valid JSON too, a body whose model was
 * rewritten must name the new model, a clamped one must ask for the clamp,
 * and one given include_usage must ask for usage and keep its model and
 * stream flag. (Invalid bodies are not edited in earnest: with no model
 * read, admission refuses them under any budget that would edit them.)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

#include "inspect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(bool ok)
{
    if (!ok)
        abort();
}

static bool is_json(const char *s, size_t n)
{
    yajl_handle h = yajl_alloc(NULL, NULL, NULL);
    bool ok = yajl_parse(h, (const unsigned char *)s, n) == yajl_status_ok &&
              yajl_complete_parse(h) == yajl_status_ok;
    yajl_free(h);
    return ok;
}

static bool bytes_are_json(GBytes *b)
{
    gsize n = 0;
    const char *s = g_bytes_get_data(b, &n);
    return is_json(s, n);
}

static void inspect(LwFormat format, const char *method, const char *path, GBytes *body,
                    LwRequestInfo *ret)
{
    gsize len = 0;
    const char *p = g_bytes_get_data(body, &len);
    lw_inspect_request(format, method, path, p, len, ret);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const LwFormat formats[] = {LW_FORMAT_OPENAI, LW_FORMAT_ANTHROPIC, LW_FORMAT_GEMINI};
    LwFormat format = formats[data[0] % 3];
    const char *method = data[0] & 0x80 ? "GET" : "POST";
    const char *rest = (const char *)data + 1;
    size_t rest_len = size - 1;
    const char *nl = memchr(rest, '\n', rest_len);
    size_t path_len = nl != NULL ? (size_t)(nl - rest) : rest_len;
    char *path = g_strndup(rest, path_len); /* stops at a NUL, as a C string path does */
    const char *body = nl != NULL ? nl + 1 : rest + rest_len;
    size_t body_len = rest_len - (size_t)(body - rest);

    LwRequestInfo info;
    GBytes *with_usage =
        lw_inspect_request_adding_usage(format, method, path, body, body_len, &info);
    require(info.body_bytes == (gint64)body_len);
    g_free(lw_path_for_display(path));
    require(lw_endpoint_name(info.endpoint) != NULL);
    /* Gemini's model is in its path ("models/M:method"): a body's model
     * then counts for nothing. */
    LwRequestInfo bare;
    lw_inspect_request(format, method, path, "{}", 2, &bare);
    gboolean model_in_path = bare.model != NULL;
    lw_request_info_clear(&bare);
    bool valid = is_json(body, body_len);

    if (with_usage != NULL && valid) {
        require(bytes_are_json(with_usage));
        LwRequestInfo back;
        inspect(format, method, path, with_usage, &back);
        require(back.include_usage && back.stream == info.stream);
        require(g_strcmp0(back.model, info.model) == 0);
        lw_request_info_clear(&back);
    }
    if (with_usage != NULL)
        g_bytes_unref(with_usage);
    GBytes *renamed = lw_rewrite_model(body, body_len, "fuzz-model");
    if (renamed != NULL && valid) {
        require(bytes_are_json(renamed));
        LwRequestInfo back;
        inspect(format, method, path, renamed, &back);
        require(model_in_path || g_strcmp0(back.model, "fuzz-model") == 0);
        lw_request_info_clear(&back);
    }
    if (renamed != NULL)
        g_bytes_unref(renamed);
    GBytes *clamped = lw_rewrite_max_output(body, body_len, format, &info, 7);
    if (clamped != NULL && valid) {
        require(bytes_are_json(clamped));
        LwRequestInfo back;
        inspect(format, method, path, clamped, &back);
        require(back.max_output == 7);
        lw_request_info_clear(&back);
    }
    if (clamped != NULL)
        g_bytes_unref(clamped);
    lw_request_info_clear(&info);
    g_free(path);
    return 0;
}
