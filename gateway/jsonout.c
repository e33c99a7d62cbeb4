/* JSON text out: jansson values serialized compactly, with each real in the shortest form that reads back the same. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jsonout.h"

/* The length of the well-formed UTF-8 sequence at p (no overlongs, no surrogates, at most U+10FFFF), or 0. */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end)
{
    unsigned c = *p;
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n == 0 || (size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; ++i)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))) ||
        (n == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))))
        return 0;
    return n;
}

void cf_json_write_string(cf_buf_t *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p; /* run: bytes copied in one go */
    cf_buf_reserve(out, len + 2);
    cf_buf_appendc(out, '"');
    while (p != end) {
        unsigned c = *p;
        const char *esc = NULL;
        char u[7];
        size_t n = 1;
        if (c >= 0x80) {
            if ((n = utf8_sequence(p, end)) != 0) {
                p += n;
                continue;
            }
            n = 1;
            esc = "\\ufffd";
        } else if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c == '\n') {
            esc = "\\n";
        } else if (c == '\r') {
            esc = "\\r";
        } else if (c == '\t') {
            esc = "\\t";
        } else if (c == '\b') {
            esc = "\\b";
        } else if (c == '\f') {
            esc = "\\f";
        } else if (c < 0x20 || c == 0x7f) {
            u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0', u[4] = hex[c >> 4], u[5] = hex[c & 15], u[6] = '\0';
            esc = u;
        }
        if (esc == NULL) {
            ++p;
            continue;
        }
        cf_buf_append(out, run, (size_t)(p - run));
        cf_buf_appends(out, esc);
        p += n;
        run = p;
    }
    cf_buf_append(out, run, (size_t)(p - run));
    cf_buf_appendc(out, '"');
}

/* The shortest of %.15g, %.16g and %.17g that reads back as `d` (17 digits always do), into buf, with ".0" after an
 * integral value when mark_real; returns its length. */
static size_t format_real(double d, int mark_real, char buf[CF_JSON_SCALAR_MAX])
{
    int n = 0;
    for (int prec = 15; prec <= 17; ++prec) {
        n = snprintf(buf, CF_JSON_SCALAR_MAX, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (mark_real && strpbrk(buf, ".eEn") == NULL) {
        memcpy(buf + n, ".0", 3); /* stays a real when read again, as jansson writes it */
        n += 2;
    }
    return (size_t)n;
}

size_t cf_json_format_scalar(const json_t *v, int mark_real, char buf[CF_JSON_SCALAR_MAX])
{
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        return cf_fmt_i64(buf, (int64_t)json_integer_value(v));
    case JSON_REAL:
        if (isfinite(json_real_value(v))) /* jansson never decodes the others */
            return format_real(json_real_value(v), mark_real, buf);
        break;
    case JSON_TRUE:
        memcpy(buf, "true", 5);
        return 4;
    case JSON_FALSE:
        memcpy(buf, "false", 6);
        return 5;
    default:
        break;
    }
    buf[0] = '\0';
    return 0;
}

void cf_json_write(cf_buf_t *out, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *member;
        int first = 1;
        cf_buf_appendc(out, '{');
        json_object_foreach((json_t *)v, key, member)
        {
            if (!first)
                cf_buf_appendc(out, ',');
            first = 0;
            cf_json_write_string(out, key, strlen(key));
            cf_buf_appendc(out, ':');
            cf_json_write(out, member);
        }
        cf_buf_appendc(out, '}');
        break;
    }
    case JSON_ARRAY:
        cf_buf_appendc(out, '[');
        for (size_t i = 0; i != json_array_size(v); ++i) {
            if (i != 0)
                cf_buf_appendc(out, ',');
            cf_json_write(out, json_array_get(v, i));
        }
        cf_buf_appendc(out, ']');
        break;
    case JSON_STRING:
        cf_json_write_string(out, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
    case JSON_REAL:
    case JSON_TRUE:
    case JSON_FALSE: {
        char buf[CF_JSON_SCALAR_MAX];
        size_t n = cf_json_format_scalar(v, 1, buf);
        if (n != 0)
            cf_buf_append(out, buf, n);
        else
            cf_buf_appends(out, "null"); /* a real that is not finite: refuse to write invalid JSON */
        break;
    }
    default:
        cf_buf_appends(out, "null");
        break;
    }
}
