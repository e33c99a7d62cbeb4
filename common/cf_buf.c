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
