/* A growable byte buffer (malloc'ed), for building strings outside a request pool. */
#ifndef CF_BUF_H
#define CF_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_cf_buf_t {
    char *base; /* NUL-terminated whenever len > 0 or after any append */
    size_t len;
    size_t cap;
} cf_buf_t;

#define CF_BUF_INIT                                                                                                                \
    {                                                                                                                              \
        NULL, 0, 0                                                                                                                 \
    }

/** Makes room for n more bytes; aborts on out-of-memory (like h2o_mem_alloc). */
void cf_buf_reserve(cf_buf_t *b, size_t n);
void cf_buf_append(cf_buf_t *b, const void *p, size_t n);
void cf_buf_appendc(cf_buf_t *b, char c);
void cf_buf_appends(cf_buf_t *b, const char *s);
void cf_buf_appendf(cf_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Appends a number in decimal, as "%" PRId64 would, without going through printf. */
void cf_buf_append_int(cf_buf_t *b, int64_t v);
/** Empties the buffer, keeping its memory. */
void cf_buf_reset(cf_buf_t *b);
void cf_buf_free(cf_buf_t *b);

#endif
