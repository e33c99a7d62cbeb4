/* Unit tests of gateway/h1guard.c: strict request framing, judged the same whatever way the bytes are split. */
#include <stdlib.h>
#include "tap.h"
#include "../../gateway/h1guard.c"

/* The body bound judge() sets (as conn.c sets limits.max_request_body). */
static uint64_t judge_max_body = UINT64_MAX;

/* Feeds `s` in one piece, then split at every offset and byte by byte; all three must agree. Returns the result. */
static cf_h1guard_result_t judge(const char *s)
{
    size_t len = strlen(s), consumed;
    cf_h1guard_t g;
    cf_h1guard_result_t whole;

    /* whole; an EXPECT_CONTINUE stop is resumed */
    cf_h1guard_init(&g);
    g.max_body = judge_max_body;
    size_t off = 0;
    while ((whole = cf_h1guard_feed(&g, s + off, len - off, &consumed)) == CF_H1G_EXPECT_CONTINUE)
        off += consumed;
    for (size_t split = 0; split <= len; ++split) {
        cf_h1guard_result_t r = CF_H1G_MORE;
        cf_h1guard_init(&g);
        g.max_body = judge_max_body;
        size_t parts[2][2] = {{0, split}, {split, len}};
        for (int k = 0; k < 2 && r == CF_H1G_MORE; ++k) {
            size_t at = parts[k][0], end = parts[k][1];
            while (at < end && ((r = cf_h1guard_feed(&g, s + at, end - at, &consumed)) == CF_H1G_EXPECT_CONTINUE))
                at += consumed, r = CF_H1G_MORE;
        }
        if (r != whole) {
            ok(0, "split at %zu of %zu: %s, whole: %s", split, len, cf_h1guard_label(r), cf_h1guard_label(whole));
            return whole;
        }
    }
    cf_h1guard_init(&g);
    g.max_body = judge_max_body;
    cf_h1guard_result_t r = CF_H1G_MORE;
    for (size_t i = 0; i < len && r == CF_H1G_MORE; ++i)
        if ((r = cf_h1guard_feed(&g, s + i, 1, &consumed)) == CF_H1G_EXPECT_CONTINUE)
            r = CF_H1G_MORE;
    if (r != whole)
        ok(0, "byte by byte: %s, whole: %s", cf_h1guard_label(r), cf_h1guard_label(whole));
    return whole;
}

#define ACCEPTS(s, what) is(judge(s), CF_H1G_MORE, "accepts: %s", what)
#define REFUSES(s, err, what) is(judge(s), err, "refuses (%s): %s", cf_h1guard_label(err), what)

