/* A call's JSON body: YAML value -> JSON text with holes (placeholders), and its expansion into the request body. */
/*
 * The guarantee: whatever the values, the expansion is valid JSON with the structure the config wrote. A value goes in
 * either whole, with its JSON type (a string that is exactly one placeholder), or as text inside a JSON string, escaped
 * there (quote, backslash, control bytes; ill-formed UTF-8 becomes U+FFFD). The client's body goes in byte for byte,
 * after the caller checked that it parses as JSON. Mapping keys are literal: a value cannot name a member.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "body.h"
#include "cf_http.h"
#include "jsonout.h"

/* --- compiling --------------------------------------------------------------------------------------------------- */

struct st_body_compile_t {
    cf_yctx_t *ctx;
    cf_body_t *b;
    size_t nodes;
};

static void *body_realloc(void *p, size_t n)
{
    if ((p = realloc(p, n)) == NULL) {
        fprintf(stderr, "fatal: out of memory\n");
        abort();
    }
    return p;
}

static cf_body_part_t *body_add_part(cf_body_t *b, cf_body_kind_t kind)
{
    b->parts = body_realloc(b->parts, (b->num_parts + 1) * sizeof(*b->parts));
    cf_body_part_t *p = &b->parts[b->num_parts++];
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    p->tpl.call_index = -1;
    return p;
}

/* Appends JSON text, to the last part when it is text too. */
static void body_add_text(cf_body_t *b, const char *s, size_t len)
{
    cf_body_part_t *p = b->num_parts != 0 && b->parts[b->num_parts - 1].kind == CF_BODY_TEXT ? &b->parts[b->num_parts - 1]
                                                                                             : body_add_part(b, CF_BODY_TEXT);
    p->text = body_realloc(p->text, p->len + len + 1);
    memcpy(p->text + p->len, s, len);
    p->len += len;
    p->text[p->len] = '\0';
}

/* Appends the bytes s[0..len) as the inside of a JSON string (without the quotes). */
static void body_add_escaped(cf_body_t *b, const char *s, size_t len)
{
    cf_buf_t tmp = CF_BUF_INIT;
    cf_json_write_string(&tmp, s, len);
    body_add_text(b, tmp.base + 1, tmp.len - 2);
    cf_buf_free(&tmp);
}

static int body_is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* Whether s is empty, or an exponent ([eE][-+]?[0-9]+) and nothing after it: the end of a number. */
static int body_exponent_ends(const char *s)
{
    if (*s == 'e' || *s == 'E') {
        ++s;
        if (*s == '+' || *s == '-')
            ++s;
        if (!body_is_digit(*s))
            return 0;
        s += strspn(s, "0123456789");
    }
    return *s == '\0';
}

/* Whether s is a JSON number (RFC 8259 6): -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)? */
static int body_is_json_number(const char *s)
{
    if (*s == '-')
        ++s;
    if (*s == '0')
        ++s;
    else if (*s >= '1' && *s <= '9')
        while (body_is_digit(*s))
            ++s;
    else
        return 0;
    if (*s == '.') {
        if (!body_is_digit(*++s))
            return 0;
        while (body_is_digit(*s))
            ++s;
    }
    return body_exponent_ends(s);
}

/* Whether s is a number for YAML 1.2's core schema (or 1.1's octal 007), which JSON cannot carry as written. */
static int body_is_yaml_number(const char *s)
{
    static const char *const special[] = {".inf",  ".Inf",  ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
                                          "-.Inf", "-.INF", ".nan", ".NaN",  ".NAN",  NULL};
    for (size_t i = 0; special[i] != NULL; ++i)
        if (strcmp(s, special[i]) == 0)
            return 1;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o') && s[2] != '\0')
        return strspn(s + 2, s[1] == 'x' ? "0123456789abcdefABCDEF" : "01234567") == strlen(s + 2);
    if (*s == '-' || *s == '+')
        ++s;
    size_t digits = strspn(s, "0123456789");
    s += digits;
    if (*s == '.') {
        size_t frac = strspn(s + 1, "0123456789");
        digits += frac;
        s += 1 + frac;
    }
    if (digits == 0)
        return 0;
    return body_exponent_ends(s);
}

