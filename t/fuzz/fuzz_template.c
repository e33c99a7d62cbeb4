/* libFuzzer harness for URL templates: parse any bytes, expand with any values, and check the URL keeps its shape. */
/*
 * Input: the template is the bytes up to the first NUL; after it, each placeholder in turn takes a value as one
 * length byte followed by that many bytes (any bytes, NUL included); when the input runs out, the placeholder is
 * missing. A PARAM whose name starts with 'r' is treated as a {name*} capture. Build and run: see README.md.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../gateway/template.c"

struct feed {
    const uint8_t *p;
    size_t left;
    size_t slashes_added; /* '/' that rest values bring into the path */
};

static int on_lookup(void *_ctx, const cf_tpl_part_t *part, const char **val, size_t *len)
{
    struct feed *f = _ctx;
    if (f->left == 0)
        return CF_TPL_MISSING;
    size_t n = f->p[0];
    if (n > f->left - 1)
        n = f->left - 1;
    *val = (const char *)f->p + 1;
    *len = n;
    if (part->rest && !part->in_query)
        for (size_t i = 0; i != n; ++i)
            f->slashes_added += (*val)[i] == '/';
    f->p += n + 1;
    f->left -= n + 1;
    return CF_TPL_OK;
}

static size_t count_of(const char *s, size_t len, char c)
{
    size_t n = 0;
    for (size_t i = 0; i != len; ++i)
        n += s[i] == c;
    return n;
}

/* The number of "." / ".." segments in the path part (before the first '?') of s; with pure_only, only those without
 * a '{' (the template's own literal segments). */
static size_t dot_segments(const char *s, size_t len, int pure_only)
{
    size_t n = 0, pathlen = 0;
    while (pathlen != len && s[pathlen] != '?')
        ++pathlen;
    for (size_t i = 0; i < pathlen; ++i) {
        if (s[i] != '/')
            continue;
        size_t e = i + 1;
        int has_brace = 0;
        while (e < pathlen && s[e] != '/')
            has_brace |= s[e++] == '{';
        size_t seglen = e - i - 1;
        if ((seglen == 1 && s[i + 1] == '.') || (seglen == 2 && s[i + 1] == '.' && s[i + 2] == '.'))
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
            if (i + 2 >= b.len || !is_hex((unsigned char)b.base[i + 1]) || !is_hex((unsigned char)b.base[i + 2]))
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
    struct feed f = {nul != NULL ? nul + 1 : data + size, nul != NULL ? size - srclen - 1 : 0, 0};

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
    int rc = cf_template_expand(&t, on_lookup, &f, &out, &failed);
    if (rc != CF_TPL_OK) {
        /* failure leaves out as it was, names the part, and BAD_INPUT only comes from a rest value */
        if (out.len != 4 || strcmp(out.base, "GET ") != 0 || failed == NULL || failed->kind == CF_TPL_LITERAL)
            abort();
        if (rc == CF_TPL_BAD_INPUT && !(has_rest && failed->rest))
            abort();
        if (rc != CF_TPL_BAD_INPUT && rc != CF_TPL_MISSING)
            abort();
    } else {
        const char *o = out.base + 4;
        size_t olen = out.len - 4;
        /* only request-target bytes, every '%' a valid escape */
        for (size_t i = 0; i != olen; ++i) {
            unsigned char c = (unsigned char)o[i];
            if (c == '%') {
                if (i + 2 >= olen || !is_hex((unsigned char)o[i + 1]) || !is_hex((unsigned char)o[i + 2]))
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
        /* no dot segment but those the template itself spells out */
        if (dot_segments(o, olen, 0) != dot_segments(src, srclen, 1))
            abort();
    }
    cf_buf_free(&out);
    cf_template_free(&t);
    free(src);
    return 0;
}
