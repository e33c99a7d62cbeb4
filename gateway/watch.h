/* The client's side of a request: a client that goes away while conflux works is noticed at once (the only code that
 * touches epoll), and the socket of a request's connection is found for the send timeout. */
#ifndef CF_WATCH_H
#define CF_WATCH_H

#include <h2o.h>
#include "cf_timeouts.h"

/** A request is watched for its client going away only once it has run this long: most answers are sent sooner. */
#define CF_WATCH_DELAY_MS 25

/** One event loop's watches (its own epoll set on the loop). Only the loop's thread touches it. */
typedef struct st_cf_watch_set_t cf_watch_set_t;

/**
 * Creates the loop's watch set; `timeouts` (the loop's, borrowed) arms the watches. Returns NULL when epoll_create1
 * fails (errno set). When libh2o's socket layout is not the one expected, the set watches nothing (a warning says so):
 * disconnects are then noticed when the answer is written, as h2o does.
 */
cf_watch_set_t *cf_watch_set_create(h2o_loop_t *loop, cf_timeouts_t *timeouts);
/** Closes the set; no watch may be running on it. */
void cf_watch_set_destroy(cf_watch_set_t *set);

/**
 * Watches an HTTP/1 client's socket while its request is processed (h2o 2.2.5 stops reading it), so that a client
 * that goes away is noticed at once: `on_gone(watch)` is then called once. The watch is armed CF_WATCH_DELAY_MS after
 * cf_watch_start (two epoll_ctl calls that a fast request need not pay; a hang-up before then is reported when it
 * arms). The struct must start zeroed with on_gone set. Returns 0, or -1 when the connection cannot be watched
 * (HTTP/2: h2o itself disposes a reset stream's request).
 */
typedef struct st_cf_watch_t {
    cf_watch_set_t *set;
    h2o_req_t *req;
    int fd;                  /* registered in the set; -1 when not */
    h2o_timeout_entry_t arm; /* linked until the watch is armed */
    void (*on_gone)(struct st_cf_watch_t *watch);
} cf_watch_t;
int cf_watch_start(cf_watch_set_t *set, h2o_req_t *req, cf_watch_t *watch);
/** Stops watching (whether armed or not); safe to call more than once. */
void cf_watch_stop(cf_watch_t *watch);

/** The fd of the socket of a request's connection (HTTP/1 or HTTP/2), or -1 when it has none or it is not known. */
int cf_watch_client_fd(h2o_req_t *req);

#endif
