/* libFuzzer harness for URL templates: parse any bytes, expand with any values, and check the URL keeps its shape. */
/*
 * Input: the template is the bytes up to the first NUL; after it, one byte of flags (bit 0: CF_TPL_KEEP_ENCODED_SLASH,
 * as a call's encoded_slash: keep), then each placeholder in turn takes a value as one length byte followed by that
 * many bytes (any bytes, NUL included); when the input runs out, the placeholder is missing. A PARAM whose name starts
 * with 'r' is treated as a {name*} capture. An {items} list gets one value (so it reads as one placeholder). Build and run: see
 * README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../gateway/template.c"

#define MAX_PARTS 4096

struct feed {
    const uint8_t *p;
    size_t left;
    size_t slashes_added; /* '/' that rest values bring into the path */
    int items_given;      /* an {items} list got its one value: the next lookup ends it */
    const cf_tpl_part_t *parts;
    struct {
        const char *val; /* NULL: not looked up, or missing */
        size_t len;
    } seen[MAX_PARTS]; /* what each part was given, for the checks after the expansion */
};

static int on_lookup(void *_ctx, const cf_tpl_part_t *part, const char **val, size_t *len)
{
    struct feed *f = _ctx;
    if (part->kind == CF_TPL_ITEMS && f->items_given) { /* a list of one value, so the oracle reads it as one */
        f->items_given = 0;
        return CF_TPL_END;
    }
    if (f->left == 0)
        return CF_TPL_MISSING;
    f->items_given = part->kind == CF_TPL_ITEMS;
    size_t n = f->p[0];
    if (n > f->left - 1)
        n = f->left - 1;
    *val = (const char *)f->p + 1;
    *len = n;
    if (part->rest && !part->in_query)
        for (size_t i = 0; i != n; ++i)
            f->slashes_added += (*val)[i] == '/';
    if ((size_t)(part - f->parts) < MAX_PARTS) {
        f->seen[part - f->parts].val = *val;
        f->seen[part - f->parts].len = n;
    }
    f->p += n + 1;
    f->left -= n + 1;
    return CF_TPL_OK;
}

/* Gives each part the value the expansion saw (for cf_template_check on the same values). */
static int on_replay(void *_ctx, const cf_tpl_part_t *part, const char **val, size_t *len)
{
    struct feed *f = _ctx;
    size_t i = (size_t)(part - f->parts);
    if (i >= MAX_PARTS || f->seen[i].val == NULL)
        return CF_TPL_MISSING;
    *val = f->seen[i].val;
    *len = f->seen[i].len;
    return CF_TPL_OK;
}

/* --- the rule, written out apart from the code under test --- */

