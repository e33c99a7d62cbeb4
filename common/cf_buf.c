/* A growable byte buffer (malloc'ed), for building strings outside a request pool. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cf_buf.h"

void cf_buf_reserve(cf_buf_t *b, size_t n)
{
    if (b->len + n + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->base, cap);
    if (p == NULL) {
        fprintf(stderr, "fatal: out of memory (%zu bytes)\n", cap);
        abort();
    }
    b->base = p;
    b->cap = cap;
}

void cf_buf_append(cf_buf_t *b, const void *p, size_t n)
{
    cf_buf_reserve(b, n);
    if (n != 0)
        memcpy(b->base + b->len, p, n);
    b->len += n;
    b->base[b->len] = '\0';
}

void cf_buf_appendc(cf_buf_t *b, char c)
{
    cf_buf_append(b, &c, 1);
}

void cf_buf_appends(cf_buf_t *b, const char *s)
{
    cf_buf_append(b, s, strlen(s));
}

void cf_buf_appendf(cf_buf_t *b, const char *fmt, ...)
{
    /* format straight into the spare room first: most texts fit, and formatting twice (once to measure) doubled the
     * cost of every header and cache key built this way */
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room != 0 ? b->base + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (room != 0)
            b->base[b->len] = '\0';
        return;
    }
    if ((size_t)n >= room) {
        cf_buf_reserve(b, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(b->base + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

/* the digits of v, written backwards ending at `end`; returns where they start */
static char *u64_digits(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return end;
}

size_t cf_fmt_i64(char buf[CF_I64_MAX_LEN], int64_t v)
{
    char tmp[CF_I64_MAX_LEN], *end = tmp + sizeof(tmp);
    char *p = u64_digits(end, v < 0 ? -(uint64_t)v : (uint64_t)v); /* -(uint64_t) is well defined for INT64_MIN too */
    if (v < 0)
        *--p = '-';
    size_t n = (size_t)(end - p);
    memcpy(buf, p, n);
    buf[n] = '\0';
    return n;
}

void cf_buf_append_u64(cf_buf_t *b, uint64_t v)
{
    char tmp[CF_I64_MAX_LEN], *end = tmp + sizeof(tmp);
    char *p = u64_digits(end, v);
    cf_buf_append(b, p, (size_t)(end - p));
}

void cf_buf_append_i64(cf_buf_t *b, int64_t v)
{
    char tmp[CF_I64_MAX_LEN];
    cf_buf_append(b, tmp, cf_fmt_i64(tmp, v));
}

void cf_buf_append_fixed(cf_buf_t *b, uint64_t v, unsigned decimals)
{
    uint64_t scale = 1;
    for (unsigned i = 0; i < decimals; ++i)
        scale *= 10;
    cf_buf_append_u64(b, v / scale);
    if (decimals == 0)
        return;
    char frac[9];
    uint64_t f = v % scale;
    for (unsigned i = decimals; i-- > 0; f /= 10)
        frac[i] = (char)('0' + f % 10);
    cf_buf_appendc(b, '.');
    cf_buf_append(b, frac, decimals);
}

void cf_buf_truncate(cf_buf_t *b, size_t len)
{
    cf_buf_reserve(b, 0);
    b->len = len;
    b->base[len] = '\0';
}

void cf_buf_reset(cf_buf_t *b)
{
    b->len = 0;
    if (b->base != NULL)
        b->base[0] = '\0';
}

void cf_buf_free(cf_buf_t *b)
{
    free(b->base);
    b->base = NULL;
    b->len = b->cap = 0;
}
