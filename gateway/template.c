/* URL templates: parsing "/users/{id}?lang={query.lang}" and expanding it with values encoded for where they land. */
/*
 * The guarantee: a value can never change which upstream URL is requested. Every value byte but the RFC 3986
 * unreserved ones (A-Z a-z 0-9 - . _ ~) is percent-encoded, so a value adds no '/', '?', '&', '=', '#', '%' of its
 * own, no space, CR, LF, NUL, control or non-ASCII byte.
 *
 * Encoding is not enough in the path: servers such as nginx decode %2F and %2E before they resolve dot segments (and
 * some take '\' for '/'), so "..%2Fadmin" in one segment reaches /admin there (the class of Envoy's CVE-2019-9901).
 * So a value that fills a
 * path segment is refused (CF_TPL_BAD_INPUT) when it is "." or "..", holds a '\', or holds a '/' (unless the call
 * says encoded_slash: keep, and then no '/'-separated piece of it may be "." or ".."). A route's {name*} capture
 * (PARAM with rest = 1) in the path keeps its '/' separators, each segment being encoded; a "." or ".." segment, a
 * '\', or an empty segment other than the last one is refused (the router already answers 400 for most of those;
 * this is the second lock). A path segment that a value helped build and that comes out as "." or ".." (a literal
 * "/." next to an empty rest capture) is refused too. An empty value in the path is CF_TPL_MISSING, except a rest
 * capture's. In the query, values are only encoded: a query value is never path-resolved.
 *
 * Literal text is validated at parse time: only what RFC 3986 allows in a path and query (unreserved, sub-delims,
 * ':', '@', '/', '?', and '%' followed by two hex digits). No '#', space, control, non-ASCII, '"', '<', '>', '\\',
 * '^', '`', '|', '[', ']' bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cf_http.h"
#include "router.h"
#include "template.h"

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_unreserved(int c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 3986: pchar / "/" / "?" without pct-encoded (checked separately) */
static int is_literal_byte(int c)
{
    return is_unreserved(c) || (c != '\0' && strchr("!$&'()*+,;=:@/?", c) != NULL);
}

static const char hexdigits[] = "0123456789ABCDEF";

static void encode_bytes(cf_buf_t *out, const char *s, size_t len)
{
    cf_buf_reserve(out, len * 3);
    char *dst = out->base + out->len;
    for (size_t i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c)) {
            *dst++ = (char)c;
        } else {
            *dst++ = '%';
            *dst++ = hexdigits[c >> 4];
            *dst++ = hexdigits[c & 15];
        }
    }
    out->len = (size_t)(dst - out->base);
    out->base[out->len] = '\0';
}

void cf_encode_segment(cf_buf_t *out, const char *s, size_t len)
{
    if (cf_is_dot_segment(s, len)) {
        cf_buf_append(out, len == 1 ? "%2E" : "%2E%2E", len * 3);
        return;
    }
    encode_bytes(out, s, len);
}

void cf_encode_query(cf_buf_t *out, const char *s, size_t len)
{
    encode_bytes(out, s, len);
}

int cf_segment_value_ok(const char *s, size_t len, unsigned flags)
{
    if (memchr(s, '\\', len) != NULL)
        return 0;
    if ((flags & CF_TPL_KEEP_ENCODED_SLASH) == 0)
        return !cf_is_dot_segment(s, len) && memchr(s, '/', len) == NULL;
    /* the upstream keeps "a%2Fb" as one segment; should it decode it after all, no piece may climb */
    for (size_t pos = 0;;) {
        const char *slash = memchr(s + pos, '/', len - pos);
        size_t end = slash != NULL ? (size_t)(slash - s) : len;
        if (cf_is_dot_segment(s + pos, end - pos))
            return 0;
        if (slash == NULL)
            return 1;
        pos = end + 1;
    }
}

int cf_rest_value_ok(const char *s, size_t len)
{
    if (memchr(s, '\\', len) != NULL)
        return 0;
    for (size_t pos = 0;;) {
        const char *slash = memchr(s + pos, '/', len - pos);
        size_t end = slash != NULL ? (size_t)(slash - s) : len;
        if (cf_is_dot_segment(s + pos, end - pos) || (end == pos && slash != NULL))
            return 0;
        if (slash == NULL)
            return 1;
        pos = end + 1;
    }
}

