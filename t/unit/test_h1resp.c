/* Unit tests of common/cf_h1resp.c: heads, framing, chunked decoding, limits, strictness, and any split of the bytes. */
#include "tap.h"
#include "../../common/cf_h1resp.c"
#include "h1resp_feed.h"

#define MAX_BODY 1024

static const size_t one_byte[] = {1};
static const size_t uneven[] = {3, 1, 7, 2, 13, 5};
static const size_t uneven_large[] = {4093, 1, 1021, 2}; /* for inputs where a byte at a time would take long */

/*
 * Runs `resp` whole, a byte at a time and in uneven pieces, always ending with eof, and checks the three agree and
 * break no rule of the contract. Leaves the whole-input result in *r (free with feed_free).
 */
static void run(const char *resp, size_t len, int is_head_request, feed_result_t *r, const char *name)
{
    feed_result_t split;
    feed(resp, len, NULL, 0, 1, is_head_request, MAX_BODY, r);
    ok(r->violation == NULL, "%s: contract kept (%s)", name, r->violation ? r->violation : "");
    /* each piece gets a fresh copy of all unconsumed bytes: a head of 64KiB a byte at a time would copy 2GiB */
    if (len <= 8192)
        feed(resp, len, one_byte, 1, 1, is_head_request, MAX_BODY, &split);
    else
        feed(resp, len, uneven_large, sizeof(uneven_large) / sizeof(uneven_large[0]), 1, is_head_request, MAX_BODY, &split);
    const char *diff = split.violation != NULL ? split.violation : feed_compare(r, &split);
    ok(diff == NULL, "%s: a byte at a time, the same (%s)", name, diff ? diff : "");
    feed_free(&split);
    feed(resp, len, uneven, sizeof(uneven) / sizeof(uneven[0]), 1, is_head_request, MAX_BODY, &split);
    diff = split.violation != NULL ? split.violation : feed_compare(r, &split);
    ok(diff == NULL, "%s: in uneven pieces, the same (%s)", name, diff ? diff : "");
    feed_free(&split);
}

/* A complete response: status, body, and the bytes left after it. */
static void is_ok(const char *resp, int status, const char *body, size_t leftover, const char *name)
{
    feed_result_t r;
    size_t len = strlen(resp);
    run(resp, len, 0, &r, name);
    is(r.end, CF_H1RESP_DONE, "%s: DONE (%s)", name, r.detail ? r.detail : "");
    is(r.status, status, "%s: status", name);
    is_str(r.body, body, "%s: body", name);
    is(len - r.consumed, leftover, "%s: bytes left after the response", name);
    feed_free(&r);
}

static const char *error_name(cf_h1resp_error_t error)
{
    switch (error) {
    case CF_H1RESP_TOO_LARGE:
        return "too_large";
    case CF_H1RESP_TRUNCATED:
        return "truncated";
    default:
        return "bad_response";
    }
}

/* A failed response of len bytes: its error kind (and the status when a head was reported, else 0). */
static void is_error_n(const char *resp, size_t len, cf_h1resp_error_t error, int status, const char *name)
{
    feed_result_t r;
    run(resp, len, 0, &r, name);
    is(r.end, CF_H1RESP_ERROR, "%s: ERROR", name);
    ok(r.error == error, "%s: %s (got %s: %s)", name, error_name(error), error_name(r.error), r.detail ? r.detail : "no error");
    is(r.heads ? r.status : 0, status, "%s: status", name);
    feed_free(&r);
}

static void is_error(const char *resp, cf_h1resp_error_t error, int status, const char *name)
{
    is_error_n(resp, strlen(resp), error, status, name);
}