static int body_compile_string(struct st_body_compile_t *C, yaml_node_t *node, const char *s, size_t len)
{
    cf_body_t *b = C->b;
    /* exactly one placeholder: the value with its type */
    if (len >= 2 && s[0] == '{' && s[1] != '{' && s[len - 1] == '}' && memchr(s + 1, '{', len - 2) == NULL &&
        memchr(s + 1, '}', len - 2) == NULL) {
        if (len - 2 == 12 && memcmp(s + 1, "request.body", 12) == 0) {
            body_add_part(b, CF_BODY_REQUEST);
            b->uses_request_body = 1;
            return 0;
        }
        cf_body_part_t *p = body_add_part(b, CF_BODY_VALUE);
        char err[256] = "";
        if (cf_tpl_part_parse(s + 1, len - 2, &p->tpl, err, sizeof(err)) != 0) {
            --b->num_parts;
            return cf_yerror(C->ctx, node, "\"%.*s\": %s", (int)len, s, err);
        }
        if (p->tpl.kind == CF_TPL_CALL && p->tpl.len == 7 && memcmp(p->tpl.text, "request", 7) == 0)
            return cf_yerror(C->ctx, node, "\"%.*s\": the only field of request is body ({request.body})", (int)len, s);
        return 0;
    }
    body_add_text(b, "\"", 1);
    size_t lit = 0, i = 0;
    while (i < len) {
        if ((s[i] == '{' || s[i] == '}') && i + 1 < len && s[i + 1] == s[i]) { /* "{{" and "}}": one brace */
            body_add_escaped(b, s + lit, i + 1 - lit);
            i += 2;
            lit = i;
            continue;
        }
        if (s[i] == '}')
            return cf_yerror(C->ctx, node, "unbalanced '}' at offset %zu of \"%.*s\" (write \"}}\" for a '}')", i, (int)len, s);
        if (s[i] != '{') {
            ++i;
            continue;
        }
        const char *close = memchr(s + i + 1, '}', len - i - 1);
        const char *open = memchr(s + i + 1, '{', len - i - 1);
        if (close == NULL || (open != NULL && open < close))
            return cf_yerror(C->ctx, node, "unbalanced '{' at offset %zu of \"%.*s\" (write \"{{\" for a '{')", i, (int)len, s);
        body_add_escaped(b, s + lit, i - lit);
        size_t inner = (size_t)(close - s) - i - 1;
        if (inner == 12 && memcmp(s + i + 1, "request.body", 12) == 0)
            return cf_yerror(C->ctx, node,
                             "{request.body} inside a longer string: it inserts the client's JSON body and must be the whole "
                             "string (\"{request.body}\")");
        cf_body_part_t *p = body_add_part(b, CF_BODY_INTERPOLATED);
        char err[256] = "";
        if (cf_tpl_part_parse(s + i + 1, inner, &p->tpl, err, sizeof(err)) != 0) {
            --b->num_parts;
            return cf_yerror(C->ctx, node, "\"%.*s\" at offset %zu: %s", (int)(inner + 2), s + i, i, err);
        }
        if (p->tpl.kind == CF_TPL_CALL && p->tpl.len == 7 && memcmp(p->tpl.text, "request", 7) == 0)
            return cf_yerror(C->ctx, node, "\"%.*s\": the only field of request is body ({request.body})", (int)(inner + 2), s + i);
        i = lit = (size_t)(close - s) + 1;
    }
    body_add_escaped(b, s + lit, len - lit);
    body_add_text(b, "\"", 1);
    return 0;
}