/* A {name*} value in the path (valid per cf_rest_value_ok): segments encoded one by one, '/' kept. */
static void encode_rest(cf_buf_t *out, const char *s, size_t len)
{
    for (size_t pos = 0;;) {
        const char *slash = memchr(s + pos, '/', len - pos);
        size_t end = slash != NULL ? (size_t)(slash - s) : len;
        encode_bytes(out, s + pos, end - pos);
        if (slash == NULL)
            return;
        cf_buf_appendc(out, '/');
        pos = end + 1;
    }
}

/* --- parsing --- */

static void part_free(cf_tpl_part_t *p)
{
    free(p->text);
    if (p->fields != NULL) {
        for (size_t i = 0; i != p->num_fields; ++i)
            free(p->fields[i]);
        free(p->fields);
    }
}

void cf_template_free(cf_template_t *t)
{
    for (size_t i = 0; i != t->num_parts; ++i)
        part_free(t->parts + i);
    free(t->parts);
    free(t->src);
    memset(t, 0, sizeof(*t));
}

static char *dup_bytes(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (p == NULL) {
        fprintf(stderr, "fatal: out of memory\n");
        abort();
    }
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static cf_tpl_part_t *add_part(cf_template_t *t, cf_tpl_kind_t kind, const char *text, size_t len)
{
    cf_tpl_part_t *parts = realloc(t->parts, (t->num_parts + 1) * sizeof(*parts));
    if (parts == NULL) {
        fprintf(stderr, "fatal: out of memory\n");
        abort();
    }
    t->parts = parts;
    cf_tpl_part_t *p = t->parts + t->num_parts++;
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    p->text = dup_bytes(text, len);
    p->len = len;
    p->call_index = -1;
    return p;
}

static int valid_ident(const char *s, size_t len, int allow_dash)
{
    if (len == 0 || !(is_alpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i != len; ++i) {
        int c = (unsigned char)s[i];
        if (!(is_alpha(c) || is_digit(c) || c == '_' || (allow_dash && c == '-')))
            return 0;
    }
    return 1;
}

/* Splits "a.b.c" into the part's NULL-terminated field list; each field is 1*(ALPHA / DIGIT / "_" / "-"). */
static int parse_fields(cf_tpl_part_t *p, const char *s, size_t len, size_t offset, char *err, size_t errlen)
{
    size_t count = 1;
    for (size_t i = 0; i != len; ++i)
        count += s[i] == '.';
    p->fields = calloc(count + 1, sizeof(*p->fields));
    if (p->fields == NULL) {
        fprintf(stderr, "fatal: out of memory\n");
        abort();
    }
    size_t start = 0;
    for (size_t i = 0; i <= len; ++i) {
        if (i < len && s[i] != '.') {
            int c = (unsigned char)s[i];
            if (!(is_alpha(c) || is_digit(c) || c == '_' || c == '-')) {
                snprintf(err, errlen, "invalid character '%c' in field name at offset %zu", c >= 0x21 && c < 0x7f ? c : '?',
                         offset + i);
                return -1;
            }
            continue;
        }
        if (i == start) {
            snprintf(err, errlen, "empty field name at offset %zu", offset + i);
            return -1;
        }
        p->fields[p->num_fields++] = dup_bytes(s + start, i - start);
        start = i + 1;
    }
    return 0;
}

/* Classifies the inside of one "{...}" standing at `offset` (of the '{'). */
static int parse_placeholder(cf_template_t *t, const char *s, size_t len, size_t offset, int in_query, char *err, size_t errlen)
{
    const char *dot = memchr(s, '.', len);
    size_t headlen = dot != NULL ? (size_t)(dot - s) : len, taillen = dot != NULL ? len - headlen - 1 : 0;
    const char *tail = s + headlen + 1;
    size_t tailoff = offset + 1 + headlen + 1;
    cf_tpl_part_t *p;

    if (dot == NULL) {
        if (len == 4 && memcmp(s, "item", 4) == 0) {
            p = add_part(t, CF_TPL_ITEM, s, len);
        } else if (len == 5 && memcmp(s, "items", 5) == 0) {
            p = add_part(t, CF_TPL_ITEMS, s, len);
        } else if (valid_ident(s, len, 0)) {
            p = add_part(t, CF_TPL_PARAM, s, len);
        } else {
            snprintf(err, errlen, "invalid placeholder {%.*s} at offset %zu (a parameter name is letters, digits and '_')",
                     (int)len, s, offset);
            return -1;
        }
    } else if (headlen == 5 && memcmp(s, "query", 5) == 0) {
        if (taillen == 0) {
            snprintf(err, errlen, "empty query parameter name at offset %zu", tailoff);
            return -1;
        }
        for (size_t i = 0; i != taillen; ++i) {
            int c = (unsigned char)tail[i];
            if (!(is_unreserved(c) || c == '[' || c == ']')) {
                snprintf(err, errlen, "invalid character in query parameter name at offset %zu", tailoff + i);
                return -1;
            }
        }
        p = add_part(t, CF_TPL_QUERY, tail, taillen);
    } else if (headlen == 3 && memcmp(s, "jwt", 3) == 0) {
        /* a top-level claim; a name with a dot (a URI-named claim) cannot be written here */
        if (!valid_ident(tail, taillen, 1)) {
            snprintf(err, errlen, "invalid claim name at offset %zu (a claim name is letters, digits, '_' and '-')", tailoff);
            return -1;
        }
        p = add_part(t, CF_TPL_JWT, tail, taillen);
    } else if (headlen == 6 && memcmp(s, "header", 6) == 0) {
        if (taillen == 0) {
            snprintf(err, errlen, "empty header name at offset %zu", tailoff);
            return -1;
        }
        for (size_t i = 0; i != taillen; ++i) {
            if (!cf_http_is_tchar((unsigned char)tail[i])) { /* a field name is a token (RFC 9110 5.1) */
                snprintf(err, errlen, "invalid character in header name at offset %zu", tailoff + i);
                return -1;
            }
        }
        p = add_part(t, CF_TPL_HEADER, tail, taillen);
        for (size_t i = 0; i != p->len; ++i)
            if (p->text[i] >= 'A' && p->text[i] <= 'Z')
                p->text[i] = (char)(p->text[i] - 'A' + 'a');
    } else {
        int is_item = headlen == 4 && memcmp(s, "item", 4) == 0;
        if (!is_item && !valid_ident(s, headlen, 1)) {
            snprintf(err, errlen, "invalid call name \"%.*s\" at offset %zu", (int)headlen, s, offset + 1);
            return -1;
        }
        p = add_part(t, is_item ? CF_TPL_ITEM : CF_TPL_CALL, s, headlen);
        if (parse_fields(p, tail, taillen, tailoff, err, errlen) != 0)
            return -1;
    }
    p->in_query = in_query;
    return 0;
}

int cf_template_parse(const char *src, cf_template_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (src == NULL || src[0] != '/') {
        snprintf(err, errlen, "a URL template must start with '/'");
        return -1;
    }
    out->src = dup_bytes(src, strlen(src));
    int in_query = 0;
    size_t lit_start = 0, i = 0;
    for (;;) {
        int c = (unsigned char)src[i];
        if (c != '\0' && c != '{') {
            if (c == '}') {
                snprintf(err, errlen, "unbalanced '}' at offset %zu", i);
                goto Error;
            }
            if (c == '%') {
                if (cf_hexval((unsigned char)src[i + 1]) < 0 || cf_hexval((unsigned char)src[i + 2]) < 0) {
                    snprintf(err, errlen, "'%%' at offset %zu does not start a %%XX escape", i);
                    goto Error;
                }
                i += 3;
                continue;
            }
            if (!is_literal_byte(c)) {
                if (c > 0x20 && c < 0x7f)
                    snprintf(err, errlen, "'%c' at offset %zu may not appear in a URL (percent-encode it)", c, i);
                else
                    snprintf(err, errlen, "byte 0x%02x at offset %zu may not appear in a URL (percent-encode it)", c, i);
                goto Error;
            }
            if (c == '?')
                in_query = 1;
            ++i;
            continue;
        }
        if (i != lit_start)
            add_part(out, CF_TPL_LITERAL, src + lit_start, i - lit_start);
        if (c == '\0')
            break;
        /* a placeholder */
        size_t open = i, close = i + 1;
        for (; src[close] != '}'; ++close) {
            if (src[close] == '\0') {
                snprintf(err, errlen, "unbalanced '{' at offset %zu", open);
                goto Error;
            }
            if (src[close] == '{') {
                snprintf(err, errlen, "'{' inside a placeholder at offset %zu", close);
                goto Error;
            }
        }
        if (close == open + 1) {
            snprintf(err, errlen, "empty placeholder '{}' at offset %zu", open);
            goto Error;
        }
        if (parse_placeholder(out, src + open + 1, close - open - 1, open, in_query, err, errlen) != 0)
            goto Error;
        i = lit_start = close + 1;
    }
    return 0;
Error:
    cf_template_free(out);
    return -1;
}

/* --- expansion --- */

/* Whether out[seg..) decodes to "." or ".." (each dot written as '.' or as a %2E of the template's own text). */
static int decodes_to_dot_segment(const cf_buf_t *out, size_t seg)
{
    size_t dots = 0;
    for (size_t i = seg; i < out->len; ++dots) {
        if (out->base[i] == '.')
            i += 1;
        else if (out->base[i] == '%' && out->len - i >= 3 && out->base[i + 1] == '2' && (out->base[i + 2] | 0x20) == 'e')
            i += 3;
        else
            return 0;
    }
    return dots == 1 || dots == 2;
}

/* Whether `val` may fill the place of part `p` in the path: a {name*} capture its segments, any other value one. */
static int path_value_ok(const cf_tpl_part_t *p, const char *val, size_t len, unsigned flags)
{
    return p->kind == CF_TPL_PARAM && p->rest ? cf_rest_value_ok(val, len) : cf_segment_value_ok(val, len, flags);
}

/* Writes the values of a {items} list, each encoded (and checked) for where it lands, joined with ','. */
/* Whether appending `len` more bytes (at least: encoding only adds) takes the URL that began at `start` past its bound:
 * checked before a value is encoded, so a hostile megabyte costs a comparison, not an encoding per element. */
static int too_long(const cf_buf_t *out, size_t start, size_t len)
{
    return len > CF_TPL_MAX_URL || out->len - start + len > CF_TPL_MAX_URL;
}

static int expand_list(const cf_tpl_part_t *p, unsigned flags, cf_tpl_lookup_cb lookup, void *ctx, cf_buf_t *out, size_t start)
{
    size_t count = 0;
    for (;; ++count) {
        const char *val = NULL;
        size_t len = 0;
        int rc = lookup(ctx, p, &val, &len);
        if (rc == CF_TPL_END)
            break;
        if (rc != CF_TPL_OK)
            return rc == CF_TPL_BAD_INPUT ? rc : CF_TPL_MISSING;
        if (val == NULL || len == 0) /* "ids=1,,3" would ask for something else */
            return CF_TPL_MISSING;
        if (too_long(out, start, len + 1))
            return CF_TPL_BAD_INPUT;
        if (count != 0)
            cf_buf_appendc(out, ',');
        if (p->in_query) {
            cf_encode_query(out, val, len);
        } else {
            if (!cf_segment_value_ok(val, len, flags))
                return CF_TPL_BAD_INPUT;
            encode_bytes(out, val, len);
        }
    }
    return count != 0 ? CF_TPL_OK : CF_TPL_MISSING;
}

int cf_template_expand(const cf_template_t *t, unsigned flags, cf_tpl_lookup_cb lookup, void *ctx, cf_buf_t *out,
                       const cf_tpl_part_t **failed)
{
    size_t start = out->len, seg = start; /* seg: where the current path segment begins in out */
    int rc = CF_TPL_OK, in_path = 1;
    const cf_tpl_part_t *p = NULL, *seg_value = NULL; /* seg_value: the last value that took part in the segment */
    for (size_t i = 0; i != t->num_parts; ++i) {
        p = t->parts + i;
        if (p->kind == CF_TPL_LITERAL) {
            size_t done = 0;
            for (size_t j = 0; in_path && j != p->len; ++j) {
                if (p->text[j] != '/' && p->text[j] != '?')
                    continue;
                cf_buf_append(out, p->text + done, j - done);
                /* a value made this segment "." or ".." with the literal around it ("/.{rest}" with an empty rest) */
                if (seg_value != NULL && decodes_to_dot_segment(out, seg)) {
                    p = seg_value;
                    rc = CF_TPL_BAD_INPUT;
                    goto Fail;
                }
                cf_buf_appendc(out, p->text[j]);
                seg = out->len;
                seg_value = NULL;
                in_path = p->text[j] == '/';
                done = j + 1;
            }
            cf_buf_append(out, p->text + done, p->len - done);
            continue;
        }
        const char *val = NULL;
        size_t len = 0;
        if (p->kind == CF_TPL_ITEMS) {
            if ((rc = expand_list(p, flags, lookup, ctx, out, start)) != CF_TPL_OK)
                goto Fail;
            seg_value = p;
            continue;
        }
        if ((rc = lookup(ctx, p, &val, &len)) != CF_TPL_OK) {
            if (rc != CF_TPL_BAD_INPUT)
                rc = CF_TPL_MISSING;
            goto Fail;
        }
        if (val == NULL) {
            if (len != 0) {
                rc = CF_TPL_MISSING;
                goto Fail;
            }
            val = "";
        }
        if (too_long(out, start, len)) {
            rc = CF_TPL_BAD_INPUT;
            goto Fail;
        }
        if (p->in_query) {
            cf_encode_query(out, val, len);
            continue;
        }
        /* an empty value in the path would address another resource ("/users/" instead of "/users/42") */
        if (len == 0 && !(p->kind == CF_TPL_PARAM && p->rest)) {
            rc = CF_TPL_MISSING;
            goto Fail;
        }
        if (!path_value_ok(p, val, len, flags)) {
            rc = CF_TPL_BAD_INPUT;
            goto Fail;
        }
        if (p->kind == CF_TPL_PARAM && p->rest) {
            size_t before = out->len;
            encode_rest(out, val, len);
            /* the segment the rest started in ended at its first '/': it holds a non-empty, non-dot segment of the
             * rest, so it cannot be a dot segment; go on from after its last '/' */
            size_t last = out->len;
            while (last != before && out->base[last - 1] != '/')
                --last;
            if (last != before)
                seg = last;
        } else {
            encode_bytes(out, val, len);
        }
        seg_value = p;
    }
    if (in_path && seg_value != NULL && decodes_to_dot_segment(out, seg)) {
        p = seg_value;
        rc = CF_TPL_BAD_INPUT;
        goto Fail;
    }
    if (out->len - start > CF_TPL_MAX_URL) { /* encoded, the values grew past it */
        rc = CF_TPL_BAD_INPUT;
        goto Fail;
    }
    cf_buf_truncate(out, out->len); /* NUL-terminated even when the template expanded to nothing new */
    return CF_TPL_OK;
Fail:
    cf_buf_truncate(out, start); /* leave `out` as it was */
    if (failed != NULL)
        *failed = p;
    return rc;
}

int cf_template_check(const cf_template_t *t, unsigned kinds, unsigned flags, cf_tpl_lookup_cb lookup, void *ctx,
                      const cf_tpl_part_t **failed)
{
    for (size_t i = 0; i != t->num_parts; ++i) {
        const cf_tpl_part_t *p = t->parts + i;
        if (p->kind == CF_TPL_LITERAL || p->in_query || (kinds & (1u << p->kind)) == 0)
            continue;
        const char *val = NULL;
        size_t len = 0;
        int rc = lookup(ctx, p, &val, &len);
        /* missing and empty values are the expansion's to report, as CF_TPL_MISSING */
        if (rc == CF_TPL_BAD_INPUT || (rc == CF_TPL_OK && val != NULL && len != 0 && !path_value_ok(p, val, len, flags))) {
            if (failed != NULL)
                *failed = p;
            return CF_TPL_BAD_INPUT;
        }
    }
    return CF_TPL_OK;
}

const char *cf_template_refusal(const cf_tpl_part_t *p, unsigned flags, char *buf, size_t size)
{
    const char *what = p->kind == CF_TPL_PARAM    ? "path parameter"
                       : p->kind == CF_TPL_QUERY  ? "query parameter"
                       : p->kind == CF_TPL_HEADER ? "header"
                       : p->kind == CF_TPL_JWT    ? "token claim"
                                                  : "value";
    const char *rule;
    if (p->kind == CF_TPL_PARAM && p->rest)
        rule = "a value that holds \"\\\" or a \".\", \"..\" or empty segment cannot fill the upstream path";
    else if (flags & CF_TPL_KEEP_ENCODED_SLASH)
        rule = "a value that holds \"\\\" or a \".\" or \"..\" segment cannot fill a segment of the upstream path";
    else
        rule = "a value that is \".\" or \"..\" or holds \"/\" or \"\\\" cannot fill a segment of the upstream path";
    snprintf(buf, size, "%s \"%.*s\": %s", what, (int)p->len, p->text, rule);
    return buf;
}

/* --- one placeholder on its own (JSON body templates, body.c) --- */

int cf_tpl_part_parse(const char *s, size_t len, cf_tpl_part_t *out, char *err, size_t errlen)
{
    cf_template_t t;
    memset(&t, 0, sizeof(t));
    if (len == 0) {
        snprintf(err, errlen, "empty placeholder '{}'");
        return -1;
    }
    if (parse_placeholder(&t, s, len, 0, 0, err, errlen) != 0) {
        cf_template_free(&t);
        return -1;
    }
    *out = t.parts[0];
    free(t.parts);
    return 0;
}

void cf_tpl_part_free(cf_tpl_part_t *p)
{
    part_free(p);
    memset(p, 0, sizeof(*p));
}
