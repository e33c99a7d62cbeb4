/* The HTTP/1.x response parser of every client in conflux: head, body framing, chunked decoding; bytes in, events out. */
#include <string.h>
#include "cf_http.h"
#include "cf_h1resp.h"

/*
 * The status line and header fields are parsed by picohttpparser's phr_parse_response (exported by libh2o): it needs
 * the whole head in one buffer, so nothing of a head is consumed until it is complete, and the bytes already scanned
 * are passed back as its `last_len` so that a head arriving a byte at a time is not parsed again from the start on
 * every read. What the head means for the body (RFC 9112 6.3) and the chunked coding (RFC 9112 7.1) are decoded here.
 * picohttpparser's own chunk decoder is not used: it takes "0x10" as a chunk of size 0 with an extension "x10",
 * accepts bare LF line ends, and skips chunk extensions and trailer lines unchecked.
 */

enum {
    S_HEAD,
    S_LENGTH,
    S_CLOSE,
    S_CHUNK_SIZE,
    S_CHUNK_DATA,
    S_CHUNK_DATA_END,
    S_TRAILER,
    S_DONE,
    S_ERROR,
};

/* the most hex digits of a chunk size: 15 cannot overflow 64 bits */
#define MAX_CHUNK_SIZE_DIGITS 15

void cf_h1resp_init(cf_h1resp_t *p, int is_head_request, uint64_t max_body)
{
    memset(p, 0, sizeof(*p));
    p->state = S_HEAD;
    p->is_head_request = is_head_request != 0;
    p->max_body = max_body;
}

static cf_h1resp_kind_t fail(cf_h1resp_t *p, cf_h1resp_event_t *ev, cf_h1resp_error_t error, const char *detail)
{
    p->state = S_ERROR;
    p->error = error;
    p->detail = detail;
    ev->error = error;
    ev->detail = detail;
    return CF_H1RESP_ERROR;
}

