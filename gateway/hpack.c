/* HPACK header blocks measured without decoding them (hpack.h says why and how). */
#include <assert.h>
#include <string.h>
#include "hpack.h"

/* RFC 7541 Appendix A: the length of each static table entry's name and value */
#define E(name, value)                                                                                                             \
    {                                                                                                                              \
        sizeof(name) - 1, sizeof(value) - 1                                                                                        \
    }
static const struct {
    uint8_t name, value;
} static_table[61] = {
    E(":authority", ""),
    E(":method", "GET"),
    E(":method", "POST"),
    E(":path", "/"),
    E(":path", "/index.html"),
    E(":scheme", "http"),
    E(":scheme", "https"),
    E(":status", "200"),
    E(":status", "204"),
    E(":status", "206"),
    E(":status", "304"),
    E(":status", "400"),
    E(":status", "404"),
    E(":status", "500"),
    E("accept-charset", ""),
    E("accept-encoding", "gzip, deflate"),
    E("accept-language", ""),
    E("accept-ranges", ""),
    E("accept", ""),
    E("access-control-allow-origin", ""),
    E("age", ""),
    E("allow", ""),
    E("authorization", ""),
    E("cache-control", ""),
    E("content-disposition", ""),
    E("content-encoding", ""),
    E("content-language", ""),
    E("content-length", ""),
    E("content-location", ""),
    E("content-range", ""),
    E("content-type", ""),
    E("cookie", ""),
    E("date", ""),
    E("etag", ""),
    E("expect", ""),
    E("expires", ""),
    E("from", ""),
    E("host", ""),
    E("if-match", ""),
    E("if-modified-since", ""),
    E("if-none-match", ""),
    E("if-range", ""),
    E("if-unmodified-since", ""),
    E("last-modified", ""),
    E("link", ""),
    E("location", ""),
    E("max-forwards", ""),
    E("proxy-authenticate", ""),
    E("proxy-authorization", ""),
    E("range", ""),
    E("referer", ""),
    E("refresh", ""),
    E("retry-after", ""),
    E("server", ""),
    E("set-cookie", ""),
    E("strict-transport-security", ""),
    E("transfer-encoding", ""),
    E("user-agent", ""),
    E("vary", ""),
    E("via", ""),
    E("www-authenticate", ""),
};
#undef E

#define STATIC_ENTRIES 61
#define MAX_NAME (CF_HPACK_TABLE_SIZE - CF_HPACK_ENTRY_OVERHEAD) /* a dynamic entry's name is never longer */

enum {
    S_START,     /* the first octet of a representation */
    S_INT,       /* the octets of an integer after its prefix (RFC 7541 §5.1) */
    S_STR_START, /* the first octet of a string literal: H flag and length prefix (§5.2) */
    S_STR_BODY,  /* the octets of a string literal */
    S_SKIP       /* no block open, or the rest of one that went past a bound or that the decoder refuses */
};

/* what the representation being read is (RFC 7541 §6), and where in it the scanner is */
enum {
    REP_INDEXED = 0x1,     /* §6.1: the integer is the index of a whole field */
    REP_SIZE_UPDATE = 0x2, /* §6.3: the integer is the table's new maximum size */
    REP_INDEX_FIELD = 0x4, /* §6.2.1: the field goes into the dynamic table */
    REP_VALUE = 0x8,       /* the name is known: the string being read is the value */
    REP_STRING = 0x10,     /* the integer being read is a string literal's length */
    REP_HUFFMAN = 0x20     /* ... of a Huffman-coded string */
};

const cf_hpack_entry_t *cf_hpack_entry(const cf_hpack_t *h, size_t index)
{
    return index < h->count ? &h->table[(h->newest + index) % CF_HPACK_MAX_ENTRIES] : NULL;
}

void cf_hpack_init(cf_hpack_t *h)
{
    memset(h, 0, sizeof(*h));
    h->capacity = CF_HPACK_TABLE_SIZE;
    h->state = S_SKIP;
}

void cf_hpack_start_block(cf_hpack_t *h)
{
    h->state = S_START;
    h->representations = 0;
    h->size = 0;
}

void cf_hpack_end_block(cf_hpack_t *h)
{
    /* a block that ends inside a representation is a decoding error for libh2o (COMPRESSION_ERROR), which closes the
     * connection: what the scanner made of the fragment does not matter */
    h->state = S_SKIP;
}

void cf_hpack_lose_track(cf_hpack_t *h)
{
    h->unsure = 1;
}