static void test_heads(void)
{
    feed_result_t r;
    const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test:  yes  \r\nCache-Control: max-age=5\r\n\r\nhello";
    run(resp, strlen(resp), 0, &r, "plain");
    is(r.end, CF_H1RESP_DONE, "DONE");
    is(r.status, 200, "status");
    is(r.framing, CF_H1RESP_FRAMING_LENGTH, "framed by Content-Length");
    is(r.content_length, 5, "Content-Length");
    ok(r.keepalive, "HTTP/1.1 is kept alive");
    is_str(r.headers, "Content-Length: 5\nX-Test: yes\nCache-Control: max-age=5\n", "headers in order, as received, OWS trimmed");
    is(r.head_consumed, strlen(resp) - 5, "the head consumed whole, with the HEAD event");
    is_str(r.body, "hello", "body");
    feed_free(&r);

    is_ok("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: y\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
          201, "ok", 0, "1xx skipped");
    is_ok("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, "", 0, "empty body");
    is_ok("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA", 200, "hello", 5, "bytes beyond the body are left");
    is_ok("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 200, "hello", 0,
          "the same Content-Length twice");
    is_ok("HTTP/1.1 200 OK\r\nContent-Length: 0005\r\n\r\nhello", 200, "hello", 0, "leading zeros");
    is_ok("HTTP/1.1 200 OK\r\nContent-Length: 5 \r\n\r\nhello", 200, "hello", 0, "Content-Length with trailing OWS");
    is_ok("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", 204, "", 0, "204: no body");
    is_ok("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nhello", 304, "", 5, "304: no body, what follows is left");
    is_ok("HTTP/1.0 200 OK\r\n\r\nuntil close", 200, "until close", 0, "a body delimited by the close");
    is_ok("HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 200, "ok", 0, "a head with bare LF line ends (RFC 9112 2.2 allows it)");

    const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    run(head, strlen(head), 1, &r, "HEAD request");
    ok(r.end == CF_H1RESP_DONE && r.framing == CF_H1RESP_FRAMING_NONE && r.body_len == 0, "HEAD request: no body");
    ok(r.keepalive && r.consumed == strlen(head), "HEAD request: kept alive, the head consumed");
    feed_free(&r);

    static const struct {
        const char *head;
        int keepalive;
    } ka[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 1},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n", 0},
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: closed\r\n\r\n", 1},
        {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0},
        {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n", 1},
        {"HTTP/1.1 200 OK\r\n\r\n", 0},
    };
    for (size_t i = 0; i != sizeof(ka) / sizeof(ka[0]); ++i) {
        feed(ka[i].head, strlen(ka[i].head), NULL, 0, 1, 0, MAX_BODY, &r);
        is(r.keepalive, ka[i].keepalive, "keep-alive of %s", tap_printable(ka[i].head));
        feed_free(&r);
    }
}

static void test_chunked(void)
{
    is_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 200, "hello world", 0,
          "chunked");
    is_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\nNEXT", 200, "0123456789", 4,
          "any case, upper-case hex, bytes after the last chunk left");
    is_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\nY:\r\n\r\n", 200, "hello",
          0, "an extension and trailer fields");
    is_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 ; a = \"q\\\"x\" ;b;c=d\r\nhello\r\n0\r\n\r\n", 200, "hello", 0,
          "extensions with BWS, quoted values, no values");
    is_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000005\r\nhello\r\n0\r\n\r\n", 200, "hello", 0,
          "14 leading zeros");
    is_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked \r\n\r\n0\r\n\r\n", 200, "", 0, "empty chunked body, OWS after chunked");
}

