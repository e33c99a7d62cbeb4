/* libFuzzer harness for the upstream response parser: any bytes, split any way, against its contract and a reference. */
/*
 * Input: byte 0 holds flags (bit 0: the request was HEAD; bits 1-2: max_body 16, 1024, 8MiB or 2^64-1), byte 1 seeds
 * the sizes of the pieces in which the rest, the response bytes, arrives. Every run checks, through
 * t/unit/h1resp_feed.h, the contract of every event (body within Content-Length and max_body, BODY bytes and header
 * fields inside the bytes consumed, ...), and then that:
 * - the bytes whole and the bytes in pieces end the same way: the same error kind, or the same head, body and bytes
 *   consumed;
 * - without the end of the stream, a DONE is the same DONE and an ERROR the same error (never TRUNCATED);
 * - a DONE consumed exactly its framing: the head, plus Content-Length bytes, plus nothing for HEAD/204/304, plus all
 *   the rest for a body delimited by the close; for chunked, what a reference decoder (below, written from the
 *   RFC 9112 7.1 grammar in another style: whole input, one automaton for the extensions) finds, with the same body;
 *   and a chunked body that the reference decodes whole within max_body is DONE, a malformed one an ERROR.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../common/cf_h1resp.c"
#include "h1resp_feed.h"

/* --- the reference chunked decoder ------------------------------------------------------------------------------- */

enum { REF_MALFORMED, REF_INCOMPLETE, REF_OK };

static int ref_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
}

/* Whether s[0..len) is a chunk-ext: *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] ). */
static int ref_chunk_ext(const unsigned char *s, size_t len)
{
    enum { END_OF_EXT, WS_AFTER_VALUE, SEMI, NAME, WS_AFTER_NAME, EQ, TOKEN, QUOTED, ESCAPED, REJECT } st = END_OF_EXT;
    for (size_t i = 0; i != len && st != REJECT; ++i) {
        unsigned char c = s[i];
        int ws = c == ' ' || c == '\t', text = ws || (c >= 0x21 && c != 0x7f); /* HTAB, SP, VCHAR, obs-text */
        switch (st) {
        case END_OF_EXT:
        case WS_AFTER_VALUE:
            st = ws ? WS_AFTER_VALUE : c == ';' ? SEMI : REJECT;
            break;
        case SEMI:
            st = ws ? SEMI : ref_tchar(c) ? NAME : REJECT;
            break;
        case NAME:
            st = ref_tchar(c) ? NAME : ws ? WS_AFTER_NAME : c == ';' ? SEMI : c == '=' ? EQ : REJECT;
            break;
        case WS_AFTER_NAME:
            st = ws ? WS_AFTER_NAME : c == ';' ? SEMI : c == '=' ? EQ : REJECT;
            break;
        case EQ:
            st = ws ? EQ : ref_tchar(c) ? TOKEN : c == '"' ? QUOTED : REJECT;
            break;
        case TOKEN:
            st = ref_tchar(c) ? TOKEN : ws ? WS_AFTER_VALUE : c == ';' ? SEMI : REJECT;
            break;
        case QUOTED:
            st = c == '"' ? END_OF_EXT : c == '\\' ? ESCAPED : text ? QUOTED : REJECT;
            break;
        case ESCAPED:
            st = text ? QUOTED : REJECT;
            break;
        default:
            break;
        }
    }
    return st == END_OF_EXT || st == NAME || st == TOKEN;
}

/* Whether s[0..len) is a field line: a token, ':', then no control byte but HTAB. */
static int ref_field_line(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i != len && ref_tchar(s[i]))
        ++i;
    if (i == 0 || i == len || s[i] != ':')
        return 0;
    for (++i; i != len; ++i)
        if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            return 0;
    return 1;
}

/* The next CRLF-terminated line at s[*pos]: REF_OK with its content length in *n (CRLF not counted), or not. */
static int ref_line(const unsigned char *s, size_t len, size_t pos, size_t *n)
{
    const unsigned char *lf = memchr(s + pos, '\n', len - pos);
    if (lf == NULL)
        return len - pos >= CF_H1RESP_MAX_LINE ? REF_MALFORMED : REF_INCOMPLETE;
    size_t total = (size_t)(lf - (s + pos)) + 1;
    if (total > CF_H1RESP_MAX_LINE || total < 2 || lf[-1] != '\r')
        return REF_MALFORMED;
    *n = total - 2;
    return REF_OK;
}

/* Decodes the chunked body at s[0..len): REF_OK with the body (malloc'ed) and the length of its framing in *end. */
static int ref_chunked(const unsigned char *s, size_t len, char **body, size_t *body_len, size_t *end)
{
    size_t pos = 0, n, trailer = 0;
    int rc;
    *body = malloc(len + 1);
    *body_len = 0;
    while (1) {
        if ((rc = ref_line(s, len, pos, &n)) != REF_OK)
            return rc;
        uint64_t size = 0;
        size_t digits = 0;
        for (int v; digits != n && (v = cf_hexval(s[pos + digits])) >= 0; ++digits)
            size = size * 16 + (uint64_t)v;
        if (digits == 0 || digits > 15 || !ref_chunk_ext(s + pos + digits, n - digits))
            return REF_MALFORMED;
        pos += n + 2;
        if (size == 0)
            break;
        if (len - pos < size)
            return REF_INCOMPLETE;
        memcpy(*body + *body_len, s + pos, size);
        *body_len += size;
        pos += size;
        if ((len - pos >= 1 && s[pos] != '\r') || (len - pos >= 2 && s[pos + 1] != '\n'))
            return REF_MALFORMED;
        if (len - pos < 2)
            return REF_INCOMPLETE;
        pos += 2;
    }
    while (1) {
        if ((rc = ref_line(s, len, pos, &n)) != REF_OK)
            return rc;
        if ((trailer += n + 2) > CF_H1RESP_MAX_HEAD)
            return REF_MALFORMED;
        if (n == 0) {
            *end = pos + 2;
            return REF_OK;
        }
        if (!ref_field_line(s + pos, n))
            return REF_MALFORMED;
        pos += n + 2;
    }
}