static void evict_oldest(cf_hpack_t *h)
{
    assert(h->count != 0);
    --h->count;
    h->lo_total -= h->table[(h->newest + h->count) % CF_HPACK_MAX_ENTRIES].lo;
}

/* Evicts the entries that are certainly gone once the table makes room for `room` more bytes (RFC 7541 §4.4): the
 * decoder evicts its oldest entry while its table's size plus `room` exceeds the capacity, and that size is at least
 * the lo_total of the entries it holds (by induction, the scanner's oldest entry is the decoder's oldest, or one the
 * decoder evicted already). */
static void evict(cf_hpack_t *h, uint64_t room)
{
    while (h->count != 0 && h->lo_total + room > h->capacity)
        evict_oldest(h);
}

static void insert(cf_hpack_t *h, uint64_t lo, uint64_t hi, uint64_t name_hi)
{
    evict(h, lo);
    if (lo > h->capacity)
        return; /* certainly larger than the table: the decoder emptied it and inserts nothing (RFC 7541 §4.4) */
    /* each entry's lo is at least the overhead, so a full ring's lo_total would exceed the largest capacity */
    assert(h->count < CF_HPACK_MAX_ENTRIES);
    h->newest = (uint8_t)((h->newest + CF_HPACK_MAX_ENTRIES - 1) % CF_HPACK_MAX_ENTRIES);
    ++h->count;
    /* an entry the decoder holds is no larger than its table; one larger than that was never inserted */
    h->table[h->newest] = (cf_hpack_entry_t){.lo = (uint16_t)lo,
                                             .hi = (uint16_t)(hi < CF_HPACK_TABLE_SIZE ? hi : CF_HPACK_TABLE_SIZE),
                                             .name_hi = (uint16_t)(name_hi < MAX_NAME ? name_hi : MAX_NAME)};
    h->lo_total += (uint16_t)lo;
}

/* Adds `n` bytes to the block's bound: CF_HPACK_OK, or the verdict once it goes past. */
static cf_hpack_result_t grow(cf_hpack_t *h, uint64_t n)
{
    h->size += n;
    if (h->size <= CF_HPACK_MAX_BLOCK_SIZE)
        return CF_HPACK_OK;
    h->state = S_SKIP;
    return CF_HPACK_TOO_LARGE;
}

/* The sizes of entry `index` (1-based, static entries first, RFC 7541 §2.3.3): the field's and its name's. An index
 * past the scanner's table gets the largest an entry can have: the decoder refuses it, or its table is not known. */
static void lookup(const cf_hpack_t *h, uint32_t index, uint32_t *size, uint32_t *name)
{
    if (index <= STATIC_ENTRIES) {
        *name = static_table[index - 1].name;
        *size = static_table[index - 1].name + static_table[index - 1].value + CF_HPACK_ENTRY_OVERHEAD;
        return;
    }
    const cf_hpack_entry_t *e = h->unsure ? NULL : cf_hpack_entry(h, index - STATIC_ENTRIES - 1);
    *size = e != NULL ? e->hi : CF_HPACK_TABLE_SIZE;
    *name = e != NULL ? e->name_hi : MAX_NAME;
}

/* A string literal is read: the name's, then the value's, which ends the representation. */
static void string_done(cf_hpack_t *h)
{
    if (h->rep & REP_VALUE) {
        h->state = S_START;
    } else {
        h->rep |= REP_VALUE;
        h->state = S_STR_START;
    }
}

/* A string literal's length: count it, then skip its octets. */
static cf_hpack_result_t on_string_length(cf_hpack_t *h, uint32_t n)
{
    uint64_t lo = n, hi = n;
    if (h->rep & REP_HUFFMAN) {
        lo = (uint64_t)n * 8 / 30;      /* codes are at most 30 bits, and the padding under 8 */
        hi = ((uint64_t)n * 8 + 4) / 5; /* codes are at least 5 bits */
    }
    if (!(h->rep & REP_VALUE)) {
        h->name_lo = (uint32_t)lo;
        h->name_hi = (uint32_t)hi;
    } else if (h->rep & REP_INDEX_FIELD) {
        insert(h, h->name_lo + lo + CF_HPACK_ENTRY_OVERHEAD, h->name_hi + hi + CF_HPACK_ENTRY_OVERHEAD, h->name_hi);
    }
    h->str_left = n;
    h->state = S_STR_BODY;
    if (n == 0)
        string_done(h);
    return grow(h, hi);
}