static void test_strict(void)
{
    /* framing that another parser could read otherwise */
    is_error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
             CF_H1RESP_BAD_RESPONSE, 0, "both Content-Length and Transfer-Encoding");
    is_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", CF_H1RESP_BAD_RESPONSE, 0,
             "both, Transfer-Encoding first");
    is_error("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", CF_H1RESP_BAD_RESPONSE, 0,
             "two different Content-Lengths");
    is_error("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello", CF_H1RESP_BAD_RESPONSE, 0, "a Content-Length list");
    static const char *const bad_lengths[] = {"abc", "-1", "+5", "5 5", "0x5", "", "18446744073709551616", "5\x01"};
    for (size_t i = 0; i != sizeof(bad_lengths) / sizeof(bad_lengths[0]); ++i) {
        char resp[256];
        snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Length: %s\r\n\r\nhello", bad_lengths[i]);
        char name[600];
        snprintf(name, sizeof(name), "Content-Length: %s", tap_printable(bad_lengths[i]));
        is_error(resp, CF_H1RESP_BAD_RESPONSE, 0, name);
    }
    is_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", CF_H1RESP_BAD_RESPONSE, 0, "Transfer-Encoding: gzip");
    is_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", CF_H1RESP_BAD_RESPONSE, 0, "gzip, chunked");
    is_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", CF_H1RESP_BAD_RESPONSE, 0,
             "chunked twice in one field");
    is_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", CF_H1RESP_BAD_RESPONSE,
             0, "two Transfer-Encoding fields");
    is_error("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", CF_H1RESP_BAD_RESPONSE, 0,
             "Transfer-Encoding from HTTP/1.0");
    is_error("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n", CF_H1RESP_BAD_RESPONSE, 0, "obs-fold");
    is_error("HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\nhello", CF_H1RESP_BAD_RESPONSE, 0, "whitespace before the colon");
    is_error("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", CF_H1RESP_BAD_RESPONSE, 0, "a bare CR in a header value");
    is_error_n("HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n", 25, CF_H1RESP_BAD_RESPONSE, 0, "NUL in a header value");
    is_error("HELLO WORLD\r\n\r\n", CF_H1RESP_BAD_RESPONSE, 0, "not HTTP");
    is_error("HTTP/2 200 OK\r\n\r\n", CF_H1RESP_BAD_RESPONSE, 0, "not HTTP/1.x");
    is_error("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", CF_H1RESP_BAD_RESPONSE, 0, "an unasked-for 101");
    is_error("HTTP/1.1 099 Low\r\n\r\n", CF_H1RESP_BAD_RESPONSE, 0, "a status below 100");
    is_error("HTTP/1.1 2000 OK\r\n\r\n", CF_H1RESP_BAD_RESPONSE, 0, "a four-digit status");

    /* chunk-size lines: 1*15HEXDIG [ chunk-ext ] CRLF */
    static const char *const bad_lines[] = {
        "0x10",    /* picohttpparser reads 0, then an "extension" x10 */
        "zz",      /* not hex */
        "",        /* no digits */
        "5 ",      /* BWS without an extension */
        " 5",      /* leading whitespace */
        "-5",      /* a sign */
        "5;",      /* an extension without a name */
        "5;a=",    /* without a value */
        "5;a=\"x", /* an unterminated quoted value */
        "5;a b",   /* two names */
        "5;a ",    /* BWS at the end */
        "5,a",     /* not ';' */
        "5\r",     /* a bare CR */
        "5;a=b\x01" /* a control byte */,
        "1000000000000000", /* 16 digits */
    };
    for (size_t i = 0; i != sizeof(bad_lines) / sizeof(bad_lines[0]); ++i) {
        char resp[256], name[600];
        snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%s\r\nhello\r\n0\r\n\r\n", bad_lines[i]);
        snprintf(name, sizeof(name), "chunk-size line \"%s\"", tap_printable(bad_lines[i]));
        is_error(resp, CF_H1RESP_BAD_RESPONSE, 200, name);
    }
    /* chunk framing and trailers, after a chunked head */
    static const struct {
        const char *body, *name;
    } bad_bodies[] = {
        {"5\nhello\r\n0\r\n\r\n", "a chunk-size line ending in a bare LF"},
        {"5\r\nhello\n0\r\n\r\n", "chunk data followed by a bare LF"},
        {"5\r\nhelloXX\r\n0\r\n\r\n", "chunk data longer than its size"},
        {"5\r\nhello\r\r\n0\r\n\r\n", "chunk data followed by CR CR LF"},
        {"0\n\n", "a last chunk with bare LFs"},
        {"0\r\n\n", "the trailer section ending in a bare LF"},
        {"0\r\nno colon\r\n\r\n", "a trailer line that is not a field"},
        {"0\r\n folded\r\n\r\n", "a trailer line starting with whitespace"},
        {"0\r\nX: a\rb\r\n\r\n", "a bare CR in a trailer field"},
    };
    for (size_t i = 0; i != sizeof(bad_bodies) / sizeof(bad_bodies[0]); ++i) {
        char resp[256];
        snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%s", bad_bodies[i].body);
        is_error(resp, CF_H1RESP_BAD_RESPONSE, 200, bad_bodies[i].name);
    }

    /* lengths */
    static char big[CF_H1RESP_MAX_HEAD + 1024];
    size_t n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");
    while (n < CF_H1RESP_MAX_HEAD + 100)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "X-Pad: %0100d\r\n", 0);
    snprintf(big + n, sizeof(big) - n, "\r\n");
    is_error(big, CF_H1RESP_BAD_RESPONSE, 0, "a complete head over 64KiB");
    big[n] = '\0';
    is_error(big, CF_H1RESP_BAD_RESPONSE, 0, "an unfinished head over 64KiB");
    n = 0;
    while (n < CF_H1RESP_MAX_HEAD)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "HTTP/1.1 100 Continue\r\n\r\n");
    snprintf(big + n, sizeof(big) - n, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    is_error(big, CF_H1RESP_BAD_RESPONSE, 0, "1xx responses adding up to 64KiB");
    n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i <= CF_H1RESP_MAX_HEADERS; ++i)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "X-%d: x\r\n", i);
    snprintf(big + n, sizeof(big) - n, "\r\n");
    is_error(big, CF_H1RESP_BAD_RESPONSE, 0, "more than 100 header fields");
    n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=");
    memset(big + n, 'a', CF_H1RESP_MAX_LINE);
    snprintf(big + n + CF_H1RESP_MAX_LINE, sizeof(big) - n - CF_H1RESP_MAX_LINE, "\r\nhello\r\n0\r\n\r\n");
    is_error(big, CF_H1RESP_BAD_RESPONSE, 200, "a chunk-size line over 4096 bytes");
    n = (size_t)snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
    while (n < CF_H1RESP_MAX_HEAD + 100)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "X-Trailer: %0100d\r\n", 0);
    snprintf(big + n, sizeof(big) - n, "\r\n");
    is_error(big, CF_H1RESP_BAD_RESPONSE, 200, "a trailer section over 64KiB");
}

