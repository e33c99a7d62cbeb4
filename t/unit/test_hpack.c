/* Unit tests of gateway/hpack.c: hand-built header blocks, read the same however they are split. */
#include <stdlib.h>
#include "tap.h"
#include "../../gateway/hpack.c"

static int same_state(const cf_hpack_t *a, const cf_hpack_t *b)
{
    if (a->size != b->size || a->representations != b->representations || a->state != b->state || a->count != b->count ||
        a->lo_total != b->lo_total || a->capacity != b->capacity)
        return 0;
    for (size_t i = 0; i < a->count; ++i)
        if (memcmp(cf_hpack_entry(a, i), cf_hpack_entry(b, i), sizeof(cf_hpack_entry_t)) != 0)
            return 0;
    return 1;
}

/* Reads `len` bytes as one block on `h`: whole, split at every offset and byte by byte, which must agree. Returns the
 * verdict and leaves `h` as the whole read left it. */
static cf_hpack_result_t scan_block(cf_hpack_t *h, const char *block, size_t len)
{
    const uint8_t *b = (const uint8_t *)block;
    cf_hpack_t start = *h, other;
    cf_hpack_start_block(h);
    cf_hpack_result_t whole = cf_hpack_feed(h, b, len);
    cf_hpack_end_block(h);
    for (size_t split = 0; split <= len; ++split) {
        other = start;
        cf_hpack_start_block(&other);
        cf_hpack_result_t r1 = cf_hpack_feed(&other, b, split), r2 = cf_hpack_feed(&other, b + split, len - split);
        cf_hpack_end_block(&other);
        if ((r1 != CF_HPACK_OK ? r1 : r2) != whole || !same_state(&other, h)) {
            ok(0, "split at %zu of %zu: verdict %d, whole %d", split, len, r1 != CF_HPACK_OK ? r1 : r2, whole);
            return whole;
        }
    }
    other = start;
    cf_hpack_start_block(&other);
    cf_hpack_result_t r = CF_HPACK_OK;
    for (size_t i = 0; i < len && r == CF_HPACK_OK; ++i)
        r = cf_hpack_feed(&other, b + i, 1);
    cf_hpack_end_block(&other);
    if (r != whole || !same_state(&other, h))
        ok(0, "byte by byte: verdict %d, whole %d", r, whole);
    return whole;
}

#define BLOCK(h, s) scan_block(h, s, sizeof(s) - 1)

static cf_hpack_t fresh(void)
{
    cf_hpack_t h;
    cf_hpack_init(&h);
    return h;
}

static void test_static_and_literals(void)
{
    cf_hpack_t h = fresh();
    is(BLOCK(&h, "\x82"), CF_HPACK_OK, "indexed, static: :method GET");
    is(h.size, 7 + 3 + 32, ":method GET is 42 bytes (RFC 9113 6.5.2: name, value and 32)");
    is(h.representations, 1, "one representation");
    BLOCK(&h, "\xbd");
    is(h.size, 16 + 32, "the last static entry: www-authenticate, no value");
    BLOCK(&h, "\x82\x87\x84\x41\x09localhost");
    is(h.size, 42 + 44 + 38 + (10 + 9 + 32), "a request's pseudo-header fields, :authority literal with indexing");
    is(h.count, 1, "the literal went into the dynamic table");
    is(cf_hpack_entry(&h, 0)->lo, 51, "its size is known exactly: raw strings");
    is(cf_hpack_entry(&h, 0)->hi, 51, "...");

    h = fresh();
    BLOCK(&h, "\x00\x03x-a\003abc");
    is(h.size, 3 + 3 + 32, "literal without indexing, new name");
    is(h.count, 0, "nothing inserted");
    BLOCK(&h, "\x10\x03x-a\003abc");
    is(h.size, 38, "never indexed, new name");
    is(h.count, 0, "nothing inserted");
    BLOCK(&h, "\x04\x05/abcd");
    is(h.size, 5 + 5 + 32, "literal without indexing, static name (:path)");
    BLOCK(&h, "\x1f\x2a\x01x");
    is(h.size, 17 + 1 + 32, "never indexed, static name 57 (transfer-encoding) in a two-octet integer");
    is(h.count, 0, "nothing inserted");
    BLOCK(&h, "\x44\x05/abcd");
    is(h.count, 1, "literal with indexing, static name: inserted");
    is(cf_hpack_entry(&h, 0)->lo, 42, "with its exact size");
    BLOCK(&h, "\xbe\xbe");
    is(h.size, 84, "two references to it");
    BLOCK(&h, "\x7e\x01x");
    is(h.size, 5 + 1 + 32, "literal with indexing, the name of dynamic entry 62 (:path)");
    is(h.count, 2, "inserted");
    is(cf_hpack_entry(&h, 0)->lo, 1 + 32, "its lower bound does not count a dynamic name");
    is(cf_hpack_entry(&h, 0)->hi, 5 + 1 + 32, "its upper bound does");
    is(cf_hpack_entry(&h, 0)->name_hi, 5, "nor the name's");
}