static int body_compile_scalar(struct st_body_compile_t *C, yaml_node_t *node)
{
    const char *s = (const char *)node->data.scalar.value;
    size_t len = node->data.scalar.length;
    if (memchr(s, '\0', len) != NULL)
        return cf_yerror(C->ctx, node, "a NUL byte in a string");
    if (node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (len == 0 || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0) {
            body_add_text(C->b, "null", 4);
            return 0;
        }
        if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0) {
            body_add_text(C->b, "true", 4);
            return 0;
        }
        if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0) {
            body_add_text(C->b, "false", 5);
            return 0;
        }
        if (body_is_json_number(s)) {
            if (!isfinite(strtod(s, NULL)))
                return cf_yerror(C->ctx, node, "%s is out of the range of a JSON number (a double)", s);
            /* an integer past 64 bits loses digits or is refused by many parsers (jansson, JavaScript's safe range is
             * smaller still): say so rather than send it */
            errno = 0;
            if (strpbrk(s, ".eE") == NULL && (strtoll(s, NULL, 10), errno == ERANGE))
                return cf_yerror(C->ctx, node, "%s is out of the range of a 64-bit integer: write it as a real (1e30) or quote it",
                                 s);
            body_add_text(C->b, s, len);
            return 0;
        }
        if (body_is_yaml_number(s))
            return cf_yerror(C->ctx, node,
                             "%s is a number in YAML that JSON cannot carry as written: write it as JSON does (10, 0.5, "
                             "1e3) or quote it to send a string",
                             s);
    }
    return body_compile_string(C, node, s, len);
}

