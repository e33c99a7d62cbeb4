/* The process-wide state of each backend server (a peer, in nginx's words): its circuit breaker and its health. */
#ifndef CF_PEERS_H
#define CF_PEERS_H

#include <stdint.h>
#include "breaker.h"
#include "config.h"

/**
 * One server of one backend, as every event loop of the process sees it. The breaker and the health are per process,
 * not per loop: a server that fails five times in a row is out of every loop's rotation at once, and the operator sees
 * one state per server in /metrics. A peer is found by backend name, server (URL, and address for one address of a
 * name) and policy, so a reload that keeps them keeps the state (a server known to be down stays out: each loop builds
 * its new table before it drops the old one). A peer lives while some upstream runtime holds it.
 *
 * The request path reads a peer without a lock while its breaker is closed and it is healthy (atomic loads); a lock
 * is taken only to change the breaker's state or to let a probe through.
 */
typedef struct st_cf_peer_t cf_peer_t;

/** What a peer is found by: whose server it is, and the policies it runs. */
typedef struct st_cf_peer_key_t {
    const char *backend;         /* the backend's name */
    const char *server;          /* the server's URL as written, and " (ADDRESS)" for one address of a host name */
    cf_breaker_policy_t breaker; /* failures 0: none */
    uint64_t health_interval_ms; /* 0: no health checks */
    uint64_t healthy, unhealthy;
} cf_peer_key_t;

/** The key of `backend`'s servers (`server` left NULL): its name and policies, borrowed. */
cf_peer_key_t cf_peer_key(const cf_backend_t *backend);

/**
 * The peer of that key, created on first use; NULL when the key has neither a breaker nor health checks (nothing to
 * keep). Takes a reference, which cf_peer_release drops: /metrics shows the peers some live upstream runtime uses.
 * Thread-safe.
 */
cf_peer_t *cf_peer_get(const cf_peer_key_t *key);
/** Drops a reference taken by cf_peer_get (NULL is ignored). Thread-safe. */
void cf_peer_release(cf_peer_t *p);

/** Milliseconds of the monotonic clock that every peer's times are in. */
int64_t cf_peer_now_ms(void);

/**
 * Whether an attempt at `now_ms` may go to the peer: CF_BREAKER_PASS, CF_BREAKER_PROBE (the one attempt let through
 * after the open period: report it with probe = 1), or CF_BREAKER_SKIP (its breaker is open, or health checks took it
 * out: send nothing). Thread-safe; lock-free while closed and healthy, and while open until a probe is due.
 */
cf_breaker_admit_t cf_peer_admit(cf_peer_t *p, int64_t now_ms);
/**
 * Reports an attempt's outcome to the peer's breaker (`ok` non-zero: an answer that is not a 5xx; a transport error,
 * a timeout or a 5xx is a failure). Logs when the breaker opens from closed and when it closes. Thread-safe;
 * lock-free for a success while closed with no failure counted.
 */
void cf_peer_report(cf_peer_t *p, int64_t now_ms, int probe, int ok);

/**
 * Health checks: claims the check of the peer that is due at `now_ms`, if it is, and schedules the next one an
 * interval later. Every loop that runs the backend asks; exactly one of them gets each check. Returns 1 when the
 * caller is to run it.
 */
int cf_peer_claim_check(cf_peer_t *p, int64_t now_ms);
/** Reports a health check's outcome; the peer goes out after `unhealthy` failures in a row, and back after `healthy`
 * passes in a row (it starts healthy). Logs each change. Thread-safe. */
void cf_peer_health_report(cf_peer_t *p, int ok);

/** What /metrics shows of a peer. */
typedef struct st_cf_peer_view_t {
    const char *backend, *server;   /* the backend's name, the server's URL as written */
    int has_breaker, breaker_state; /* CF_BREAKER_* */
    uint64_t opens;                 /* times its breaker opened from closed */
    int has_health, healthy;
} cf_peer_view_t;

/** Calls `cb` for each peer in use (some live upstream runtime holds it), under the registry's lock: `cb` may not call
 * back into this module. */
void cf_peers_foreach(void (*cb)(const cf_peer_view_t *view, void *data), void *data);

#endif
