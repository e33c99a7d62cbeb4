/* HTTP/2 frame headers read off a client's raw byte stream: pure, no buffering of payloads, never fails. */
#include "h2scan.h"

#define PREFACE_LEN 24 /* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (RFC 9113 §3.4) */

int cf_h2scan_feed(cf_h2scan_t *s, const uint8_t *bytes, size_t len, int (*on_frame)(void *ctx, const cf_h2_frame_t *frame),
                   void *ctx)
{
    size_t i = 0;
    if (s->preface_left_plus1 == 0)
        s->preface_left_plus1 = PREFACE_LEN + 1;
    while (i < len) {
        if (s->preface_left_plus1 > 1) {
            size_t n = len - i < (size_t)s->preface_left_plus1 - 1 ? len - i : (size_t)s->preface_left_plus1 - 1;
            s->preface_left_plus1 -= (uint8_t)n;
            i += n;
        } else if (s->payload_left != 0) {
            size_t n = len - i < s->payload_left ? len - i : s->payload_left;
            s->payload_left -= (uint32_t)n;
            i += n;
        } else {
            s->header[s->header_len++] = bytes[i++];
            if (s->header_len == 9) {
                cf_h2_frame_t f = {.length = (uint32_t)s->header[0] << 16 | (uint32_t)s->header[1] << 8 | s->header[2],
                                   .type = s->header[3],
                                   .flags = s->header[4],
                                   .stream_id = ((uint32_t)s->header[5] << 24 | (uint32_t)s->header[6] << 16 |
                                                 (uint32_t)s->header[7] << 8 | s->header[8]) &
                                                0x7fffffffu};
                s->header_len = 0;
                s->payload_left = f.length;
                int r = on_frame(ctx, &f);
                if (r != 0)
                    return r;
            }
        }
    }
    return 0;
}