static void test_huffman(void)
{
    cf_hpack_t h = fresh();
    /* RFC 7541 C.4.1: "www.example.com", 15 characters in 12 Huffman-coded bytes */
    BLOCK(&h, "\x41\x8c\xf1\xe3\xc2\xe5\xf2\x3a\x6b\xa0\xab\x90\xf4\xff");
    is(h.size, 10 + (12 * 8 + 4) / 5 + 32, "a Huffman string of 12 bytes counts as 20 (5-bit codes at best)");
    ok(h.size >= 10 + 15 + 32, "not less than what it decodes to");
    is(cf_hpack_entry(&h, 0)->lo, 10 + 12 * 8 / 30 + 32, "its entry is at least 3 (30-bit codes at worst)");
    is(cf_hpack_entry(&h, 0)->hi, 10 + 20 + 32, "and at most 20");
    BLOCK(&h, "\x40\x83\xaa\xbb\xcc\x80");
    is(h.size, 5 + 0 + 32, "Huffman name of 3 bytes (at most 5), empty Huffman value");
    is(cf_hpack_entry(&h, 0)->lo, 32, "at least the overhead");
    is(cf_hpack_entry(&h, 0)->name_hi, 5, "the name's bound");
}

static void test_dynamic_table(void)
{
    cf_hpack_t h = fresh();
    char block[4200];
    /* one 4000-byte value under a 3-byte name: 4035 bytes of table, as in the attack */
    size_t n = (size_t)snprintf(block, sizeof(block), "\x40\x03x-a\x7f%c%c", 0x80 | ((4000 - 127) & 0x7f), (4000 - 127) >> 7);
    memset(block + n, 'a', 4000);
    is(scan_block(&h, block, n + 4000), CF_HPACK_OK, "a 4000-byte value goes into the table");
    is(h.count, 1, "one entry");
    is(cf_hpack_entry(&h, 0)->hi, 4035, "of 4035 bytes");
    BLOCK(&h, "\xbe\xbe\xbe");
    is(h.size, 3 * 4035, "each reference counts whole");

    n = (size_t)snprintf(block, sizeof(block), "\x40\x01x\x40%.64s",
                         "0123456789012345678901234567890123456789012345678901234567890123");
    scan_block(&h, block, n);
    is(h.count, 1, "a 97-byte entry evicts the 4035-byte one (4035 + 97 > 4096)");
    is(cf_hpack_entry(&h, 0)->lo, 97, "only the new one is left");
    is(h.lo_total, 97, "the table holds 97 bytes");
    BLOCK(&h, "\xbf");
    is(h.size, 4096, "a reference past the table counts as the largest entry there can be");

    h = fresh();
    BLOCK(&h, "\x40\001a\001b\x40\001c\001d");
    is(h.count, 2, "two entries");
    BLOCK(&h, "\x3f\x03");
    is(h.capacity, 34, "a size update to 34");
    is(h.count, 1, "evicts the older entry");
    is(cf_hpack_entry(&h, 0)->lo, 34, "the newer one fits");
    BLOCK(&h, "\x20\xbe");
    is(h.count, 0, "a size update to 0 empties the table");
    is(h.size, 4096, "a reference then counts as the largest entry");
    BLOCK(&h, "\x3f\xe1\x1f\x40\001a\001b");
    is(h.capacity, 4096, "a size update back to 4096 (two continuation octets)");
    is(h.count, 1, "entries go in again");
    BLOCK(&h, "\x3f\xe2\x1f\x40\001a\001b");
    is(h.capacity, 4096, "a size update past 4096 is refused (libh2o closes the connection)...");
    is(h.count, 1, "...and the rest of the block is skipped");

    h = fresh();
    memset(block, 0, sizeof(block));
    n = 0;
    block[n++] = 0x40;
    block[n++] = 0x01;
    block[n++] = 'n';
    block[n++] = 0x7f;
    block[n++] = (char)(0x80 | ((4064 - 127) & 0x7f));
    block[n++] = (char)((4064 - 127) >> 7);
    memset(block + n, 'v', 4064);
    n += 4064;
    scan_block(&h, block, n);
    is(h.count, 0, "an entry larger than the table (1 + 4064 + 32) is not inserted");
    block[5] = (char)((4063 - 127) >> 7);
    block[4] = (char)(0x80 | ((4063 - 127) & 0x7f));
    scan_block(&h, block, n - 1);
    is(h.count, 1, "one of exactly 4096 is");
    is(h.lo_total, 4096, "and fills it");
}

