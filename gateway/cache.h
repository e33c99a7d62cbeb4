/* The response cache of cached calls: one byte-bounded LRU per process, coalescing of identical misses, stale serving
 * (RFC 5861), and an optional memcached tier shared by several conflux processes, behind a circuit breaker. */
#ifndef CF_CACHE_H
#define CF_CACHE_H

#include <stdint.h>
#include <h2o.h>
#include <jansson.h>
#include "cf_buf.h"
#include "cf_timeouts.h"
#include "config.h"
#include "record.h"
#include "attempt.h"
#include "upstream.h"

/** The process-wide store (one per process, shared by every loop thread behind a mutex). */
typedef struct st_cf_cache_t cf_cache_t;

/** Counters since the process started (plain snapshots of atomics; bytes and entries are current values). */
typedef struct st_cf_cache_stats_t {
    uint64_t hits;      /* answered from a fresh entry (local, or memcached for the process that asked it) */
    uint64_t misses;    /* calls that sent the upstream request themselves */
    uint64_t stale;     /* answered from an expired entry (stale_while_revalidate or stale_if_error) */
    uint64_t coalesced; /* calls that waited for another call's upstream request instead of sending their own */
    uint64_t evictions; /* entries dropped to make room (not counting expiry or replacement) */
    uint64_t abandoned; /* upstream requests dropped while queued for a connection: every caller had left */
    uint64_t stores;    /* entries written to the local store */
    uint64_t bytes;     /* bytes held now by the local store: keys, parsed bodies and per-entry bookkeeping */
    uint64_t entries;   /* entries held now */
    uint64_t memcached_hits, memcached_misses, memcached_errors; /* memcached gets: found, absent, timed out/failed */
    uint64_t memcached_skipped_gets; /* lookups not sent, or given up, because the tier's breaker was open */
    uint64_t memcached_skipped_sets; /* stores not sent because the tier's breaker was not closed */
    uint64_t memcached_large_sets;   /* stores not sent because the value is over what memcached takes (1 MiB) */
    uint64_t memcached_opens;        /* times the breaker opened after lookups in a row got no answer in time */
    uint64_t memcached_waiting;      /* lookups waiting for memcached now */
    uint64_t memcached_state;        /* the breaker: 0 closed, 1 open, 2 half-open (one probe lookup let through) */
    uint64_t memcached_tier;         /* 1 when a memcached tier is configured */
} cf_cache_stats_t;

/** Fills `out` with the process's cache counters (all zero before cf_cache_create). Thread-safe; never blocks long. */
void cf_cache_stats(cf_cache_stats_t *out);

/**
 * Creates the process's cache: `memory` bytes for the local LRU (0: nothing is stored locally, misses are still
 * coalesced), and a memcached tier when `memcached_host` is not NULL (h2o's asynchronous client: its own thread; the
 * context and the tier's breaker live as long as the process). Returns the cache, which cf_cache_get() returns from
 * then on.
 */
cf_cache_t *cf_cache_create(uint64_t memory, const char *memcached_host, uint16_t memcached_port, uint64_t memcached_wait_ms);
/** The process's cache, or NULL before cf_cache_create / after cf_cache_destroy. */
cf_cache_t *cf_cache_get(void);
/** Frees every entry. Every port must have been destroyed. */
void cf_cache_destroy(cf_cache_t *c);
/** Changes the byte bound (a reload); evicts down to it at once. */
void cf_cache_set_memory(cf_cache_t *c, uint64_t memory);

/**
 * One event loop's port to the cache: where the answers for its waiters are delivered, and where it runs the flights
 * (upstream requests, memcached lookups) that its lookups start. Only the loop's thread uses it.
 */
typedef struct st_cf_cache_port_t cf_cache_port_t;

/**
 * Creates the loop's port: its receivers (answers for its waiters, memcached replies, "the tier's breaker opened") are
 * registered on `queue`, the loop's h2o_multithread queue, and its timers linked through `timeouts` (the loop's); both
 * are borrowed and must outlive the port. Call on the loop's thread.
 */
