/*
 * libFuzzer harness for gateway/h2scan.c and gateway/hpack.c, which read a client's HTTP/2 frames and bound each
 * header block before libh2o parses them. Input: byte 0 chooses where to split, the rest is what the client sends after
 * the connection preface. Checks:
 *  - fed whole, in two pieces, and a byte at a time, the scanner reports the same frames at the same places and
 *    reaches the same verdict;
 *  - every frame libh2o would take is reported as the harness's own frame reader sees it (type, flags, stream, what
 *    it carries once Pad Length, padding and priority fields are set aside, RFC 9113 §6.1-6.2);
 *  - the header blocks the harness extracts the way libh2o does (HEADERS, CONTINUATION up to END_HEADERS) are
 *    decoded by libh2o 2.2.5 itself (h2o_hpack_parse_headers, which the library exports): for every block it takes,
 *    the scanner's bound is at least what libh2o decoded, and the scanner's dynamic table holds every entry libh2o's
 *    holds, at the same index, its size within the scanner's [lo, hi];
 *  - the HPACK state the frame scanner reaches is the one of an HPACK scanner fed those blocks directly;
 *  - the scanner's own invariants (sizes within the table, lower bounds adding up, bounds only growing in a block).
 * It stops comparing where libh2o would close the connection (a frame or block it refuses) or conflux would (a bound).
 *
 * Build by hand (clang ships libFuzzer), from the repository root:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DH2O_USE_LIBUV=0 -I gateway -I common t/fuzz/fuzz_h2scan.c \
 *       $(pkg-config --libs libh2o-evloop openssl) -o /tmp/fuzz_h2scan
 *   /tmp/fuzz_h2scan -max_total_time=600 -dict=t/fuzz/fuzz_h2scan.dict /tmp/corpus_h2scan t/fuzz/corpus/fuzz_h2scan
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <h2o.h>
#include "../../gateway/hpack.c"
#include "../../gateway/h2scan.c"

/* libh2o 2.2.5's HPACK decoder: <h2o/http2_internal.h> declares it, but includes khash.h, which is not installed */
typedef struct st_h2o_hpack_header_table_t {
    struct st_h2o_hpack_header_table_entry_t *entries;
    size_t num_entries, entry_capacity, entry_start_index;
    size_t hpack_size, hpack_capacity, hpack_max_capacity;
} h2o_hpack_header_table_t;
struct st_h2o_hpack_header_table_entry_t {
    h2o_iovec_t *name;
    h2o_iovec_t *value;
    const char *err_desc;
};
void h2o_hpack_dispose_header_table(h2o_hpack_header_table_t *header_table);
int h2o_hpack_parse_headers(h2o_req_t *req, h2o_hpack_header_table_t *header_table, const uint8_t *src, size_t len,
                            int *pseudo_header_exists_map, size_t *content_length, void **digests, const char **err_desc);
#define H2O_ERROR_INVALID_HEADER_CHAR -254 /* H2O_HTTP2_ERROR_INVALID_HEADER_CHAR: a soft error, decoding goes on */

#define MAX_FRAMES 4096
#define MAX_FRAME_SIZE 16384 /* SETTINGS_MAX_FRAME_SIZE: libh2o refuses larger frames */

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

typedef struct {
    size_t start;
    uint8_t type, flags, pad_length;
    uint32_t length, stream_id, data_length;
} report_t;

typedef struct {
    report_t *r;
    size_t num, fed;
} reports_t;

static int same_report(const report_t *a, const report_t *b)
{
    return a->start == b->start && a->type == b->type && a->flags == b->flags && a->pad_length == b->pad_length &&
           a->length == b->length && a->stream_id == b->stream_id && a->data_length == b->data_length;
}

static int on_frame(void *_rs, const cf_h2_frame_t *f)
{
    reports_t *rs = _rs;
    if (f->seen != 9 && f->seen != 10)
        abort();
    if (f->at > (size_t)-1 / 2 || rs->fed + f->at < f->seen)
        abort(); /* the frame starts before the stream */
    if (f->data_length > f->length)
        abort();
    report_t r = {rs->fed + f->at - f->seen, f->type, f->flags, f->pad_length, f->length, f->stream_id, f->data_length};
    if (rs->num != 0 && r.start <= rs->r[rs->num - 1].start + 8)
        abort(); /* frames come in order, each after the previous one's header */
    if (rs->num < MAX_FRAMES)
        rs->r[rs->num++] = r;
    return 0;
}

static void check_hpack(const cf_hpack_t *h)
{
    uint32_t lo = 0;
    if (h->count > CF_HPACK_MAX_ENTRIES || h->capacity > CF_HPACK_TABLE_SIZE || h->lo_total > h->capacity)
        abort();
    for (size_t i = 0; i < h->count; ++i) {
        const cf_hpack_entry_t *e = cf_hpack_entry(h, i);
        if (e->lo < CF_HPACK_ENTRY_OVERHEAD || e->lo > e->hi || e->hi > CF_HPACK_TABLE_SIZE ||
            e->name_hi > CF_HPACK_TABLE_SIZE - CF_HPACK_ENTRY_OVERHEAD)
            abort();
        lo += e->lo;
    }
    if (lo != h->lo_total || cf_hpack_entry(h, h->count) != NULL)
        abort();
    if (h->representations > CF_HPACK_MAX_REPRESENTATIONS + 1)
        abort();
}