static void test_too_large(void)
{
    char resp[4096], body[MAX_BODY + 2];
    memset(body, 'a', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';

    snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%.*s", MAX_BODY, MAX_BODY, body);
    is_ok(resp, 200, body + 1, 0, "a body of exactly max_body");
    is_error("HTTP/1.1 200 OK\r\nContent-Length: 1025\r\n\r\n", CF_H1RESP_TOO_LARGE, 200, "a declared length over max_body");
    is_error("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", CF_H1RESP_BAD_RESPONSE, 0,
             "a length over 2^64 is invalid, not too large");
    snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n%.512s\r\n201\r\n", body);
    is_error(resp, CF_H1RESP_TOO_LARGE, 200, "a chunk over max_body, refused at its size line");
    is_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n", CF_H1RESP_TOO_LARGE, 200,
             "the largest chunk size");
    snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n%.1024s\r\n0\r\n\r\n", body);
    is_ok(resp, 200, body + 1, 0, "chunks of exactly max_body");
    snprintf(resp, sizeof(resp), "HTTP/1.0 200 OK\r\n\r\n%s", body);
    is_error(resp, CF_H1RESP_TOO_LARGE, 200, "a body delimited by the close over max_body");
}

static void test_eof(void)
{
    is_error("", CF_H1RESP_TRUNCATED, 0, "closed without a byte");
    is_error("HTTP/1.1 200 OK\r\nContent-Le", CF_H1RESP_TRUNCATED, 0, "closed in the head");
    is_error("HTTP/1.1 100 Continue\r\n\r\n", CF_H1RESP_TRUNCATED, 0, "closed after a 1xx");
    is_error("HTTP/1.1 200 OK\r\nX: a\x01", CF_H1RESP_BAD_RESPONSE, 0, "closed in a head already malformed");
    /* found by fuzz_h1resp: picohttpparser wants 9 bytes before it judges a status line, but its fast check for the
     * head's end (given the bytes already scanned) refuses a bare CR at once: whole or split, the same answer */
    is_error("\xff"
             "0\rz\xe8",
             CF_H1RESP_TRUNCATED, 0, "closed after a bare CR in fewer bytes than a status line");
    is_error("HTTP/1\r", CF_H1RESP_TRUNCATED, 0, "closed after a bare CR in a short status line");
    is_error("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", CF_H1RESP_TRUNCATED, 200, "a short Content-Length body");
    is_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", CF_H1RESP_TRUNCATED, 200, "closed inside a chunk");
    is_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", CF_H1RESP_TRUNCATED, 200,
             "closed right after a chunk");
    is_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n", CF_H1RESP_TRUNCATED, 200,
             "closed before the end of the trailer section");

    /* without eof, an incomplete response only asks for more */
    feed_result_t r;
    const char *part = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello";
    feed(part, strlen(part), NULL, 0, 0, 0, MAX_BODY, &r);
    ok(r.end == CF_H1RESP_NEED_MORE && r.violation == NULL && r.body_len == 5, "no eof: NEED_MORE after the bytes there are");
    feed_free(&r);
}