/* --- the harness ------------------------------------------------------------------------------------------------ */

static void bug(const char *what, const feed_result_t *r)
{
    fprintf(stderr, "fuzz_h1resp: %s (end %d, error %d: %s, status %d, framing %d, consumed %zu)\n", what, (int)r->end,
            (int)r->error, r->detail ? r->detail : "-", r->status, (int)r->framing, r->consumed);
    abort();
}

/* The framing of a DONE response against the input after its head. */
static void check_framing(const char *data, size_t len, uint64_t max_body, const feed_result_t *r)
{
    const char *rest = data + r->head_consumed;
    size_t rest_len = len - r->head_consumed;

    if (r->heads != 1 || r->head_consumed > len)
        return;
    switch (r->framing) {
    case CF_H1RESP_FRAMING_NONE:
        if (r->end == CF_H1RESP_DONE && (r->consumed != r->head_consumed || r->body_len != 0))
            bug("a response without a body consumed more than its head", r);
        break;
    case CF_H1RESP_FRAMING_LENGTH:
        if (r->end == CF_H1RESP_DONE &&
            (r->consumed != r->head_consumed + r->content_length || memcmp(r->body, rest, r->body_len) != 0))
            bug("a Content-Length response is not its head plus that many bytes", r);
        break;
    case CF_H1RESP_FRAMING_CLOSE:
        if (r->end == CF_H1RESP_DONE && (r->consumed != len || r->body_len != rest_len || memcmp(r->body, rest, rest_len) != 0))
            bug("a body delimited by the close is not all the rest", r);
        break;
    case CF_H1RESP_FRAMING_CHUNKED: {
        char *body;
        size_t body_len, end = 0;
        int ref = ref_chunked((const unsigned char *)rest, rest_len, &body, &body_len, &end);
        if (r->end == CF_H1RESP_DONE) {
            if (ref != REF_OK)
                bug("DONE where the reference finds the chunked body malformed or incomplete", r);
            if (r->consumed != r->head_consumed + end || r->body_len != body_len || memcmp(r->body, body, body_len) != 0)
                bug("a chunked body that is not the reference's", r);
        } else if (ref == REF_OK && body_len <= max_body) {
            bug("an ERROR where the reference decodes the chunked body within max_body", r);
        } else if (ref == REF_MALFORMED && r->error == CF_H1RESP_TRUNCATED) {
            bug("TRUNCATED where the reference finds the chunked body malformed", r);
        }
        free(body);
    } break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t max_bodies[] = {16, 1024, 8 * 1024 * 1024, UINT64_MAX};
    if (size < 2)
        return 0;
    int is_head_request = data[0] & 1;
    uint64_t max_body = max_bodies[(data[0] >> 1) & 3];
    uint64_t rng = 0x9e3779b97f4a7c15ull * (data[1] + 1u);
    const char *resp = (const char *)data + 2;
    size_t len = size - 2;

    /* pieces of 1 to 16 bytes, now and then up to 1KiB */
    size_t pieces[64];
    for (size_t i = 0; i != 64; ++i) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        pieces[i] = (rng >> 8) % 8 == 0 ? 1 + (rng >> 16) % 1024 : 1 + (rng >> 16) % 16;
    }

    feed_result_t whole, split, open;
    const char *diff;
    feed(resp, len, NULL, 0, 1, is_head_request, max_body, &whole);
    if (whole.violation != NULL)
        bug(whole.violation, &whole);
    feed(resp, len, pieces, 64, 1, is_head_request, max_body, &split);
    if (split.violation != NULL)
        bug(split.violation, &split);
    if ((diff = feed_compare(&whole, &split)) != NULL) {
        fprintf(stderr, "whole and in pieces differ in %s\n", diff);
        bug("split", &split);
    }
    feed(resp, len, NULL, 0, 0, is_head_request, max_body, &open);
    if (open.violation != NULL)
        bug(open.violation, &open);
    if (open.end == CF_H1RESP_ERROR && open.error == CF_H1RESP_TRUNCATED)
        bug("TRUNCATED without the end of the stream", &open);
    if (open.end != CF_H1RESP_NEED_MORE && (diff = feed_compare(&whole, &open)) != NULL) {
        fprintf(stderr, "with and without the end of the stream differ in %s\n", diff);
        bug("eof", &open);
    }
    check_framing(resp, len, max_body, &whole);

    feed_free(&whole);
    feed_free(&split);
    feed_free(&open);
    return 0;
}
