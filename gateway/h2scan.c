/* HTTP/2 frame headers read off a client's raw byte stream: pure, no buffering of payloads, never fails. */
#include <string.h>
#include "h2scan.h"

#define PREFACE_LEN 24 /* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (RFC 9113 §3.4) */

void cf_h2scan_init(cf_h2scan_t *s)
{
    memset(s, 0, sizeof(*s));
    s->preface_left = PREFACE_LEN;
    cf_hpack_init(&s->hpack);
}

size_t cf_h2scan_unreported(const cf_h2scan_t *s)
{
    return s->want_pad ? 9 : s->header_len;
}

static int carries_padding(const cf_h2_frame_t *f)
{
    return (f->type == CF_H2_DATA || f->type == CF_H2_HEADERS) && (f->flags & CF_H2_FLAG_PADDED) && f->length != 0;
}

/* The frame's header (and Pad Length) is read: works out what the payload holds, opens or closes a header block. */
static void start_payload(cf_h2scan_t *s)
{
    cf_h2_frame_t *f = &s->frame;
    uint32_t overhead = carries_padding(f) ? 1u + f->pad_length : 0;
    if (f->type == CF_H2_HEADERS && (f->flags & CF_H2_FLAG_PRIORITY))
        overhead += 5;
    f->data_length = f->length > overhead ? f->length - overhead : 0;

    s->prio_left = 0;
    s->fragment_left = 0;
    if (s->in_block && f->type != CF_H2_CONTINUATION) {
        /* the block was cut off by another frame: libh2o closes the connection (RFC 9113 §6.10) */
        cf_hpack_end_block(&s->hpack);
        s->in_block = 0;
    }
    if (f->type == CF_H2_HEADERS) {
        cf_hpack_start_block(&s->hpack);
        s->in_block = 1;
        s->prio_left = (f->flags & CF_H2_FLAG_PRIORITY) ? 5 : 0;
        s->fragment_left = f->data_length;
    } else if (f->type == CF_H2_CONTINUATION && s->in_block) {
        s->fragment_left = f->length;
    }
}

/* The frame's payload is all read. */
static void end_payload(cf_h2scan_t *s)
{
    const cf_h2_frame_t *f = &s->frame;
    if (s->in_block && (f->type == CF_H2_HEADERS || f->type == CF_H2_CONTINUATION) && (f->flags & CF_H2_FLAG_END_HEADERS)) {
        cf_hpack_end_block(&s->hpack);
        s->in_block = 0;
    }
}

/* Reads `n` bytes of payload (n <= payload_left): priority fields, then fragment, then padding. */
static int read_payload(cf_h2scan_t *s, const uint8_t *p, size_t n)
{
    int r = 0;
    s->payload_left -= (uint32_t)n;
    size_t skip = n < s->prio_left ? n : s->prio_left;
    s->prio_left -= (uint8_t)skip;
    p += skip;
    n -= skip;
    size_t frag = n < s->fragment_left ? n : s->fragment_left;
    if (frag != 0) {
        s->fragment_left -= (uint32_t)frag;
        switch (cf_hpack_feed(&s->hpack, p, frag)) {
        case CF_HPACK_TOO_LARGE:
            r = CF_H2SCAN_HEADERS_TOO_LARGE;
            break;
        case CF_HPACK_TOO_MANY:
            r = CF_H2SCAN_TOO_MANY_FIELDS;
            break;
        default:
            break;
        }
    }
    if (s->payload_left == 0)
        end_payload(s);
    return r;
}

int cf_h2scan_feed(cf_h2scan_t *s, const uint8_t *bytes, size_t len, int (*on_frame)(void *ctx, const cf_h2_frame_t *frame),
                   void *ctx)
{
    size_t i = 0;
    int r;
    while (i < len) {
        if (s->preface_left != 0) {
            size_t n = len - i < s->preface_left ? len - i : s->preface_left;
            s->preface_left -= (uint8_t)n;
            i += n;
        } else if (s->payload_left != 0 && !s->want_pad) {
            size_t n = len - i < s->payload_left ? len - i : s->payload_left;
            if ((r = read_payload(s, bytes + i, n)) != 0)
                return r;
            i += n;
        } else {
            cf_h2_frame_t *f = &s->frame;
            if (s->want_pad) {
                f->pad_length = bytes[i++];
                --s->payload_left;
                s->want_pad = 0;
                f->seen = 10;
            } else {
                s->header[s->header_len++] = bytes[i++];
                if (s->header_len != 9)
                    continue;
                s->header_len = 0;
                *f = (cf_h2_frame_t){.length = (uint32_t)s->header[0] << 16 | (uint32_t)s->header[1] << 8 | s->header[2],
                                     .type = s->header[3],
                                     .flags = s->header[4],
                                     .stream_id = ((uint32_t)s->header[5] << 24 | (uint32_t)s->header[6] << 16 |
                                                   (uint32_t)s->header[7] << 8 | s->header[8]) &
                                                  0x7fffffffu,
                                     .seen = 9};
                s->payload_left = f->length;
                if (carries_padding(f)) {
                    s->want_pad = 1;
                    continue;
                }
            }
            f->at = i;
            start_payload(s);
            if ((r = on_frame(ctx, f)) != 0)
                return r;
            if (s->payload_left == 0)
                end_payload(s);
        }
    }
    return 0;
}
