/* A call's attempts at one backend: retries within a budget and the call's time, hedged copies, the first answer wins. */
#ifndef CF_ATTEMPT_H
#define CF_ATTEMPT_H

#include <stdint.h>
#include <h2o.h>
#include "cf_timeouts.h"
#include "config.h"
#include "upstream.h"

/** Exchanges one call may have running at once: its attempt and up to max_hedges (at most 3) copies. */
#define CF_ATTEMPT_MAX_RUNNING 4
/** hedge_after: pNN uses the backend's recent latencies once it has this many; hedge_fallback before. */
#define CF_HEDGE_MIN_SAMPLES 100
/** The shortest hedge delay a percentile gives. */
#define CF_HEDGE_FLOOR_MS 10

/**
 * One backend's attempt state on one event loop: its policy (copied from the config), the retry budget's counts and
 * the window of recent successful latencies that hedge_after: pNN reads. It holds a reference to the backend's
 * upstream. Counted without atomics: it belongs to its loop's thread.
 */
typedef struct st_cf_attempt_backend_t cf_attempt_backend_t;

/**
 * Creates the state of `backend` over `u` (retained), with one reference; timers are linked through `timeouts` (the
 * loop's, borrowed; it must outlive every reference). The backend is read during the call only.
 */
cf_attempt_backend_t *cf_attempt_backend_create(cf_timeouts_t *timeouts, cf_upstream_t *u, const cf_backend_t *backend);
void cf_attempt_backend_retain(cf_attempt_backend_t *ab);
/** Drops a reference; the last one drops the upstream's. No call may be running on it then. */
void cf_attempt_backend_release(cf_attempt_backend_t *ab);

typedef struct st_cf_attempt_t cf_attempt_t;

/** One exchange of a call (private to attempt.c). */
typedef struct st_cf_attempt_slot_t {
    cf_attempt_t *a;
    cf_exchange_t *x;   /* NULL: free */
    uint64_t start;     /* loop ms */
    signed char span;   /* its span in a->spans, -1: none kept */
    unsigned extra : 1; /* holds one of the budget's extra attempts */
    unsigned hedge : 1; /* a copy of a slow attempt */
} cf_attempt_slot_t;

/**
 * Called once with the outcome of the call: the answer that won, or the last attempt's failure. `res` is valid during
 * the call only; `a` may be reused or freed from inside it. Always from the event loop, never from inside
 * cf_attempt_start or cf_attempt_cancel.
 */
typedef void (*cf_attempt_cb)(cf_attempt_t *a, const cf_upstream_res_t *res);

/**
 * One call's attempts, embedded in the caller's state (find it back with H2O_STRUCT_FROM_MEMBER in the callback). The
 * first five members are the caller's to read once the callback has run (or after cf_attempt_cancel); the rest is
 * private.
 */
struct st_cf_attempt_t {
    unsigned attempts;             /* exchanges started: the first, the retries and the hedges */
    unsigned hedges;               /* copies sent because an attempt was slow */
    unsigned budget_exhausted : 1; /* a retry or a hedge was not sent because the retry budget was spent */
    unsigned hedge_won : 1;        /* the answer came from a copy, not from the attempt it copied */
    cf_spans_t spans;              /* its exchanges' span ids, when the request had a trace (none: spans.n 0); their
                                      details too when the trace is sampled (in req->span_pool) */
    /* private */
    cf_attempt_backend_t *ab;
    cf_attempt_cb cb;
    struct st_cf_attempt_req_t *copy; /* the request again, for retries and hedges; NULL when neither can happen */
    cf_attempt_slot_t slots[CF_ATTEMPT_MAX_RUNNING];
    h2o_timeout_entry_t retry_timer, hedge_timer;
    uint64_t call_end; /* loop ms: the call's timeout, which every attempt ends by */
    uint64_t end_at;   /* loop ms from which no attempt starts: call_end, or the deadline if earlier */
    unsigned retries_left;
    unsigned running;       /* slots with an exchange */
    unsigned waiting_extra; /* a retry waiting for its backoff holds an extra attempt of the budget */
    size_t last_server;     /* 1 + index of the server of the latest attempt; 0: none */
    unsigned counted : 1;   /* counted among the backend's calls in flight */
    unsigned may_hedge : 1; /* GET or HEAD: copies may run at once (never two PUTs or DELETEs in flight together) */
};

/**
 * Starts a call (`a` need not be initialised; a finished or cancelled one may be started again): its first attempt at
 * once (`req` is copied), then retries and hedges as the backend's policy allows
 * (idempotent requests only). Every attempt ends by the call's timeout (req->timeout_ms, else the backend's), counted
 * from now, and none starts after it nor after `deadline` (loop milliseconds, h2o_now; 0: none), the route's.
 */
void cf_attempt_start(cf_attempt_t *a, cf_attempt_backend_t *ab, const cf_upstream_req_t *req, uint64_t deadline, cf_attempt_cb cb);
/** Whether a call started and its callback has not run nor has it been cancelled. */
static inline int cf_attempt_running(const cf_attempt_t *a)
{
    return a->cb != NULL;
}
/**
 * Whether a running call has nothing under way but exchanges that wait in their upstream's queue for a connection:
 * nothing of it has been sent, so cancelling it costs the backend nothing.
 */
int cf_attempt_queued(const cf_attempt_t *a);
/** Stops a running call: every exchange is cancelled (its connection closed), timers unlinked, no callback follows. */
void cf_attempt_cancel(cf_attempt_t *a);

/**
 * Copies `src` into `pool`: method, path, authority, headers (names too), body and trace, so that the copy outlives the
 * request it came from.
 */
void cf_attempt_req_copy(h2o_mem_pool_t *pool, cf_upstream_req_t *dst, const cf_upstream_req_t *src);

#endif