/* --- character classes and small grammars ------------------------------------------------------------------------ */

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static int lower(int c)
{
    return 'A' <= c && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Whether s (len bytes) is the lower-case word `w`, in any case. */
static int caseless_is(const char *s, size_t len, const char *w)
{
    if (len != strlen(w))
        return 0;
    for (size_t i = 0; i != len; ++i)
        if (lower((unsigned char)s[i]) != w[i])
            return 0;
    return 1;
}

/* Whether the comma-separated list (RFC 9110 5.6.1) holds the lower-case token `w`, in any case. */
static int list_has(const char *s, size_t len, const char *w)
{
    size_t i = 0;
    while (i < len) {
        size_t start, end;
        while (i < len && (is_ws(s[i]) || s[i] == ','))
            ++i;
        start = i;
        while (i < len && s[i] != ',')
            ++i;
        end = i;
        while (end > start && is_ws(s[end - 1]))
            --end;
        if (end != start && caseless_is(s + start, end - start, w))
            return 1;
    }
    return 0;
}

static size_t skip_ws(const char *s, size_t i, size_t len)
{
    while (i < len && is_ws(s[i]))
        ++i;
    return i;
}

static size_t token_length(const char *s, size_t i, size_t len)
{
    size_t start = i;
    while (i < len && cf_http_is_tchar((unsigned char)s[i]))
        ++i;
    return i - start;
}

/* The length of the quoted-string (RFC 9110 5.6.4) at s[i], or 0 when there is none. */
static size_t quoted_length(const char *s, size_t i, size_t len)
{
    size_t start = i;
    if (i == len || s[i] != '"')
        return 0;
    for (++i; i < len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            return i + 1 - start;
        if (c == '\\') {
            if (++i == len)
                return 0;
            c = (unsigned char)s[i];
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 0;
}

/* RFC 9110 8.6: 1*DIGIT, into *v; -1 when empty, not digits, or over 2^64 - 1. */
static int parse_length(const char *s, size_t len, uint64_t *v)
{
    uint64_t n = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i != len; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (n > (UINT64_MAX - d) / 10)
            return -1;
        n = n * 10 + d;
    }
    *v = n;
    return 0;
}

/*
 * RFC 9112 7.1: chunk-size [ chunk-ext ], the line without its CRLF, where
 * chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), chunk-ext-val = token / quoted-string.
 * Extensions are checked and ignored. Returns 0 with the size, or -1.
 */
static int parse_chunk_line(const char *s, size_t len, uint64_t *size)
{
    uint64_t n = 0;
    size_t i = 0, t;
    int v;
    for (; i < len && (v = cf_hexval((unsigned char)s[i])) >= 0; ++i) {
        if (i == MAX_CHUNK_SIZE_DIGITS)
            return -1;
        n = n * 16 + (unsigned)v;
    }
    if (i == 0)
        return -1;
    while (i != len) {
        /* BWS ";" BWS chunk-ext-name */
        i = skip_ws(s, i, len);
        if (i == len || s[i] != ';')
            return -1;
        i = skip_ws(s, i + 1, len);
        if ((t = token_length(s, i, len)) == 0)
            return -1;
        i += t;
        /* [ BWS "=" BWS chunk-ext-val ] */
        size_t j = skip_ws(s, i, len);
        if (j != len && s[j] == '=') {
            j = skip_ws(s, j + 1, len);
            if ((t = token_length(s, j, len)) == 0 && (t = quoted_length(s, j, len)) == 0)
                return -1;
            i = j + t;
        }
    }
    *size = n;
    return 0;
}

/* RFC 9112 5: field-line = field-name ":" OWS field-value OWS, without its CRLF (a trailer field). */
static int is_field_line(const char *s, size_t len)
{
    size_t n = token_length(s, 0, len);
    if (n == 0 || n == len || s[n] != ':')
        return 0;
    for (size_t i = n + 1; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/*
 * The line at the start of buf: its length without CRLF in *content, returns its length with CRLF; 0 when no line end
 * has arrived yet; -1 (with *why) when it ends in a bare LF or is longer than CF_H1RESP_MAX_LINE.
 */
static long take_line(const char *buf, size_t len, size_t *content, const char **why)
{
    size_t scan = len < CF_H1RESP_MAX_LINE ? len : CF_H1RESP_MAX_LINE;
    const char *lf = scan != 0 ? memchr(buf, '\n', scan) : NULL;
    if (lf == NULL) {
        if (len < CF_H1RESP_MAX_LINE)
            return 0;
        *why = "a chunk-size or trailer line over 4096 bytes";
        return -1;
    }
    size_t n = (size_t)(lf - buf);
    if (n == 0 || buf[n - 1] != '\r') {
        *why = "a chunk-size or trailer line ending in a bare LF";
        return -1;
    }
    *content = n - 1;
    return (long)(n + 1);
}

/* --- the head ------------------------------------------------------------------------------------------------------ */

/* Fills the head event from picohttpparser's result and decides the framing (RFC 9112 6.3). */
static cf_h1resp_kind_t decide_framing(cf_h1resp_t *p, cf_h1resp_event_t *ev, int minor_version, int status)
{
    uint64_t content_length = 0;
    int has_length = 0, has_te = 0, close = 0, keep_alive = 0;

    for (size_t i = 0; i != ev->num_headers; ++i) {
        struct phr_header *h = ev->headers + i;
        if (h->name == NULL)
            return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "obs-fold (a header line starting with whitespace)");
        while (h->value_len != 0 && is_ws(h->value[h->value_len - 1]))
            --h->value_len; /* OWS is not part of the value (RFC 9112 5) */
        if (caseless_is(h->name, h->name_len, "content-length")) {
            uint64_t v;
            if (parse_length(h->value, h->value_len, &v) != 0)
                return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "an invalid Content-Length");
            if (has_length && v != content_length)
                return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "two different Content-Length values");
            content_length = v;
            has_length = 1;
        } else if (caseless_is(h->name, h->name_len, "transfer-encoding")) {
            /* chunked must be the final coding (RFC 9112 6.1), and no request of ours asks for another one */
            if (has_te)
                return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "more than one Transfer-Encoding field");
            if (!caseless_is(h->value, h->value_len, "chunked"))
                return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "a Transfer-Encoding other than chunked");
            has_te = 1;
        } else if (caseless_is(h->name, h->name_len, "connection")) {
            close |= list_has(h->value, h->value_len, "close");
            keep_alive |= list_has(h->value, h->value_len, "keep-alive");
        }
    }
    /* RFC 9112 6.1 allows Transfer-Encoding to override Content-Length, or the message to be refused as a likely attempt
     * at smuggling; at the edge it is refused, and so is Transfer-Encoding from an HTTP/1.0 server, which cannot mean it */
    if (has_te && has_length)
        return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "both Content-Length and Transfer-Encoding");
    if (has_te && minor_version == 0)
        return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "Transfer-Encoding in an HTTP/1.0 response");

    ev->status = status;
    ev->minor_version = minor_version;
    ev->keepalive = !close && (minor_version >= 1 || keep_alive); /* RFC 9112 9.3 */
    ev->content_length = 0;
    if (p->is_head_request || status == 204 || status == 304) {
        ev->framing = CF_H1RESP_FRAMING_NONE;
    } else if (has_te) {
        ev->framing = CF_H1RESP_FRAMING_CHUNKED;
    } else if (has_length) {
        ev->framing = CF_H1RESP_FRAMING_LENGTH;
        ev->content_length = content_length;
    } else {
        ev->framing = CF_H1RESP_FRAMING_CLOSE;
        ev->keepalive = 0;
    }
    static const int next[] = {
        [CF_H1RESP_FRAMING_NONE] = S_DONE,
        [CF_H1RESP_FRAMING_LENGTH] = S_LENGTH,
        [CF_H1RESP_FRAMING_CHUNKED] = S_CHUNK_SIZE,
        [CF_H1RESP_FRAMING_CLOSE] = S_CLOSE,
    };
    p->state = next[ev->framing];
    p->left = ev->content_length;
    return CF_H1RESP_HEAD;
}

