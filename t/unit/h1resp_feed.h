/* Feeds a response to common/cf_h1resp.c in pieces, as a socket would, checking the parser's contract on every event. */
#ifndef CF_H1RESP_FEED_H
#define CF_H1RESP_FEED_H

/*
 * Shared by t/unit/test_h1resp.c and t/fuzz/fuzz_h1resp.c, which #include common/cf_h1resp.c first. Each parse call gets
 * a fresh malloc'ed copy of exactly the bytes it may read, so that ASan sees any read beyond them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/** What a parser made of a whole input. */
typedef struct st_feed_result_t {
    cf_h1resp_kind_t end;    /* DONE, ERROR, or NEED_MORE when the input ran out without eof */
    cf_h1resp_error_t error; /* with ERROR */
    const char *detail;      /* with ERROR */
    int heads;               /* HEAD events (at most one) */
    int status, keepalive;
    cf_h1resp_framing_t framing;
    uint64_t content_length;
    size_t head_consumed; /* bytes consumed up to and with the HEAD event */
    char headers[8192];   /* "name: value\n" for each header field, cut at the buffer's size */
    char *body;           /* malloc'ed, NUL-terminated */
    size_t body_len;
    size_t consumed;       /* bytes consumed in all */
    const char *violation; /* the first breach of the contract in h1resp.h, or NULL */
} feed_result_t;

/* Records a breach of the contract; the first one is kept. */
#define FEED_CHECK(r, cond, what)                                                                                                  \
    do {                                                                                                                           \
        if (!(cond) && (r)->violation == NULL)                                                                                     \
            (r)->violation = (what);                                                                                               \
    } while (0)

static void feed_check_head(feed_result_t *r, const cf_h1resp_event_t *ev, const char *buf)
{
    size_t off = 0;
    FEED_CHECK(r, r->heads == 0, "a second HEAD event");
    FEED_CHECK(r, ev->status >= 200 && ev->status <= 999, "HEAD with a status outside 200..999");
    FEED_CHECK(r, ev->num_headers <= CF_H1RESP_MAX_HEADERS, "more header fields than CF_H1RESP_MAX_HEADERS");
    FEED_CHECK(r, ev->consumed != 0, "HEAD consumed nothing");
    FEED_CHECK(r, ev->framing != CF_H1RESP_FRAMING_CLOSE || !ev->keepalive, "keep-alive with a body delimited by the close");
    for (size_t i = 0; i != ev->num_headers && i < CF_H1RESP_MAX_HEADERS; ++i) {
        const struct phr_header *h = ev->headers + i;
        FEED_CHECK(r, h->name != NULL && h->name >= buf && h->name + h->name_len <= buf + ev->consumed,
                   "a header name outside the consumed bytes");
        FEED_CHECK(r, h->value_len == 0 || (h->value >= buf && h->value + h->value_len <= buf + ev->consumed),
                   "a header value outside the consumed bytes");
        if (r->violation != NULL)
            return;
        FEED_CHECK(r, h->name_len != 0, "an empty header name");
        for (size_t j = 0; j != h->name_len; ++j)
            FEED_CHECK(r, cf_http_is_tchar((unsigned char)h->name[j]), "a header name that is not a token");
        for (size_t j = 0; j != h->value_len; ++j) {
            unsigned char c = (unsigned char)h->value[j];
            FEED_CHECK(r, !((c < 0x20 && c != '\t') || c == 0x7f), "a control byte in a header value");
        }
        FEED_CHECK(r, h->value_len == 0 || (!is_ws(h->value[0]) && !is_ws(h->value[h->value_len - 1])),
                   "whitespace around a header value");
        int n = snprintf(r->headers + off, sizeof(r->headers) - off, "%.*s: %.*s\n", (int)h->name_len, h->name, (int)h->value_len,
                         h->value_len != 0 ? h->value : "");
        if (n < 0 || (size_t)n >= sizeof(r->headers) - off)
            break;
        off += (size_t)n;
    }
    ++r->heads;
    r->status = ev->status;
    r->keepalive = ev->keepalive;
    r->framing = ev->framing;
    r->content_length = ev->content_length;
    r->head_consumed = r->consumed + ev->consumed;
}

/*
 * Runs a fresh parser over `data`: `pieces` lists the sizes in which bytes arrive (used in turn, cycling; 0 or an empty
 * list: all at once), then, with `eof`, the end of the stream. Fills *r (free r->body with feed_free).
 */