/* An integer is complete: what it means depends on the representation. */
static cf_hpack_result_t on_integer(cf_hpack_t *h, uint32_t v)
{
    uint32_t size, name;
    if (h->rep & REP_STRING)
        return on_string_length(h, v);
    if (h->rep & REP_SIZE_UPDATE) {
        if (v > CF_HPACK_TABLE_SIZE) { /* libh2o refuses a size past SETTINGS_HEADER_TABLE_SIZE */
            h->state = S_SKIP;
            return CF_HPACK_OK;
        }
        h->capacity = (uint16_t)v;
        evict(h, 0);
        h->state = S_START;
        return CF_HPACK_OK;
    }
    if (v == 0) { /* an indexed field with index 0: libh2o refuses it (RFC 7541 §6.1) */
        h->state = S_SKIP;
        return CF_HPACK_OK;
    }
    lookup(h, v, &size, &name);
    if (h->rep & REP_INDEXED) {
        h->state = S_START;
        return grow(h, size - CF_HPACK_ENTRY_OVERHEAD); /* the overhead was counted when the field started */
    }
    /* a literal whose name is entry v's; the lower bound of a dynamic entry's name is not kept: 0 is a safe one */
    h->name_lo = v <= STATIC_ENTRIES ? name : 0;
    h->name_hi = name;
    h->rep |= REP_VALUE;
    h->state = S_STR_START;
    return grow(h, name);
}

/* The first octet of an integer (RFC 7541 §5.1), with a prefix of `bits` bits. */
static cf_hpack_result_t start_integer(cf_hpack_t *h, uint8_t octet, unsigned bits)
{
    uint32_t max = (1u << bits) - 1;
    if ((octet & max) != max)
        return on_integer(h, octet & max);
    h->value = max;
    h->int_octets = 0;
    h->state = S_INT;
    return CF_HPACK_OK;
}

static cf_hpack_result_t start_representation(cf_hpack_t *h, uint8_t octet)
{
    if (++h->representations > CF_HPACK_MAX_REPRESENTATIONS) {
        h->state = S_SKIP;
        return CF_HPACK_TOO_MANY;
    }
    unsigned bits;
    if (octet & 0x80) {
        h->rep = REP_INDEXED;
        bits = 7;
    } else if (octet & 0x40) {
        h->rep = REP_INDEX_FIELD;
        bits = 6;
    } else if (octet & 0x20) {
        h->rep = REP_SIZE_UPDATE;
        return start_integer(h, octet, 5);
    } else {
        h->rep = 0; /* without indexing (§6.2.2) or never indexed (§6.2.3) alike */
        bits = 4;
    }
    if (grow(h, CF_HPACK_ENTRY_OVERHEAD) != CF_HPACK_OK)
        return CF_HPACK_TOO_LARGE;
    if ((octet & ((1u << bits) - 1)) == 0 && !(h->rep & REP_INDEXED)) {
        h->state = S_STR_START; /* index 0: the name is a string literal */
        return CF_HPACK_OK;
    }
    return start_integer(h, octet, bits);
}

cf_hpack_result_t cf_hpack_feed(cf_hpack_t *h, const uint8_t *bytes, size_t len)
{
    const uint8_t *p = bytes, *end = bytes + len;
    cf_hpack_result_t r = CF_HPACK_OK;

    while (p != end && r == CF_HPACK_OK) {
        switch (h->state) {
        case S_START:
            r = start_representation(h, *p++);
            break;
        case S_INT: {
            uint8_t octet = *p++;
            h->value += (uint32_t)(octet & 0x7f) << (7 * h->int_octets++);
            if (!(octet & 0x80)) {
                r = on_integer(h, h->value);
            } else if (h->int_octets == 4) {
                h->state = S_SKIP; /* libh2o takes at most 4 octets after the prefix (values up to 2^28) */
            }
            break;
        }
        case S_STR_START: {
            uint8_t octet = *p++;
            h->rep = (uint8_t)((h->rep & ~REP_HUFFMAN) | REP_STRING | (octet & 0x80 ? REP_HUFFMAN : 0));
            r = start_integer(h, octet, 7);
            break;
        }
        case S_STR_BODY: {
            size_t n = (size_t)(end - p) < h->str_left ? (size_t)(end - p) : h->str_left;
            p += n;
            h->str_left -= (uint32_t)n;
            if (h->str_left == 0)
                string_done(h);
            break;
        }
        default: /* S_SKIP */
            return CF_HPACK_OK;
        }
    }
    return r;
}