static void test_heads(void)
{
    ACCEPTS("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "a minimal request");
    ACCEPTS("GET /a?b=c HTTP/1.0\r\n\r\n", "HTTP/1.0 without Host");
    ACCEPTS("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", "one empty line before the request line");
    ACCEPTS("GET / HTTP/1.1\r\nHOST: example.com:8080\r\nX-A:\r\nX-B: \t v \t\r\n\r\n", "field name case, empty values, OWS");
    ACCEPTS("GET / HTTP/1.1\r\nHost: [::1]:80\r\nUser-Agent: caf\xc3\xa9\r\n\r\n", "IP-literal host, obs-text in a value");
    ACCEPTS("GET / HTTP/1.1\r\nHost:\r\n\r\n", "an empty Host (RFC 9112 3.2)");
    ACCEPTS("GET / HTTP/1.1\r\nHost: x\r\nContent-Lengthy: 5\r\nHosts: a\r\nHos: b\r\n\r\n",
            "names that only start like framing fields");
    ACCEPTS("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "asterisk-form");
    ACCEPTS("GET http://x/a HTTP/1.1\r\nHost: x\r\n\r\n", "absolute-form");

    REFUSES("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", CF_H1G_ERR_REQUEST_LINE, "two empty lines first");
    REFUSES("GET / HTTP/1.1\nHost: x\r\n\r\n", CF_H1G_ERR_BARE_LF, "bare LF after the request line");
    REFUSES("GET / HTTP/1.1\r\nHost: x\n\r\n", CF_H1G_ERR_BARE_LF, "bare LF after a field");
    REFUSES("GET / HTTP/1.1\r\nHost: x\r\n\n", CF_H1G_ERR_BARE_LF, "bare LF ending the head");
    REFUSES("GET / HTTP/1.1\rHost: x\r\n\r\n", CF_H1G_ERR_BARE_CR, "bare CR");
    REFUSES("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", CF_H1G_ERR_METHOD, "a method that is not a token");
    REFUSES("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", CF_H1G_ERR_TARGET, "two spaces");
    REFUSES("GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", CF_H1G_ERR_TARGET, "a control byte in the target");
    ACCEPTS("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", "raw UTF-8 in the target (as nginx)");
    REFUSES("GET /a\x7f HTTP/1.1\r\nHost: x\r\n\r\n", CF_H1G_ERR_TARGET, "DEL in the target");
    REFUSES("GET /\r\n\r\n", CF_H1G_ERR_REQUEST_LINE, "HTTP/0.9");
    REFUSES("GET / http/1.1\r\nHost: x\r\n\r\n", CF_H1G_ERR_REQUEST_LINE, "lower-case version");
    REFUSES("GET / HTTP/1.2\r\nHost: x\r\n\r\n", CF_H1G_ERR_VERSION, "HTTP/1.2");
    REFUSES("GET / HTTP/3.0\r\nHost: x\r\n\r\n", CF_H1G_ERR_VERSION, "HTTP/3.0");
    REFUSES("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", CF_H1G_ERR_HTTP2_PREFACE, "the HTTP/2 connection preface");
    REFUSES("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", CF_H1G_ERR_OBS_FOLD, "obs-fold");
    REFUSES("GET / HTTP/1.1\r\n Host: x\r\n\r\n", CF_H1G_ERR_OBS_FOLD, "whitespace before the first field");
    REFUSES("GET / HTTP/1.1\r\nHost : x\r\n\r\n", CF_H1G_ERR_SPACE_BEFORE_COLON, "space before the colon");
    REFUSES("GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", CF_H1G_ERR_FIELD_NAME, "an empty field name");
    REFUSES("GET / HTTP/1.1\r\nHost: x\r\nX[A]: v\r\n\r\n", CF_H1G_ERR_FIELD_NAME, "a name that is not a token");
    REFUSES("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7f\r\n\r\n", CF_H1G_ERR_FIELD_VALUE, "DEL in a value");
    REFUSES("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x1b[31m\r\n\r\n", CF_H1G_ERR_FIELD_VALUE, "ESC in a value");
    REFUSES("GET / HTTP/1.1\r\n\r\n", CF_H1G_ERR_NO_HOST, "HTTP/1.1 without Host");
    REFUSES("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", CF_H1G_ERR_TWO_HOSTS, "two Host fields");
    REFUSES("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", CF_H1G_ERR_TWO_HOSTS, "two equal Host fields");
    REFUSES("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", CF_H1G_ERR_HOST, "a space inside Host");
    REFUSES("GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", CF_H1G_ERR_HOST, "a quote in Host");
    REFUSES("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", CF_H1G_ERR_HOST, "a slash in Host");

    /* NUL inside a value: strlen-based judge() cannot carry it, so feed it directly */
    static const char nul[] = "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n";
    cf_h1guard_t g;
    size_t consumed;
    cf_h1guard_init(&g);
    is(cf_h1guard_feed(&g, nul, sizeof(nul) - 1, &consumed), CF_H1G_ERR_FIELD_VALUE, "refuses NUL in a value");
    is(consumed, strchr(nul + 20, 'a') - nul + 1, "the error points at the NUL");
    is(cf_h1guard_feed(&g, "GET", 3, &consumed), CF_H1G_ERR_FIELD_VALUE, "an error sticks");
}

static void test_limits(void)
{
    char *big = malloc(CF_H1G_MAX_HEAD + 100);
    strcpy(big, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    size_t n = strlen(big);
    memset(big + n, 'a', CF_H1G_MAX_HEAD);
    strcpy(big + n + CF_H1G_MAX_HEAD - 40, "\r\n\r\n");
    cf_h1guard_t g;
    size_t consumed;
    cf_h1guard_init(&g);
    is(cf_h1guard_feed(&g, big, strlen(big), &consumed), CF_H1G_MORE, "a head just under the limit");
    memset(big + n, 'a', CF_H1G_MAX_HEAD);
    strcpy(big + n + CF_H1G_MAX_HEAD - 10, "aaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n");
    cf_h1guard_init(&g);
    is(cf_h1guard_feed(&g, big, strlen(big), &consumed), CF_H1G_ERR_HEAD_TOO_LARGE, "a head over the limit");
    is(cf_h1guard_status(CF_H1G_ERR_HEAD_TOO_LARGE), 431, "... is a 431");

    char *p = big;
    p += sprintf(p, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < CF_H1G_MAX_FIELDS; ++i)
        p += sprintf(p, "X-%d: v\r\n", i);
    strcpy(p, "\r\n");
    cf_h1guard_init(&g);
    is(cf_h1guard_feed(&g, big, strlen(big), &consumed), CF_H1G_ERR_TOO_MANY_FIELDS, "more than %d fields", CF_H1G_MAX_FIELDS);

    char method[128];
    memset(method, 'A', 40);
    strcpy(method + 40, " / HTTP/1.1\r\nHost: x\r\n\r\n");
    REFUSES(method, CF_H1G_ERR_METHOD, "a 40-byte method");
    cf_h1guard_init(&g);
    is(cf_h1guard_feed(&g, method, strlen(method), &consumed), CF_H1G_ERR_METHOD, "a 40-byte method, whole");
    is(consumed, 32, "the error points at the 33rd byte, however the method was read (found by fuzz_h1guard)");
    free(big);
}

static void test_content_length(void)
{
    ACCEPTS("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "a body, then a pipelined request");
    ACCEPTS("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", "Content-Length: 0");
    ACCEPTS("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:  3 \r\n\r\nGETGET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "a body that looks like a request is skipped as data");

    /* the smuggling primitive of the bug report: the second request must not be seen as one */
    REFUSES("POST /api/echo/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhelloGET /api/echo/SMUGGLED "
            "HTTP/1.1\r\nHost: x\r\n\r\n",
            CF_H1G_ERR_TWO_CONTENT_LENGTHS, "two different Content-Lengths");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", CF_H1G_ERR_TWO_CONTENT_LENGTHS,
            "two equal Content-Lengths");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello", CF_H1G_ERR_TWO_CONTENT_LENGTHS, "a list");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", CF_H1G_ERR_CONTENT_LENGTH, "a sign");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\nhello", CF_H1G_ERR_CONTENT_LENGTH, "hex");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5 5\r\n\r\nhello", CF_H1G_ERR_CONTENT_LENGTH, "digits after a space");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", CF_H1G_ERR_CONTENT_LENGTH, "empty");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", CF_H1G_ERR_CONTENT_LENGTH, "overflow");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", CF_H1G_ERR_CL_AND_TE,
            "Content-Length with Transfer-Encoding");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", CF_H1G_ERR_CL_AND_TE,
            "Transfer-Encoding with Content-Length");
}