static int body_compile_node(struct st_body_compile_t *C, yaml_node_t *node, unsigned depth)
{
    if (node == NULL)
        return cf_yerror(C->ctx, NULL, "internal error: a body node is missing");
    if (++C->nodes > CF_BODY_MAX_NODES)
        return cf_yerror(C->ctx, node, "more than %d values in all (aliases count each time they are used)", CF_BODY_MAX_NODES);
    if (depth > CF_BODY_MAX_DEPTH)
        return cf_yerror(C->ctx, node, "nests deeper than %d levels", CF_BODY_MAX_DEPTH);
    /* libyaml gives an untagged node its kind's default tag, and "!!str" the same one as no tag: any other tag (!!int,
     * !!binary, a local !tag) would be quietly dropped, so it is refused */
    const char *tag = (const char *)node->tag;
    if (tag != NULL && strcmp(tag, YAML_DEFAULT_SCALAR_TAG) != 0 && strcmp(tag, YAML_DEFAULT_SEQUENCE_TAG) != 0 &&
        strcmp(tag, YAML_DEFAULT_MAPPING_TAG) != 0)
        return cf_yerror(C->ctx, node, "the YAML tag %.100s is not read here: write the value as it is to be sent (quote a string)",
                         tag);
    switch (node->type) {
    case YAML_SCALAR_NODE:
        return body_compile_scalar(C, node);
    case YAML_SEQUENCE_NODE: {
        body_add_text(C->b, "[", 1);
        size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
        for (size_t i = 0; i < n; ++i) {
            if (i != 0)
                body_add_text(C->b, ",", 1);
            size_t mark = cf_ypath_index(C->ctx, i);
            if (body_compile_node(C, cf_yaml_node(C->ctx->y, node->data.sequence.items.start[i]), depth + 1) != 0)
                return -1;
            cf_ypath_restore(C->ctx, mark);
        }
        body_add_text(C->b, "]", 1);
        return 0;
    }
    case YAML_MAPPING_NODE: {
        body_add_text(C->b, "{", 1);
        yaml_node_pair_t *pairs = node->data.mapping.pairs.start;
        size_t n = (size_t)(node->data.mapping.pairs.top - pairs);
        for (size_t i = 0; i < n; ++i) {
            yaml_node_t *knode = cf_yaml_node(C->ctx->y, pairs[i].key);
            if (knode == NULL || knode->type != YAML_SCALAR_NODE)
                return cf_yerror(C->ctx, knode, "a mapping key must be a string, not a %s",
                                 knode != NULL && knode->type == YAML_MAPPING_NODE ? "mapping" : "list");
            const char *key = (const char *)knode->data.scalar.value;
            size_t klen = knode->data.scalar.length;
            if (klen == 2 && memcmp(key, "<<", 2) == 0 && knode->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
                return cf_yerror(C->ctx, knode, "YAML merge keys (<<) are not read here: write the members out");
            if (memchr(key, '\0', klen) != NULL)
                return cf_yerror(C->ctx, knode, "a NUL byte in a mapping key");
            for (size_t j = 0; j < i; ++j) {
                yaml_node_t *other = cf_yaml_node(C->ctx->y, pairs[j].key);
                if (other->data.scalar.length == klen && memcmp(other->data.scalar.value, key, klen) == 0)
                    return cf_yerror(C->ctx, knode, "\"%s\" appears twice in this mapping", key);
            }
            if (i != 0)
                body_add_text(C->b, ",", 1);
            body_add_text(C->b, "\"", 1);
            body_add_escaped(C->b, key, klen);
            body_add_text(C->b, "\":", 2);
            size_t mark = cf_ypath_key(C->ctx, key);
            if (body_compile_node(C, cf_yaml_node(C->ctx->y, pairs[i].value), depth + 1) != 0)
                return -1;
            cf_ypath_restore(C->ctx, mark);
        }
        body_add_text(C->b, "}", 1);
        return 0;
    }
    default:
        return cf_yerror(C->ctx, node, "expected a YAML value");
    }
}

int cf_body_parse(cf_yctx_t *ctx, yaml_node_t *node, cf_body_t *out)
{
    memset(out, 0, sizeof(*out));
    struct st_body_compile_t C = {.ctx = ctx, .b = out};
    size_t mark = ctx->pathlen;
    if (body_compile_node(&C, node, 0) != 0) {
        cf_body_free(out);
        return -1;
    }
    cf_ypath_restore(ctx, mark);
    return 0;
}

void cf_body_free(cf_body_t *b)
{
    for (size_t i = 0; i < b->num_parts; ++i) {
        free(b->parts[i].text);
        if (b->parts[i].kind == CF_BODY_VALUE || b->parts[i].kind == CF_BODY_INTERPOLATED)
            cf_tpl_part_free(&b->parts[i].tpl);
    }
    free(b->parts);
    memset(b, 0, sizeof(*b));
}

/* --- expanding --------------------------------------------------------------------------------------------------- */

/* Appends the inside of a JSON string holding s[0..len). */
static void body_append_escaped(cf_buf_t *out, const char *s, size_t len)
{
    size_t at = out->len;
    cf_json_write_string(out, s, len);
    memmove(out->base + at, out->base + at + 1, out->len - at - 2);
    out->len -= 2;
    out->base[out->len] = '\0';
}

static int body_append_value(cf_buf_t *out, const cf_body_part_t *p, const cf_body_value_t *v)
{
    if (v->json == NULL) {
        if (v->str == NULL && v->len != 0)
            return CF_TPL_MISSING;
        if (p->kind == CF_BODY_VALUE)
            cf_json_write_string(out, v->str != NULL ? v->str : "", v->len);
        else
            body_append_escaped(out, v->str != NULL ? v->str : "", v->len);
        return CF_TPL_OK;
    }
    if (json_is_null(v->json))
        return CF_TPL_MISSING;
    if (p->kind == CF_BODY_VALUE) {
        cf_json_write(out, v->json);
        return CF_TPL_OK;
    }
    if (json_is_string(v->json)) {
        body_append_escaped(out, json_string_value(v->json), json_string_length(v->json));
        return CF_TPL_OK;
    }
    char buf[CF_JSON_SCALAR_MAX];
    size_t n = cf_json_format_scalar(v->json, 0, buf); /* a number or a boolean: as in a URL; no text for the others */
    if (n == 0)
        return CF_TPL_MISSING;
    cf_buf_append(out, buf, n);
    return CF_TPL_OK;
}

int cf_body_expand(const cf_body_t *b, cf_body_lookup_cb lookup, void *ctx, const char *request_body, size_t request_body_len,
                   size_t max, cf_buf_t *out, const cf_tpl_part_t **failed)
{
    size_t start = out->len;
    int rc = CF_TPL_OK;
    const cf_body_part_t *p = NULL;
    for (size_t i = 0; i < b->num_parts; ++i) {
        p = &b->parts[i];
        switch (p->kind) {
        case CF_BODY_TEXT:
            cf_buf_append(out, p->text, p->len);
            break;
        case CF_BODY_REQUEST:
            if (request_body == NULL) {
                rc = CF_TPL_MISSING;
                goto Fail;
            }
            if (request_body_len > max) {
                rc = CF_BODY_TOO_LARGE;
                goto Fail;
            }
            cf_buf_append(out, request_body, request_body_len);
            break;
        default: {
            cf_body_value_t v = {NULL, NULL, 0};
            if (lookup(ctx, &p->tpl, &v) != CF_TPL_OK || (rc = body_append_value(out, p, &v)) != CF_TPL_OK) {
                rc = CF_TPL_MISSING;
                goto Fail;
            }
            break;
        }
        }
        if (out->len - start > max) {
            rc = CF_BODY_TOO_LARGE;
            goto Fail;
        }
    }
    cf_buf_truncate(out, out->len);
    return CF_TPL_OK;
Fail:
    cf_buf_truncate(out, start);
    if (failed != NULL)
        *failed = p != NULL && p->kind != CF_BODY_TEXT && p->kind != CF_BODY_REQUEST ? &p->tpl : NULL;
    return rc;
}

/* --- the client's body ----------------------------------------------------------------------------------------------- */

/* Reads the JSON string whose opening quote is at s[*i]: UTF-8 well formed (no overlong form, no encoded surrogate),
 * no raw control byte, escapes as RFC 8259 7 has them, a \u surrogate only in a high-low pair (RFC 7493 2.1). */
static int json_string_ok(const unsigned char *s, size_t len, size_t *i)
{
    size_t p = *i + 1;
    while (p < len) {
        unsigned c = s[p];
        if (c == '"') {
            *i = p + 1;
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c == '\\') {
            if (++p >= len)
                return 0;
            if (s[p] != 'u') {
                if (strchr("\"\\/bfnrt", s[p]) == NULL || s[p] == '\0')
                    return 0;
                ++p;
                continue;
            }
            for (int pair = 0;; ++pair) {
                unsigned v = 0;
                for (int k = 1; k <= 4; ++k) {
                    int h = p + k < len ? cf_hexval(s[p + k]) : -1;
                    if (h < 0)
                        return 0;
                    v = v << 4 | (unsigned)h;
                }
                p += 5;
                if (pair == 0) {
                    if (v >= 0xdc00 && v <= 0xdfff)
                        return 0; /* a low surrogate first */
                    if (v < 0xd800 || v > 0xdbff)
                        break;
                    if (p + 1 >= len || s[p] != '\\' || s[p + 1] != 'u')
                        return 0; /* a high surrogate alone */
                    ++p;
                } else {
                    if (v < 0xdc00 || v > 0xdfff)
                        return 0;
                    break;
                }
            }
            continue;
        }
        if (c < 0x80) {
            ++p;
            continue;
        }
        /* a multi-byte sequence: its length, and the range of the byte after the lead (RFC 3629 4) */
        size_t n;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 3;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 4;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return 0;
        }
        if (p + n > len || s[p + 1] < lo || s[p + 1] > hi)
            return 0;
        for (size_t k = 2; k < n; ++k)
            if (s[p + k] < 0x80 || s[p + k] > 0xbf)
                return 0;
        p += n;
    }
    return 0;
}