static cf_h1resp_kind_t parse_head(cf_h1resp_t *p, const char *buf, size_t len, int eof, cf_h1resp_event_t *ev)
{
    while (1) {
        const char *msg;
        size_t msg_len, avail = len - ev->consumed;
        int minor_version, status;
        /* a caller that kept fewer bytes than last time breaks the contract; scanning from 0 is always right */
        size_t last_len = p->head_scanned <= avail ? p->head_scanned : 0;

        ev->num_headers = CF_H1RESP_MAX_HEADERS;
        int r = avail == 0 ? -2
                           : phr_parse_response(buf + ev->consumed, avail, &minor_version, &status, &msg, &msg_len, ev->headers,
                                                &ev->num_headers, last_len);
        if ((r == -1 || (r == -2 && eof)) && last_len != 0) {
            /* the fast check for the head's end (with last_len) is not the parser: it finds no fault but a bare CR, where
             * the parser may still want more (a head shorter than "HTTP/1.x "), and at the end of the stream a head cut
             * short must be told from a malformed one; the full parse decides, as it would have on the bytes whole */
            ev->num_headers = CF_H1RESP_MAX_HEADERS;
            r = phr_parse_response(buf + ev->consumed, avail, &minor_version, &status, &msg, &msg_len, ev->headers,
                                   &ev->num_headers, 0);
        }
        if (r == -2) {
            if (p->head_bytes + avail >= CF_H1RESP_MAX_HEAD)
                return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "a response head over 64KiB");
            if (eof)
                return fail(p, ev, CF_H1RESP_TRUNCATED,
                            avail == 0 && p->head_bytes == 0 ? "closed before a response" : "closed in the response head");
            p->head_scanned = avail;
            return CF_H1RESP_NEED_MORE;
        }
        p->head_scanned = 0;
        if (r < 0)
            return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "a malformed response head (not HTTP/1.x)");
        if ((p->head_bytes += (size_t)r) > CF_H1RESP_MAX_HEAD)
            return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "a response head over 64KiB");
        if (status < 100)
            return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "a status below 100");
        if (status == 101)
            return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "a 101 Switching Protocols no request asked for");
        ev->consumed += (size_t)r;
        if (status >= 200) {
            ev->reason = msg;
            ev->reason_len = msg_len;
            return decide_framing(p, ev, minor_version, status);
        }
        /* 1xx informational (RFC 9110 15.2): skipped */
    }
}

/* --- the body ------------------------------------------------------------------------------------------------------ */

/* Reports the n bytes at `at` (right after the ev->consumed bytes) as body, within max_body. */
static cf_h1resp_kind_t body(cf_h1resp_t *p, const char *at, size_t n, cf_h1resp_event_t *ev)
{
    if (n > p->max_body - p->body_total)
        return fail(p, ev, CF_H1RESP_TOO_LARGE, "a body over max_response_body");
    p->body_total += n;
    ev->body = at;
    ev->body_len = n;
    ev->consumed += n;
    return CF_H1RESP_BODY;
}