static void test_chunked(void)
{
    ACCEPTS("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "one chunk");
    ACCEPTS("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "A;name=value\r\n0123456789\r\n1f ; x\r\n0123456789012345678901234567890\r\n0\r\nX-Trailer: t\r\n\r\n"
            "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "hex sizes, extensions, a trailer, a pipelined request");
    ACCEPTS("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n000000000000005\r\nhello\r\n0\r\n\r\n",
            "leading zeros");

    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ChUnKeD\r\n\r\n0\r\n\r\n", CF_H1G_ERR_TRANSFER_ENCODING,
            "TE: ChUnKeD");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", CF_H1G_ERR_TRANSFER_ENCODING,
            "a list of codings");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            CF_H1G_ERR_TRANSFER_ENCODING, "two Transfer-Encoding fields");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunkedx\r\n\r\n0\r\n\r\n", CF_H1G_ERR_TRANSFER_ENCODING, "chunkedx");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunk\r\n\r\n0\r\n\r\n", CF_H1G_ERR_TRANSFER_ENCODING, "chunk");
    REFUSES("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", CF_H1G_ERR_TE_HTTP10, "chunked in HTTP/1.0");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x10\r\n0123456789abcdef\r\n0\r\n\r\n",
            CF_H1G_ERR_CHUNK_SIZE, "a chunk size of 0x10");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", CF_H1G_ERR_BARE_LF,
            "a chunk line ending in a bare LF");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", CF_H1G_ERR_BARE_LF,
            "chunk data ending in a bare LF");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n", CF_H1G_ERR_CHUNK_END,
            "chunk data longer than its size");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", CF_H1G_ERR_CHUNK_SIZE, "an empty chunk size");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", CF_H1G_ERR_CHUNK_SIZE,
            "17 hex digits");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", CF_H1G_ERR_CHUNK_SIZE,
            "whitespace after a size without an extension");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x01\r\nhello\r\n0\r\n\r\n", CF_H1G_ERR_CHUNK_EXT,
            "a control byte in an extension");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: 5\r\n\r\n", CF_H1G_ERR_TRAILER,
            "Content-Length in the trailers");
    REFUSES("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: a\n\r\n", CF_H1G_ERR_BARE_LF,
            "a trailer line ending in a bare LF");

    char ext[CF_H1G_MAX_CHUNK_EXT + 200];
    int n = sprintf(ext, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;");
    memset(ext + n, 'e', CF_H1G_MAX_CHUNK_EXT + 10);
    strcpy(ext + n + CF_H1G_MAX_CHUNK_EXT + 10, "\r\na\r\n0\r\n\r\n");
    REFUSES(ext, CF_H1G_ERR_CHUNK_EXT, "an oversized extension");
}

