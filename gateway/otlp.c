/* Span export: OTLP/HTTP JSON, encoded on the loop for sampled requests only, POSTed in batches by a thread of its own. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/ssl.h>
#include "cf_fetch.h"
#include "cf_spool.h"
#include "cf_units.h"
#include "jsonout.h"
#include "metrics.h"
#include "otlp.h"
#include "version.h"

/*
 * What goes out (the OTLP/HTTP JSON encoding of opentelemetry-proto's ExportTraceServiceRequest): trace and span ids
 * as lowercase hex strings, times as decimal strings of Unix nanoseconds, kind as a number (2 SERVER, 3 CLIENT),
 * attribute values as {"stringValue"} or {"intValue": "decimal string"}. Status follows OpenTelemetry's
 * HTTP conventions: left unset on success (no "status"), {"code":2 ERROR, "message"} for a server span answered 5xx and
 * for a client span that failed or was answered 4xx or 5xx; an attempt cancelled because another won is not an error.
 *
 * The loop encodes a sampled request's spans into one fragment ("{span},{span}"), in a buffer the exporter handed back
 * (no allocation once it runs), and hands it over through a spool (cf_spool.h, the access log's hand-over), counted in
 * spans against tracing.queue. The exporter thread wakes when tracing.batch spans are in or the oldest has waited
 * tracing.delay, joins the fragments into one body and POSTs it with cf_fetch: a timeout per request, no retry. A batch
 * that fails is dropped and counted; the loops never wait on the collector. An unsampled request costs a test of a bit.
 */

#define MAX_FRAGMENTS 4096   /* fragments in one spool take: bounded so that the batch array is fixed */
#define STOP_TIMEOUT_MS 1000 /* each export request at stop takes at most this */
#define STOP_WAIT_S 3        /* and the stop waits this long for the exporter, whatever it is doing */

static struct {
    cf_spool_t spool;
    pthread_mutex_t mutex; /* guards the settings below */
    int started, stopping;
    int enabled; /* atomic: tracing.otlp is set */
    char *url;   /* the collector; NULL: none */
    char *service_name;
    uint64_t batch, delay_ms, timeout_ms;
    uint64_t generation; /* bumped by each configure: the exporter re-reads the settings */
} X = {.mutex = PTHREAD_MUTEX_INITIALIZER};

/* --- encoding (pure) ---------------------------------------------------------------------------------------------- */

/*
 * Written for the loop's sake: each span reserves its room once (SPAN_ROOM plus its strings), then literal pieces are
 * copied with lengths known at compile time and numbers and ids formatted in place, with no printf, no strlen of a
 * literal and no reallocation. A string is copied as it is when it needs no escape, which is the common case.
 */
#define SPAN_ROOM 1024 /* the bytes of a span but its strings' (each string may take 6 bytes a byte escaped) */

#define PUT(b, lit) put((b), (lit), sizeof(lit) - 1)

static inline void put(cf_buf_t *b, const char *s, size_t n)
{
    memcpy(b->base + b->len, s, n);
    b->len += n;
}

static inline void put_hex64(cf_buf_t *b, uint64_t id)
{
    cf_trace_hex64(b->base + b->len, id);
    b->len += 16;
}

/* "00" to "99": decimal numbers two digits a step (a time has 19: ten steps instead of nineteen divisions) */
static const char digit_pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                     "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                     "8081828384858687888990919293949596979899";

