/* HTTP/2 frame headers read off a client's raw byte stream, to count what h2o 2.2.5 does not bound (RFC 9113 §4.1). */
#ifndef CF_H2SCAN_H
#define CF_H2SCAN_H

#include <stddef.h>
#include <stdint.h>

/** The frame types the connection policy looks at (RFC 9113 §6). */
enum {
    CF_H2_DATA = 0,
    CF_H2_HEADERS = 1,
    CF_H2_PRIORITY = 2,
    CF_H2_RST_STREAM = 3,
    CF_H2_SETTINGS = 4,
    CF_H2_PUSH_PROMISE = 5,
    CF_H2_PING = 6,
    CF_H2_GOAWAY = 7,
    CF_H2_WINDOW_UPDATE = 8,
    CF_H2_CONTINUATION = 9
};

#define CF_H2_FLAG_END_STREAM 0x1

/** A frame header. */
typedef struct st_cf_h2_frame_t {
    uint32_t length;
    uint8_t type, flags;
    uint32_t stream_id;
} cf_h2_frame_t;

/**
 * The scanner of one connection: skips the 24-byte client preface, then reports each frame header once all nine of
 * its bytes have arrived, and skips the payload. It never buffers a payload and never fails: h2o judges the frames;
 * the scanner only counts them. Zero it before the first byte.
 */
typedef struct st_cf_h2scan_t {
    uint8_t preface_left_plus1; /* 0: not started (24 bytes to skip); 1: done */
    uint8_t header_len;         /* bytes of the current frame header collected */
    uint8_t header[9];
    uint32_t payload_left; /* bytes of the current frame's payload still to skip */
} cf_h2scan_t;

/**
 * Reads `len` more bytes and calls `on_frame(ctx, frame)` for each complete frame header, in order. Stops early, and
 * returns the callback's non-zero value, when the callback returns non-zero; returns 0 otherwise.
 */
int cf_h2scan_feed(cf_h2scan_t *s, const uint8_t *bytes, size_t len, int (*on_frame)(void *ctx, const cf_h2_frame_t *frame),
                   void *ctx);

#endif
