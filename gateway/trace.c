/* Request identity: W3C Trace Context (traceparent, tracestate) and X-Request-Id, parsed strictly; ids from a per-thread PRNG. */
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include "cf_units.h"
#include "trace.h"

/* --- parsing (hostile input: every byte checked, every length bounded) -------------------------------------------- */

static int is_lchex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* Whether s[0..n) is lowercase hex and not all zero. */
static int is_id(const char *s, size_t n)
{
    int nonzero = 0;
    for (size_t i = 0; i != n; ++i) {
        if (!is_lchex(s[i]))
            return 0;
        nonzero |= s[i] != '0';
    }
    return nonzero;
}

/*
 * W3C Trace Context level 1, 3.2: version "-" trace-id "-" parent-id "-" trace-flags. Only version 00 is accepted:
 * "ff" is forbidden, and a later version's extra fields are not ours to interpret, so its trace is not continued.
 */
int cf_trace_parse_traceparent(cf_trace_t *t, const char *s, size_t len)
{
    if (len != CF_TRACEPARENT_LEN || s[0] != '0' || s[1] != '0' || s[2] != '-' || s[35] != '-' || s[52] != '-')
        return -1;
    if (!is_id(s + 3, 32) || !is_id(s + 36, 16) || !is_lchex(s[53]) || !is_lchex(s[54]))
        return -1;
    memcpy(t->trace_id, s + 3, 32);
    t->parent_id = 0;
    for (size_t i = 36; i != 52; ++i)
        t->parent_id = t->parent_id << 4 | (uint64_t)(s[i] >= 'a' ? s[i] - 'a' + 10 : s[i] - '0');
    /* trace-flags bit 0 is "sampled" (W3C Trace Context level 1, 3.2.2.5); the others are not defined there, and a
     * vendor sets them to zero (3.2.2.5.2): what goes upstream is 00 or 01, never a client's other bits */
    t->sampled = ((s[54] >= 'a' ? s[54] - 'a' + 10 : s[54] - '0') & 1) != 0;
    memcpy(t->flags, t->sampled ? "01" : "00", 2);
    return 0;
}

static int is_lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static int is_keychar(char c)
{
    return is_lcalpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' || c == '/';
}

/* value chars but space: %x21-2B / %x2D-3C / %x3E-7E (no ",", no "=") */
static int is_nblk(char c)
{
    return c >= 0x21 && c <= 0x7e && c != ',' && c != '=';
}

/* key "=" value, W3C Trace Context level 1, 3.3.1.3: simple-key, or tenant-id "@" system-id. */
static int is_member(const char *s, size_t n)
{
    const char *eq = memchr(s, '=', n);
    if (eq == NULL)
        return 0;
    size_t klen = eq - s, vlen = n - klen - 1;
    const char *at = memchr(s, '@', klen);
    if (at == NULL) {
        if (klen == 0 || klen > 256 || !is_lcalpha(s[0]))
            return 0;
        for (size_t i = 1; i != klen; ++i)
            if (!is_keychar(s[i]))
                return 0;
    } else {
        size_t tlen = at - s, slen = klen - tlen - 1;
        if (tlen == 0 || tlen > 241 || slen == 0 || slen > 14 || !is_lcalpha(at[1]))
            return 0;
        if (!is_lcalpha(s[0]) && !(s[0] >= '0' && s[0] <= '9'))
            return 0;
        for (size_t i = 1; i != tlen; ++i)
            if (!is_keychar(s[i]))
                return 0;
        for (size_t i = 2; i != slen + 1; ++i)
            if (!is_keychar(at[i]))
                return 0;
    }
    /* value: 0*255(chr) nblk-chr, chr being nblk-chr or space */
    if (vlen == 0 || vlen > 256 || eq[vlen] == ' ')
        return 0;
    for (size_t i = 1; i <= vlen; ++i)
        if (!is_nblk(eq[i]) && eq[i] != ' ')
            return 0;
    return 1;
}