static inline void put_u64(cf_buf_t *b, uint64_t v)
{
    char tmp[20], *p = tmp + sizeof(tmp);
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        p -= 2;
        memcpy(p, digit_pairs + r * 2, 2);
    }
    if (v >= 10) {
        p -= 2;
        memcpy(p, digit_pairs + v * 2, 2);
    } else {
        *--p = (char)('0' + v);
    }
    put(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* The room a string may take escaped (cf_json_write_string writes at most 6 bytes a byte). */
static inline size_t room_of(size_t len)
{
    return len * 6 + 2;
}

/* The bytes a JSON string cannot hold as they are (controls, '"', '\\'), and those that need a UTF-8 check (>= 0x80). */
static const uint8_t not_plain[256] = {
    [0 ... 0x1f] = 1,
    ['"'] = 1,
    ['\\'] = 1,
    [0x80 ... 0xff] = 1,
};

/* The characters of a JSON string (no quotes): as they are when none needs an escape, else as jsonout.c escapes them. */
static void put_chars(cf_buf_t *b, const char *s, size_t len)
{
    for (size_t i = 0; i != len; ++i) {
        if (not_plain[(unsigned char)s[i]]) {
            size_t at = b->len;
            cf_json_write_string(b, s, len); /* within the room reserved: no reallocation */
            memmove(b->base + at, b->base + at + 1, b->len - at - 2);
            b->len -= 2;
            return;
        }
    }
    put(b, s, len);
}

static inline void put_str(cf_buf_t *b, const char *s, size_t len)
{
    PUT(b, "\"");
    put_chars(b, s, len);
    PUT(b, "\"");
}

/* The seconds of the last time written, formatted: a request's times nearly always share theirs. */
struct st_sec_cache_t {
    uint64_t sec;
    char digits[20];
    size_t len;
};

/* A time as a string of Unix nanoseconds: the seconds (formatted once a second), then 9 digits of nanoseconds. */
static void put_time(cf_buf_t *b, struct st_sec_cache_t *cache, uint64_t mono_ns, int64_t offset)
{
    uint64_t t = (uint64_t)((int64_t)mono_ns + offset);
    uint32_t ns = (uint32_t)(t % 1000000000u);
    uint64_t sec = t / 1000000000u;
    PUT(b, "\"");
    if (sec == 0) { /* not a time conflux meets, but a number all the same */
        put_u64(b, ns);
        PUT(b, "\"");
        return;
    }
    if (sec != cache->sec || cache->len == 0) {
        size_t at = b->len;
        put_u64(b, sec);
        cache->sec = sec;
        cache->len = b->len - at;
        memcpy(cache->digits, b->base + at, cache->len);
    } else {
        memcpy(b->base + b->len, cache->digits, sizeof(cache->digits)); /* a fixed size: no call; the room is reserved */
        b->len += cache->len;
    }
    char *p = b->base + b->len + 9; /* the nanoseconds: 9 digits, zero-padded after the seconds */
    for (int i = 0; i != 4; ++i) {
        p -= 2;
        memcpy(p, digit_pairs + ns % 100 * 2, 2);
        ns /= 100;
    }
    *--p = (char)('0' + ns);
    b->len += 9;
    PUT(b, "\"");
}

/* Attributes: `first` says whether one was written before (a comma is then due). */
#define ATTR_KEY(b, first, key)                                                                                                    \
    do {                                                                                                                           \
        if (*(first))                                                                                                              \
            PUT(b, "{\"key\":\"" key "\",\"value\":{");                                                                            \
        else                                                                                                                       \
            PUT(b, ",{\"key\":\"" key "\",\"value\":{");                                                                           \
        *(first) = 0;                                                                                                              \
    } while (0)
/* An attribute of `type` ("stringValue", "intValue"), its value written by `write(b, v, len)` between quotes. */
#define ATTR(b, first, key, type, write, v, len)                                                                                   \
    do {                                                                                                                           \
        ATTR_KEY(b, first, key);                                                                                                   \
        PUT(b, "\"" type "\":\"");                                                                                                 \
        write(b, v, len);                                                                                                          \
        PUT(b, "\"}}");                                                                                                            \
    } while (0)
#define ATTR_STR(b, first, key, v, len) ATTR(b, first, key, "stringValue", put_chars, v, len)
#define ATTR_PLAIN(b, first, key, v, len) ATTR(b, first, key, "stringValue", put, v, len) /* known to need no escape */
#define ATTR_INT(b, first, key, v) ATTR(b, first, key, "intValue", put_int, v, 0) /* a decimal string, as OTLP/JSON has int64 */

static inline void put_int(cf_buf_t *b, uint64_t v, size_t unused)
{
    put_u64(b, v);
}

static void error_status(cf_buf_t *b, const char *message, size_t len)
{
    PUT(b, ",\"status\":{\"code\":2,\"message\":");
    put_str(b, message, len);
    PUT(b, "}");
}

/* "traceId", "spanId", "parentSpanId" and "traceState" of a span of `t`. */
static void span_ids(cf_buf_t *b, const cf_trace_t *t, uint64_t span_id, const char *parent_hex)
{
    PUT(b, "{\"traceId\":\"");
    put(b, t->trace_id, sizeof(t->trace_id));
    PUT(b, "\",\"spanId\":\"");
    put_hex64(b, span_id);
    if (parent_hex != NULL) {
        PUT(b, "\",\"parentSpanId\":\"");
        put(b, parent_hex, 16);
    }
    PUT(b, "\"");
    if (t->tracestate != NULL) {
        PUT(b, ",\"traceState\":");
        put_str(b, t->tracestate, t->tracestate_len);
    }
}

/* One upstream attempt of `c`, after a comma: a CLIENT span under the request's. */
static void encode_attempt(cf_buf_t *b, struct st_sec_cache_t *secs, const cf_request_record_t *rec, const cf_call_record_t *c,
                           uint64_t id, const cf_span_detail_t *sp, const char *parent_hex, uint64_t end_ns, int64_t offset)
{
    static const char *const kinds[] = {"first", "retry", "hedge"};
    char reason[CF_REASON_TEXT_SIZE];
    const char *why = NULL, *cache = cf_cache_state_name(c->cache.state), *kind = kinds[sp->kind < 3 ? sp->kind : 0];
    size_t name_len = strlen(c->name), backend_len = strlen(c->backend);
    if (sp->reason != CF_REASON_NONE)
        why = cf_reason_text((cf_reason_t)sp->reason, sp->status, reason);
    else if (sp->status >= 400)
        why = cf_reason_text(CF_REASON_STATUS, sp->status, reason); /* "status_503" */
    cf_buf_reserve(b, SPAN_ROOM + rec->trace->tracestate_len * 6 + name_len + backend_len);

    PUT(b, ",");
    span_ids(b, rec->trace, id, parent_hex);
    PUT(b, ",\"name\":\""); /* names are [A-Za-z_][A-Za-z0-9_-]* (config.c): nothing to escape */
    put(b, c->name, name_len);
    PUT(b, "\"");
    PUT(b, ",\"kind\":3,\"startTimeUnixNano\":");
    put_time(b, secs, sp->start_ns, offset);
    PUT(b, ",\"endTimeUnixNano\":");
    put_time(b, secs, sp->end_ns != 0 ? sp->end_ns : end_ns, offset);
    PUT(b, ",\"attributes\":[");
    int first = 1;
    ATTR_PLAIN(b, &first, "conflux.backend", c->backend, backend_len);
    ATTR_PLAIN(b, &first, "conflux.attempt", kind, strlen(kind)); /* this file's, cache.h's and reason.c's names */
    if (cache != NULL)
        ATTR_PLAIN(b, &first, "conflux.cache", cache, strlen(cache));
    if (sp->status != 0)
        ATTR_INT(b, &first, "http.response.status_code", sp->status);
    if (sp->reason != CF_REASON_NONE)
        ATTR_PLAIN(b, &first, "conflux.reason", why, strlen(why));
    if (why != NULL && sp->reason != CF_REASON_CANCELLED)
        ATTR_PLAIN(b, &first, "error.type", why, strlen(why));
    PUT(b, "]");
    if (why != NULL && sp->reason != CF_REASON_CANCELLED)
        error_status(b, why, strlen(why));
    PUT(b, "}");
}

/* The length of the first `max` bytes at most of s[0..len), not cutting a UTF-8 character (a cut one would be an invalid
 * sequence, written as U+FFFD): backs over up to 3 continuation bytes. */
static size_t cut_utf8(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    for (int i = 0; i != 3 && n != 0 && ((unsigned char)s[n] & 0xc0) == 0x80; ++i)
        --n;
    return n;
}

/* Whether OpenTelemetry's HTTP conventions name the method (RFC 9110's and PATCH): others are "_OTHER". */
static int known_method(const char *m, size_t len)
{
    static const char *const known[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    for (size_t i = 0; i != sizeof(known) / sizeof(known[0]); ++i)
        if (strlen(known[i]) == len && memcmp(known[i], m, len) == 0)
            return 1;
    return 0;
}

size_t cf_otlp_encode_spans(cf_buf_t *b, const cf_request_record_t *rec, uint64_t span_id, uint64_t end_ns, int64_t offset)
{
    const cf_trace_t *t = rec->trace;
    const h2o_req_t *req = rec->req;
    const char *route = rec->route != NULL ? rec->route->pattern.src : NULL;
    size_t route_len = route != NULL ? strlen(route) : 0, path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    /* the client chooses the path: a long one (h2o takes request heads of hundreds of KiB) would make every span of it,
     * and the buffer that holds it, as long, six times over when its bytes need escapes */
    path_len = cut_utf8(req->path.base, path_len, CF_OTLP_MAX_PATH);
    /* so does the method, over HTTP/2: one the conventions do not know is "_OTHER", the span "HTTP", and the method as
     * sent, cut, http.request.method_original */
    int known = known_method(req->method.base, req->method.len);
    const char *method = known ? req->method.base : "HTTP";
    size_t method_len = known ? req->method.len : 4, original_len = known ? 0 : cut_utf8(req->method.base, req->method.len, 64);
    size_t n = 1;
    struct st_sec_cache_t secs = {0};
    cf_buf_reserve(b, SPAN_ROOM + t->tracestate_len * 6 + room_of(original_len) + room_of(route_len) * 2 + room_of(path_len) +
                          room_of(t->request_id_len));

    /* the request: SERVER, "METHOD /route/{pattern}" (the pattern, not the path: span names are for grouping) */
    char client_hex[16];
    if (t->continued)
        cf_trace_hex64(client_hex, t->parent_id);
    span_ids(b, t, span_id, t->continued ? client_hex : NULL);
    PUT(b, ",\"name\":\"");
    put(b, method, method_len); /* a known method, or "HTTP" */
    if (route != NULL) {
        PUT(b, " ");
        put_chars(b, route, route_len);
    }
    PUT(b, "\",\"kind\":2,\"startTimeUnixNano\":");
    put_time(b, &secs, end_ns - rec->duration_ns, offset);
    PUT(b, ",\"endTimeUnixNano\":");
    put_time(b, &secs, end_ns, offset);
    PUT(b, ",\"attributes\":[");
    int first = 1;
    if (known) {
        ATTR_PLAIN(b, &first, "http.request.method", method, method_len);
    } else {
        ATTR_PLAIN(b, &first, "http.request.method", "_OTHER", 6);
        ATTR_STR(b, &first, "http.request.method_original", req->method.base, original_len);
    }
    if (route != NULL)
        ATTR_STR(b, &first, "http.route", route, route_len);
    ATTR_STR(b, &first, "url.path", req->path.base, path_len);
    ATTR_INT(b, &first, "http.response.status_code", rec->status);
    ATTR_PLAIN(b, &first, "conflux.request_id", t->request_id, t->request_id_len); /* checked: [A-Za-z0-9._:-] */
    PUT(b, "]");
    if (rec->status >= 500) {
        char msg[16] = "status ";
        msg[7] = (char)('0' + rec->status / 100 % 10);
        msg[8] = (char)('0' + rec->status / 10 % 10);
        msg[9] = (char)('0' + rec->status % 10);
        error_status(b, msg, 10);
    }
    PUT(b, "}");

    /* its upstream attempts: CLIENT, children of the request's span, each with the span id its traceparent carried */
    char parent_hex[16];
    cf_trace_hex64(parent_hex, span_id);
    for (size_t i = 0; i != rec->num_calls; ++i) {
        const cf_call_record_t *c = &rec->calls[i];
        if (c->spans == NULL || c->spans->details == NULL)
            continue;
        for (unsigned k = 0; k != c->spans->n; ++k) {
            encode_attempt(b, &secs, rec, c, c->spans->ids[k], &c->spans->details[k], parent_hex, end_ns, offset);
            ++n;
        }
    }
    b->base[b->len] = '\0'; /* as cf_buf keeps it */
    return n;
}

void cf_otlp_encode_open(cf_buf_t *b, const char *service_name)
{
    cf_buf_appends(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":");
    cf_json_write_string(b, service_name, strlen(service_name));
    cf_buf_appends(b, "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"" CF_OTLP_SCOPE "\",\"version\":");
    cf_json_write_string(b, cf_version, strlen(cf_version));
    cf_buf_appends(b, "},\"spans\":[");
}

void cf_otlp_encode_close(cf_buf_t *b)
{
    cf_buf_appends(b, "]}]}]}");
}

/* --- the request path --------------------------------------------------------------------------------------------- */

int cf_otlp_enabled(void)
{
    return __atomic_load_n(&X.enabled, __ATOMIC_RELAXED);
}

void cf_otlp_request(const cf_request_record_t *rec)
{
    struct timespec real;
    uint64_t end_ns = cf_trace_now_ns();
    clock_gettime(CLOCK_REALTIME, &real);
    int64_t offset = (int64_t)((uint64_t)real.tv_sec * 1000000000u + (uint64_t)real.tv_nsec) - (int64_t)end_ns;
    cf_spool_item_t it = cf_spool_borrow(&X.spool); /* a buffer the exporter is done with: no allocation */
    cf_buf_t frag = {it.base, 0, it.cap};
    size_t spans = 1;
    for (size_t i = 0; i != rec->num_calls; ++i)
        spans += rec->calls[i].spans != NULL ? rec->calls[i].spans->n : 0;
    cf_buf_reserve(&frag, spans * (SPAN_ROOM + 256)); /* one allocation, unless strings are long */
    size_t n = cf_otlp_encode_spans(&frag, rec, cf_trace_random64(), end_ns, offset);
    if (cf_spool_put(&X.spool, (cf_spool_item_t){frag.base, frag.len, n, frag.cap}) != 0) /* it takes the buffer */
        cf_metrics_spans(CF_METRICS_SPANS_DROPPED, n);
}

/* --- the exporter thread ------------------------------------------------------------------------------------------ */

/* The settings one batch is sent with (the exporter's copy). */
struct st_settings_t {
    uint64_t generation;
    char *url, *service_name;
    cf_fetch_url_t parsed;
    int url_ok;
    uint64_t batch, delay_ms, timeout_ms;
    SSL_CTX *ssl_ctx; /* for https://, made once */
};

static void refresh(struct st_settings_t *s)
{
    pthread_mutex_lock(&X.mutex);
    if (s->generation == X.generation) {
        pthread_mutex_unlock(&X.mutex);
        return;
    }
    s->generation = X.generation;
    free(s->url);
    free(s->service_name);
    s->url = X.url != NULL ? strdup(X.url) : NULL;
    s->service_name = strdup(X.service_name != NULL ? X.service_name : "conflux");
    s->batch = X.batch;
    s->delay_ms = X.delay_ms;
    s->timeout_ms = X.timeout_ms;
    pthread_mutex_unlock(&X.mutex);
    const char *why = NULL;
    s->url_ok = s->url != NULL && cf_fetch_parse_url(s->url, &s->parsed, &why) == 0;
    if (s->url != NULL && !s->url_ok)
        fprintf(stderr, "conflux: tracing.otlp %s: %s; spans are dropped\n", s->url, why != NULL ? why : "unusable");
    if (s->url_ok && s->parsed.is_https && s->ssl_ctx == NULL) {
        s->ssl_ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_default_verify_paths(s->ssl_ctx);
        SSL_CTX_set_verify(s->ssl_ctx, SSL_VERIFY_PEER, NULL);
    }
}

/* POSTs one batch; returns 0 when the collector took it (2xx). Says why on stderr when it did not, once per failure
 * streak, so that a collector that is down does not flood the log. */
static int post(struct st_settings_t *s, const cf_buf_t *body, uint64_t timeout_ms, int *failing)
{
    cf_fetch_request_t req = {.method = "POST",
                              .url = &s->parsed,
                              .content_type = "application/json",
                              .body = body->base,
                              .body_len = body->len,
                              .accept = "application/json",
                              .timeout_ms = timeout_ms,
                              .max_body = 64 << 10,
                              .ssl_ctx = s->ssl_ctx};
    cf_fetch_result_t res;
    int ok = cf_fetch(&req, &res) == 0 && res.status >= 200 && res.status < 300;
    if (!ok && !*failing) {
        if (res.status != 0)
            fprintf(stderr, "conflux: tracing.otlp %s: the collector answered %d; spans are dropped until it takes them\n", s->url,
                    res.status);
        else
            fprintf(stderr, "conflux: tracing.otlp %s: %s; spans are dropped until the collector answers\n", s->url, res.error);
    } else if (ok && *failing) {
        fprintf(stderr, "conflux: tracing.otlp %s: the collector takes spans again\n", s->url);
    }
    *failing = !ok;
    cf_fetch_result_free(&res);
    return ok ? 0 : -1;
}

static void *exporter_main(void *unused)
{
    cf_spool_item_t *items = malloc(sizeof(*items) * MAX_FRAGMENTS);
    struct st_settings_t s = {.generation = (uint64_t)-1};
    cf_buf_t body = CF_BUF_INIT;
    int failing = 0, stop_failed = 0;
    while (1) {
        refresh(&s);
        /* without a collector nothing is queued: sleep until a reload sets one, or the stop */
        cf_spool_take_t got = cf_spool_take(&X.spool, items, MAX_FRAGMENTS, s.batch, s.batch,
                                            s.url != NULL ? cf_mono_ns() + s.delay_ms * 1000000u : 0);
        if (got.n == 0) {
            if (got.closed)
                break;
            continue;
        }
        refresh(&s); /* a reload while it waited: the batch goes where the config says now */
        size_t spans = 0, bytes = 0;
        for (size_t i = 0; i != got.n; ++i)
            bytes += items[i].len + 1;
        cf_buf_reset(&body);
        cf_otlp_encode_open(&body, s.service_name);
        cf_buf_reserve(&body, bytes + 16);
        for (size_t i = 0; i != got.n; ++i) { /* the room is reserved above */
            if (i != 0)
                body.base[body.len++] = ',';
            memcpy(body.base + body.len, items[i].base, items[i].len);
            body.len += items[i].len;
            spans += items[i].units;
        }
        cf_spool_recycle(&X.spool, items, got.n);
        cf_otlp_encode_close(&body);
        if (!s.url_ok || (got.closed && stop_failed)) {
            cf_metrics_spans(CF_METRICS_SPANS_DROPPED, spans);
            continue;
        }
        uint64_t timeout = got.closed && s.timeout_ms > STOP_TIMEOUT_MS ? STOP_TIMEOUT_MS : s.timeout_ms;
        if (post(&s, &body, timeout, &failing) == 0) {
            cf_metrics_spans(CF_METRICS_SPANS_EXPORTED, spans);
        } else {
            cf_metrics_spans(CF_METRICS_SPANS_FAILED, spans);
            stop_failed = got.closed; /* at stop, one failure is enough: the rest is dropped without trying */
        }
    }
    cf_buf_free(&body);
    free(s.url);
    free(s.service_name);
    if (s.ssl_ctx != NULL)
        SSL_CTX_free(s.ssl_ctx);
    free(items);
    return NULL;
}

void cf_otlp_configure(const cf_config_t *c)
{
    pthread_mutex_lock(&X.mutex);
    free(X.url);
    free(X.service_name);
    X.url = c->tracing.otlp != NULL ? strdup(c->tracing.otlp) : NULL;
    X.service_name = strdup(c->tracing.service_name != NULL ? c->tracing.service_name : "conflux");
    X.batch = c->tracing.batch != 0 ? c->tracing.batch : 512;
    X.delay_ms = c->tracing.delay_ms != 0 ? c->tracing.delay_ms : 1000;
    X.timeout_ms = c->tracing.timeout_ms != 0 ? c->tracing.timeout_ms : 5000;
    ++X.generation;
    __atomic_store_n(&X.enabled, X.url != NULL && !X.stopping, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&X.mutex);
    if (X.started)
        cf_spool_poke(&X.spool, 1); /* a batch waiting for its delay is sent with the new settings */
}

int cf_otlp_start(const cf_config_t *c, char *err, size_t errlen)
{
    if (X.started)
        return 0;
    size_t queue = c->tracing.queue != 0 ? c->tracing.queue : 2048;
    /* a fragment holds at least one span: as many fragments as spans; bytes: 4 KiB a span is generous */
    if (cf_spool_init(&X.spool, queue, queue, queue * 4096) != 0) {
        snprintf(err, errlen, "tracing: no memory for the span queue");
        return -1;
    }
    cf_otlp_configure(c);
    if ((errno = cf_spool_start(&X.spool, exporter_main, NULL)) != 0) {
        snprintf(err, errlen, "tracing: cannot start the exporter thread: %s", strerror(errno));
        return -1;
    }
    X.started = 1;
    return 0;
}

void cf_otlp_stop(void)
{
    pthread_mutex_lock(&X.mutex);
    X.stopping = 1;
    __atomic_store_n(&X.enabled, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&X.mutex);
    /* An export request already under way at the stop may have up to tracing.timeout left (1 minute at most): the
     * stop does not wait that long. */
    if (cf_spool_stop(&X.spool, STOP_WAIT_S) == -1)
        fprintf(stderr, "conflux: tracing.otlp: the collector is still busy with a batch; stopping without it\n");
}
