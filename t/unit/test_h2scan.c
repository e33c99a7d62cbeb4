/* Unit tests of gateway/h2scan.c: frames and the header blocks they carry, read the same however they are split. */
#include <stdlib.h>
#include "tap.h"
#include "../../gateway/hpack.c"
#include "../../gateway/h2scan.c"

#define MAX_SEEN 64

typedef struct {
    cf_h2_frame_t frames[MAX_SEEN];
    size_t starts[MAX_SEEN]; /* where each frame starts in the whole stream */
    size_t num, fed;         /* bytes given to earlier calls */
} seen_t;

static int on_frame(void *_s, const cf_h2_frame_t *f)
{
    seen_t *s = _s;
    if (s->num < MAX_SEEN) {
        s->starts[s->num] = s->fed + f->at - f->seen;
        s->frames[s->num++] = *f;
    }
    return 0;
}

static size_t frame(char *out, uint32_t len, uint8_t type, uint8_t flags, uint32_t stream, const char *payload)
{
    out[0] = (char)(len >> 16);
    out[1] = (char)(len >> 8);
    out[2] = (char)len;
    out[3] = (char)type;
    out[4] = (char)flags;
    out[5] = (char)(stream >> 24);
    out[6] = (char)(stream >> 16);
    out[7] = (char)(stream >> 8);
    out[8] = (char)stream;
    memcpy(out + 9, payload, len);
    return 9 + len;
}

#define FRAME(out, type, flags, stream, payload) frame(out, sizeof(payload) - 1, type, flags, stream, payload)

/* Scans `len` bytes whole, split at every offset and byte by byte: the same frames at the same places, the same
 * verdict. Returns the verdict of the whole; the frames in *seen. */
static int scan(const char *bytes, size_t len, seen_t *seen, cf_h2scan_t *end)
{
    cf_h2scan_t s;
    cf_h2scan_init(&s);
    memset(seen, 0, sizeof(*seen));
    int whole = cf_h2scan_feed(&s, (const uint8_t *)bytes, len, on_frame, seen);
    if (end != NULL)
        *end = s;
    for (size_t step = 0; step <= len + 1; ++step) {
        seen_t other = {0};
        cf_h2scan_t t;
        cf_h2scan_init(&t);
        int r = 0;
        if (step == len + 1) { /* byte by byte */
            for (size_t i = 0; i < len && r == 0; ++i, ++other.fed)
                r = cf_h2scan_feed(&t, (const uint8_t *)bytes + i, 1, on_frame, &other);
        } else if ((r = cf_h2scan_feed(&t, (const uint8_t *)bytes, step, on_frame, &other)) == 0) {
            other.fed = step;
            r = cf_h2scan_feed(&t, (const uint8_t *)bytes + step, len - step, on_frame, &other);
        }
        int same = r == whole && other.num == seen->num && t.hpack.size == s.hpack.size;
        for (size_t i = 0; same && i < seen->num; ++i)
            same = other.starts[i] == seen->starts[i] && other.frames[i].data_length == seen->frames[i].data_length &&
                   other.frames[i].type == seen->frames[i].type && other.frames[i].pad_length == seen->frames[i].pad_length;
        if (!same) {
            ok(0, "%s %zu: %zu frames, verdict %d; whole: %zu frames, verdict %d", step == len + 1 ? "byte by byte" : "split at",
               step, other.num, r, seen->num, whole);
            break;
        }
    }
    return whole;
}

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

static void test_frames(void)
{
    char buf[2048];
    seen_t seen;
    cf_h2scan_t end;
    size_t n = sizeof(PREFACE) - 1;
    memcpy(buf, PREFACE, n);
    n += FRAME(buf + n, CF_H2_SETTINGS, 0, 0, "\x00\x04\x00\x00\x00\x00");
    n += FRAME(buf + n, CF_H2_PING, CF_H2_FLAG_ACK, 0, "12345678");
    n += FRAME(buf + n, CF_H2_HEADERS, CF_H2_FLAG_END_HEADERS, 1, "\x82\x87\x84");
    n += FRAME(buf + n, CF_H2_DATA, CF_H2_FLAG_PADDED, 1, "\x00");
    n += FRAME(buf + n, CF_H2_DATA, CF_H2_FLAG_PADDED, 1, "\x03xy\0\0\0");
    n += FRAME(buf + n, CF_H2_DATA, CF_H2_FLAG_PADDED, 1, "\x05\0\0\0\0\0");
    n += FRAME(buf + n, CF_H2_DATA, CF_H2_FLAG_PADDED | CF_H2_FLAG_END_STREAM, 1, "");
    is(scan(buf, n, &seen, &end), 0, "a connection's frames");
    is(seen.num, 7, "seven frames");
    is(seen.frames[0].type, CF_H2_SETTINGS, "SETTINGS first");
    is(seen.starts[0], 24, "after the preface");
    is(seen.frames[0].length, 6, "its length");
    is(seen.frames[1].flags, CF_H2_FLAG_ACK, "then PING, with its flags");
    is(seen.frames[2].stream_id, 1, "HEADERS on stream 1");
    is(seen.frames[2].data_length, 3, "carrying a 3-byte block");
    is(end.hpack.size, 42 + 44 + 38, "that the HPACK scanner read");
    is(seen.frames[3].data_length, 0, "PADDED DATA with only a Pad Length of 0: empty");
    is(seen.frames[3].seen, 10, "reported once the Pad Length is read");
    is(seen.frames[4].pad_length, 3, "the pad length");
    is(seen.frames[4].data_length, 2, "2 bytes of data, 3 of padding");
    is(seen.frames[5].data_length, 0, "padding as long as the rest: empty");
    is(seen.frames[6].data_length, 0, "PADDED with no payload at all (libh2o refuses it): empty");
    is(seen.frames[6].seen, 9, "reported at its header");
    is(seen.starts[6], n - 9, "at the right place");
    is(cf_h2scan_unreported(&end), 0, "nothing left unreported");

    n = sizeof(PREFACE) - 1;
    n += FRAME(buf + n, CF_H2_DATA, CF_H2_FLAG_PADDED, 1, "\x09");
    is(scan(buf, n, &seen, NULL), 0, "padding longer than the frame (libh2o refuses it)");
    is(seen.frames[0].data_length, 0, "counts as empty");

    cf_h2scan_t s;
    cf_h2scan_init(&s);
    seen_t partial = {0};
    cf_h2scan_feed(&s, (const uint8_t *)PREFACE "\x00\x00\x01\x00\x08", sizeof(PREFACE) - 1 + 5, on_frame, &partial);
    is(cf_h2scan_unreported(&s), 5, "5 bytes of a header, unreported");
    cf_h2scan_feed(&s, (const uint8_t *)"\x00\x00\x00\x01", 4, on_frame, &partial);
    is(partial.num, 0, "a PADDED DATA header: not reported before its Pad Length");
    is(cf_h2scan_unreported(&s), 9, "9 bytes unreported");
    cf_h2scan_feed(&s, (const uint8_t *)"\x00", 1, on_frame, &partial);
    is(partial.num, 1, "reported with it");
    is(partial.frames[0].at, 1, "`at`: just past the Pad Length in this call's bytes");
    is(cf_h2scan_unreported(&s), 0, "nothing unreported");
}