/* A literal with indexing: a Huffman name of 1 byte, a Huffman value of 30: an entry of 32 + [0, 2] + [8, 48] bytes. */
static void insert_huffman(cf_hpack_t *h)
{
    char block[64];
    size_t n = 0;
    block[n++] = 0x40;
    block[n++] = (char)0x81;
    block[n++] = 'x';
    block[n++] = (char)(0x80 | 30);
    memset(block + n, 0x55, 30);
    n += 30;
    scan_block(h, block, n);
}

static void test_uncertain_sizes(void)
{
    cf_hpack_t h = fresh();
    /* Huffman entries of unknown size: eviction only once certain, so every entry libh2o holds is still there */
    for (int i = 0; i < 40; ++i)
        insert_huffman(&h);
    /* at most 4096 / 82 = 49 may fit, at least 4096 / 40 = 102: all 40 may be there */
    is(h.count, 40, "40 Huffman entries that may all fit are all kept");
    for (int i = 0; i < 80; ++i)
        insert_huffman(&h);
    is(h.count, 4096 / 40, "then only as many as certainly fit by their lower bounds");
    ok(h.lo_total <= 4096, "the lower bounds never exceed the table");
    h.size = 0;
    BLOCK(&h, "\xbe");
    is(h.size, 82, "a reference counts its entry's upper bound");
    cf_hpack_lose_track(&h);
    BLOCK(&h, "\xbe");
    is(h.size, 4096, "once the decoder's table is unknown, every dynamic reference counts as the largest");
    BLOCK(&h, "\x82");
    is(h.size, 42, "static ones do not change");
}

static void test_bounds(void)
{
    cf_hpack_t h = fresh();
    char block[5000];
    size_t n = (size_t)snprintf(block, sizeof(block), "\x40\x03x-a\x7f%c%c", 0x80 | ((4000 - 127) & 0x7f), (4000 - 127) >> 7);
    memset(block + n, 'a', 4000);
    scan_block(&h, block, n + 4000);
    /* the attack: one-byte references to the 4035-byte entry */
    memset(block, 0xbe, 40);
    is(scan_block(&h, block, 32), CF_HPACK_OK, "32 references: 129,120 bytes, under 128 KiB + 1");
    is(scan_block(&h, block, 33), CF_HPACK_TOO_LARGE, "33 references: past 128 KiB");
    is(h.representations, 33, "the verdict comes at the reference that goes past");
    is(scan_block(&h, block, 40), CF_HPACK_TOO_LARGE, "and the rest of the block is skipped");
    is(h.representations, 33, "...");

    h = fresh();
    memset(block, 0x82, 300);
    is(scan_block(&h, block, 256), CF_HPACK_OK, "256 fields of 42 bytes");
    is(scan_block(&h, block, 257), CF_HPACK_TOO_MANY, "257 are too many");
    h = fresh();
    for (int i = 0; i < 300; ++i)
        memcpy(block + 3 * i, "\x3f\xe1\x1f", 3);
    is(scan_block(&h, block, 3 * 257), CF_HPACK_TOO_MANY, "257 size updates are too many as well");

    h = fresh();
    /* a literal whose length alone goes past: the verdict comes before its bytes */
    is(BLOCK(&h, "\x00\x01x\x7f\xff\xff\x7f"), CF_HPACK_TOO_LARGE, "a 2 MiB value is refused at its length");
    is(BLOCK(&h, "\x00\x01x\xff\xff\xff\xff\x7f"), CF_HPACK_TOO_LARGE,
       "a 256 MiB Huffman value (the largest integer libh2o takes)");
    is(BLOCK(&h, "\x00\x01x\x7f\xff\xff\xff\xff\x01"), CF_HPACK_OK,
       "an integer of 5 continuation octets: libh2o refuses the block");
    is(h.representations, 1, "the rest is skipped");
    is(BLOCK(&h, "\x80\x82"), CF_HPACK_OK, "index 0: libh2o refuses the block");
    is(h.representations, 1, "the rest is skipped");
    is(BLOCK(&h, "\xff\x80\x80\x80\x01"), CF_HPACK_OK, "an index of 2^21 + 127, past the table");
    is(h.size, 4096, "counts as the largest entry");
}

int main(void)
{
    test_static_and_literals();
    test_huffman();
    test_dynamic_table();
    test_uncertain_sizes();
    test_bounds();
    return done_testing();
}
