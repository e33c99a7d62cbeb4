/* HPACK header blocks (RFC 7541) measured without decoding them: an upper bound of what each one decodes to. */
#ifndef CF_HPACK_H
#define CF_HPACK_H

#include <stddef.h>
#include <stdint.h>

/*
 * Why: libh2o 2.2.5 bounds a request's compressed header block (H2O_MAX_REQLEN, ~408 KiB), not what it decodes to. A
 * one-byte reference to an entry of the dynamic table is a whole field: ~408,000 references to one 4000-byte entry
 * make as many fields, and libh2o keeps each (a header record and two links to the shared entry, ~110 bytes) until
 * the stream closes, which a client that opens no flow-control window puts off for ever: ~45 MiB per stream, 100
 * streams per connection. conflux's own 431 (64 KiB of fields) comes only after libh2o has decoded them all.
 *
 * So conflux reads each block's representations (RFC 7541 §6) as the bytes arrive, split anywhere, and adds up an
 * upper bound of its decoded size, in the measure of RFC 9113 §6.5.2 (name + value + 32 per field):
 *  - a static table entry has a known size;
 *  - a string literal of n bytes decodes to n bytes, or to at most ceil(8n/5) if Huffman-coded (the shortest code is
 *    5 bits, RFC 7541 Appendix B); Huffman strings are never decoded;
 *  - a dynamic table entry is at most what the scanner recorded when it was inserted, and never more than the table
 *    (an entry larger than the table is not inserted, RFC 7541 §4.4).
 *
 * The dynamic table is tracked as entry sizes only, each as a range [lo, hi] since a Huffman string of n bytes
 * decodes to at least floor(8n/30) bytes (the longest code is 30 bits, padding under 8). An entry is evicted only
 * once it is certainly gone (by the lower bounds): the scanner's table then always holds every entry the decoder
 * holds, at the same index, plus perhaps older ones the decoder has evicted already. A reference resolves to the
 * same entry as in the decoder, or to none there (the decoder fails the block and libh2o closes the connection).
 *
 * libh2o skips the blocks of new streams once the connection is half closed (after a GOAWAY); from then on the
 * decoder's table is unknown and cf_hpack_lose_track makes every dynamic reference count as large as the table.
 *
 * Pure: bytes in, a verdict out; no allocation (cf_hpack_t is a fixed ~800 bytes).
 */

/** SETTINGS_HEADER_TABLE_SIZE: libh2o 2.2.5 advertises none, so the default of RFC 9113 §6.5.2 applies. */
#define CF_HPACK_TABLE_SIZE 4096
/** What an entry costs beyond its name and value (RFC 7541 §4.1). */
#define CF_HPACK_ENTRY_OVERHEAD 32
/** The most entries the table can hold: each costs at least the overhead. */
#define CF_HPACK_MAX_ENTRIES (CF_HPACK_TABLE_SIZE / CF_HPACK_ENTRY_OVERHEAD)
/**
 * A block whose decoded size may exceed this is refused: twice conflux's own 431 bound (CF_MAX_HEADER_BLOCK, 64 KiB of
 * names and values), so that a request conflux would serve stays under it even with its Huffman strings counted at
 * 8/5 of their length and 32 bytes for each field; far under what libh2o would accept (~408 KiB compressed).
 */
#define CF_HPACK_MAX_BLOCK_SIZE (128 * 1024)
/**
 * A block with more representations than this is refused. libh2o's cost is per field whatever its size (~110 bytes
 * for a one-byte reference), and a size update is a representation too. libh2o's HTTP/1 parser takes at most 100
 * fields (H2O_MAX_HEADERS); 256 leaves room for cookies split into crumbs (RFC 9113 §8.2.3).
 */
#define CF_HPACK_MAX_REPRESENTATIONS 256

/** What cf_hpack_feed found. */
typedef enum en_cf_hpack_result_t {
    CF_HPACK_OK = 0,
    CF_HPACK_TOO_LARGE, /* the block may decode to more than CF_HPACK_MAX_BLOCK_SIZE */
    CF_HPACK_TOO_MANY   /* the block has more than CF_HPACK_MAX_REPRESENTATIONS representations */
} cf_hpack_result_t;

/** One dynamic table entry, by size only (RFC 7541 §4.1: name + value + 32). */
typedef struct st_cf_hpack_entry_t {
    uint16_t lo, hi;  /* its size is within [lo, hi]; hi is at most CF_HPACK_TABLE_SIZE */
    uint16_t name_hi; /* its name is at most this long */
} cf_hpack_entry_t;

/** The scanner of one connection's header blocks (one direction: the client's). cf_hpack_init before use. */
typedef struct st_cf_hpack_t {
    cf_hpack_entry_t table[CF_HPACK_MAX_ENTRIES]; /* a ring; index 0 of the dynamic table (62 on the wire) at `newest` */
    uint8_t newest, count;
    uint16_t lo_total; /* the sum of the entries' lo: at most `capacity` */
    uint16_t capacity; /* the table's maximum size, as the last size update set it */
    uint8_t unsure;    /* the decoder's table is unknown: every dynamic reference counts as large as the table */

    /* the representation being read */
    uint8_t state;
    uint8_t rep;        /* what it is (REP_* in hpack.c) */
    uint8_t int_octets; /* octets of the integer after its prefix */
    uint32_t value;     /* the integer so far */
    uint32_t str_left;  /* bytes of a string literal still to skip */
    uint32_t name_lo, name_hi;

    /* the block */
    uint32_t representations;
    uint64_t size; /* its decoded size so far, at most */
} cf_hpack_t;

/** An empty table of CF_HPACK_TABLE_SIZE, no block open. */
void cf_hpack_init(cf_hpack_t *h);
/** A header block starts (a HEADERS frame). */
void cf_hpack_start_block(cf_hpack_t *h);
/**
 * Reads `len` more bytes of the block. Returns CF_HPACK_OK, or the first time the block goes past a bound, why; the
 * rest of that block is then skipped (so is the rest of a block the decoder would refuse: an index 0, an integer
 * longer than libh2o takes, a size update past the table size).
 */
cf_hpack_result_t cf_hpack_feed(cf_hpack_t *h, const uint8_t *bytes, size_t len);
/** The block ends (END_HEADERS), or is cut off (another frame came before its end: libh2o closes the connection). */
void cf_hpack_end_block(cf_hpack_t *h);
/** The decoder may have skipped blocks (see above): from now on every dynamic reference counts as the largest. */
void cf_hpack_lose_track(cf_hpack_t *h);
/** Entry `index` of the dynamic table (0: the newest), or NULL past the entries the scanner keeps. For tests. */
const cf_hpack_entry_t *cf_hpack_entry(const cf_hpack_t *h, size_t index);

#endif