/* Reads the number at s[*i] (RFC 8259 6), of any magnitude: the text goes on as it came. */
static int json_number_ok(const unsigned char *s, size_t len, size_t *i)
{
    size_t p = *i;
    if (p < len && s[p] == '-')
        ++p;
    if (p < len && s[p] == '0') {
        ++p;
    } else if (p < len && s[p] >= '1' && s[p] <= '9') {
        while (p < len && body_is_digit(s[p]))
            ++p;
    } else {
        return 0;
    }
    if (p < len && s[p] == '.') {
        if (++p >= len || !body_is_digit(s[p]))
            return 0;
        while (p < len && body_is_digit(s[p]))
            ++p;
    }
    if (p < len && (s[p] == 'e' || s[p] == 'E')) {
        ++p;
        if (p < len && (s[p] == '+' || s[p] == '-'))
            ++p;
        if (p >= len || !body_is_digit(s[p]))
            return 0;
        while (p < len && body_is_digit(s[p]))
            ++p;
    }
    *i = p;
    return 1;
}

static size_t json_skip_ws(const unsigned char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        ++i;
    return i;
}

int cf_body_json_valid(const char *text, size_t len, size_t *error_at)
{
    const unsigned char *s = (const unsigned char *)text;
    unsigned char in_object[CF_BODY_JSON_MAX_DEPTH / 8 + 1]; /* a bit per open container: an object, or an array */
    size_t depth = 0, i = 0;
#define TOP_IS_OBJECT() ((in_object[(depth - 1) / 8] >> ((depth - 1) % 8)) & 1)
Value:
    i = json_skip_ws(s, len, i);
    if (i >= len)
        goto Bad;
    switch (s[i]) {
    case '{':
    case '[':
        if (depth == CF_BODY_JSON_MAX_DEPTH)
            goto Bad;
        if (s[i] == '{')
            in_object[depth / 8] |= (unsigned char)(1u << (depth % 8));
        else
            in_object[depth / 8] &= (unsigned char)~(1u << (depth % 8));
        ++depth;
        i = json_skip_ws(s, len, i + 1);
        if (i < len && s[i] == (TOP_IS_OBJECT() ? '}' : ']')) {
            --depth;
            ++i;
            goto After;
        }
        if (TOP_IS_OBJECT())
            goto Key;
        goto Value;
    case '"':
        if (!json_string_ok(s, len, &i))
            goto Bad;
        goto After;
    case 't':
    case 'f':
    case 'n': {
        const char *word = s[i] == 't' ? "true" : s[i] == 'f' ? "false" : "null";
        size_t wl = strlen(word);
        if (len - i < wl || memcmp(s + i, word, wl) != 0)
            goto Bad;
        i += wl;
        goto After;
    }
    default:
        if (!json_number_ok(s, len, &i))
            goto Bad;
        goto After;
    }
Key:
    i = json_skip_ws(s, len, i);
    if (i >= len || s[i] != '"' || !json_string_ok(s, len, &i))
        goto Bad;
    i = json_skip_ws(s, len, i);
    if (i >= len || s[i] != ':')
        goto Bad;
    ++i;
    goto Value;
After:
    i = json_skip_ws(s, len, i);
    if (depth == 0) {
        if (i == len)
            return 1;
        goto Bad;
    }
    if (i >= len)
        goto Bad;
    if (s[i] == ',') {
        ++i;
        if (TOP_IS_OBJECT())
            goto Key;
        goto Value;
    }
    if (s[i] == (TOP_IS_OBJECT() ? '}' : ']')) {
        --depth;
        ++i;
        goto After;
    }
Bad:
    if (error_at != NULL)
        *error_at = i;
    return 0;
#undef TOP_IS_OBJECT
}