static void test_contract(void)
{
    cf_h1resp_t p;
    cf_h1resp_event_t ev;

    cf_h1resp_init(&p, 0, MAX_BODY);
    is(cf_h1resp_parse(&p, NULL, 0, 0, &ev), CF_H1RESP_NEED_MORE, "no bytes: NEED_MORE");
    is(ev.consumed, 0, "nothing consumed");

    /* a caller that passes back fewer bytes than it was asked to keep is not trusted with the scan position */
    const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n";
    is(cf_h1resp_parse(&p, head, strlen(head), 0, &ev), CF_H1RESP_NEED_MORE, "an unfinished head");
    is(ev.consumed, 0, "is not consumed");
    is(cf_h1resp_parse(&p, "HTTP/1.1 204 No\r\n\r\n", 19, 0, &ev), CF_H1RESP_HEAD,
       "shorter bytes next time: parsed from the start");
    is(ev.status, 204, "their status");
    is(cf_h1resp_parse(&p, NULL, 0, 0, &ev), CF_H1RESP_DONE, "then DONE");

    /* the upstream client passes NULL once its buffer is drained (h2o_buffer_consume frees it): in every body state,
     * no pointer arithmetic on it (found by fuzz_h1resp under UBSan: "applying zero offset to null pointer") */
    const char *chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello";
    cf_h1resp_init(&p, 0, MAX_BODY);
    is(cf_h1resp_parse(&p, chunked, strlen(chunked), 0, &ev), CF_H1RESP_HEAD, "a chunked head");
    is(cf_h1resp_parse(&p, chunked + ev.consumed, strlen(chunked) - ev.consumed, 0, &ev), CF_H1RESP_BODY, "its first chunk");
    is(cf_h1resp_parse(&p, NULL, 0, 0, &ev), CF_H1RESP_NEED_MORE, "no bytes after the chunk data: NEED_MORE");
    is(cf_h1resp_parse(&p, NULL, 0, 1, &ev), CF_H1RESP_ERROR, "and at the end of the stream, an error");
}

int main(void)
{
    test_heads();
    test_chunked();
    test_strict();
    test_too_large();
    test_eof();
    test_contract();
    return done_testing();
}
