/* The HTTP/1.x response parser shared by the gateway's upstream client, the mock's proxy and the blocking fetch client:
 * bytes in, events out (RFC 9112). No I/O, no timers, no malloc. */
#ifndef CF_H1RESP_H
#define CF_H1RESP_H

#include <stddef.h>
#include <stdint.h>
#include "cf_picohttp.h" /* struct phr_header: name and value point into the bytes given to cf_h1resp_parse */

/* A response head (status line, header fields, and the 1xx responses before it) larger than this is a bad_response. */
#define CF_H1RESP_MAX_HEAD (64 * 1024)
/* More header fields than this in one head is a bad_response. */
#define CF_H1RESP_MAX_HEADERS 100
/* A chunk-size line or trailer line (CRLF included) longer than this is a bad_response. */
#define CF_H1RESP_MAX_LINE 4096

/** What cf_h1resp_parse reports. */
typedef enum en_cf_h1resp_kind_t {
    CF_H1RESP_NEED_MORE, /* nothing more to report from these bytes: call again with more (or with eof) */
    CF_H1RESP_HEAD,      /* the final response head (1xx responses are skipped) */
    CF_H1RESP_BODY,      /* a piece of the body, decoded from chunked if it was */
    CF_H1RESP_DONE,      /* the response is complete */
    CF_H1RESP_ERROR,     /* the response cannot be used; every later call reports the same */
} cf_h1resp_kind_t;

/** Why a response failed (the gateway's upstream client reports them as the reasons in comments). */
typedef enum en_cf_h1resp_error_t {
    CF_H1RESP_BAD_RESPONSE = 1, /* CF_REASON_BAD_RESPONSE: not HTTP/1.x, or its framing is malformed or ambiguous */
    CF_H1RESP_TOO_LARGE,        /* CF_REASON_TOO_LARGE: the body, declared or received, exceeds max_body */
    CF_H1RESP_TRUNCATED,        /* CF_REASON_RESET: the stream ended before the response was complete */
} cf_h1resp_error_t;

/** How the body's end is known (RFC 9112 6.3). */
typedef enum en_cf_h1resp_framing_t {
    CF_H1RESP_FRAMING_NONE,    /* no body: a response to HEAD, a 204 or a 304 */
    CF_H1RESP_FRAMING_LENGTH,  /* Content-Length */
    CF_H1RESP_FRAMING_CHUNKED, /* Transfer-Encoding: chunked */
    CF_H1RESP_FRAMING_CLOSE,   /* neither: the body runs until the connection closes */
} cf_h1resp_framing_t;

/** The parser's state for one response; initialize with cf_h1resp_init. Plain data: it may be copied or dropped. */
typedef struct st_cf_h1resp_t {
    int state;
    cf_h1resp_error_t error; /* once failed */
    const char *detail;      /* once failed */
    unsigned is_head_request : 1;
    uint64_t max_body;
    uint64_t body_total;  /* body bytes reported so far */
    uint64_t left;        /* Content-Length bytes to come, or bytes left in the current chunk */
    size_t head_bytes;    /* bytes of 1xx responses consumed */
    size_t head_scanned;  /* bytes of the head in progress already scanned for its end */
    size_t trailer_bytes; /* bytes of the trailer section consumed */
} cf_h1resp_t;

/** One event. The head fields are set for CF_H1RESP_HEAD, body for CF_H1RESP_BODY, error and detail for ERROR. */
typedef struct st_cf_h1resp_event_t {
    size_t consumed; /* always set: the caller drops this many bytes from the front of its buffer */
    /* CF_H1RESP_HEAD */
    int status;         /* 200..999 (100..199 are skipped, a 101 is an error) */
    int minor_version;  /* HTTP/1.x */
    const char *reason; /* the reason phrase (may be empty), pointing into the bytes given like the header fields */
    size_t reason_len;
    int keepalive; /* the connection may carry another request after this response (RFC 9112 9.3) */
    cf_h1resp_framing_t framing;
    uint64_t content_length; /* with CF_H1RESP_FRAMING_LENGTH */
    size_t num_headers;
    struct phr_header headers[CF_H1RESP_MAX_HEADERS];
    /* CF_H1RESP_BODY: points into the bytes given */
    const char *body;
    size_t body_len;
    /* CF_H1RESP_ERROR */
    cf_h1resp_error_t error;
    const char *detail; /* why, in a few words (a static string) */
} cf_h1resp_event_t;

/**
 * Readies `p` for the response to one request. `is_head_request`: the request was HEAD, so the response has no body
 * whatever its header fields say. `max_body`: a body larger than this (declared or received) fails with TOO_LARGE.
 */
void cf_h1resp_init(cf_h1resp_t *p, int is_head_request, uint64_t max_body);

/**
 * Parses what it can of `buf` (len bytes; NULL when len is 0) and reports one event, with ev->consumed set to the bytes
 * the caller must drop from the front of its buffer before the next call. The next call gets the bytes not consumed
 * followed by any that arrived since. `eof`: no byte will follow these (the peer closed); then NEED_MORE is never
 * returned: a body delimited by the close is DONE, anything else incomplete is an ERROR.
 *
 * The head's header fields point into `buf`: copy them before dropping the consumed bytes. A BODY event's bytes too.
 * After DONE, buf + ev->consumed is the first byte beyond the response; DONE and ERROR repeat on every later call.
 * Every call either returns NEED_MORE or makes progress, so a caller loops until NEED_MORE, DONE or ERROR.
 *
 * Strict where a lenient reading could disagree with another parser about where the response ends (RFC 9112 6, 7.1):
 * an ERROR for both Content-Length and Transfer-Encoding, two different Content-Lengths, a Transfer-Encoding other
 * than "chunked" or in an HTTP/1.0 response, obs-fold, a chunk size that is not 1 to 15 hex digits, a malformed
 * chunk extension or trailer field, a line ending in a bare LF or a bare CR, chunk data not followed by CRLF.
 */
cf_h1resp_kind_t cf_h1resp_parse(cf_h1resp_t *p, const char *buf, size_t len, int eof, cf_h1resp_event_t *ev);

#endif