static int same_hpack(const cf_hpack_t *a, const cf_hpack_t *b)
{
    if (a->count != b->count || a->lo_total != b->lo_total || a->capacity != b->capacity)
        return 0;
    for (size_t i = 0; i < a->count; ++i)
        if (memcmp(cf_hpack_entry(a, i), cf_hpack_entry(b, i), sizeof(cf_hpack_entry_t)) != 0)
            return 0;
    return 1;
}

/* Feeds `len` bytes in pieces: split at `split`, or a byte at a time when `split` is SIZE_MAX. */
static int feed(cf_h2scan_t *s, const uint8_t *p, size_t len, size_t split, reports_t *rs)
{
    int r = 0;
    cf_h2scan_init(s);
    rs->num = rs->fed = 0;
    if (split == SIZE_MAX) {
        for (size_t i = 0; i < len && r == 0; ++i, ++rs->fed) {
            r = cf_h2scan_feed(s, p + i, 1, on_frame, rs);
            check_hpack(&s->hpack);
            if (cf_h2scan_unreported(s) > 9)
                abort();
        }
        return r;
    }
    if ((r = cf_h2scan_feed(s, p, split, on_frame, rs)) != 0)
        return r;
    rs->fed = split;
    return cf_h2scan_feed(s, p + split, len - split, on_frame, rs);
}

/* What libh2o decoded: a lower bound of the block's decoded size (host is dropped, content-length kept aside) */
static uint64_t decoded_size(const h2o_req_t *req, size_t *fields)
{
    uint64_t n = 0;
    *fields = req->headers.size;
    for (size_t i = 0; i < req->headers.size; ++i)
        n += req->headers.entries[i].name->len + req->headers.entries[i].value.len + CF_HPACK_ENTRY_OVERHEAD;
    const h2o_iovec_t *pseudo[] = {&req->input.authority, &req->input.method, &req->input.path};
    static const size_t names[] = {10, 7, 5};
    for (size_t i = 0; i < 3; ++i) {
        if (pseudo[i]->base != NULL) {
            n += names[i] + pseudo[i]->len + CF_HPACK_ENTRY_OVERHEAD;
            ++*fields;
        }
    }
    if (req->input.scheme != NULL) {
        n += 7 + CF_HPACK_ENTRY_OVERHEAD;
        ++*fields;
    }
    return n;
}

/* Reads a fragment of a block with the reference HPACK scanner, in pieces (its bound only grows). Returns the verdict. */
static cf_hpack_result_t read_fragment(cf_hpack_t *ref, const uint8_t *frag, size_t len)
{
    cf_hpack_result_t verdict = CF_HPACK_OK;
    for (size_t i = 0; i < len && verdict == CF_HPACK_OK; i += 7) {
        uint64_t before = ref->size;
        verdict = cf_hpack_feed(ref, frag + i, len - i < 7 ? len - i : 7);
        if (ref->size < before)
            abort();
        check_hpack(ref);
    }
    return verdict;
}

/* Decodes a whole block with libh2o, which the reference scanner has read without a verdict. Returns 0 when the
 * connection goes on. */
