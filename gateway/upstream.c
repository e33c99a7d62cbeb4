/* One HTTP/1.1 exchange with a backend: per-server idle connection lists, a connection cap with a FIFO queue, deadlines. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <h2o.h>
#include <h2o/socketpool.h>
#include "cf_http.h"
#include "cf_h1resp.h"
#include "peers.h"
#include "tls.h"
#include "upstream.h"

/*
 * How the pieces fit (h2o 2.2.5):
 *
 * - Keep-alive connections are pooled here, not in h2o_socketpool_t. h2o 2.2.5's pool takes a returned socket off the
 *   event loop (h2o_socket_export: epoll_ctl DEL and fcntl) and puts it back on when handing it out again
 *   (h2o_socket_import: epoll_ctl ADD and fcntl, after a recv(MSG_PEEK) liveness probe that fails with EAGAIN). That
 *   cost five syscalls per reused connection, half of conflux's syscalls per request under load. Instead
 *   each server keeps a LIFO list of idle h2o_socket_t that stay on the loop, still polled for reading: a read event
 *   on an idle socket (EOF, an error, or bytes nobody asked for) closes it and drops it from the list, and an idle
 *   timer closes it after CF_UPSTREAM_POOL_IDLE_MS. A new exchange takes the most recently used idle socket and
 *   writes its request at once; since the socket was never unpolled, reading it again changes nothing in epoll.
 * - New connections still come from h2o_socketpool_connect (asynchronous name resolution through the getaddr
 *   receiver, numeric addresses without it), but no socket is ever returned to that pool: its idle list stays empty,
 *   so it never probes nor imports. A fresh connect can fail synchronously but never succeeds synchronously.
 * - The backend's max_connections caps the connections of this runtime: `in_use` counts exchanges that own a
 *   connection (connecting or connected), `num_idle` the idle ones; an exchange that needs a new connection while
 *   in_use + num_idle is at the cap first closes the oldest idle connection of some other server, and
 *   exchanges wait in a FIFO queue while in_use is at the cap. Slots are given back when the result is delivered.
 * - The HTTP/1.1 exchange itself is driven here on the h2o_socket, not with h2o_http1client: in 2.2.5 that client
 *   aborts the whole process (a failed assert in on_error_before_head) when an HTTP/1.1 upstream sends an invalid
 *   Content-Length or an unknown Transfer-Encoding, and it has no bound on the size of a response head, takes a
 *   close right after a complete chunk as the end of a chunked body, and would pool the socket after a 101. The
 *   response is parsed by common/cf_h1resp.c (a pure parser: head, framing, chunked decoding, limits); this file feeds it the
 *   socket's bytes and acts on its events. A connection becomes idle only after a complete response that allows
 *   keep-alive with no byte beyond it; after any error, timeout or cancel it is closed.
 * - Server choice is round robin. With a circuit_breaker or health checks, each server has a peer (peers.h: its state
 *   is the process's, shared by every loop): a server whose peer says skip (breaker open, or taken out by health
 *   checks) gets no attempt and the turn passes to the next; when every server says skip, the exchange fails with
 *   circuit_open before any connection is made. Each attempt's outcome goes to its server's peer when the exchange
 *   ends (a cancelled exchange reports nothing: a probe that never reports lets another through one period later).
 * - Every exchange has its own deadline timer (from cf_upstream_start to the last body byte, queueing included) and a
 *   connect timer: a trickling server cannot hold an exchange past its deadline.
 * - Results are never delivered from inside socket callbacks, cf_upstream_start or cf_upstream_cancel: an exchange
 *   that ends links an entry on a zero-delay timer and the user callback runs from there. That makes it safe for the
 *   callback to start, cancel, or (once nothing is left) destroy the upstream.
 * - The h2o_timeout_t objects live in a small per-loop table keyed by milliseconds that is never shrunk while the loop
 *   runs: disposing a timeout from inside the loop's timeout pass would be a use-after-free in h2o's evloop.
 */

/* Idle pooled connections are closed after this long. Shorter than the usual upstream keep-alive timeouts (nginx 75s,
 * Apache 5s, Node 5s, h2o 10s) so that we rarely race a server closing an idle connection as we reuse it. */
#define CF_UPSTREAM_POOL_IDLE_MS 2000

/* --- structures -------------------------------------------------------------------------------------------------- */

/* A server as configured: what every entry of the rotation made from it shares, and its name's resolution. */
struct st_upstream_origin_t {
    cf_upstream_t *u;
    char *url;  /* as written (malloc'ed): peers and logs name the server by it */
    char *host; /* to connect to or resolve (malloc'ed) */
    uint16_t port;
    int is_name;                         /* host is a name, not an IP address: re-resolved every resolve_every */
    h2o_iovec_t hostport;                /* default Host header value (malloc'ed) */
    h2o_iovec_t base_path;               /* "/prefix" prepended to every path (malloc'ed); base NULL when the server has none */
    int tls;                             /* https:// */
    SSL_CTX *ssl_ctx;                    /* https://: verifies the server; NULL when plain, or when it could not be built */
    char *tls_name;                      /* https://: the name sent in SNI and checked in the certificate (malloc'ed) */
    h2o_hostinfo_getaddr_req_t *getaddr; /* a resolution in flight */
    h2o_timeout_entry_t resolve_timer;   /* the next resolution */
};

/* An entry of the rotation: a configured server, connected to by its host, or one address of its name. */
struct st_upstream_server_t {
    struct st_upstream_origin_t *origin;
    h2o_socketpool_t pool; /* only opens new connections (resolution, connect); never holds idle ones */
    h2o_linklist_t idle;   /* of struct st_upstream_idle_t.link, most recently used first */
    h2o_iovec_t hostport;  /* the origin's (borrowed), as are the four below */
    h2o_iovec_t base_path;
    int tls;
    SSL_CTX *ssl_ctx;
    char *tls_name;
    struct sockaddr_storage addr; /* one address of the origin's name; addrlen 0: connects by the origin's host */
    socklen_t addrlen;
    cf_peer_t *peer;      /* its breaker and health (a reference); NULL when the backend has neither */
    cf_exchange_t *check; /* its health check in flight on this loop, if any */
    size_t busy;          /* exchanges on it (their `server`) */
    int retired;          /* no longer an address of its name: out of the rotation, freed once nothing uses it */
    int quiet;            /* retired, and unused at the last sweep */
};

