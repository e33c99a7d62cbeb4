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
/** The most bytes cf_fmt_i64 writes: a sign, 19 digits and a NUL. */
#define CF_I64_MAX_LEN 21
/** Writes v in decimal into buf, as printf's "%" PRId64 would without printf's cost, NUL-terminated; returns its length. */
size_t cf_fmt_i64(char buf[CF_I64_MAX_LEN], int64_t v);
/** Appends v in decimal, as printf's "%" PRIu64 / "%" PRId64 would. */
void cf_buf_append_u64(cf_buf_t *b, uint64_t v);
void cf_buf_append_i64(cf_buf_t *b, int64_t v);
/** Appends v / 10^decimals with exactly `decimals` digits after the point (v 12345, decimals 1: "1234.5"); decimals
 * at most 9. For durations counted in integers, where "%.1f" of a double cost a float formatting per field. */
void cf_buf_append_fixed(cf_buf_t *b, uint64_t v, unsigned decimals);
/** Empties the buffer, keeping its memory. */
void cf_buf_reset(cf_buf_t *b);
/** Cuts the buffer to its first `len` bytes (at most its length) and NUL-terminates it, allocating if it has no memory
 * yet: `cf_buf_truncate(b, b->len)` makes any buffer a C string. */
void cf_buf_truncate(cf_buf_t *b, size_t len);
void cf_buf_free(cf_buf_t *b);

#endif