static void test_body_limit(void)
{
    judge_max_body = 10;
    is(judge("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"), CF_H1G_MORE, "a body of the limit passes");
    is(judge("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n"), CF_H1G_ERR_BODY_TOO_LARGE,
       "a Content-Length over the limit: refused at the end of the head");
    is(judge("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n"), CF_H1G_ERR_BODY_TOO_LARGE,
       "... before a 100 Continue");
    is(judge("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n"), CF_H1G_MORE,
       "chunks adding up to the limit pass");
    is(judge("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n6\r\n"), CF_H1G_ERR_BODY_TOO_LARGE,
       "chunks adding up to more: refused at the size line of the one that goes over");
    is(judge("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"), CF_H1G_ERR_BODY_TOO_LARGE,
       "one huge chunk (no overflow)");
    is(judge("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n0\r\n\r\n"
             "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n01234567\r\n0\r\n\r\n"),
       CF_H1G_MORE, "the sum is per request: two pipelined bodies of 8 pass");
    judge_max_body = 0;
    is(judge("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"), CF_H1G_MORE, "limit 0: an empty body passes");
    is(judge("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"), CF_H1G_ERR_BODY_TOO_LARGE,
       "limit 0: one byte is refused");
    judge_max_body = UINT64_MAX;
    is(cf_h1guard_status(CF_H1G_ERR_BODY_TOO_LARGE), 413, "413");

    /* chunk extensions: 4 KiB in one body, whatever the chunks */
    char ext[CF_H1G_MAX_CHUNK_EXT / 2 + 11], req[3 * CF_H1G_MAX_CHUNK_EXT];
    memset(ext, 'e', sizeof(ext) - 1);
    ext[sizeof(ext) - 1] = '\0';
    snprintf(req, sizeof(req),
             "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;%.*s\r\na\r\n1;%.*s\r\nb\r\n0\r\n\r\n",
             (int)sizeof(ext) - 20, ext, (int)sizeof(ext) - 20, ext);
    is(judge(req), CF_H1G_MORE, "two chunks with 2 KiB of extensions each: 4 KiB in all, accepted");
    snprintf(req, sizeof(req),
             "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;%s\r\na\r\n1;%s\r\nb\r\n0\r\n\r\n", ext, ext);
    is(judge(req), CF_H1G_ERR_CHUNK_EXT, "two chunks with over 2 KiB each: over 4 KiB in one body, refused");
    snprintf(req, sizeof(req),
             "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;%.*s\r\na\r\n0\r\n\r\n"
             "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;%.*s\r\na\r\n0\r\n\r\n",
             (int)sizeof(ext), ext, (int)sizeof(ext) - 20, ext);
    is(judge(req), CF_H1G_MORE, "the bound is per body: the next request starts again");
}