static void test_header_blocks(void)
{
    char buf[40000];
    seen_t seen;
    cf_h2scan_t end;
    size_t n = sizeof(PREFACE) - 1;
    memcpy(buf, PREFACE, n);
    /* PADDED and PRIORITY: pad length 2, 5 priority bytes, the fragment, 2 bytes of padding */
    n += FRAME(buf + n, CF_H2_HEADERS, CF_H2_FLAG_PADDED | CF_H2_FLAG_PRIORITY, 1, "\x02\x00\x00\x00\x00\x10\x82\x87\x41\x09\0\0");
    n += FRAME(buf + n, CF_H2_CONTINUATION, 0, 1, "localhost");
    n += FRAME(buf + n, CF_H2_CONTINUATION, CF_H2_FLAG_END_HEADERS, 1, "\x84");
    is(scan(buf, n, &seen, &end), 0, "a block over HEADERS (PADDED, PRIORITY) and two CONTINUATION frames");
    is(seen.frames[0].data_length, 4, "HEADERS carries 4 bytes of it");
    is(seen.frames[0].pad_length, 2, "past the Pad Length and priority fields, before the padding");
    is(end.hpack.size, 42 + 44 + 51 + 38, "the block is read across the frames, the literal split between them");
    is(end.hpack.count, 1, ":authority inserted");
    ok(!end.in_block, "END_HEADERS closes the block");

    /* the HEADERS block is cut off by another frame: CONTINUATION after it is not part of a block */
    n = sizeof(PREFACE) - 1;
    n += FRAME(buf + n, CF_H2_HEADERS, 0, 1, "\x82\x41");
    n += FRAME(buf + n, CF_H2_PING, 0, 0, "12345678");
    n += FRAME(buf + n, CF_H2_CONTINUATION, CF_H2_FLAG_END_HEADERS, 1, "\x01x");
    is(scan(buf, n, &seen, &end), 0, "a block cut off by a PING");
    is(end.hpack.size, 42 + 32 + 10, "the CONTINUATION is not read as part of a block");
    is(seen.frames[2].data_length, 2, "though reported with what it carries");

    /* the attack over CONTINUATION frames of 16 KiB */
    n = sizeof(PREFACE) - 1;
    char payload[16384];
    size_t p = (size_t)snprintf(payload, sizeof(payload), "\x82\x87\x84\x41\x09localhost\x40\x03x-a\x7f%c%c",
                                0x80 | ((4000 - 127) & 0x7f), (4000 - 127) >> 7);
    memset(payload + p, 'a', 4000);
    p += 4000;
    n += frame(buf + n, (uint32_t)p, CF_H2_HEADERS, 0, 1, payload);
    memset(payload, 0xbe, sizeof(payload));
    n += frame(buf + n, 16384, CF_H2_CONTINUATION, 0, 1, payload);
    cf_h2scan_init(&end);
    memset(&seen, 0, sizeof(seen));
    is(cf_h2scan_feed(&end, (const uint8_t *)buf, n, on_frame, &seen), CF_H2SCAN_HEADERS_TOO_LARGE,
       "one-byte references over CONTINUATION: refused");
    is(seen.num, 2, "within the second frame");
    is(end.hpack.representations, 5 + 32, "at the 32nd reference (4210 + 32 * 4035 > 128 KiB)");

    n = sizeof(PREFACE) - 1;
    memset(payload, 0x82, 300);
    n += frame(buf + n, 300, CF_H2_HEADERS, CF_H2_FLAG_END_HEADERS, 1, payload);
    is(scan(buf, n, &seen, NULL), CF_H2SCAN_TOO_MANY_FIELDS, "300 fields: too many");

    n = sizeof(PREFACE) - 1;
    n += frame(buf + n, 200, CF_H2_HEADERS, CF_H2_FLAG_END_HEADERS, 1, payload);
    n += frame(buf + n, 200, CF_H2_HEADERS, CF_H2_FLAG_END_HEADERS, 3, payload);
    is(scan(buf, n, &seen, NULL), 0, "200 fields in each of two blocks: each block has its own count");
}

int main(void)
{
    test_frames();
    test_header_blocks();
    return done_testing();
}
