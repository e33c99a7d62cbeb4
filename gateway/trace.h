/* Request identity: W3C Trace Context (traceparent, tracestate) and X-Request-Id, parsed strictly; ids from a per-thread PRNG. */
#ifndef CF_TRACE_H
#define CF_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <h2o.h>

/** traceparent of version 00: "00-" 32 hex "-" 16 hex "-" 2 hex. */
#define CF_TRACEPARENT_LEN 55
/** A tracestate longer than this, or with more list members, is dropped (W3C Trace Context 3.3.1.1, 3.3.1.5). */
#define CF_TRACESTATE_MAX_LEN 512
#define CF_TRACESTATE_MAX_MEMBERS 32
/** A client's X-Request-Id is kept when it is 1 to this many of [A-Za-z0-9._:-]. */
#define CF_REQUEST_ID_MAX_LEN 128

/**
 * The identity of one client request, as every upstream attempt and the access log see it. The strings are the
 * owner's (a request's pool, or a copy's): cf_trace_t holds no memory of its own.
 */
typedef struct st_cf_trace_t {
    char trace_id[32];      /* lowercase hex, never all zero */
    char flags[2];          /* lowercase hex: the client's trace-flags, or "01"/"00" (sampled or not) for a trace conflux started */
    unsigned continued : 1; /* trace_id, parent_id and flags came from a valid client traceparent */
    unsigned sampled : 1;   /* the sampled bit of flags: its spans are exported (when tracing.otlp is set) */
    const char *tracestate; /* the client's, valid and bounded, or NULL */
    size_t tracestate_len;
    const char *request_id; /* never NULL: the client's when sane, else a generated one */
    size_t request_id_len;
    uint64_t parent_id; /* the client's parent-id when continued, else 0. Last, and the bits beside flags: the identity
                           lives in every request's pool and stays 80 bytes */
} cf_trace_t;

/**
 * Span ids kept per call for the access log and the span export. A call may make up to 14 attempts (10 retries, 3
 * hedges), but the record lives in every request's pool, on the fast path too: four cover a first attempt, two retries
 * and a hedge, and keep the request within one pool chunk.
 */
#define CF_TRACE_MAX_SPANS 4

/** How an attempt came to be (cf_span_detail_t.kind). */
enum { CF_SPAN_FIRST = 0, CF_SPAN_RETRY, CF_SPAN_HEDGE };

/** What a sampled trace keeps of an upstream attempt besides its span id: the exported span's times and outcome. */
typedef struct st_cf_span_detail_t {
    uint64_t start_ns, end_ns; /* cf_trace_now_ns (CLOCK_MONOTONIC); end_ns 0: it has not ended */
    uint16_t status;           /* the upstream's status, 0 when none */
    uint8_t reason;            /* cf_reason_t: CF_REASON_NONE, or why it failed (CF_REASON_CANCELLED: another won) */
    uint8_t kind;              /* CF_SPAN_FIRST, _RETRY or _HEDGE */
} cf_span_detail_t;

/**
 * The span ids of a call's upstream attempts, in the order they started (never 0; cf_trace_hex64 writes them). A
 * sampled trace also keeps their details, in memory of the caller's (a request's or a cache flight's pool): the
 * unsampled fast path pays one pointer for it.
 */
typedef struct st_cf_spans_t {
    unsigned n;
    uint64_t ids[CF_TRACE_MAX_SPANS];
    cf_span_detail_t *details; /* CF_TRACE_MAX_SPANS of them when the trace is sampled, else NULL */
} cf_spans_t;

/** Appends one span id to `s`: its index, or -1 past CF_TRACE_MAX_SPANS (the id is not kept). */
static inline int cf_spans_add(cf_spans_t *s, uint64_t id)
{
    if (s->n >= CF_TRACE_MAX_SPANS)
        return -1;
    s->ids[s->n] = id;
    return (int)s->n++;
}

/**
 * Copies the spans `src` into `dst`, their details (if any) into `pool` (NULL: into `room`, CF_TRACE_MAX_SPANS
 * details of the caller's), so that `dst` does not depend on the memory `src`'s details are in.
 */
void cf_spans_copy(cf_spans_t *dst, const cf_spans_t *src, h2o_mem_pool_t *pool, cf_span_detail_t *room);

/**
 * Parses a traceparent value strictly: version 00 only, exactly 55 bytes, lowercase hex, a trace-id and a parent-id
 * not all zero. Fills trace_id and flags of `t` and returns 0, or returns -1 and leaves `t` untouched.
 */
int cf_trace_parse_traceparent(cf_trace_t *t, const char *s, size_t len);
/**
 * Whether a tracestate value is well formed (W3C Trace Context level 1, 3.3: list members key=value, separated by
 * commas and optional spaces, empty members allowed), at most CF_TRACESTATE_MAX_LEN bytes and
 * CF_TRACESTATE_MAX_MEMBERS members.
 */
int cf_trace_tracestate_ok(const char *s, size_t len);
/** Whether a client's X-Request-Id is kept: 1 to CF_REQUEST_ID_MAX_LEN bytes of [A-Za-z0-9._:-]. */
int cf_trace_request_id_ok(const char *s, size_t len);

/**
 * 64 random bits, never 0. The generator is the calling thread's (xoshiro256**), seeded from getrandom(2) on its first
 * use in that thread: no system call after.
 */
uint64_t cf_trace_random64(void);
/** CLOCK_MONOTONIC in nanoseconds: the clock of cf_span_t's times. */
uint64_t cf_trace_now_ns(void);

/** Writes `v` as 16 lowercase hex digits, most significant first (no NUL). */
void cf_trace_hex64(char *dst, uint64_t v);

/**
 * Starts a new trace in `t`: a random trace-id, sampled (flags "01") with probability `sample` (0 to 1), else flags
 * "00" (nothing of it is exported).
 */
void cf_trace_start(cf_trace_t *t, double sample);

/**
 * Writes the traceparent of one upstream attempt, CF_TRACEPARENT_LEN bytes (no NUL): `t`'s trace-id and flags and a
 * fresh random span id as parent-id, which it returns.
 */
uint64_t cf_trace_format_attempt(const cf_trace_t *t, char *dst);

/**
 * The identity of a client request (allocated from req->pool): its traceparent continued when valid (and its
 * tracestate with it, when valid and bounded; sampled as the client's flags say, as OpenTelemetry's parent-based
 * sampler does; when `parent_based` is 0, with probability `sample` instead, the client's flag ignored), else a new
 * trace, sampled with probability `sample`; its X-Request-Id when sane, else a generated one,
 * which is added to the response's headers at once, so that every answer carries it. A traceparent, tracestate or
 * X-Request-Id sent more than once is treated as invalid.
 */
cf_trace_t *cf_trace_begin(h2o_req_t *req, double sample, int parent_based);

/** Copies `src` into `dst`, its strings into `pool`. */
void cf_trace_copy(h2o_mem_pool_t *pool, cf_trace_t *dst, const cf_trace_t *src);

/** Whether a header is one that conflux writes itself for a traced upstream request (traceparent, tracestate, x-request-id). */
int cf_trace_is_own_header(const char *name, size_t len);

#endif