static int decode_block(h2o_hpack_header_table_t *table, const cf_hpack_t *ref, const uint8_t *block, size_t len)
{
    h2o_req_t req;
    memset(&req, 0, sizeof(req));
    h2o_mem_init_pool(&req.pool);
    int exists = 0;
    size_t content_length, fields;
    const char *err = NULL;
    int ret = h2o_hpack_parse_headers(&req, table, block, len, &exists, &content_length, NULL, &err);
    if (ret == 0 || ret == H2O_ERROR_INVALID_HEADER_CHAR) {
        uint64_t decoded = decoded_size(&req, &fields);
        if (ref->size < decoded || ref->representations < fields)
            abort(); /* libh2o took more than the bound allowed */
        /* every entry of libh2o's table is in the scanner's, at the same index, its size within [lo, hi] */
        if (table->num_entries > ref->count)
            abort();
        for (size_t i = 0; i < table->num_entries; ++i) {
            const struct st_h2o_hpack_header_table_entry_t *e =
                table->entries + (i + table->entry_start_index) % table->entry_capacity;
            const cf_hpack_entry_t *s = cf_hpack_entry(ref, i);
            size_t size = e->name->len + e->value->len + CF_HPACK_ENTRY_OVERHEAD;
            if (size < s->lo || size > s->hi || e->name->len > s->name_hi)
                abort();
        }
        if (table->hpack_capacity != ref->capacity)
            abort();
    }
    h2o_mem_clear_pool(&req.pool);
    return ret == 0 || ret == H2O_ERROR_INVALID_HEADER_CHAR ? 0 : -1; /* else libh2o closes the connection */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 256 * 1024)
        return 0;
    size_t n = sizeof(PREFACE) - 1 + size - 1;
    uint8_t *stream = malloc(n);
    memcpy(stream, PREFACE, sizeof(PREFACE) - 1);
    memcpy(stream + sizeof(PREFACE) - 1, data + 1, size - 1);
    const uint8_t *body = stream + sizeof(PREFACE) - 1;
    size_t body_len = size - 1;

    /* the frames and blocks libh2o reads, and the reference decoding of the blocks */
    h2o_hpack_header_table_t table = {.hpack_capacity = CF_HPACK_TABLE_SIZE, .hpack_max_capacity = CF_HPACK_TABLE_SIZE};
    cf_hpack_t ref;
    cf_hpack_init(&ref);
    static report_t frames[MAX_FRAMES];
    size_t num_frames = 0, pos = 0, block_len = 0, block_cap = 0;
    uint8_t *block = NULL;
    int in_block = 0, closed = 0;
    while (!closed && pos + 9 <= body_len && num_frames < MAX_FRAMES) {
        const uint8_t *h = body + pos, *p = h + 9;
        uint32_t len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
        uint8_t type = h[3], flags = h[4];
        if (len > MAX_FRAME_SIZE || pos + 9 + len > body_len)
            break;
        if (in_block && type != CF_H2_CONTINUATION)
            break; /* libh2o: expected CONTINUATION, a connection error */
        report_t r = {sizeof(PREFACE) - 1 + pos,
                      type,
                      flags,
                      0,
                      len,
                      ((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8]) & 0x7fffffffu,
                      len};
        const uint8_t *frag = p;
        size_t frag_len = len;
        if ((type == CF_H2_DATA || type == CF_H2_HEADERS) && (flags & CF_H2_FLAG_PADDED) && len != 0) {
            r.pad_length = p[0];
            if (p[0] >= len)
                break; /* libh2o refuses padding that does not fit */
            frag = p + 1;
            frag_len = len - 1u - p[0];
        } else if ((type == CF_H2_DATA || type == CF_H2_HEADERS) && (flags & CF_H2_FLAG_PADDED)) {
            break;
        }
        if (type == CF_H2_HEADERS && (flags & CF_H2_FLAG_PRIORITY)) {
            if (frag_len < 5)
                break;
            frag += 5;
            frag_len -= 5;
        }
        r.data_length = (uint32_t)frag_len;
        frames[num_frames++] = r;
        pos += 9 + len;
        if (type == CF_H2_HEADERS) {
            in_block = 1;
            block_len = 0;
            cf_hpack_start_block(&ref);
        } else if (type == CF_H2_CONTINUATION && !in_block) {
            break; /* libh2o: an invalid CONTINUATION */
        }
        if (type == CF_H2_HEADERS || type == CF_H2_CONTINUATION) {
            if (block_len + frag_len > block_cap)
                block = realloc(block, block_cap = (block_len + frag_len) * 2 + 16);
            if (frag_len != 0)
                memcpy(block + block_len, frag, frag_len);
            block_len += frag_len;
            if (read_fragment(&ref, frag, frag_len) != CF_HPACK_OK) {
                closed = 1; /* conflux closes the connection */
            } else if (flags & CF_H2_FLAG_END_HEADERS) {
                in_block = 0;
                cf_hpack_end_block(&ref);
                closed = decode_block(&table, &ref, block_len != 0 ? block : (const uint8_t *)"", block_len) != 0;
            }
        }
    }

    /* the frame scanner on those frames: the same reports, the same HPACK state as the reference */
    reports_t rs = {malloc(sizeof(report_t) * MAX_FRAMES), 0, 0};
    cf_h2scan_t s;
    feed(&s, stream, sizeof(PREFACE) - 1 + pos, 0, &rs);
    if (rs.num != num_frames)
        abort();
    for (size_t i = 0; i < num_frames; ++i)
        if (!same_report(&rs.r[i], &frames[i]))
            abort();
    if (!same_hpack(&s.hpack, &ref))
        abort();

    /* and on the whole input, in pieces: the same reports and verdict */
    int whole = feed(&s, stream, n, 0, &rs);
    size_t whole_num = rs.num;
    report_t *whole_r = malloc(sizeof(report_t) * MAX_FRAMES);
    memcpy(whole_r, rs.r, sizeof(report_t) * whole_num);
    cf_h2scan_t t;
    size_t splits[2] = {data[0] * n / 256, SIZE_MAX};
    for (int k = 0; k < 2; ++k) {
        int r = feed(&t, stream, n, splits[k], &rs);
        if (r != whole || rs.num != whole_num || t.hpack.size != s.hpack.size || !same_hpack(&t.hpack, &s.hpack))
            abort();
        for (size_t i = 0; i < whole_num; ++i)
            if (!same_report(&rs.r[i], &whole_r[i]))
                abort();
    }

    free(whole_r);
    free(rs.r);
    free(block);
    free(stream);
    h2o_hpack_dispose_header_table(&table);
    return 0;
}
