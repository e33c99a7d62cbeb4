/* The gateway's runtime: per-loop workers, route tables and their references, request slots, the clock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include "cf_tcpinfo.h"
#include "metrics.h"
#include "runtime.h"

uint64_t cf_now_ns(void)
{
    return cf_trace_now_ns(); /* one clock for request times and span times */
}

/* --- request slots ------------------------------------------------------------------------------------------- */

/* over every worker: requests admitted and not yet answered (what max_inflight bounds), and not yet disposed */
static size_t inflight_process, pending_process;

size_t cf_inflight_total(void)
{
    return __atomic_load_n(&inflight_process, __ATOMIC_RELAXED);
}

size_t cf_pending_total(void)
{
    return __atomic_load_n(&pending_process, __ATOMIC_RELAXED);
}

int cf_slot_admit(cf_worker_t *w, uint64_t max_inflight)
{
    /* reserve, then check, so that two threads can never both take the last slot */
    if (__atomic_add_fetch(&inflight_process, 1, __ATOMIC_RELAXED) > max_inflight) {
        __atomic_sub_fetch(&inflight_process, 1, __ATOMIC_RELAXED);
        return -1;
    }
    __atomic_add_fetch(&w->inflight, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&pending_process, 1, __ATOMIC_RELAXED);
    return 0;
}

void cf_slot_init(cf_slot_t *s, cf_worker_t *w, h2o_req_t *req, uint64_t send_timeout_ms)
{
    *s = (cf_slot_t){.w = w, .req = req, .send_timeout_ms = send_timeout_ms, .working = 1};
}

static void on_send_timeout(h2o_timeout_entry_t *entry)
{
    cf_slot_t *s = H2O_STRUCT_FROM_MEMBER(cf_slot_t, send_timeout, entry);
    int fd = cf_watch_client_fd(s->req);
    uint64_t acked = cf_tcp_bytes_acked(fd);
    if (fd == -1)
        return;
    if (acked == UINT64_MAX || acked != s->acked) { /* the client reads, however slowly (or we cannot tell): look
                                                     * again later, as nginx's send_timeout does between two writes */
        s->acked = acked;
        cf_timeouts_link(&s->w->timeouts, s->send_timeout_ms, &s->send_timeout);
        return;
    }
    /* libh2o owns the connection: shut the socket down under it, and its own write or read error tears the
     * connection down (and disposes this request) the way a client that vanished would */
    cf_metrics_send_timeout();
    shutdown(fd, SHUT_RDWR);
}

void cf_slot_answered(cf_slot_t *s)
{
    if (s->working) {
        s->working = 0;
        __atomic_sub_fetch(&inflight_process, 1, __ATOMIC_RELAXED);
    }
    if (s->send_timeout.cb == NULL) {
        s->acked = cf_tcp_bytes_acked(cf_watch_client_fd(s->req));
        s->send_timeout.cb = on_send_timeout;
        cf_timeouts_link(&s->w->timeouts, s->send_timeout_ms, &s->send_timeout);
    }
}

void cf_slot_dispose(cf_slot_t *s)
{
    if (h2o_timeout_is_linked(&s->send_timeout))
        h2o_timeout_unlink(&s->send_timeout);
    if (s->working)
        __atomic_sub_fetch(&inflight_process, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&s->w->inflight, 1, __ATOMIC_RELAXED);
    __atomic_sub_fetch(&pending_process, 1, __ATOMIC_RELAXED);
}

/* --- route tables ------------------------------------------------------------------------------------------- */

cf_table_t *cf_table_create(cf_worker_t *w, cf_config_t *config, char *err, size_t errlen)
{
    cf_table_t *t = h2o_mem_alloc(sizeof(*t));
    memset(t, 0, sizeof(*t));
    t->refcnt = 1;
    t->worker = w;
    t->router = cf_router_new();
    for (size_t i = 0; i < config->num_routes; ++i) {
        cf_route_t *r = &config->routes[i];
        if (cf_router_add(t->router, r->pattern.src, r->methods, r, err, errlen) != 0) {
            cf_router_free(t->router);
            free(t);
            return NULL;
        }
    }
    t->upstreams = h2o_mem_alloc(sizeof(*t->upstreams) * (config->num_backends + 1));
    t->attempts = h2o_mem_alloc(sizeof(*t->attempts) * (config->num_backends + 1));
    for (size_t i = 0; i < config->num_backends; ++i) {
        const cf_backend_t *b = &config->backends[i];
        t->upstreams[i] = cf_upstream_create(w->loop, &w->timeouts, &w->getaddr_receiver, b);
        /* max_connections is per process: each of the threads' tables gets its share (none set: no cap) */
        if (config->threads > 1 && b->max_connections != 0) {
            cf_upstream_set_max_connections(t->upstreams[i],
                                            (size_t)((b->max_connections + config->threads - 1) / config->threads));
        }
        t->attempts[i] = cf_attempt_backend_create(&w->timeouts, t->upstreams[i], b);
    }
    t->config = config;
    return t;
}

void cf_table_retain(cf_table_t *t)
{
    ++t->refcnt;
}

void cf_table_release(cf_table_t *t)
{
    if (--t->refcnt != 0)
        return;
    for (size_t i = 0; i < t->config->num_backends; ++i) {
        cf_attempt_backend_release(t->attempts[i]);
        cf_upstream_release(t->upstreams[i]);
    }
    free(t->attempts);
    free(t->upstreams);
    cf_router_free(t->router);
    cf_config_free(t->config);
    free(t);
}

/* --- workers ------------------------------------------------------------------------------------------------ */

int cf_worker_init(cf_worker_t *w, h2o_context_t *ctx, cf_config_t *config, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    w->ctx = ctx;
    w->loop = ctx->loop;
    cf_timeouts_init(&w->timeouts, w->loop);
    h2o_multithread_register_receiver(ctx->queue, &w->getaddr_receiver, h2o_hostinfo_getaddr_receiver);
    w->cache_port = cf_cache_port_create(ctx->queue, &w->timeouts);
    w->jwt_cache = cf_jwt_cache_new(CF_AUTH_CACHE_ENTRIES);
    if ((w->watches = cf_watch_set_create(w->loop, &w->timeouts)) == NULL) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        return -1;
    }
    if ((w->table = cf_table_create(w, config, err, errlen)) == NULL)
        return -1;
    return 0;
}

void cf_worker_swap(cf_worker_t *w, cf_table_t *t)
{
    cf_table_t *old = w->table;
    w->table = t;
    cf_table_release(old);
}

void cf_worker_dispose(cf_worker_t *w)
{
    if (w->table != NULL)
        cf_table_release(w->table);
    w->table = NULL;
    cf_cache_port_destroy(w->cache_port); /* cancels its flights: they hold references to upstreams */
    w->cache_port = NULL;
    h2o_multithread_unregister_receiver(w->ctx->queue, &w->getaddr_receiver);
    cf_timeouts_dispose(&w->timeouts);
    cf_watch_set_destroy(w->watches);
    w->watches = NULL;
    cf_jwt_cache_free(w->jwt_cache); /* requests still alive hold references to the claims they use */
    w->jwt_cache = NULL;
}