int cf_trace_tracestate_ok(const char *s, size_t len)
{
    size_t members = 0, i = 0;
    if (len == 0 || len > CF_TRACESTATE_MAX_LEN)
        return 0;
    while (i <= len) {
        /* one list member between commas, optional spaces and tabs around it (OWS) */
        size_t start = i, end;
        while (start != len && (s[start] == ' ' || s[start] == '\t'))
            ++start;
        const char *comma = start != len ? memchr(s + start, ',', len - start) : NULL;
        end = comma != NULL ? (size_t)(comma - s) : len;
        i = end + 1;
        while (end != start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
            --end;
        if (end == start)
            continue; /* an empty member is allowed and not counted */
        if (++members > CF_TRACESTATE_MAX_MEMBERS || !is_member(s + start, end - start))
            return 0;
    }
    return members != 0;
}

int cf_trace_request_id_ok(const char *s, size_t len)
{
    if (len == 0 || len > CF_REQUEST_ID_MAX_LEN)
        return 0;
    for (size_t i = 0; i != len; ++i) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
              c == '-'))
            return 0;
    }
    return 1;
}

int cf_trace_is_own_header(const char *name, size_t len)
{
    return h2o_lcstris(name, len, H2O_STRLIT("traceparent")) || h2o_lcstris(name, len, H2O_STRLIT("tracestate")) ||
           h2o_lcstris(name, len, H2O_STRLIT("x-request-id"));
}

/* --- ids ---------------------------------------------------------------------------------------------------------- */

/*
 * xoshiro256** (Blackman and Vigna): ids need to be unpredictable enough not to collide, not secret, and cost a few
 * instructions. Each thread seeds its own from getrandom(2) once, on its first id; an event loop never makes the call
 * again. Without getrandom (a seccomp filter), the clock, the pid and the thread's address stand in.
 */
static __thread uint64_t rng[4];
static __thread int rng_seeded;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void rng_seed(void)
{
    if (getrandom(rng, sizeof(rng), GRND_NONBLOCK) != (ssize_t)sizeof(rng)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = ((uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec) ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)&rng_seeded;
        for (size_t i = 0; i != 4; ++i)
            rng[i] = splitmix64(&x);
    }
    if ((rng[0] | rng[1] | rng[2] | rng[3]) == 0) /* the one state xoshiro never leaves */
        rng[0] = 1;
    rng_seeded = 1;
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void)
{
    if (!rng_seeded)
        rng_seed();
    uint64_t result = rotl(rng[1] * 5, 7) * 9, t = rng[1] << 17;
    rng[2] ^= rng[0];
    rng[3] ^= rng[1];
    rng[1] ^= rng[2];
    rng[0] ^= rng[3];
    rng[2] ^= t;
    rng[3] = rotl(rng[3], 45);
    return result;
}

uint64_t cf_trace_random64(void)
{
    uint64_t r;
    while ((r = rng_next()) == 0) /* W3C: an all-zero trace-id or parent-id is invalid */
        ;
    return r;
}

/* The 8 nibbles of x (< 2^32) as 8 lowercase hex digits in one word, the least significant in the lowest byte: each
 * nibble spread to a byte of its own, then '0' added to each, and 'a' - '0' - 10 more to those over 9, all at once. */
