/* Request identity: W3C Trace Context (traceparent, tracestate) and X-Request-Id, parsed strictly; ids from a per-thread PRNG. */
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
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
    memcpy(t->flags, s + 53, 2);
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

void cf_trace_random_hex(char *dst, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    uint64_t any = 0;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t r = rng_next();
        for (size_t j = 0; j != 8 && i + j != n; ++j, r >>= 8) {
            dst[2 * (i + j)] = digits[r >> 4 & 15];
            dst[2 * (i + j) + 1] = digits[r & 15];
            any |= r & 255;
        }
    }
    if (any == 0 && n != 0) /* W3C: an all-zero trace-id or parent-id is invalid */
        dst[2 * n - 1] = '1';
}

void cf_trace_start(cf_trace_t *t)
{
    cf_trace_random_hex(t->trace_id, 16);
    memcpy(t->flags, "00", 2);
    t->tracestate = NULL;
    t->tracestate_len = 0;
    t->continued = 0;
}

void cf_trace_format_attempt(const cf_trace_t *t, char *dst, char *span_id)
{
    memcpy(dst, "00-", 3);
    memcpy(dst + 3, t->trace_id, 32);
    dst[35] = '-';
    cf_trace_random_hex(dst + 36, 8);
    dst[52] = '-';
    memcpy(dst + 53, t->flags, 2);
    if (span_id != NULL)
        memcpy(span_id, dst + 36, 16);
}

/* --- a request's identity ------------------------------------------------------------------------------------------ */

/* The value of a header sent exactly once; NULL when absent or repeated. */
static const h2o_iovec_t *single_header(h2o_req_t *req, const char *name, size_t len)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, len, -1);
    if (i == -1 || h2o_find_header_by_str(&req->headers, name, len, i) != -1)
        return NULL;
    return &req->headers.entries[i].value;
}

cf_trace_t *cf_trace_begin(h2o_req_t *req)
{
    cf_trace_t *t = h2o_mem_alloc_pool(&req->pool, sizeof(*t));
    const h2o_iovec_t *v;

    cf_trace_start(t);
    if ((v = single_header(req, H2O_STRLIT("traceparent"))) != NULL && cf_trace_parse_traceparent(t, v->base, v->len) == 0) {
        t->continued = 1;
        /* a tracestate is only meaningful with the traceparent it came with (W3C Trace Context 3.3) */
        if ((v = single_header(req, H2O_STRLIT("tracestate"))) != NULL && cf_trace_tracestate_ok(v->base, v->len)) {
            t->tracestate = v->base;
            t->tracestate_len = v->len;
        }
    }
    if ((v = single_header(req, H2O_STRLIT("x-request-id"))) != NULL && cf_trace_request_id_ok(v->base, v->len)) {
        t->request_id = v->base;
        t->request_id_len = v->len;
    } else {
        char *id = h2o_mem_alloc_pool(&req->pool, 32);
        cf_trace_random_hex(id, 16);
        t->request_id = id;
        t->request_id_len = 32;
    }
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, t->request_id, t->request_id_len);
    return t;
}

void cf_trace_copy(h2o_mem_pool_t *pool, cf_trace_t *dst, const cf_trace_t *src)
{
    *dst = *src;
    if (src->tracestate != NULL)
        dst->tracestate = h2o_strdup(pool, src->tracestate, src->tracestate_len).base;
    dst->request_id = h2o_strdup(pool, src->request_id, src->request_id_len).base;
}