struct st_cf_upstream_t {
    size_t refcnt; /* its loop's thread only */
    h2o_loop_t *loop;
    cf_timeouts_t *timeouts;                 /* the loop's, shared with the rest of the worker */
    uint64_t timeout_ms, connect_timeout_ms; /* the backend's defaults, copied: the config may go first */
    h2o_multithread_receiver_t *getaddr_receiver;
    struct st_upstream_origin_t *origins; /* the configured servers */
    size_t num_origins;
    struct st_upstream_server_t **servers; /* the rotation (each malloc'ed) */
    size_t num_servers, cap_servers;
    struct st_upstream_server_t **retired; /* out of the rotation, still in use */
    size_t num_retired;
    size_t next_server;     /* round robin */
    int guarded;            /* the servers have peers (a circuit_breaker or health checks) */
    cf_peer_key_t peer_key; /* the backend's name and policies (copied), for peers of new entries */
    uint64_t resolve_every_ms;
    size_t max_connections;
    size_t in_use;        /* exchanges owning a connection (connecting or connected) */
    size_t num_idle;      /* idle keep-alive connections, all servers */
    size_t num_live;      /* exchanges started and neither delivered nor cancelled */
    h2o_linklist_t queue; /* of cf_exchange_t.queued, waiting for in_use < max_connections */
    /* health checks: `health_path` NULL when the backend has none */
    char *health_path;
    uint64_t health_timeout_ms, health_tick_ms;
    h2o_timeout_entry_t health_tick;
};

/* The request bytes, as iovecs: METHOD SP [base_path] path SP "HTTP/1.1" CRLF "Host: " host CRLF rest. */
enum { REQ_METHOD, REQ_BASE, REQ_PATH, REQ_HOST, REQ_REST, REQ_NUM };

struct st_cf_exchange_t {
    cf_upstream_t *u;
    cf_upstream_cb cb;
    void *data;
    struct st_upstream_server_t *server;
    h2o_socketpool_connect_request_t *connect_req; /* while connecting a new connection */
    h2o_socket_t *sock;                            /* once connected, until closed or made idle */
    h2o_timeout_entry_t deadline;
    h2o_timeout_entry_t connect_timer;
    h2o_timeout_entry_t deliver; /* on the zero-delay timeout once a result is set */
    h2o_linklist_t queued;
    size_t avoid_server; /* cf_upstream_req_t's */
    uint64_t deadline_at;
    uint64_t timeout_ms;
    size_t max_body;
    char *reqmem; /* one block: the request line pieces, headers and body */
    h2o_iovec_t host_override;
    h2o_iovec_t reqbufs[REQ_NUM]; /* must stay alive until written: freed with the exchange */
    uint64_t span_id;             /* the parent-id its traceparent carries; 0: it carries none */
    unsigned is_head : 1;
    unsigned idempotent : 1;
    unsigned prepend_base_path : 1;
    unsigned holds_slot : 1; /* counted in u->in_use */
    unsigned reused : 1;     /* the current attempt runs on a connection taken from an idle list */
    unsigned retried : 1;
    unsigned got_bytes : 1; /* some response byte arrived on the current attempt */
    unsigned keepalive : 1; /* the response allows reusing the connection */
    unsigned finished : 1;  /* the result is set; only delivery remains */
    unsigned probe : 1;     /* the attempt is its server's breaker probe */
    unsigned is_check : 1;  /* a health check: its outcome goes to the peer's health, not to its breaker */
    cf_h1resp_t parser;     /* the response on the current attempt */
    /* the result */
    cf_reason_t reason;
    int status;
    h2o_mem_pool_t pool; /* response header copies */
    h2o_header_t *headers;
    size_t num_headers;
    char *body;
    size_t body_len, body_cap;
};

/* An idle keep-alive connection: on its server's list, polled for reading (the socket's data points here), and on the
 * idle timer. */
struct st_upstream_idle_t {
    cf_upstream_t *u;
    struct st_upstream_server_t *server;
    h2o_socket_t *sock;
    h2o_linklist_t link;
    h2o_timeout_entry_t timer;
};

static void pump_queue(cf_upstream_t *u);
static void start_health_checks(cf_upstream_t *u, const cf_backend_t *backend);

/* --- creation ---------------------------------------------------------------------------------------------------- */

/* A new entry of the rotation for `o`: by its host (sa NULL), or at one address of its name. Not yet in the rotation. */
static struct st_upstream_server_t *new_server(cf_upstream_t *u, struct st_upstream_origin_t *o, const struct sockaddr *sa,
                                               socklen_t salen)
{
    struct st_upstream_server_t *s = h2o_mem_alloc(sizeof(*s));
    *s = (struct st_upstream_server_t){.origin = o,
                                       .hostport = o->hostport,
                                       .base_path = o->base_path,
                                       .tls = o->tls,
                                       .ssl_ctx = o->ssl_ctx,
                                       .tls_name = o->tls_name};
    h2o_linklist_init_anchor(&s->idle);
    char label[512];
    if (sa != NULL) {
        memcpy(&s->addr, sa, salen);
        s->addrlen = salen;
        /* numeric: the pool connects to the address itself, without resolving */
        h2o_socketpool_init_by_address(&s->pool, (struct sockaddr *)&s->addr, salen, 0, SIZE_MAX);
        char ip[INET6_ADDRSTRLEN] = "?";
        getnameinfo(sa, salen, ip, sizeof(ip), NULL, 0, NI_NUMERICHOST);
        snprintf(label, sizeof(label), "%s (%s)", o->url, ip);
    } else {
        /* numeric IPv4 becomes a sockaddr pool; names (and IPv6 literals) are resolved per connect through the getaddr
         * receiver, off the loop thread */
        h2o_socketpool_init_by_hostport(&s->pool, h2o_iovec_init(o->host, strlen(o->host)), o->port, 0, SIZE_MAX);
        snprintf(label, sizeof(label), "%s", o->url);
    }
    /* The pool never holds an idle socket, but h2o_socketpool_connect reads the loop's clock through the pool's sweep
     * timer, which h2o_socketpool_set_timeout sets up (its sweep finds nothing) */
    h2o_socketpool_set_timeout(&s->pool, u->loop, CF_UPSTREAM_POOL_IDLE_MS);
    u->peer_key.server = label;
    s->peer = cf_peer_get(&u->peer_key);
    u->peer_key.server = NULL;
    return s;
}

static void add_server(cf_upstream_t *u, struct st_upstream_server_t *s)
{
    if (u->num_servers == u->cap_servers) {
        u->cap_servers = u->cap_servers * 2 + 4;
        u->servers = h2o_mem_realloc(u->servers, sizeof(*u->servers) * u->cap_servers);
    }
    u->servers[u->num_servers++] = s;
}

static void close_idle(struct st_upstream_idle_t *idle);