static inline uint64_t hex32(uint64_t x)
{
    x = (x | x << 16) & 0x0000ffff0000ffffull;
    x = (x | x << 8) & 0x00ff00ff00ff00ffull;
    x = (x | x << 4) & 0x0f0f0f0f0f0f0f0full;
    uint64_t over9 = ((x + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull;
    return x + 0x3030303030303030ull + over9 * ('a' - '0' - 10);
}

static inline void hex64(char *dst, uint64_t v)
{
    uint64_t hi = hex32(v >> 32), lo = hex32(v & 0xffffffffu);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    hi = __builtin_bswap64(hi); /* the most significant digit first in memory */
    lo = __builtin_bswap64(lo);
#endif
    memcpy(dst, &hi, 8);
    memcpy(dst + 8, &lo, 8);
}

uint64_t cf_trace_now_ns(void)
{
    return cf_mono_ns();
}

void cf_trace_hex64(char *dst, uint64_t v)
{
    hex64(dst, v);
}

/* Sampled with probability `sample`: 53 random bits against the rate, exact for 0 and 1, and no draw at all for 0. */
static void decide(cf_trace_t *t, double sample)
{
    t->sampled = sample >= 1.0 || (sample > 0.0 && (double)(cf_trace_random64() >> 11) < sample * 9007199254740992.0);
    memcpy(t->flags, t->sampled ? "01" : "00", 2);
}

void cf_trace_start(cf_trace_t *t, double sample)
{
    hex64(t->trace_id, cf_trace_random64());
    hex64(t->trace_id + 16, cf_trace_random64());
    decide(t, sample);
    t->tracestate = NULL;
    t->tracestate_len = 0;
    t->continued = 0;
}

uint64_t cf_trace_format_attempt(const cf_trace_t *t, char *dst)
{
    uint64_t span = cf_trace_random64();
    memcpy(dst, "00-", 3);
    memcpy(dst + 3, t->trace_id, 32);
    dst[35] = '-';
    hex64(dst + 36, span);
    dst[52] = '-';
    memcpy(dst + 53, t->flags, 2);
    return span;
}

/* --- a request's identity ------------------------------------------------------------------------------------------ */

/* The field name of X-Request-Id in answers: not an h2o token, and static, so adding it allocates no name. */
static h2o_iovec_t x_request_id = {H2O_STRLIT("x-request-id")};

/* One of the three fields in a request: its value when sent exactly once, else NULL. */
struct st_trace_field_t {
    const h2o_iovec_t *value;
    unsigned count;
};

static void note_field(struct st_trace_field_t *f, const h2o_iovec_t *value)
{
    f->value = value;
    ++f->count;
}

cf_trace_t *cf_trace_begin(h2o_req_t *req, double sample, int parent_based)
{
    /* the identity and room for a generated request id, in one allocation */
    struct st_trace_mem_t {
        cf_trace_t t;
        char id[32];
    } *mem = h2o_mem_alloc_pool(&req->pool, sizeof(*mem));
    cf_trace_t *t = &mem->t;
    struct st_trace_field_t tp = {NULL}, ts = {NULL}, rid = {NULL};

    /* one pass over the head, by name length first: most requests have none of the three */
    for (size_t i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = req->headers.entries + i;
        if (h->name->len == 11 && h2o_lcstris(h->name->base, 11, H2O_STRLIT("traceparent")))
            note_field(&tp, &h->value);
        else if (h->name->len == 10 && h2o_lcstris(h->name->base, 10, H2O_STRLIT("tracestate")))
            note_field(&ts, &h->value);
        else if (h->name->len == 12 && h2o_lcstris(h->name->base, 12, H2O_STRLIT("x-request-id")))
            note_field(&rid, &h->value);
    }
    if (tp.count == 1 && cf_trace_parse_traceparent(t, tp.value->base, tp.value->len) == 0) {
        t->continued = 1;
        if (!parent_based) /* the client's sampled flag is not trusted: conflux's own rate decides */
            decide(t, sample);
        t->tracestate = NULL;
        t->tracestate_len = 0;
        /* a tracestate is only meaningful with the traceparent it came with (W3C Trace Context 3.3) */
        if (ts.count == 1 && cf_trace_tracestate_ok(ts.value->base, ts.value->len)) {
            t->tracestate = ts.value->base;
            t->tracestate_len = ts.value->len;
        }
    } else {
        cf_trace_start(t, sample);
    }
    if (rid.count == 1 && cf_trace_request_id_ok(rid.value->base, rid.value->len)) {
        t->request_id = rid.value->base;
        t->request_id_len = rid.value->len;
    } else {
        hex64(mem->id, cf_trace_random64());
        hex64(mem->id + 16, cf_trace_random64());
        t->request_id = mem->id;
        t->request_id_len = sizeof(mem->id);
    }
    h2o_vector_reserve(&req->pool, &req->res.headers, req->res.headers.size + 1);
    req->res.headers.entries[req->res.headers.size++] =
        (h2o_header_t){&x_request_id, NULL, h2o_iovec_init(t->request_id, t->request_id_len)};
    return t;
}

void cf_spans_copy(cf_spans_t *dst, const cf_spans_t *src, h2o_mem_pool_t *pool, cf_span_detail_t *room)
{
    *dst = *src;
    if (src->details == NULL)
        return;
    dst->details = pool != NULL ? h2o_mem_alloc_pool(pool, sizeof(*dst->details) * CF_TRACE_MAX_SPANS) : room;
    memcpy(dst->details, src->details, sizeof(*dst->details) * CF_TRACE_MAX_SPANS);
}

void cf_trace_copy(h2o_mem_pool_t *pool, cf_trace_t *dst, const cf_trace_t *src)
{
    *dst = *src;
    if (src->tracestate != NULL)
        dst->tracestate = h2o_strdup(pool, src->tracestate, src->tracestate_len).base;
    dst->request_id = h2o_strdup(pool, src->request_id, src->request_id_len).base;
}
