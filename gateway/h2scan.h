/* HTTP/2 frame headers read off a client's raw byte stream, to count what h2o 2.2.5 does not bound (RFC 9113 §4.1). */
#ifndef CF_H2SCAN_H
#define CF_H2SCAN_H

#include <stddef.h>
#include <stdint.h>
#include "hpack.h"

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
#define CF_H2_FLAG_ACK 0x1
#define CF_H2_FLAG_END_HEADERS 0x4
#define CF_H2_FLAG_PADDED 0x8
#define CF_H2_FLAG_PRIORITY 0x20

/** What cf_h2scan_feed returns for a header block past a bound of hpack.h (callbacks return positive values). */
enum {
    CF_H2SCAN_HEADERS_TOO_LARGE = -1, /* CF_HPACK_TOO_LARGE */
    CF_H2SCAN_TOO_MANY_FIELDS = -2    /* CF_HPACK_TOO_MANY */
};

/** A frame, as reported once its header (and with PADDED, its Pad Length) has been read. */
typedef struct st_cf_h2_frame_t {
    uint32_t length; /* of the payload */
    uint8_t type, flags;
    uint32_t stream_id;
    uint8_t pad_length;   /* PADDED DATA or HEADERS: the Pad Length field; else 0 */
    uint32_t data_length; /* what the frame carries: the payload without Pad Length, padding and (HEADERS) the
                             priority fields (RFC 9113 §6.1, §6.2); 0 when those exceed the payload (libh2o refuses it) */
    uint8_t seen;         /* bytes of the frame read when it is reported: 9, or 10 with the Pad Length */
    size_t at;            /* where in the bytes of this cf_h2scan_feed call those end: the frame starts `seen` bytes
                             before (in an earlier call's bytes when `at` < `seen`) */
} cf_h2_frame_t;

/**
 * The scanner of one connection: skips the 24-byte client preface, then reports each frame (see cf_h2_frame_t) and
 * skips its payload, except for header blocks: the fragments of HEADERS and CONTINUATION frames go through an HPACK
 * scanner (hpack.h) that bounds what each block decodes to. It never buffers a payload. h2o judges the frames; the
 * scanner only reads them (a frame libh2o refuses makes it close the connection, so the scanner need not). Initialize
 * with cf_h2scan_init.
 */
typedef struct st_cf_h2scan_t {
    uint8_t preface_left; /* bytes of the client preface still to skip */
    uint8_t header_len;   /* bytes of the current frame header collected */
    uint8_t header[9];
    uint8_t want_pad;       /* the header is read, the Pad Length is next: the frame is reported after it */
    uint8_t in_block;       /* a header block is open: CONTINUATION frames carry the rest of it */
    uint8_t prio_left;      /* bytes of a HEADERS frame's priority fields still to skip */
    uint32_t payload_left;  /* bytes of the current frame's payload still to come */
    uint32_t fragment_left; /* of which header block fragment (after the priority fields, before the padding) */
    cf_h2_frame_t frame;    /* the current frame */
    cf_hpack_t hpack;
} cf_h2scan_t;

/** Ready for the first byte of a connection (the client preface). */
void cf_h2scan_init(cf_h2scan_t *s);
/**
 * Reads `len` more bytes and calls `on_frame(ctx, frame)` for each frame, in order. Stops early, and returns the
 * callback's value, when the callback returns non-zero (a positive value); returns CF_H2SCAN_HEADERS_TOO_LARGE or
 * CF_H2SCAN_TOO_MANY_FIELDS as soon as a header block goes past a bound; 0 otherwise.
 */
int cf_h2scan_feed(cf_h2scan_t *s, const uint8_t *bytes, size_t len, int (*on_frame)(void *ctx, const cf_h2_frame_t *frame),
                   void *ctx);
/** Bytes of the frame in progress read but not reported yet (part of its header, or its header before Pad Length). */
size_t cf_h2scan_unreported(const cf_h2scan_t *s);

#endif