static cf_h1resp_kind_t parse_chunked(cf_h1resp_t *p, const char *buf, size_t len, int eof, cf_h1resp_event_t *ev)
{
    const char *why = NULL;
    size_t content;
    long n;

    while (1) {
        size_t avail = len - ev->consumed;
        const char *at = avail != 0 ? buf + ev->consumed : NULL; /* buf is NULL when len is 0 */
        switch (p->state) {
        case S_CHUNK_SIZE:
            if ((n = take_line(at, avail, &content, &why)) < 0)
                return fail(p, ev, CF_H1RESP_BAD_RESPONSE, why);
            if (n == 0)
                goto NeedMore;
            if (parse_chunk_line(at, content, &p->left) != 0)
                return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "a malformed chunk-size line");
            if (p->left > p->max_body - p->body_total)
                return fail(p, ev, CF_H1RESP_TOO_LARGE, "a chunk beyond max_response_body");
            ev->consumed += (size_t)n;
            p->state = p->left != 0 ? S_CHUNK_DATA : S_TRAILER;
            break;
        case S_CHUNK_DATA: {
            if (avail == 0)
                goto NeedMore;
            size_t take = avail < p->left ? avail : (size_t)p->left;
            p->left -= take;
            if (p->left == 0)
                p->state = S_CHUNK_DATA_END;
            return body(p, at, take, ev); /* with the size line before it, if it was consumed in this call */
        }
        case S_CHUNK_DATA_END:
            /* exactly CRLF after the data, refused as soon as a wrong byte shows */
            if ((avail >= 1 && at[0] != '\r') || (avail >= 2 && at[1] != '\n'))
                return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "chunk data not followed by CRLF");
            if (avail < 2)
                goto NeedMore;
            ev->consumed += 2;
            p->state = S_CHUNK_SIZE;
            break;
        case S_TRAILER: /* trailer fields (RFC 9112 7.1.2) are checked and dropped; an empty line ends the message */
            if ((n = take_line(at, avail, &content, &why)) < 0)
                return fail(p, ev, CF_H1RESP_BAD_RESPONSE, why);
            if (n == 0)
                goto NeedMore;
            if ((p->trailer_bytes += (size_t)n) > CF_H1RESP_MAX_HEAD)
                return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "a trailer section over 64KiB");
            if (content != 0 && !is_field_line(at, content))
                return fail(p, ev, CF_H1RESP_BAD_RESPONSE, "a malformed trailer field");
            ev->consumed += (size_t)n;
            if (content == 0) {
                p->state = S_DONE;
                return CF_H1RESP_DONE;
            }
            break;
        }
    }
NeedMore:
    if (eof)
        return fail(p, ev, CF_H1RESP_TRUNCATED, "closed in a chunked body");
    return CF_H1RESP_NEED_MORE;
}

cf_h1resp_kind_t cf_h1resp_parse(cf_h1resp_t *p, const char *buf, size_t len, int eof, cf_h1resp_event_t *ev)
{
    ev->consumed = 0;
    switch (p->state) {
    case S_HEAD:
        return parse_head(p, buf, len, eof, ev);
    case S_LENGTH: {
        /* body_total + left is the Content-Length */
        if (p->left > p->max_body - p->body_total)
            return fail(p, ev, CF_H1RESP_TOO_LARGE, "a Content-Length over max_response_body");
        if (p->left == 0) {
            p->state = S_DONE;
            return CF_H1RESP_DONE;
        }
        if (len == 0)
            return eof ? fail(p, ev, CF_H1RESP_TRUNCATED, "closed before the end of a Content-Length body") : CF_H1RESP_NEED_MORE;
        size_t take = len < p->left ? len : (size_t)p->left;
        p->left -= take;
        return body(p, buf, take, ev);
    }
    case S_CLOSE:
        if (len != 0)
            return body(p, buf, len, ev);
        if (!eof)
            return CF_H1RESP_NEED_MORE;
        p->state = S_DONE;
        return CF_H1RESP_DONE;
    case S_DONE:
        return CF_H1RESP_DONE;
    case S_ERROR:
        ev->error = p->error;
        ev->detail = p->detail;
        return CF_H1RESP_ERROR;
    default:
        return parse_chunked(p, buf, len, eof, ev);
    }
}