/* Frees an entry nothing uses any more (no exchange, no check; idle connections are closed here). */
static void free_server(struct st_upstream_server_t *s)
{
    assert(s->busy == 0 && s->check == NULL);
    /* idle sockets first: their close callback still refers to the h2o pool */
    while (!h2o_linklist_is_empty(&s->idle))
        close_idle(H2O_STRUCT_FROM_MEMBER(struct st_upstream_idle_t, link, s->idle.next));
    h2o_socketpool_dispose(&s->pool);
    cf_peer_release(s->peer);
    free(s);
}

static void start_resolving(cf_upstream_t *u);
static void stop_resolving(cf_upstream_t *u);

cf_upstream_t *cf_upstream_create(h2o_loop_t *loop, cf_timeouts_t *timeouts, h2o_multithread_receiver_t *getaddr_receiver,
                                  const cf_backend_t *backend)
{
    cf_upstream_t *u = h2o_mem_alloc(sizeof(*u));
    *u = (cf_upstream_t){.refcnt = 1,
                         .loop = loop,
                         .timeouts = timeouts,
                         .timeout_ms = backend->timeout_ms,
                         .connect_timeout_ms = backend->connect_timeout_ms,
                         .getaddr_receiver = getaddr_receiver,
                         .peer_key = cf_peer_key(backend),
                         .resolve_every_ms = backend->resolve_every_ms};
    u->peer_key.backend = h2o_strdup(NULL, backend->name, SIZE_MAX).base;
    cf_upstream_set_max_connections(u, (size_t)backend->max_connections); /* the config's; 0: no cap */
    h2o_linklist_init_anchor(&u->queue);

    u->num_origins = backend->num_servers;
    u->origins = h2o_mem_alloc(sizeof(*u->origins) * (u->num_origins != 0 ? u->num_origins : 1));
    for (size_t i = 0; i != u->num_origins; ++i) {
        struct st_upstream_origin_t *o = u->origins + i;
        const cf_server_t *conf = backend->servers + i;
        const char *host = conf->tls && backend->sni != NULL ? backend->sni : conf->host;
        int v6 = strchr(host, ':') != NULL;
        size_t cap = strlen(host) + sizeof("[]:65535");
        unsigned char bin[sizeof(struct in6_addr)];
        *o = (struct st_upstream_origin_t){.u = u,
                                           .url = h2o_strdup(NULL, conf->url, SIZE_MAX).base,
                                           .host = h2o_strdup(NULL, conf->host, SIZE_MAX).base,
                                           .port = conf->port,
                                           .is_name = inet_pton(AF_INET, conf->host, bin) != 1 &&
                                                      inet_pton(AF_INET6, conf->host, bin) != 1,
                                           .tls = conf->tls,
                                           .tls_name = h2o_strdup(NULL, host, SIZE_MAX).base};
        o->hostport.base = h2o_mem_alloc(cap);
        o->hostport.len = (size_t)snprintf(o->hostport.base, cap, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)conf->port);
        o->base_path = conf->base_path != NULL && conf->base_path[0] != '\0' ? h2o_strdup(NULL, conf->base_path, SIZE_MAX)
                                                                             : h2o_iovec_init(NULL, 0);
        if (conf->tls) {
            char err[512];
            if ((o->ssl_ctx = cf_tls_client_ctx(backend->ca_file, host, err, sizeof(err))) == NULL)
                fprintf(stderr, "conflux: backend %s: %s: %s; its calls fail with connect_failed\n", backend->name, conf->url, err);
        }
        /* until its name is resolved (if it is one), the server is one entry connected to by its host */
        add_server(u, new_server(u, o, NULL, 0));
    }
    u->guarded = u->num_servers != 0 && u->servers[0]->peer != NULL;
    start_health_checks(u, backend);
    start_resolving(u);
    return u;
}

static void stop_health_checks(cf_upstream_t *u);

void cf_upstream_retain(cf_upstream_t *u)
{
    ++u->refcnt;
}

void cf_upstream_release(cf_upstream_t *u)
{
    if (--u->refcnt != 0)
        return;
    stop_health_checks(u); /* its checks in flight hold no reference */
    stop_resolving(u);
    assert(u->num_live == 0);
    for (size_t i = 0; i != u->num_servers; ++i)
        free_server(u->servers[i]);
    for (size_t i = 0; i != u->num_retired; ++i)
        free_server(u->retired[i]);
    free(u->servers);
    free(u->retired);
    for (size_t i = 0; i != u->num_origins; ++i) {
        struct st_upstream_origin_t *o = u->origins + i;
        free(o->url);
        free(o->host);
        free(o->hostport.base);
        free(o->base_path.base);
        free(o->tls_name);
        if (o->ssl_ctx != NULL)
            SSL_CTX_free(o->ssl_ctx);
    }
    free(u->origins);
    free((char *)u->peer_key.backend);
    free(u);
}

void cf_upstream_set_max_connections(cf_upstream_t *u, size_t max)
{
    u->max_connections = max != 0 ? max : SIZE_MAX;
}

size_t cf_upstream_active(const cf_upstream_t *u)
{
    return u->num_live;
}

/* --- request validation and serialization ------------------------------------------------------------------------ */