static int is_dots(const char *s, size_t len)
{
    return (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.');
}

/* Whether a value may fill the place of `p` in the path: a one-segment value may not be "." or "..", nor hold '\\',
 * nor '/' (with keep it may, but no '/'-separated piece may be "." or ".."); a {name*} value may not hold '\\' nor a
 * dot segment nor an empty segment but the last. */
static int oracle_allows(const cf_tpl_part_t *p, const char *v, size_t len, int keep)
{
    for (size_t i = 0; i != len; ++i)
        if (v[i] == '\\')
            return 0;
    int rest = p->kind == CF_TPL_PARAM && p->rest;
    if (!rest && !keep) {
        for (size_t i = 0; i != len; ++i)
            if (v[i] == '/')
                return 0;
        return !is_dots(v, len);
    }
    size_t start = 0;
    for (size_t i = 0; i <= len; ++i) {
        if (i != len && v[i] != '/')
            continue;
        if (is_dots(v + start, i - start) || (rest && i == start && i != len))
            return 0;
        start = i + 1;
    }
    return 1;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : -1;
}

/* How many %XX escapes of byte `b` (any case of hex) s[0..len) holds. */
static size_t escapes_of(const char *s, size_t len, int b)
{
    size_t n = 0;
    for (size_t i = 0; i + 2 < len; ++i) {
        int hi = s[i] == '%' ? hexval((unsigned char)s[i + 1]) : -1, lo = hi >= 0 ? hexval((unsigned char)s[i + 2]) : -1;
        n += lo >= 0 && hi * 16 + lo == b;
    }
    return n;
}

/* How many %XX escapes of byte b the template's literal text holds before its query. */
static size_t literal_path_escapes(const cf_template_t *t, int b)
{
    size_t n = 0;
    for (size_t i = 0; i != t->num_parts; ++i) {
        const cf_tpl_part_t *p = t->parts + i;
        if (p->kind != CF_TPL_LITERAL)
            continue;
        const char *q = memchr(p->text, '?', p->len);
        n += escapes_of(p->text, q != NULL ? (size_t)(q - p->text) : p->len, b);
        if (q != NULL)
            break;
    }
    return n;
}

static size_t count_of(const char *s, size_t len, char c)
{
    size_t n = 0;
    for (size_t i = 0; i != len; ++i)
        n += s[i] == c;
    return n;
}

/*
 * The number of "." / ".." segments in the path part (before the first '?') of s; with pure_only, only those without
 * a '{' (the template's own literal segments); with decoded, a %2E counts as a dot (as an upstream that decodes sees
 * it).
 */
static size_t dot_segments(const char *s, size_t len, int pure_only, int decoded)
{
    size_t n = 0, pathlen = 0;
    while (pathlen != len && s[pathlen] != '?')
        ++pathlen;
    for (size_t i = 0; i < pathlen; ++i) {
        if (s[i] != '/')
            continue;
        size_t e = i + 1, dots = 0;
        int other = 0, has_brace = 0;
        while (e < pathlen && s[e] != '/') {
            if (s[e] == '.') {
                ++dots, ++e;
            } else if (decoded && s[e] == '%' && e + 2 < pathlen && s[e + 1] == '2' && (s[e + 2] | 0x20) == 'e') {
                ++dots, e += 3;
            } else {
                has_brace |= s[e] == '{';
                other = 1, ++e;
            }
        }
        if (!other && (dots == 1 || dots == 2))
            n += !(pure_only && has_brace);
    }
    return n;
}

/* How many times c appears in the template's literal text (placeholder names may hold '&', '+', ...). */
static size_t literal_count(const cf_template_t *t, char c)
{
    size_t n = 0;
    for (size_t i = 0; i != t->num_parts; ++i)
        if (t->parts[i].kind == CF_TPL_LITERAL)
            n += count_of(t->parts[i].text, t->parts[i].len, c);
    return n;
}

static void check_encoder_round_trip(const char *v, size_t len, int query)
{
    cf_buf_t b = CF_BUF_INIT;
    if (query)
        cf_encode_query(&b, v, len);
    else
        cf_encode_segment(&b, v, len);
    size_t n = 0;
    for (size_t i = 0; i < b.len; ++i, ++n) {
        char c = b.base[i];
        if (c == '%') {
            if (cf_pct_byte(b.base, b.len, i) < 0)
                abort();
            char hex[3] = {b.base[i + 1], b.base[i + 2], 0};
            c = (char)strtoul(hex, NULL, 16);
            i += 2;
        } else if (!is_unreserved((unsigned char)c)) {
            abort();
        }
        if (n >= len || c != v[n])
            abort();
    }
    if (n != len)
        abort();
    cf_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t srclen = nul != NULL ? (size_t)(nul - data) : size;
    char *src = malloc(srclen + 1), err[256];
    memcpy(src, data, srclen);
    src[srclen] = '\0';
    static struct feed f;
    memset(&f, 0, sizeof(f));
    f.p = nul != NULL ? nul + 1 : data + size;
    f.left = nul != NULL ? size - srclen - 1 : 0;
    unsigned flags = 0;
    if (f.left != 0) {
        flags = f.p[0] & 1 ? CF_TPL_KEEP_ENCODED_SLASH : 0;
        ++f.p, --f.left;
    }
    int keep = flags != 0;

    /* the encoders on their own, with the value bytes */
    check_encoder_round_trip((const char *)f.p, f.left, 0);
    check_encoder_round_trip((const char *)f.p, f.left, 1);

    cf_template_t t;
    err[0] = '\0';
    if (cf_template_parse(src, &t, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            abort(); /* a refusal always says why */
        free(src);
        return 0;
    }
    int has_rest = 0;
    for (size_t i = 0; i != t.num_parts; ++i) {
        cf_tpl_part_t *p = t.parts + i;
        if (p->kind == CF_TPL_LITERAL) {
            /* a literal holds only bytes allowed in a request target */
            for (size_t j = 0; j != p->len; ++j)
                if (!is_literal_byte((unsigned char)p->text[j]) && p->text[j] != '%')
                    abort();
        } else if (p->kind == CF_TPL_PARAM && p->text[0] == 'r') {
            p->rest = 1;
            has_rest |= !p->in_query;
        }
    }

    cf_buf_t out = CF_BUF_INIT;
    cf_buf_appends(&out, "GET ");
    const cf_tpl_part_t *failed = NULL;
    f.parts = t.parts;
    int rc = cf_template_expand(&t, flags, on_lookup, &f, &out, &failed);
    if (rc != CF_TPL_OK) {
        /* failure leaves out as it was and names the part */
        if (out.len != 4 || strcmp(out.base, "GET ") != 0 || failed == NULL || failed->kind == CF_TPL_LITERAL)
            abort();
        if (rc != CF_TPL_BAD_INPUT && rc != CF_TPL_MISSING)
            abort();
        size_t fi = (size_t)(failed - t.parts);
        if (rc == CF_TPL_BAD_INPUT) {
            /* only a value in the path that the rule refuses, or a rest capture that left a literal dot alone in its
             * segment ("/.{rest}" with an empty rest) */
            if (failed->in_query || fi >= MAX_PARTS || f.seen[fi].val == NULL)
                abort();
            if (oracle_allows(failed, f.seen[fi].val, f.seen[fi].len, keep) && !(has_rest && failed->rest))
                abort();
        } else if (fi < MAX_PARTS && f.seen[fi].val != NULL &&
                   (f.seen[fi].len != 0 || (failed->in_query && failed->kind != CF_TPL_ITEMS) ||
                    (failed->kind == CF_TPL_PARAM && failed->rest))) {
            abort(); /* MISSING: the value was absent, or empty in a one-segment place (or anywhere in an {items} list) */
        }
    } else {
        const char *o = out.base + 4;
        size_t olen = out.len - 4;
        /* only request-target bytes, every '%' a valid escape */
        for (size_t i = 0; i != olen; ++i) {
            unsigned char c = (unsigned char)o[i];
            if (c == '%') {
                if (cf_pct_byte(o, olen, i) < 0)
                    abort();
            } else if (!is_literal_byte(c)) {
                abort();
            }
        }
        /* the structure is the template's: same count of each delimiter (plus the '/' of rest values) */
        static const char delims[] = "?&=#;+,:@!$'()*";
        for (const char *c = delims; *c != '\0'; ++c)
            if (count_of(o, olen, *c) != literal_count(&t, *c))
                abort();
        if (count_of(o, olen, '/') != literal_count(&t, '/') + f.slashes_added)
            abort();
        /* no dot segment but those the template itself spells out, also once the upstream decodes %2E */
        if (dot_segments(o, olen, 0, 0) != dot_segments(src, srclen, 1, 0) ||
            dot_segments(o, olen, 0, 1) != dot_segments(src, srclen, 1, 1))
            abort();
        /* every value in the path obeys the rule: nothing that decodes to a '/' or '\\' inside a segment, nor a dot
         * segment; with keep, a '/' is allowed and shows as %2F */
        for (size_t i = 0; i != t.num_parts && i < MAX_PARTS; ++i)
            if (t.parts[i].kind != CF_TPL_LITERAL && !t.parts[i].in_query && f.seen[i].val != NULL &&
                !oracle_allows(t.parts + i, f.seen[i].val, f.seen[i].len, keep))
                abort();
        size_t pathlen = strcspn(o, "?");
        if (escapes_of(o, pathlen, '\\') != literal_path_escapes(&t, '\\'))
            abort();
        if (!keep && escapes_of(o, pathlen, '/') != literal_path_escapes(&t, '/'))
            abort();
    }

    /* the check before any call agrees with the expansion on the same values */
    const cf_tpl_part_t *bad = NULL;
    int crc = cf_template_check(&t, ~0u, flags, on_replay, &f, &bad);
    if (crc != CF_TPL_OK && crc != CF_TPL_BAD_INPUT)
        abort();
    if (rc == CF_TPL_OK &&
        (crc != CF_TPL_OK || cf_template_check(&t, CF_TPL_CLIENT_KINDS, flags, on_replay, &f, NULL) != CF_TPL_OK))
        abort(); /* what expands may not be refused beforehand */
    if (crc == CF_TPL_BAD_INPUT && (rc == CF_TPL_OK || bad == NULL || bad->kind == CF_TPL_LITERAL || bad->in_query))
        abort(); /* what the check refuses does not expand */
    cf_buf_free(&out);
    cf_template_free(&t);
    free(src);
    return 0;
}
