/* The gateway's runtime: route tables, per-loop workers, the catch-all handler, client-disconnect watches. */
#include <errno.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cache.h"
#include "cf_tcpinfo.h"
#include "gateway.h"
#include "jsonout.h"
#include "metrics.h"
#include "observe.h"

uint64_t cf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int watch_init(cf_worker_t *w);

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

static h2o_socket_t *socket_of(h2o_req_t *req);
static int socket_fd(h2o_socket_t *sock);

void cf_slot_init(cf_slot_t *s, cf_worker_t *w, h2o_req_t *req, uint64_t send_timeout_ms)
{
    *s = (cf_slot_t){.w = w, .req = req, .send_timeout_ms = send_timeout_ms, .working = 1};
}

static void on_send_timeout(h2o_timeout_entry_t *entry)
{
    cf_slot_t *s = H2O_STRUCT_FROM_MEMBER(cf_slot_t, send_timeout, entry);
    h2o_socket_t *sock = socket_of(s->req);
    int fd = sock != NULL ? socket_fd(sock) : -1;
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
        h2o_socket_t *sock = socket_of(s->req);
        s->acked = cf_tcp_bytes_acked(sock != NULL ? socket_fd(sock) : -1);
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
    for (size_t i = 0; i < config->num_backends; ++i) {
        const cf_backend_t *b = &config->backends[i];
        t->upstreams[i] = cf_upstream_create(w->loop, &w->timeouts, &w->getaddr_receiver, b);
        /* max_connections is per process: each of the threads' tables gets its share */
        if (config->threads > 1) {
            cf_upstream_set_max_connections(t->upstreams[i],
                                            (size_t)((b->max_connections + config->threads - 1) / config->threads));
        }
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
    for (size_t i = 0; i < t->config->num_backends; ++i)
        cf_upstream_destroy(t->upstreams[i]);
    free(t->upstreams);
    cf_router_free(t->router);
    cf_config_free(t->config);
    free(t);
}

int cf_worker_init(cf_worker_t *w, h2o_context_t *ctx, cf_config_t *config, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    w->ctx = ctx;
    w->loop = ctx->loop;
    cf_timeouts_init(&w->timeouts, w->loop);
    h2o_multithread_register_receiver(ctx->queue, &w->getaddr_receiver, h2o_hostinfo_getaddr_receiver);
    cf_cache_attach(w);
    if (watch_init(w) != 0) {
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
    cf_cache_detach(w);
    h2o_multithread_unregister_receiver(w->ctx->queue, &w->getaddr_receiver);
    cf_timeouts_dispose(&w->timeouts);
    if (w->watch_sock != NULL)
        h2o_socket_close(w->watch_sock); /* closes watch_epfd */
    w->watch_sock = NULL;
}

/* --- client disconnect watches ------------------------------------------------------------------------------- */

/*
 * h2o 2.2.5's HTTP/1 stops reading a connection while its request is handled, so a client that leaves is only noticed
 * when the answer is written. Reading the socket ourselves is not safe either: req->path, the headers and the entity
 * point into sock->input, which a read may reallocate. So the worker keeps a second epoll set in which client sockets
 * are registered for EPOLLRDHUP only (never EPOLLIN: pipelined bytes stay untouched for h2o); that set's own fd sits
 * on the loop as a DONT_READ socket, which h2o reports as readable without reading it, like a listener.
 */

/* h2o 2.2.5 has no accessor for a socket's fd; its evloop socket starts with {h2o_socket_t super; int fd;}.
 * watch_init checks this layout on a socket whose fd it knows and turns watching off if it does not hold. */
struct st_evloop_socket_prefix_t {
    h2o_socket_t super;
    int fd;
};

static int socket_fd(h2o_socket_t *sock)
{
    return ((struct st_evloop_socket_prefix_t *)sock)->fd;
}

/* the socket of a request's connection (HTTP/1 or HTTP/2), or NULL */
static h2o_socket_t *socket_of(h2o_req_t *req)
{
    return req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
}

static void on_watch_ready(h2o_socket_t *sock, const char *err)
{
    cf_worker_t *w = sock->data;
    struct epoll_event events[64];
    int n;
    while ((n = epoll_wait(w->watch_epfd, events, sizeof(events) / sizeof(events[0]), 0)) > 0) {
        for (int i = 0; i < n; ++i) {
            cf_watch_t *watch = events[i].data.ptr;
            cf_watch_stop(watch);
            watch->on_gone(watch);
        }
    }
}

static int watch_init(cf_worker_t *w)
{
    if ((w->watch_epfd = epoll_create1(EPOLL_CLOEXEC)) == -1)
        return -1;
    w->watch_sock = h2o_evloop_socket_create(w->loop, w->watch_epfd, H2O_SOCKET_FLAG_DONT_READ);
    w->watch_sock->data = w;
    if (socket_fd(w->watch_sock) != w->watch_epfd) {
        fprintf(stderr, "conflux: warning: unexpected libh2o socket layout; client disconnects are noticed late\n");
        h2o_socket_close(w->watch_sock);
        w->watch_sock = NULL;
        return 0;
    }
    h2o_socket_read_start(w->watch_sock, on_watch_ready);
    return 0;
}

static void on_watch_arm(h2o_timeout_entry_t *entry)
{
    cf_watch_t *watch = H2O_STRUCT_FROM_MEMBER(cf_watch_t, arm, entry);
    h2o_socket_t *sock = watch->req->conn->callbacks->get_socket(watch->req->conn);
    int fd = sock != NULL ? socket_fd(sock) : -1;
    /* a peer that hung up already is reported at once: epoll checks readiness when a descriptor is added */
    struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLET, .data.ptr = watch};
    if (fd != -1 && epoll_ctl(watch->w->watch_epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
        watch->fd = fd;
}

int cf_watch_start(cf_worker_t *w, h2o_req_t *req, cf_watch_t *watch)
{
    watch->w = w;
    watch->req = req;
    watch->fd = -1;
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL || w->watch_sock == NULL)
        return -1; /* HTTP/2: h2o disposes a reset stream's request itself */
    watch->arm.cb = on_watch_arm;
    cf_timeouts_link(&w->timeouts, CF_WATCH_DELAY_MS, &watch->arm);
    return 0;
}

void cf_watch_stop(cf_watch_t *watch)
{
    if (h2o_timeout_is_linked(&watch->arm))
        h2o_timeout_unlink(&watch->arm);
    if (watch->fd == -1)
        return;
    epoll_ctl(watch->w->watch_epfd, EPOLL_CTL_DEL, watch->fd, NULL);
    watch->fd = -1;
}

/* --- responses ------------------------------------------------------------------------------------------------ */

void cf_send_json(h2o_req_t *req, int status, json_t *doc)
{
    cf_buf_t text = CF_BUF_INIT;
    if (doc == NULL) { /* json_pack refuses text that is not UTF-8: never crash on what a client sent */
        status = 500;
        cf_buf_appends(&text, "{\"error\":\"internal\",\"message\":\"the answer could not be encoded\"}");
    } else {
        cf_json_write(&text, doc);
    }
    req->res.status = status;
    req->res.reason = cf_http_reason(status);
    req->res.content_length = text.len;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_send_inline(req, text.base, text.len);
    cf_buf_free(&text);
}

void cf_send_error(h2o_req_t *req, int status, const char *code, const char *message)
{
    json_t *doc = json_pack("{s:s, s:s}", "error", code, "message", message);
    if (doc == NULL) /* the message quotes client bytes that are not UTF-8: jansson refuses them */
        doc = json_pack("{s:s, s:s}", "error", code, "message", "(the message quotes bytes that are not UTF-8)");
    cf_send_json(req, status, doc);
    json_decref(doc);
}

void cf_send_client_gone(h2o_req_t *req)
{
    cf_send_error(req, 499, "client_closed", "the client closed the connection");
}

/* --- the handler ---------------------------------------------------------------------------------------------- */

/* Answers a request that reached no route, and reports it like any other. */
static void reject(cf_worker_t *w, h2o_req_t *req, uint64_t start_ns, int status, const char *code, const char *message)
{
    cf_request_record_t rec = {req, NULL, status, cf_now_ns() - start_ns, NULL, 0};
    cf_observe_request(w, &rec);
    cf_send_error(req, status, code, message);
}

int cf_gateway_precheck(cf_worker_t *w, const char *method, size_t mlen, const char *path, size_t plen, char *allow,
                        size_t allowlen)
{
    char small[1024], *scratch = plen <= sizeof(small) ? small : h2o_mem_alloc(plen);
    cf_route_match_t m;
    int status = 0;
    switch (cf_router_match(w->table->router, cf_method_bit(method, mlen), path, plen, scratch, &m)) {
    case CF_ROUTE_OK:
        break;
    case CF_ROUTE_NOT_FOUND:
        status = 404;
        break;
    case CF_ROUTE_BAD_METHOD:
        cf_methods_format(m.allowed, allow, allowlen);
        status = 405;
        break;
    default:
        status = 400;
        break;
    }
    if (scratch != small)
        free(scratch);
    return status;
}

int cf_gateway_handle(cf_worker_t *w, h2o_req_t *req)
{
    cf_table_t *t = w->table;
    uint64_t start_ns = cf_now_ns();
    char msg[256];

    /* h2o 2.2.5 accepts request heads up to ~408 KiB (H2O_MAX_REQLEN); nginx's default is 8 KiB a line */
    size_t total = req->path.len;
    for (size_t i = 0; i != req->headers.size; ++i) {
        size_t len = req->headers.entries[i].name->len + req->headers.entries[i].value.len;
        total += len;
        if (len > CF_MAX_HEADER_FIELD || total > CF_MAX_HEADER_BLOCK) {
            req->http1_is_persistent = 0;
            reject(w, req, start_ns, 431, "headers_too_large", "request header fields too large");
            return 0;
        }
    }

    unsigned method = cf_method_bit(req->method.base, req->method.len);
    size_t pathlen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    char *scratch = h2o_mem_alloc_pool(&req->pool, pathlen + 1);
    cf_route_match_t m;
    switch (cf_router_match(t->router, method, req->path.base, pathlen, scratch, &m)) {
    case CF_ROUTE_OK:
        break;
    case CF_ROUTE_NOT_FOUND:
        snprintf(msg, sizeof(msg), "no route for %.*s", (int)(pathlen < 200 ? pathlen : 200), req->path.base);
        reject(w, req, start_ns, 404, "not_found", msg);
        return 0;
    case CF_ROUTE_BAD_METHOD: {
        char allow[128];
        cf_methods_format(m.allowed, allow, sizeof(allow));
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, allow, strlen(allow));
        snprintf(msg, sizeof(msg), "method not allowed; allowed: %s", allow);
        reject(w, req, start_ns, 405, "method_not_allowed", msg);
        return 0;
    }
    default:
        reject(w, req, start_ns, 400, "bad_request", "malformed request path");
        return 0;
    }

    /* max_inflight bounds the whole process, whichever thread accepted the connection: reserve a slot, then check,
     * so that two threads can never both take the last one */
    if (__atomic_add_fetch(&inflight_process, 1, __ATOMIC_RELAXED) > t->config->limits.max_inflight) {
        __atomic_sub_fetch(&inflight_process, 1, __ATOMIC_RELAXED);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        reject(w, req, start_ns, 503, "overloaded", "too many requests in flight; retry shortly");
        return 0;
    }
    __atomic_add_fetch(&w->inflight, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&pending_process, 1, __ATOMIC_RELAXED);

    const cf_route_t *route = m.data;
    cf_table_retain(t);
    if (route->proxy != NULL)
        cf_proxy_start(w, t, route, req, &m);
    else
        cf_fanout_start(w, t, route, req, &m);
    return 0;
}