/* RFC 9110 5.5: field-value is VCHAR / obs-text / SP / HTAB; anything else (CR, LF, NUL, other controls) is refused */
static int is_field_value(h2o_iovec_t s)
{
    for (size_t i = 0; i != s.len; ++i) {
        unsigned char c = (unsigned char)s.base[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* request-target and Host: no controls, no whitespace (a space would end the request-target) */
static int is_target(h2o_iovec_t s)
{
    for (size_t i = 0; i != s.len; ++i) {
        unsigned char c = (unsigned char)s.base[i];
        if (c <= 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

static int name_is(const h2o_iovec_t *name, const char *lower)
{
    return h2o_lcstris(name->base, name->len, lower, strlen(lower));
}

/* Headers conflux itself owns in the request framing: a caller's copy is dropped, not forwarded. */
static int is_framing_header(const h2o_iovec_t *name)
{
    return name_is(name, "host") || name_is(name, "content-length") || name_is(name, "transfer-encoding") ||
           name_is(name, "connection");
}

/* Copies and serializes the request into x; returns 0, or -1 when a field could change the framing. */
static int build_request(cf_exchange_t *x, const cf_upstream_req_t *req)
{
    size_t i, len;
    int with_length;

    if (!cf_http_is_token(req->method.base, req->method.len) || req->path.len == 0 || !is_target(req->path) ||
        !is_target(req->authority))
        return -1;
    if (!(req->path.base[0] == '/' || (req->path.len == 1 && req->path.base[0] == '*')))
        return -1;
    for (i = 0; i != req->num_headers; ++i) {
        if (!cf_http_is_token(req->headers[i].name->base, req->headers[i].name->len) || !is_field_value(req->headers[i].value))
            return -1;
    }
    with_length = req->body.len != 0 || h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST")) ||
                  h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT")) ||
                  h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PATCH"));

    /* size: "M " + path + " HTTP/1.1\r\nHost: " + authority + "\r\n" + [Content-Length] + headers + "\r\n" + body */
    len = req->method.len + 1 + req->path.len + sizeof(" HTTP/1.1\r\nHost: ") - 1 + req->authority.len + 2 +
          sizeof("content-length: 18446744073709551615\r\n") + 2 + req->body.len;
    for (i = 0; i != req->num_headers; ++i)
        len += req->headers[i].name->len + 2 + req->headers[i].value.len + 2;
    if (req->trace != NULL)
        len += sizeof("traceparent: \r\ntracestate: \r\nx-request-id: \r\n") - 1 + CF_TRACEPARENT_LEN + req->trace->tracestate_len +
               req->trace->request_id_len;
    x->reqmem = h2o_mem_alloc(len);

    char *p = x->reqmem;
#define PUT(s, n) (memcpy(p, (s), (n)), p += (n))
    x->reqbufs[REQ_METHOD].base = p;
    PUT(req->method.base, req->method.len);
    PUT(" ", 1);
    x->reqbufs[REQ_METHOD].len = p - x->reqbufs[REQ_METHOD].base;
    x->reqbufs[REQ_PATH].base = p;
    PUT(req->path.base, req->path.len);
    PUT(" HTTP/1.1\r\nHost: ", sizeof(" HTTP/1.1\r\nHost: ") - 1);
    x->reqbufs[REQ_PATH].len = p - x->reqbufs[REQ_PATH].base;
    if (req->authority.len != 0) {
        x->host_override = h2o_iovec_init(p, req->authority.len);
        PUT(req->authority.base, req->authority.len);
    }
    x->reqbufs[REQ_REST].base = p;
    PUT("\r\n", 2);
    if (with_length)
        p += sprintf(p, "content-length: %zu\r\n", req->body.len);
    for (i = 0; i != req->num_headers; ++i) {
        const h2o_header_t *h = req->headers + i;
        if (is_framing_header(h->name) || (req->trace != NULL && cf_trace_is_own_header(h->name->base, h->name->len)))
            continue;
        PUT(h->orig_name != NULL ? h->orig_name : h->name->base, h->name->len);
        PUT(": ", 2);
        PUT(h->value.base, h->value.len);
        PUT("\r\n", 2);
    }
    if (req->trace != NULL) {
        /* each exchange is a span of its own: a retry or a hedge gets a parent-id different from the first attempt's */
        PUT("traceparent: ", sizeof("traceparent: ") - 1);
        x->span_id = cf_trace_format_attempt(req->trace, p);
        p += CF_TRACEPARENT_LEN;
        PUT("\r\n", 2);
        if (req->trace->tracestate != NULL) {
            PUT("tracestate: ", sizeof("tracestate: ") - 1);
            PUT(req->trace->tracestate, req->trace->tracestate_len);
            PUT("\r\n", 2);
        }
        PUT("x-request-id: ", sizeof("x-request-id: ") - 1);
        PUT(req->trace->request_id, req->trace->request_id_len);
        PUT("\r\n", 2);
    }
    PUT("\r\n", 2);
    if (req->body.len != 0)
        PUT(req->body.base, req->body.len);
    x->reqbufs[REQ_REST].len = p - x->reqbufs[REQ_REST].base;
#undef PUT
    assert((size_t)(p - x->reqmem) <= len);

    x->is_head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    return 0;
}

/* --- idle connections ------------------------------------------------------------------------------------------- */

/* Closes an idle connection and forgets it. */
static void close_idle(struct st_upstream_idle_t *idle)
{
    h2o_linklist_unlink(&idle->link);
    h2o_timeout_unlink(&idle->timer);
    --idle->u->num_idle;
    h2o_socket_close(idle->sock);
    free(idle);
}

static void on_idle_timeout(h2o_timeout_entry_t *entry)
{
    close_idle(H2O_STRUCT_FROM_MEMBER(struct st_upstream_idle_t, timer, entry));
}

/* A read event on an idle connection: the server closed it, it failed, or it sent bytes no request asked for. Either
 * way it cannot carry another exchange. (A TLS record without application data, e.g. a session ticket, reads as no
 * bytes and no error: the connection stays.) */
static void on_idle_read(h2o_socket_t *sock, const char *err)
{
    struct st_upstream_idle_t *idle = sock->data;
    if (err != NULL || sock->input->size != 0)
        close_idle(idle);
}

/* Makes a connection idle on its server's list. It stays polled for reading, only with another callback. */
static void park_idle(cf_upstream_t *u, struct st_upstream_server_t *server, h2o_socket_t *sock)
{
    struct st_upstream_idle_t *idle = h2o_mem_alloc(sizeof(*idle));
    *idle = (struct st_upstream_idle_t){u, server, sock};
    idle->timer.cb = on_idle_timeout;
    h2o_linklist_insert(server->idle.next, &idle->link); /* at the front: LIFO */
    cf_timeouts_link(u->timeouts, CF_UPSTREAM_POOL_IDLE_MS, &idle->timer);
    ++u->num_idle;
    sock->data = idle;
    h2o_socket_read_start(sock, on_idle_read);
}

/* Takes the most recently used idle connection of a server, or returns NULL. The caller sets its read callback. */
static h2o_socket_t *take_idle(cf_upstream_t *u, struct st_upstream_server_t *server)
{
    if (h2o_linklist_is_empty(&server->idle))
        return NULL;
    struct st_upstream_idle_t *idle = H2O_STRUCT_FROM_MEMBER(struct st_upstream_idle_t, link, server->idle.next);
    h2o_socket_t *sock = idle->sock;
    h2o_linklist_unlink(&idle->link);
    h2o_timeout_unlink(&idle->timer);
    --u->num_idle;
    free(idle);
    return sock;
}

/* Before opening a connection: while connections in use and idle ones exceed the cap, closes the oldest idle
 * connection of the first server (in order) that has one, so that the cap counts open connections, not just busy ones. */
static void make_room(cf_upstream_t *u)
{
    for (size_t i = 0; u->num_idle != 0 && u->in_use + u->num_idle > u->max_connections; i = (i + 1) % u->num_servers) {
        h2o_linklist_t *idle = &u->servers[i]->idle;
        if (!h2o_linklist_is_empty(idle))
            close_idle(H2O_STRUCT_FROM_MEMBER(struct st_upstream_idle_t, link, idle->prev));
    }
}

/* --- completion -------------------------------------------------------------------------------------------------- */

static void release_slot(cf_exchange_t *x)
{
    if (x->holds_slot) {
        x->holds_slot = 0;
        --x->u->in_use;
    }
    if (x->server != NULL) {
        --x->server->busy;
        x->server = NULL;
    }
}

/* Aborts whatever connection work is under way: a pending connect is cancelled, a socket is closed (never made idle). */
static void drop_connection(cf_exchange_t *x)
{
    if (x->connect_req != NULL) {
        h2o_socketpool_cancel_connect(x->connect_req);
        x->connect_req = NULL;
    }
    if (x->sock != NULL) {
        h2o_socket_close(x->sock);
        x->sock = NULL;
    }
}

static void free_exchange(cf_exchange_t *x)
{
    h2o_mem_clear_pool(&x->pool);
    free(x->body);
    free(x->reqmem);
    free(x);
}

static void on_deliver(h2o_timeout_entry_t *entry)
{
    cf_exchange_t *x = H2O_STRUCT_FROM_MEMBER(cf_exchange_t, deliver, entry);
    cf_upstream_t *u = x->u;
    cf_upstream_res_t res = {x->reason, x->status, x->headers, x->num_headers, h2o_iovec_init(x->body, x->body_len)};

    if (res.reason != CF_REASON_NONE) {
        /* a failed exchange reports no partial response */
        res.headers = NULL;
        res.num_headers = 0;
        res.body = h2o_iovec_init("", 0);
    } else if (res.body.base == NULL) {
        res.body = h2o_iovec_init("", 0);
    }
    /* bookkeeping first: the callback may start, cancel or even destroy (when nothing is left) */
    release_slot(x);
    --u->num_live;
    pump_queue(u);
    x->cb(x->data, &res);
    free_exchange(x);
}

/* Tells the server's breaker how the attempt went: a transport error, a timeout or a 5xx is a failure; any other answer
 * (a 4xx, or one too large for us) shows the server works. */
static void report_peer(cf_exchange_t *x, cf_reason_t reason)
{
    int ok;
    switch (reason) {
    case CF_REASON_NONE:
        ok = x->status < 500;
        break;
    case CF_REASON_TOO_LARGE:
        ok = 1;
        break;
    default:
        ok = 0;
    }
    cf_peer_report(x->server->peer, cf_peer_now_ms(), x->probe, ok);
}

/* Sets the result, closes the connection if still held, and schedules the callback. */
static void finish(cf_exchange_t *x, cf_reason_t reason)
{
    assert(!x->finished);
    x->finished = 1;
    x->reason = reason;
    if (x->server != NULL && x->server->peer != NULL && !x->is_check)
        report_peer(x, reason);
    drop_connection(x);
    h2o_timeout_unlink(&x->deadline);
    h2o_timeout_unlink(&x->connect_timer);
    if (h2o_linklist_is_linked(&x->queued))
        h2o_linklist_unlink(&x->queued);
    x->deliver.cb = on_deliver;
    cf_timeouts_link(x->u->timeouts, 0, &x->deliver);
}

/* A complete response: its connection becomes idle when the response allows it and nothing follows it. */
static void finish_ok(cf_exchange_t *x)
{
    h2o_socket_t *sock = x->sock;
    if (x->keepalive && sock->input->size == 0 && !h2o_socket_is_writing(sock) && !x->server->retired) {
        x->sock = NULL;
        park_idle(x->u, x->server, sock);
    }
    finish(x, CF_REASON_NONE);
}

/* --- the exchange ------------------------------------------------------------------------------------------------ */

static void connect_attempt(cf_exchange_t *x, int fresh);

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
    cf_exchange_t *x = H2O_STRUCT_FROM_MEMBER(cf_exchange_t, connect_timer, entry);
    finish(x, CF_REASON_CONNECT_FAILED);
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    cf_exchange_t *x = H2O_STRUCT_FROM_MEMBER(cf_exchange_t, deadline, entry);
    /* the socket is closed: a timed-out connection never becomes idle */
    finish(x, CF_REASON_TIMEOUT);
}

/*
 * The connection failed before the response was complete. An idle connection that fails before the first response
 * byte was most likely closed by the server as we reused it (the keep-alive race, RFC 9112 9.3.1): retry once on a
 * fresh connection, if the method allows it and time remains.
 */
static void fail_io(cf_exchange_t *x)
{
    if (x->reused && !x->got_bytes && x->idempotent && !x->retried && h2o_now(x->u->loop) < x->deadline_at) {
        x->retried = 1;
        drop_connection(x);
        connect_attempt(x, 1);
        return;
    }
    finish(x, CF_REASON_RESET);
}

/* Appends n bytes of body (the parser keeps the total within max_response_body). */
static void append_body(cf_exchange_t *x, const char *p, size_t n)
{
    assert(n <= x->max_body - x->body_len);
    if (x->body_len + n > x->body_cap) {
        size_t cap = x->body_cap != 0 ? x->body_cap : 4096;
        while (cap < x->body_len + n)
            cap *= 2;
        if (cap > x->max_body)
            cap = x->max_body;
        x->body = h2o_mem_realloc(x->body, cap);
        x->body_cap = cap;
    }
    memcpy(x->body + x->body_len, p, n);
    x->body_len += n;
}

/* Keeps the final response head: status, keep-alive, and a copy of the header fields (which point into the input). */
static void keep_head(cf_exchange_t *x, const cf_h1resp_event_t *ev)
{
    x->status = ev->status;
    x->keepalive = ev->keepalive != 0;
    x->headers = h2o_mem_alloc_pool(&x->pool, sizeof(*x->headers) * (ev->num_headers != 0 ? ev->num_headers : 1));
    x->num_headers = ev->num_headers;
    for (size_t i = 0; i != ev->num_headers; ++i) {
        const struct phr_header *src = ev->headers + i;
        h2o_header_t *dst = x->headers + i;
        char *lower = h2o_strdup(&x->pool, src->name, src->name_len).base;
        h2o_strtolower(lower, src->name_len);
        const h2o_token_t *token = h2o_lookup_token(lower, src->name_len);
        if (token != NULL) {
            dst->name = (h2o_iovec_t *)&token->buf;
        } else {
            dst->name = h2o_mem_alloc_pool(&x->pool, sizeof(*dst->name));
            *dst->name = h2o_iovec_init(lower, src->name_len);
        }
        dst->orig_name = h2o_strdup(&x->pool, src->name, src->name_len).base;
        dst->value = h2o_strdup(&x->pool, src->value, src->value_len);
    }
    /* the whole body in one block when its length is known (the parser refuses one over max_response_body) */
    if (ev->framing == CF_H1RESP_FRAMING_LENGTH && ev->content_length != 0 && ev->content_length <= x->max_body) {
        x->body = h2o_mem_alloc(ev->content_length);
        x->body_cap = ev->content_length;
    }
}

/* The reason a response the parser refused is reported under: bad_response, too_large or reset. */
static cf_reason_t h1resp_reason(cf_h1resp_error_t error)
{
    switch (error) {
    case CF_H1RESP_TOO_LARGE:
        return CF_REASON_TOO_LARGE;
    case CF_H1RESP_TRUNCATED:
        return CF_REASON_RESET;
    default:
        return CF_REASON_BAD_RESPONSE;
    }
}

/* Feeds the buffered response bytes to the parser and acts on its events, until it needs more or the exchange ends.
 * `eof`: the connection is closed (or failed), so nothing more will come. */
static void read_response(cf_exchange_t *x, int eof)
{
    h2o_buffer_t **in = &x->sock->input;
    cf_h1resp_event_t ev;

    while (1) {
        switch (cf_h1resp_parse(&x->parser, (*in)->bytes, (*in)->size, eof, &ev)) {
        case CF_H1RESP_NEED_MORE:
            h2o_buffer_consume(in, ev.consumed);
            return;
        case CF_H1RESP_HEAD:
            keep_head(x, &ev);
            break;
        case CF_H1RESP_BODY:
            append_body(x, ev.body, ev.body_len);
            break;
        case CF_H1RESP_DONE:
            h2o_buffer_consume(in, ev.consumed);
            if (eof)
                finish(x, CF_REASON_NONE); /* a body delimited by the close */
            else
                finish_ok(x); /* bytes beyond the response keep the socket from becoming idle */
            return;
        case CF_H1RESP_ERROR:
            if (ev.error == CF_H1RESP_TRUNCATED)
                fail_io(x); /* a head, chunked or Content-Length body cut short: maybe a stale pooled connection */
            else
                finish(x, h1resp_reason(ev.error));
            return;
        }
        h2o_buffer_consume(in, ev.consumed);
    }
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    cf_exchange_t *x = sock->data;

    if (sock->input->size != 0)
        x->got_bytes = 1;
    read_response(x, err != NULL);
}

static void on_written(h2o_socket_t *sock, const char *err)
{
    cf_exchange_t *x = sock->data;
    if (err != NULL)
        fail_io(x);
}

static void on_handshake(h2o_socket_t *sock, const char *err);
static void send_request(cf_exchange_t *x);

static void on_pool_connect(h2o_socket_t *sock, const char *errstr, void *data)
{
    cf_exchange_t *x = data;

    x->connect_req = NULL;
    if (sock == NULL) {
        /* refused, unreachable, name not resolved */
        finish(x, CF_REASON_CONNECT_FAILED);
        return;
    }
    x->sock = sock;
    sock->data = x;
    if (x->server->tls) {
        /* a new https:// connection: the handshake (certificate and name verified) runs under the connect timer; an
         * idle one taken later keeps its TLS session */
        if (x->server->ssl_ctx == NULL) {
            finish(x, CF_REASON_CONNECT_FAILED);
            return;
        }
        h2o_socket_ssl_handshake(sock, x->server->ssl_ctx, x->server->tls_name, on_handshake);
        return;
    }
    send_request(x);
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    cf_exchange_t *x = sock->data;
    if (err != NULL) {
        /* a bad certificate, a name mismatch or no common protocol: the server is not usable */
        finish(x, CF_REASON_CONNECT_FAILED);
        return;
    }
    send_request(x);
}

static void send_request(cf_exchange_t *x)
{
    h2o_socket_t *sock = x->sock;
    h2o_timeout_unlink(&x->connect_timer);
    if (x->prepend_base_path && x->server->base_path.base != NULL)
        x->reqbufs[REQ_BASE] = x->server->base_path;
    x->reqbufs[REQ_HOST] = x->host_override.len != 0 ? x->host_override : x->server->hostport;
    /* reading starts with the write, not after it: a connection taken from an idle list is still polled for reading,
     * so this only swaps the callback (no epoll_ctl), and a close racing the request is seen as early as possible */
    cf_h1resp_init(&x->parser, x->is_head, x->max_body);
    h2o_socket_read_start(sock, on_read);
    h2o_socket_write(sock, x->reqbufs, REQ_NUM, on_written);
}

/* Starts one connection attempt: on the server's most recently used idle connection (unless `fresh`), which writes
 * the request at once, else on a new connection. */
static void connect_attempt(cf_exchange_t *x, int fresh)
{
    cf_upstream_t *u = x->u;
    uint64_t ct = u->connect_timeout_ms;
    h2o_socket_t *sock;

    x->reused = 0;
    x->got_bytes = 0;
    h2o_timeout_unlink(&x->connect_timer);
    if (!fresh && (sock = take_idle(u, x->server)) != NULL) {
        x->sock = sock;
        x->reused = 1;
        sock->data = x;
        send_request(x);
        return;
    }
    make_room(u);
    x->connect_timer.cb = on_connect_timeout;
    cf_timeouts_link(u->timeouts, ct, &x->connect_timer);
    h2o_socketpool_connect(&x->connect_req, &x->server->pool, u->loop, u->getaddr_receiver, on_pool_connect, x);
}

/* The next server in turn whose peer admits an attempt (marking x as the probe when it is one), or NULL when every
 * server's breaker is open or health checks took it out. */
static struct st_upstream_server_t *pick_guarded(cf_upstream_t *u, cf_exchange_t *x)
{
    int64_t now = cf_peer_now_ms();
    /* a retry or a hedge: the server it avoids only when no other is admitted */
    size_t avoid = u->num_servers > 1 && x->avoid_server <= u->num_servers ? x->avoid_server : 0;
    for (size_t i = 0; i != u->num_servers + (avoid != 0); ++i) {
        size_t at = i != u->num_servers ? (u->next_server + i) % u->num_servers : avoid - 1;
        if (at + 1 == avoid && i != u->num_servers)
            continue;
        struct st_upstream_server_t *s = u->servers[at];
        cf_breaker_admit_t a = s->peer != NULL ? cf_peer_admit(s->peer, now) : CF_BREAKER_PASS;
        if (a != CF_BREAKER_SKIP) {
            u->next_server = (at + 1) % u->num_servers;
            x->probe = a == CF_BREAKER_PROBE;
            return s;
        }
    }
    return NULL;
}

/* Gives x a connection slot and starts connecting. */
static void begin(cf_exchange_t *x)
{
    cf_upstream_t *u = x->u;
    x->holds_slot = 1;
    ++u->in_use;
    if (u->guarded) {
        if ((x->server = pick_guarded(u, x)) == NULL) {
            finish(x, CF_REASON_CIRCUIT_OPEN); /* without touching the network */
            return;
        }
    } else {
        size_t i = u->next_server;
        if (i + 1 == x->avoid_server && u->num_servers > 1) /* a retry or a hedge goes elsewhere */
            i = (i + 1) % u->num_servers;
        x->server = u->servers[i];
        u->next_server = (i + 1) % u->num_servers;
    }
    ++x->server->busy;
    connect_attempt(x, 0);
}

int cf_upstream_queued(const cf_exchange_t *x)
{
    return h2o_linklist_is_linked((h2o_linklist_t *)&x->queued); /* h2o 2.2.5 takes no const */
}

static void pump_queue(cf_upstream_t *u)
{
    while (u->in_use < u->max_connections && !h2o_linklist_is_empty(&u->queue)) {
        cf_exchange_t *x = H2O_STRUCT_FROM_MEMBER(cf_exchange_t, queued, u->queue.next);
        h2o_linklist_unlink(&x->queued);
        begin(x);
    }
}

/* --- public entry points ----------------------------------------------------------------------------------------- */

/* A new exchange for `req`, counted live; NULL when it has already failed (its result is on its way). */
static cf_exchange_t *new_exchange(cf_upstream_t *u, const cf_upstream_req_t *req, cf_upstream_cb cb, void *data,
                                   cf_exchange_t **out)
{
    cf_exchange_t *x = h2o_mem_alloc(sizeof(*x));
    *x = (cf_exchange_t){u, cb, data};
    h2o_mem_init_pool(&x->pool);
    x->deadline.cb = on_deadline;
    x->timeout_ms = req->timeout_ms != 0 ? req->timeout_ms : u->timeout_ms;
    x->max_body = req->max_response_body;
    x->idempotent = req->idempotent != 0;
    x->prepend_base_path = req->prepend_base_path != 0;
    x->avoid_server = req->avoid_server;
    x->deadline_at = h2o_now(u->loop) + x->timeout_ms;
    ++u->num_live;
    *out = x;

    if (build_request(x, req) != 0) {
        finish(x, CF_REASON_BAD_REQUEST);
        return NULL;
    }
    if (u->num_servers == 0) {
        finish(x, CF_REASON_CONNECT_FAILED);
        return NULL;
    }
    cf_timeouts_link(u->timeouts, x->timeout_ms, &x->deadline);
    return x;
}

cf_exchange_t *cf_upstream_start(cf_upstream_t *u, const cf_upstream_req_t *req, cf_upstream_cb cb, void *data)
{
    cf_exchange_t *handle, *x = new_exchange(u, req, cb, data, &handle);
    if (x == NULL)
        return handle;
    if (u->in_use < u->max_connections && h2o_linklist_is_empty(&u->queue)) {
        begin(x);
    } else {
        h2o_linklist_insert(&u->queue, &x->queued);
    }
    return x;
}

uint64_t cf_upstream_span_id(const cf_exchange_t *x)
{
    return x->span_id;
}

size_t cf_upstream_server(const cf_exchange_t *x)
{
    for (size_t i = 0; x->server != NULL && i != x->u->num_servers; ++i)
        if (x->u->servers[i] == x->server)
            return i + 1;
    return 0;
}

void cf_upstream_cancel(cf_exchange_t *x)
{
    cf_upstream_t *u = x->u;

    drop_connection(x); /* a half-read connection is never made idle */
    h2o_timeout_unlink(&x->deadline);
    h2o_timeout_unlink(&x->connect_timer);
    h2o_timeout_unlink(&x->deliver);
    if (h2o_linklist_is_linked(&x->queued))
        h2o_linklist_unlink(&x->queued);
    release_slot(x);
    --u->num_live;
    pump_queue(u);
    free_exchange(x);
}

/* --- health checks ----------------------------------------------------------------------------------------------- */

/*
 * Active checks run off the request path, on the loops' timers: every loop that runs the backend ticks a few times per
 * interval and, for each server whose check is due, claims it (cf_peer_claim_check): exactly one loop of the process
 * sends each check, whichever is first. A check is a GET of health.path (as written: no base path) straight to that
 * server, whatever its breaker or health says, outside the rotation and without touching the breaker. A 2xx answer is
 * a pass; anything else, or no answer within health.timeout, a failure. Checks in flight hold no reference to the
 * runtime: the last release cancels them.
 */

static void on_check_done(void *data, const cf_upstream_res_t *res)
{
    struct st_upstream_server_t *s = data;
    s->check = NULL;
    cf_peer_health_report(s->peer, res->reason == CF_REASON_NONE && res->status >= 200 && res->status <= 299);
}

static void send_check(cf_upstream_t *u, struct st_upstream_server_t *s)
{
    cf_upstream_req_t req = {.method = h2o_iovec_init(H2O_STRLIT("GET")),
                             .path = h2o_iovec_init(u->health_path, strlen(u->health_path)),
                             .timeout_ms = u->health_timeout_ms,
                             .max_response_body = 64 * 1024,
                             .idempotent = 1};
    cf_exchange_t *x = new_exchange(u, &req, on_check_done, s, &s->check);
    if (x == NULL)
        return;
    x->is_check = 1;
    x->holds_slot = 1;
    ++u->in_use;
    x->server = s;
    ++s->busy;
    connect_attempt(x, 0);
}

static void on_health_tick(h2o_timeout_entry_t *entry)
{
    cf_upstream_t *u = H2O_STRUCT_FROM_MEMBER(cf_upstream_t, health_tick, entry);
    int64_t now = cf_peer_now_ms();
    for (size_t i = 0; i != u->num_servers; ++i) {
        struct st_upstream_server_t *s = u->servers[i];
        if (s->check == NULL && cf_peer_claim_check(s->peer, now))
            send_check(u, s);
    }
    cf_timeouts_link(u->timeouts, u->health_tick_ms, &u->health_tick);
}

static void start_health_checks(cf_upstream_t *u, const cf_backend_t *backend)
{
    if (backend->health.path == NULL || u->num_servers == 0)
        return;
    u->health_path = h2o_strdup(NULL, backend->health.path, SIZE_MAX).base;
    u->health_timeout_ms = backend->health.timeout_ms;
    /* a few ticks per interval, so that a check is late by a quarter of it at most */
    u->health_tick_ms = backend->health.interval_ms / 4 > 25 ? backend->health.interval_ms / 4 : 25;
    u->health_tick.cb = on_health_tick;
    cf_timeouts_link(u->timeouts, u->health_tick_ms, &u->health_tick);
}

static void cancel_check(struct st_upstream_server_t *s)
{
    if (s->check != NULL) {
        cf_upstream_cancel(s->check);
        s->check = NULL;
    }
}

static void stop_health_checks(cf_upstream_t *u)
{
    if (u->health_path == NULL)
        return;
    h2o_timeout_unlink(&u->health_tick);
    for (size_t i = 0; i != u->num_servers; ++i)
        cancel_check(u->servers[i]);
    for (size_t i = 0; i != u->num_retired; ++i)
        cancel_check(u->retired[i]);
    free(u->health_path);
}

/* --- name resolution --------------------------------------------------------------------------------------------- */

/*
 * A server given by a host name is resolved when the runtime starts and again every resolve_every, off the loop
 * (h2o_hostinfo_getaddr runs getaddrinfo on libh2o's resolver threads and answers through the loop's getaddr
 * receiver). Every address of the answer is an entry of the rotation of its own, with its own idle connections, peer
 * (breaker and health) and round-robin turn; an entry whose address is no longer in the answer leaves the rotation at
 * once (its idle connections closed, its health check cancelled) and is freed when its last exchange ends. Until the
 * first answer the server is one entry connected to by name (h2o resolves it per connect); a failed resolution keeps
 * the entries there are. Each loop's runtime resolves for itself: one lookup per name per thread per period.
 */

static void resolve(struct st_upstream_origin_t *o);

static void on_resolve_timer(h2o_timeout_entry_t *entry)
{
    resolve(H2O_STRUCT_FROM_MEMBER(struct st_upstream_origin_t, resolve_timer, entry));
}

/* Whether an entry of the rotation stands for `sa` (one address of a name). */
static int has_address(const struct st_upstream_server_t *s, const struct sockaddr *sa, socklen_t salen)
{
    return s->addrlen == salen && memcmp(&s->addr, sa, salen) == 0;
}

/* Whether some entry of the rotation is an address of o's name. */
static int has_addresses(cf_upstream_t *u, struct st_upstream_origin_t *o)
{
    for (size_t i = 0; i != u->num_servers; ++i)
        if (u->servers[i]->origin == o && u->servers[i]->addrlen != 0)
            return 1;
    return 0;
}

/* Takes the rotation's entry `i` out: to the retired list while exchanges still run on it, else freed. */
static void retire_server(cf_upstream_t *u, size_t i)
{
    struct st_upstream_server_t *s = u->servers[i];
    memmove(u->servers + i, u->servers + i + 1, sizeof(*u->servers) * (u->num_servers - i - 1));
    if (--u->num_servers != 0 && u->next_server >= u->num_servers)
        u->next_server = 0;
    s->retired = 1;
    cancel_check(s);
    while (!h2o_linklist_is_empty(&s->idle))
        close_idle(H2O_STRUCT_FROM_MEMBER(struct st_upstream_idle_t, link, s->idle.next));
    u->retired = h2o_mem_realloc(u->retired, sizeof(*u->retired) * (u->num_retired + 1));
    u->retired[u->num_retired++] = s;
}

/* Frees the retired entries nothing has used since the last sweep. Not at once: h2o closes a TLS connection only once
 * its close_notify is written, and the pool's close callback that follows must find the pool still there. */
static void sweep_retired(cf_upstream_t *u)
{
    size_t kept = 0;
    for (size_t i = 0; i != u->num_retired; ++i) {
        struct st_upstream_server_t *s = u->retired[i];
        if (s->busy == 0 && s->quiet) {
            free_server(s);
        } else {
            s->quiet = s->busy == 0;
            u->retired[kept++] = s;
        }
    }
    u->num_retired = kept;
}

static void on_resolved(h2o_hostinfo_getaddr_req_t *req, const char *errstr, struct addrinfo *res, void *data)
{
    struct st_upstream_origin_t *o = data;
    cf_upstream_t *u = o->u;
    o->getaddr = NULL;
    sweep_retired(u);
    if (errstr == NULL && res != NULL) {
        int changed = 0;
        /* the answer's addresses that are new: entries of their own (a name listed twice in the answer counts once) */
        for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
            int known = 0;
            for (size_t i = 0; i != u->num_servers && !known; ++i)
                known = u->servers[i]->origin == o && has_address(u->servers[i], ai->ai_addr, ai->ai_addrlen);
            if (!known && (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
                ai->ai_addrlen <= sizeof(struct sockaddr_storage)) {
                add_server(u, new_server(u, o, ai->ai_addr, ai->ai_addrlen));
                changed = 1;
            }
        }
        /* the entries that are not in the answer (and the one by name, once addresses are known) go */
        for (size_t i = u->num_servers; i-- != 0 && has_addresses(u, o);) {
            struct st_upstream_server_t *s = u->servers[i];
            int found = 0;
            for (struct addrinfo *ai = res; ai != NULL && !found && s->addrlen != 0; ai = ai->ai_next)
                found = has_address(s, ai->ai_addr, ai->ai_addrlen);
            if (s->origin == o && !found) {
                retire_server(u, i);
                changed = 1;
            }
        }
        if (changed) {
            char list[512];
            size_t len = 0;
            list[0] = '\0';
            for (size_t i = 0; i != u->num_servers && len < sizeof(list) - INET6_ADDRSTRLEN - 3; ++i) {
                char ip[INET6_ADDRSTRLEN];
                if (u->servers[i]->origin == o && getnameinfo((struct sockaddr *)&u->servers[i]->addr, u->servers[i]->addrlen, ip,
                                                              sizeof(ip), NULL, 0, NI_NUMERICHOST) == 0)
                    len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", len != 0 ? ", " : "", ip);
            }
            fprintf(stderr, "conflux: backend %s: %s resolves to %s\n", u->peer_key.backend, o->host, list);
        }
    }
    cf_timeouts_link(u->timeouts, u->resolve_every_ms, &o->resolve_timer);
}

static void resolve(struct st_upstream_origin_t *o)
{
    char serv[sizeof("65535")];
    snprintf(serv, sizeof(serv), "%u", (unsigned)o->port);
    o->getaddr =
        h2o_hostinfo_getaddr(o->u->getaddr_receiver, h2o_iovec_init(o->host, strlen(o->host)), h2o_iovec_init(serv, strlen(serv)),
                             AF_UNSPEC, SOCK_STREAM, IPPROTO_TCP, AI_ADDRCONFIG | AI_NUMERICSERV, on_resolved, o);
}

static void start_resolving(cf_upstream_t *u)
{
    for (size_t i = 0; i != u->num_origins; ++i) {
        struct st_upstream_origin_t *o = u->origins + i;
        o->resolve_timer.cb = on_resolve_timer;
        if (o->is_name && u->resolve_every_ms != 0)
            resolve(o);
    }
}

static void stop_resolving(cf_upstream_t *u)
{
    for (size_t i = 0; i != u->num_origins; ++i) {
        struct st_upstream_origin_t *o = u->origins + i;
        h2o_timeout_unlink(&o->resolve_timer);
        if (o->getaddr != NULL) {
            h2o_hostinfo_getaddr_cancel(o->getaddr);
            o->getaddr = NULL;
        }
    }
}
