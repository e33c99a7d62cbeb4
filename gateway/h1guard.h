/* Strict HTTP/1.1 request framing, checked on the raw bytes of a client connection before libh2o parses them. */
#ifndef CF_H1GUARD_H
#define CF_H1GUARD_H

#include <stddef.h>
#include <stdint.h>

/*
 * Why conflux reads the bytes itself: libh2o 2.2.5 is lenient where leniency lets a request be smuggled past a proxy
 * in front of conflux (or lets one request hide another). It takes the first of two Content-Length fields, lets
 * Transfer-Encoding override Content-Length, accepts any case of "chunked", reads a chunk size of "0x10" as 0 with
 * an extension "x10", ends chunk lines at a bare LF, and accepts HTTP/1.1 without Host or with two. It also keeps
 * Content-Length, Transfer-Encoding and Host out of the header list a handler sees, so conflux could not refuse them
 * afterwards. The guard is a byte-at-a-time state machine over the client's stream (so a request split across reads
 * at any byte is judged the same), with no buffer and no allocation: each connection carries one cf_h1guard_t.
 *
 * It accepts a subset of what libh2o accepts, and frames it the same way (head ends at the first empty line, a body
 * is Content-Length bytes or chunks), so for every stream the guard passes, libh2o sees the same requests.
 */

/** What cf_h1guard_feed found. Errors are positive and index cf_h1guard_error_message / cf_h1guard_error_status. */
typedef enum en_cf_h1guard_result_t {
    CF_H1G_MORE = 0,         /* every byte was consumed and is valid so far */
    CF_H1G_EXPECT_CONTINUE,  /* stopped right after a head with "Expect: 100-continue" (see cf_h1guard_t.head_len) */
    CF_H1G_ERR_REQUEST_LINE, /* the first error; the rest follow */
    CF_H1G_ERR_METHOD,
    CF_H1G_ERR_TARGET,
    CF_H1G_ERR_VERSION,
    CF_H1G_ERR_HTTP2_PREFACE,
    CF_H1G_ERR_BARE_LF,
    CF_H1G_ERR_BARE_CR,
    CF_H1G_ERR_OBS_FOLD,
    CF_H1G_ERR_FIELD_NAME,
    CF_H1G_ERR_SPACE_BEFORE_COLON,
    CF_H1G_ERR_FIELD_VALUE,
    CF_H1G_ERR_TOO_MANY_FIELDS,
    CF_H1G_ERR_HEAD_TOO_LARGE,
    CF_H1G_ERR_CONTENT_LENGTH,
    CF_H1G_ERR_TWO_CONTENT_LENGTHS,
    CF_H1G_ERR_CL_AND_TE,
    CF_H1G_ERR_TRANSFER_ENCODING,
    CF_H1G_ERR_TE_HTTP10,
    CF_H1G_ERR_NO_HOST,
    CF_H1G_ERR_TWO_HOSTS,
    CF_H1G_ERR_HOST,
    CF_H1G_ERR_CHUNK_SIZE,
    CF_H1G_ERR_CHUNK_EXT,
    CF_H1G_ERR_CHUNK_END,
    CF_H1G_ERR_TRAILER,
    CF_H1G_ERR_BODY_TOO_LARGE, /* a Content-Length, or chunks adding up to, more than max_body */
    CF_H1G_NUM_RESULTS
} cf_h1guard_result_t;

/** Bounds of a request head (they match the gateway's own 431 limits, with room for the request line). */
#define CF_H1G_MAX_HEAD (80 * 1024)
#define CF_H1G_MAX_FIELDS 100     /* libh2o's own limit (H2O_MAX_HEADERS); more would be its 400 */
#define CF_H1G_MAX_CHUNK_EXT 4096 /* bytes of chunk extensions in one body, all chunks together */

/** The state of one client connection's stream: cf_h1guard_init before the first byte. */
typedef struct st_cf_h1guard_t {
    uint8_t state;
    uint8_t field;       /* which framing field the current header line is (see h1guard.c) */
    uint8_t match;       /* bytes of the field name (or of a value being compared) matched so far */
    uint8_t flags;       /* per head: HTTP/1.0, seen Content-Length, Transfer-Encoding, Host, Expect: 100-continue */
    uint8_t value_flags; /* per field value: digits seen, space after them */
    uint16_t num_fields;
    uint32_t head_len;  /* bytes of the current head so far (its request line included) */
    uint32_t ext_len;   /* bytes of chunk extensions in the current body */
    uint8_t hex_digits; /* digits of the current chunk size */
    uint64_t remaining; /* body or chunk bytes still to skip; the Content-Length being read */
    uint64_t max_body;  /* the longest body a request may have (limits.max_request_body); cf_h1guard_init sets no bound
                           (UINT64_MAX), the caller its own after it */
    uint64_t chunked;   /* bytes of the current chunked body's chunks so far */
} cf_h1guard_t;

void cf_h1guard_init(cf_h1guard_t *g);

/**
 * Checks `len` more bytes of the client's stream. Returns CF_H1G_MORE when all of them are acceptable; an error
 * (and the guard is then stuck in it); or CF_H1G_EXPECT_CONTINUE after a complete head that expects 100-continue, so
 * that the caller can refuse the request before the client sends its body: the head is then the `g->head_len` bytes
 * that end at `bytes + *consumed`, and the caller feeds the rest (`len - *consumed` bytes) next. `*consumed` is set
 * on every return (for an error: the offset of the offending byte).
 */
cf_h1guard_result_t cf_h1guard_feed(cf_h1guard_t *g, const char *bytes, size_t len, size_t *consumed);

/** 1 when the guard sits between requests (nothing of a next request has arrived yet). */
int cf_h1guard_idle(const cf_h1guard_t *g);

/** A short English description of a result, for the client's 400 body and the log. */
const char *cf_h1guard_message(cf_h1guard_result_t r);
/** The status to answer a refused stream with: 400, 431 (head too large) or 505 (not HTTP/1.x). */
int cf_h1guard_status(cf_h1guard_result_t r);
/** A metric label for a result (lower case, underscores). */
const char *cf_h1guard_label(cf_h1guard_result_t r);

#endif