static void feed(const char *data, size_t len, const size_t *pieces, size_t npieces, int eof, int is_head_request,
                 uint64_t max_body, feed_result_t *r)
{
    cf_h1resp_t p;
    size_t start = 0, end = 0, piece = 0, body_cap = 64;

    memset(r, 0, sizeof(*r));
    r->body = malloc(body_cap);
    r->end = CF_H1RESP_NEED_MORE;
    cf_h1resp_init(&p, is_head_request, max_body);
    while (r->end == CF_H1RESP_NEED_MORE) {
        size_t step = npieces != 0 ? pieces[piece++ % npieces] : 0;
        int last;
        if (end == len && !eof)
            break;
        end = step == 0 || step > len - end ? len : end + step;
        last = eof && end == len;
        /* this round's bytes: what was not consumed, then what arrived */
        size_t n = end - start;
        char *win = n != 0 ? malloc(n) : NULL;
        size_t off = 0; /* consumed in this round */
        if (n != 0)
            memcpy(win, data + start, n);
        while (1) {
            cf_h1resp_event_t ev;
            size_t avail = n - off;
            const char *at = avail != 0 ? win + off : NULL;
            cf_h1resp_kind_t kind = cf_h1resp_parse(&p, at, avail, last, &ev);
            FEED_CHECK(r, ev.consumed <= avail, "consumed more than it was given");
            if (ev.consumed > avail)
                ev.consumed = avail;
            if (kind == CF_H1RESP_HEAD) {
                feed_check_head(r, &ev, at);
            } else if (kind == CF_H1RESP_BODY) {
                FEED_CHECK(r, r->heads == 1, "BODY before HEAD");
                FEED_CHECK(r, ev.body_len != 0, "an empty BODY");
                FEED_CHECK(r, ev.body >= at && ev.body + ev.body_len <= at + ev.consumed, "BODY bytes outside the consumed ones");
                FEED_CHECK(r, ev.body_len <= max_body - r->body_len, "more body than max_body");
                FEED_CHECK(r, r->framing != CF_H1RESP_FRAMING_NONE, "BODY for a response without a body");
                FEED_CHECK(r, r->framing != CF_H1RESP_FRAMING_LENGTH || ev.body_len <= r->content_length - r->body_len,
                           "more body than Content-Length");
                if (r->violation != NULL) {
                    r->end = CF_H1RESP_ERROR;
                    break;
                }
                if (r->body_len + ev.body_len + 1 > body_cap) {
                    while (r->body_len + ev.body_len + 1 > body_cap)
                        body_cap *= 2;
                    r->body = realloc(r->body, body_cap);
                }
                memcpy(r->body + r->body_len, ev.body, ev.body_len);
                r->body_len += ev.body_len;
            } else if (kind == CF_H1RESP_DONE) {
                FEED_CHECK(r, r->heads == 1, "DONE before HEAD");
                FEED_CHECK(r, r->framing != CF_H1RESP_FRAMING_LENGTH || r->body_len == r->content_length,
                           "DONE with a body shorter than Content-Length");
                FEED_CHECK(r, r->framing != CF_H1RESP_FRAMING_CLOSE || last, "a body delimited by the close DONE before the close");
            } else if (kind == CF_H1RESP_ERROR) {
                FEED_CHECK(r, ev.error >= CF_H1RESP_BAD_RESPONSE && ev.error <= CF_H1RESP_TRUNCATED, "an unknown error");
                FEED_CHECK(r, ev.detail != NULL && ev.detail[0] != '\0', "an error without a detail");
                FEED_CHECK(r, ev.error != CF_H1RESP_TRUNCATED || last, "TRUNCATED before the end of the stream");
                r->error = ev.error;
                r->detail = ev.detail;
            } else {
                FEED_CHECK(r, !last, "NEED_MORE at the end of the stream");
            }
            FEED_CHECK(r, kind == CF_H1RESP_NEED_MORE || kind == CF_H1RESP_DONE || kind == CF_H1RESP_ERROR || ev.consumed != 0,
                       "an event that consumed nothing");
            off += ev.consumed;
            r->consumed += ev.consumed;
            if (kind == CF_H1RESP_DONE || kind == CF_H1RESP_ERROR) {
                /* they repeat, consuming nothing */
                cf_h1resp_event_t again;
                FEED_CHECK(r, cf_h1resp_parse(&p, NULL, 0, 0, &again) == kind && again.consumed == 0, "DONE or ERROR not repeated");
                r->end = kind;
                break;
            }
            if (kind == CF_H1RESP_NEED_MORE || r->violation != NULL) {
                if (r->violation != NULL)
                    r->end = CF_H1RESP_ERROR;
                break;
            }
        }
        start += off;
        free(win);
    }
    r->body[r->body_len] = '\0';
}

static void feed_free(feed_result_t *r)
{
    free(r->body);
    r->body = NULL;
}

/* NULL when two runs over the same bytes agree (same end, error kind, head, body, bytes consumed), else what differs. */
static const char *feed_compare(const feed_result_t *a, const feed_result_t *b)
{
    if (a->end != b->end)
        return "how it ended";
    if (a->heads != b->heads || (a->heads && a->status != b->status))
        return "the head";
    if (a->end == CF_H1RESP_ERROR)
        return a->error != b->error ? "the error" : NULL; /* a failed response's partial body is dropped by the caller */
    if (a->keepalive != b->keepalive || a->framing != b->framing || a->content_length != b->content_length ||
        strcmp(a->headers, b->headers) != 0 || a->head_consumed != b->head_consumed)
        return "the head";
    if (a->body_len != b->body_len || memcmp(a->body, b->body, a->body_len) != 0)
        return "the body";
    if (a->consumed != b->consumed)
        return "the bytes consumed";
    return NULL;
}

#endif
