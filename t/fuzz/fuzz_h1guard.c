/*
 * libFuzzer harness for gateway/h1guard.c, the strict HTTP/1 framing conflux checks before libh2o parses a client's
 * bytes. Input: the bytes of a client connection. Checks:
 *  - fed whole, split in two at a point the input chooses, or a byte at a time, the guard gives the same verdict;
 *  - on the bytes the guard accepts, libh2o 2.2.5's own framing (picohttpparser, which libh2o exports, driven the way
 *    lib/http1.c drives it) ends each request exactly where the guard does: libh2o never sees a request the guard did
 *    not see, never a request boundary the guard did not put there. libh2o may refuse more than the guard (it then
 *    answers 400 and closes), never less.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include "../../gateway/h1guard.c"
#include "cf_picohttp.h" /* picohttpparser, exported by libh2o: what libh2o makes of the bytes the guard passed */

#define MAX_REQUESTS 256

static int ieq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; ++i)
        if (tolower((unsigned char)a[i]) != b[i])
            return 0;
    return 1;
}

/* libh2o's h2o_strtosize: digits only, at most 20 of them; SIZE_MAX when not a size */
static size_t strtosize(const char *s, size_t len)
{
    uint64_t v = 0;
    if (len == 0 || len > 20)
        return SIZE_MAX;
    for (size_t i = 0; i < len; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return SIZE_MAX;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    return v;
}

/* Where libh2o's HTTP/1 server ends each complete request of `buf` (lib/http1.c: handle_incoming_request,
 * fixup_request, create_entity_reader). Returns how many; stops at an incomplete request or one libh2o refuses. */
static size_t libh2o_ends(const char *buf, size_t len, size_t *ends)
{
    size_t pos = 0, n = 0;
    while (pos < len && n < MAX_REQUESTS) {
        const char *method, *path;
        size_t method_len, path_len, num_headers = 100; /* H2O_MAX_HEADERS */
        int minor;
        struct phr_header headers[100];
        int reqlen =
            phr_parse_request(buf + pos, len - pos, &method, &method_len, &path, &path_len, &minor, headers, &num_headers, 0);
        if (reqlen < 0)
            break; /* -2: incomplete; -1: libh2o's 400 and close */
        ssize_t entity = -1;
        for (size_t i = 0; i < num_headers; ++i) {
            if (ieq(headers[i].name, headers[i].name_len, "transfer-encoding"))
                entity = (ssize_t)i;
            else if (ieq(headers[i].name, headers[i].name_len, "content-length") && entity == -1)
                entity = (ssize_t)i;
            else if (ieq(headers[i].name, headers[i].name_len, "expect") &&
                     !ieq(headers[i].value, headers[i].value_len, "100-continue"))
                return n; /* 417 and close */
        }
        size_t end = pos + (size_t)reqlen;
        if (entity != -1) {
            struct phr_header *h = &headers[entity];
            if (h->name_len == sizeof("transfer-encoding") - 1) {
                if (!ieq(h->value, h->value_len, "chunked"))
                    return n;
                size_t avail = len - end, bufsz = avail;
                char *copy = malloc(avail + 1);
                memcpy(copy, buf + end, avail);
                struct phr_chunked_decoder dec = {0};
                dec.consume_trailer = 1;
                ssize_t left = phr_decode_chunked(&dec, copy, &bufsz);
                free(copy);
                if (left < 0)
                    return n;
                end += avail - (size_t)left;
            } else {
                size_t cl = strtosize(h->value, h->value_len);
                if (cl == SIZE_MAX || cl > len - end)
                    return n;
                end += cl;
            }
        }
        ends[n++] = end;
        pos = end;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    size_t consumed;
    if (size < 1 || size > 8192)
        return 0;
    size_t split = data[0] % size; /* the first byte chooses where to split; it is part of the stream too */

    /* a byte at a time, noting where the guard ends each request (it is idle right after) */
    static size_t guard_ends[MAX_REQUESTS], h2o_ends[MAX_REQUESTS];
    size_t nguard = 0, accepted = size;
    cf_h1guard_result_t verdict = CF_H1G_MORE;
    cf_h1guard_t g;
    cf_h1guard_init(&g);
    for (size_t i = 0; i < size; ++i) {
        cf_h1guard_result_t r = cf_h1guard_feed(&g, buf + i, 1, &consumed);
        if (r == CF_H1G_EXPECT_CONTINUE) {
            if (consumed != 1)
                abort();
            r = CF_H1G_MORE;
        }
        if (r != CF_H1G_MORE) {
            if (consumed != 0)
                abort(); /* an error points at the offending byte */
            verdict = r;
            accepted = i;
            break;
        }
        if (cf_h1guard_idle(&g) && nguard < MAX_REQUESTS)
            guard_ends[nguard++] = i + 1;
    }

    /* whole, and in two pieces: the same verdict */
    for (int pass = 0; pass < 2; ++pass) {
        cf_h1guard_init(&g);
        cf_h1guard_result_t r = CF_H1G_MORE;
        size_t pieces[2][2] = {{0, pass == 0 ? size : split}, {pass == 0 ? size : split, size}};
        for (int k = 0; k < 2 && r == CF_H1G_MORE; ++k) {
            size_t at = pieces[k][0], end = pieces[k][1];
            while (at < end) {
                r = cf_h1guard_feed(&g, buf + at, end - at, &consumed);
                if (r == CF_H1G_EXPECT_CONTINUE) {
                    if (g.head_len == 0 || g.head_len > at + consumed)
                        abort(); /* the head lies within what was fed */
                    at += consumed;
                    r = CF_H1G_MORE;
                    continue;
                }
                if (r != CF_H1G_MORE && at + consumed != accepted)
                    abort(); /* the same offending byte */
                break;
            }
        }
        if (r != verdict)
            abort();
    }

    /* libh2o's framing of what the guard accepted */
    size_t nh2o = libh2o_ends(buf, accepted, h2o_ends);
    if (nh2o > nguard)
        abort(); /* libh2o completed a request the guard did not */
    for (size_t k = 0; k < nh2o; ++k)
        if (h2o_ends[k] != guard_ends[k])
            abort(); /* they disagree on where a request ends */
    return 0;
}