cf_cache_port_t *cf_cache_port_create(h2o_multithread_queue_t *queue, cf_timeouts_t *timeouts);
/**
 * Cancels the flights the port runs (their waiters, on any loop, get "cancelled"), delivers the answers queued for it
 * and unregisters its receivers. No lookup of this loop may be waiting any more. NULL is ignored.
 */
void cf_cache_port_destroy(cf_cache_port_t *port);

/**
 * Builds a cache key: backend, method, the final upstream path and query, and the value of every forwarded
 * Authorization and Cookie header (in the order given), each length-prefixed so no two inputs give the same key.
 */
void cf_cache_build_key(cf_buf_t *out, const char *backend, h2o_iovec_t method, h2o_iovec_t url, const h2o_header_t *headers,
                        size_t num_headers);

/**
 * Applies a response's Cache-Control (RFC 9111 5.2.2) to `*ttl_ms`: returns 0 when the response must not be stored
 * (no-store, private, no-cache, max-age=0), else 1 with *ttl_ms lowered to s-maxage (or else max-age) when smaller.
 */
int cf_cache_control_ttl(const h2o_header_t *headers, size_t num_headers, uint64_t *ttl_ms);

/**
 * What a cached call got. The body is parsed once, where it arrives (upstream or memcached), and that one document is
 * shared by the entry and every answer given from it: jansson counts references atomically, and nobody modifies a
 * document once parsed (cf_shape and cf_merge build new ones around its values).
 */
typedef struct st_cf_cache_answer_t {
    cf_cache_report_t report; /* how it was answered, for Cache-Status */
    cf_reason_t reason;       /* CF_REASON_NONE, or the upstream failure (then doc is NULL) */
    int status;               /* the stored or upstream status; 0 when none arrived */
    json_t *doc;              /* a reference the receiver owns: the parsed body of a 2xx answer; NULL when there is none
                                 or it is not JSON */
    /* for the call whose miss started the upstream request (report.state CF_CACHE_MISS, or CF_CACHE_STALE when that
     * request failed): its attempts (attempt.h); 0 for every other answer */
    unsigned attempts, hedges;
    unsigned budget_exhausted : 1, hedge_won : 1;
    const cf_spans_t *spans; /* and their span ids, valid during the callback; NULL for every other answer */
} cf_cache_answer_t;

/** Called once on the waiting port's loop; `ans` is valid during the call only, and ans->doc is the callee's. */
typedef void (*cf_cache_cb)(void *data, const cf_cache_answer_t *ans);

typedef struct st_cf_cache_wait_t cf_cache_wait_t;

/**
 * Looks `key` up for a call on the loop of `port`. A fresh entry, or an expired one within stale_while_revalidate
 * (then one background refresh starts unless one runs), answers at once: *ans is filled (ans->doc is the caller's) and
 * NULL is returned. Otherwise the call waits for the one upstream request made for the key: `req` is sent to
 * `backend` (a backend of the port's loop, with its retries and hedges; the flight takes a reference for as long as it
 * runs, so it may outlive its route table), or the one running for the key is joined, on whichever loop it runs. The returned
 * handle stays valid until `cb` has been called (on the port's loop) or cf_cache_cancel. Failed refreshes are answered from an
 * entry within stale_if_error. `req` and `policy` are copied.
 */
cf_cache_wait_t *cf_cache_fetch(cf_cache_t *c, cf_cache_port_t *port, cf_attempt_backend_t *backend, const cf_upstream_req_t *req,
                                h2o_iovec_t key, const cf_cache_policy_t *policy, cf_cache_cb cb, void *data,
                                cf_cache_answer_t *ans);

/**
 * Whether the lookup joined an upstream request another call started (coalescing), rather than starting its own: the
 * request then runs under that call's timeout, not this one's. Constant for the life of the handle.
 */
int cf_cache_wait_joined(const cf_cache_wait_t *wt);

/**
 * Stops waiting (the upstream request goes on and its answer is still stored). Returns 1 and fills *stale (stale->doc
 * is the caller's) when `stale` is not NULL and an expired entry within its stale_if_error window exists, so a call cut
 * by its deadline can use it.
 */
int cf_cache_cancel(cf_cache_wait_t *wt, cf_cache_answer_t *stale);

#endif