static void test_expect(void)
{
    static const char req[] = "POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc";
    cf_h1guard_t g;
    size_t consumed, head = sizeof(req) - 1 - 3;
    cf_h1guard_init(&g);
    is(cf_h1guard_feed(&g, req, sizeof(req) - 1, &consumed), CF_H1G_EXPECT_CONTINUE, "stops after a head expecting 100-continue");
    is(consumed, head, "... right after the head");
    is(g.head_len, head, "... and the head's length is known");
    is(cf_h1guard_feed(&g, req + consumed, 3, &consumed), CF_H1G_MORE, "the body follows");
    ok(cf_h1guard_idle(&g), "and the connection is idle after it");

    static const char two[] = "\r\nGET /b HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n";
    cf_h1guard_init(&g);
    is(cf_h1guard_feed(&g, two, sizeof(two) - 1, &consumed), CF_H1G_EXPECT_CONTINUE, "after a leading empty line too");
    is(g.head_len, sizeof(two) - 1 - 2, "the head does not count the empty line");
    ok(memcmp(two + consumed - g.head_len, "GET /b", 6) == 0, "the head starts at the request line");

    cf_h1guard_init(&g);
    static const char other[] = "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continues\r\nContent-Length: 1\r\n\r\na";
    is(cf_h1guard_feed(&g, other, sizeof(other) - 1, &consumed), CF_H1G_MORE, "another expectation is left to libh2o (417)");
}

/* A long value (read a word at a time) with one odd byte at each offset: refused or accepted as a byte at a time. */
static void test_long_values(void)
{
    static const struct {
        unsigned char c;
        cf_h1guard_result_t want;
    } bytes[] = {{0x00, CF_H1G_ERR_FIELD_VALUE},
                 {0x01, CF_H1G_ERR_FIELD_VALUE},
                 {0x1f, CF_H1G_ERR_FIELD_VALUE},
                 {0x7f, CF_H1G_ERR_FIELD_VALUE},
                 {'\n', CF_H1G_ERR_BARE_LF},
                 {'\r', CF_H1G_ERR_BARE_CR},
                 {'\t', CF_H1G_MORE},
                 {0x80, CF_H1G_MORE},
                 {0xff, CF_H1G_MORE},
                 {0x20, CF_H1G_MORE},
                 {0x7e, CF_H1G_MORE}};
    for (size_t b = 0; b != sizeof(bytes) / sizeof(bytes[0]); ++b) {
        int all_right = 1;
        for (size_t at = 0; at != 40; ++at) {
            char req[128], value[41];
            memset(value, 'a', 40);
            value[40] = '\0';
            value[at] = (char)bytes[b].c;
            /* a NUL would end the string: the request is built with the byte after the formatting */
            int n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %.40s\r\n\r\n",
                             "0123456789012345678901234567890123456789");
            memcpy(strstr(req, "Bearer ") + 7, value, 40);
            size_t consumed;
            cf_h1guard_t g;
            cf_h1guard_init(&g);
            cf_h1guard_result_t r = cf_h1guard_feed(&g, req, (size_t)n, &consumed);
            if (r != bytes[b].want) {
                ok(0, "byte 0x%02x at %zu of a 40-byte value: %s", bytes[b].c, at, cf_h1guard_label(r));
                all_right = 0;
                break;
            }
        }
        if (all_right)
            ok(1, "byte 0x%02x at any of 40 offsets of a value: %s", bytes[b].c, cf_h1guard_label(bytes[b].want));
    }
}

int main(void)
{
    test_long_values();
    test_heads();
    test_limits();
    test_content_length();
    test_chunked();
    test_expect();
    test_body_limit();
    return done_testing();
}
