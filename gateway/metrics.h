/* Process-wide Prometheus metrics: lock-free counters and histograms, rendered as text for the admin /metrics. */
#ifndef CF_METRICS_H
#define CF_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "cf_buf.h"
#include "record.h"

/** Upper bounds of the latency histogram buckets, in seconds (then +Inf). */
#define CF_METRICS_BUCKETS                                                                                                         \
    {                                                                                                                              \
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10                                                     \
    }
#define CF_METRICS_NUM_BUCKETS 13

/**
 * Counts one finished request: requests by route and status, the request's latency, each call's latency, upstream
 * results by backend and result, cache results by call. Thread-safe and lock-free once the series of a route, call
 * and backend exist (each is created once, under a mutex, and cached in the config struct). Never blocks.
 */
void cf_metrics_observe(const cf_request_record_t *rec);
/** A request on `route`, which has a rate limit, was judged by it: `limited` when refused (a 429); `keys`: the keys its
 * table holds now. Any thread. */
void cf_metrics_rate_limit(const cf_route_t *route, int limited, size_t keys);

/** Counts a config reload attempt: `ok` non-zero when the new config went live. */
void cf_metrics_reload(int ok);

/** Counts an access-log line dropped because the writer's queue was full. */
void cf_metrics_log_dropped(void);

/** What became of exported spans (conflux_trace_spans_total's result label). */
typedef enum en_cf_metrics_spans_t {
    CF_METRICS_SPANS_EXPORTED, /* the collector took them (2xx) */
    CF_METRICS_SPANS_DROPPED,  /* the queue was full, or no collector was usable: never sent */
    CF_METRICS_SPANS_FAILED,   /* their batch failed: no answer in time, or not a 2xx */
    CF_METRICS_NUM_SPANS
} cf_metrics_spans_t;

/** Counts `n` spans of the OTLP export. Any thread. */
void cf_metrics_spans(cf_metrics_spans_t what, uint64_t n);

/** Counts an HTTP/1 connection refused by the framing guard, or a 100-continue refused early; `reason` is a static
 * string (a bounded set of labels). */
void cf_metrics_http1_refused(const char *reason);
/** Counts an HTTP/2 connection closed with GOAWAY by conflux; `reason` is a static string. */
void cf_metrics_http2_goaway(const char *reason);
/** Counts a client connection shut down by the send timeout. */
void cf_metrics_send_timeout(void);
/** Counts a pause of accepting; `reason` is a static string. */
void cf_metrics_accept_paused(const char *reason);
/** Appends the client connection gauge and the three families above. */
void cf_metrics_render_edge(cf_buf_t *out, size_t client_connections);

/**
 * Appends conflux_memory_heap_bytes: glibc's count of the heap bytes allocated (state "in_use", mmapped blocks
 * included) and of those it holds free (state "free"). RSS beyond "in_use" is the allocator's, kept from the last
 * burst. Takes each malloc arena's lock for as long as glibc takes to walk its free lists.
 */
void cf_metrics_render_memory(cf_buf_t *out);

struct st_cf_cache_stats_t;

/**
 * Appends every metric in the Prometheus text exposition format (version 0.0.4) to `out`. `inflight` is the value
 * of the in-flight gauge (the caller sums it over the workers); `cache` the response cache's counters (cache.h), or
 * NULL to leave the process-wide cache families out.
 */
void cf_metrics_render(cf_buf_t *out, size_t inflight, const struct st_cf_cache_stats_t *cache);

/** Appends `s` as a Prometheus label value (without the quotes): backslash, double quote and newline escaped. */
void cf_metrics_escape_label(cf_buf_t *out, const char *s);

#endif
