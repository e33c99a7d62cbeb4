/* One HTTP/1.1 exchange with a backend: per-server idle connection lists, a connection cap with a FIFO queue, deadlines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <h2o.h>
#include <h2o/socketpool.h>
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
 *   status line and headers are parsed with the picohttpparser that libh2o exports; the body framing (RFC 9112 6) is
 *   decoded below. A connection becomes idle only after a complete response that allows keep-alive with no
 *   byte beyond it; after any error, timeout or cancel it is closed.
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
#define CF_UPSTREAM_DEFAULT_TIMEOUT_MS 5000
#define CF_UPSTREAM_DEFAULT_CONNECT_TIMEOUT_MS 1000
#define CF_UPSTREAM_DEFAULT_MAX_BODY (8 * 1024 * 1024)
/* a response head (status line, headers, 1xx responses included) larger than this is a bad_response */
#define CF_UPSTREAM_MAX_HEAD (64 * 1024)
#define CF_UPSTREAM_MAX_HEADERS 100
/* a chunk-size line or trailer line longer than this is a bad_response */
#define CF_UPSTREAM_MAX_LINE 4096

/* picohttpparser, bundled in and exported by libh2o (its header is not installed) */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status, const char **msg, size_t *msg_len,
                       struct phr_header *headers, size_t *num_headers, size_t last_len);

/* --- structures -------------------------------------------------------------------------------------------------- */

struct st_upstream_server_t {
    const cf_server_t *conf;
    h2o_socketpool_t pool; /* only opens new connections (resolution, connect); never holds idle ones */
    h2o_linklist_t idle;   /* of struct st_upstream_idle_t.link, most recently used first */
    h2o_iovec_t hostport;  /* default Host header value (malloc'ed) */
    SSL_CTX *ssl_ctx;      /* https://: verifies the server; NULL when plain, or when it could not be built */
    const char *tls_name;  /* https://: the name sent in SNI and checked in the certificate */
};

struct st_cf_upstream_t {
    h2o_loop_t *loop;
    cf_timeouts_t *timeouts; /* the loop's, shared with the rest of the worker */
    const cf_backend_t *backend;
    h2o_multithread_receiver_t *getaddr_receiver;
    struct st_upstream_server_t *servers;
    size_t num_servers;
    size_t next_server; /* round robin */
    size_t max_connections;
    size_t in_use;        /* exchanges owning a connection (connecting or connected) */
    size_t num_idle;      /* idle keep-alive connections, all servers */
    size_t num_live;      /* exchanges started and neither delivered nor cancelled */
    h2o_linklist_t queue; /* of cf_exchange_t.queued, waiting for in_use < max_connections */
};

/* The request bytes, as iovecs: METHOD SP [base_path] path SP "HTTP/1.1" CRLF "Host: " host CRLF rest. */
enum { REQ_METHOD, REQ_BASE, REQ_PATH, REQ_HOST, REQ_REST, REQ_NUM };

enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };
enum { CHUNK_SIZE, CHUNK_DATA, CHUNK_DATA_END, CHUNK_TRAILER, CHUNK_DONE };

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
    uint64_t deadline_at;
    uint64_t timeout_ms;
    size_t max_body;
    char *reqmem; /* one block: the request line pieces, headers and body */
    h2o_iovec_t host_override;
    h2o_iovec_t reqbufs[REQ_NUM]; /* must stay alive until written: freed with the exchange */
    unsigned is_head : 1;
    unsigned idempotent : 1;
    unsigned prepend_base_path : 1;
    unsigned holds_slot : 1; /* counted in u->in_use */
    unsigned reused : 1;     /* the current attempt runs on a connection taken from an idle list */
    unsigned retried : 1;
    unsigned got_bytes : 1; /* some response byte arrived on the current attempt */
    unsigned in_head : 1;   /* reading the head (else the body) */
    unsigned keepalive : 1; /* the response allows reusing the connection */
    unsigned finished : 1;  /* the result is set; only delivery remains */
    /* body framing */
    int body_mode;    /* BODY_* */
    int chunk_state;  /* CHUNK_* */
    size_t body_left; /* BODY_LENGTH: bytes to come; CHUNK_DATA: bytes left in the chunk */
    /* the result */
    const char *error;
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

/* --- creation ---------------------------------------------------------------------------------------------------- */

cf_upstream_t *cf_upstream_create(h2o_loop_t *loop, cf_timeouts_t *timeouts, h2o_multithread_receiver_t *getaddr_receiver,
                                  const cf_backend_t *backend)
{
    cf_upstream_t *u = h2o_mem_alloc(sizeof(*u));
    *u = (cf_upstream_t){.loop = loop, .timeouts = timeouts, .backend = backend, .getaddr_receiver = getaddr_receiver};
    u->max_connections = backend->max_connections != 0 ? (size_t)backend->max_connections : 256;
    h2o_linklist_init_anchor(&u->queue);

    u->num_servers = backend->num_servers;
    u->servers = h2o_mem_alloc(sizeof(*u->servers) * (u->num_servers != 0 ? u->num_servers : 1));
    for (size_t i = 0; i != u->num_servers; ++i) {
        struct st_upstream_server_t *s = u->servers + i;
        const cf_server_t *conf = backend->servers + i;
        const char *host = conf->tls && backend->sni != NULL ? backend->sni : conf->host;
        int v6 = strchr(host, ':') != NULL;
        size_t cap = strlen(host) + sizeof("[]:65535");
        s->conf = conf;
        h2o_linklist_init_anchor(&s->idle);
        s->hostport.base = h2o_mem_alloc(cap);
        s->hostport.len = (size_t)snprintf(s->hostport.base, cap, v6 ? "[%s]:%u" : "%s:%u", host, (unsigned)conf->port);
        s->ssl_ctx = NULL;
        s->tls_name = host;
        if (conf->tls) {
            char err[512];
            if ((s->ssl_ctx = cf_tls_client_ctx(backend->ca_file, host, err, sizeof(err))) == NULL)
                fprintf(stderr, "conflux: backend %s: %s: %s; its calls fail with connect_failed\n", backend->name, conf->url, err);
        }
        /* numeric IPv4 becomes a sockaddr pool; names (and IPv6 literals) are resolved per connect through the getaddr
         * receiver, off the loop thread. The pool never holds an idle socket, but h2o_socketpool_connect reads the
         * loop's clock through the pool's sweep timer, which h2o_socketpool_set_timeout sets up (its sweep finds nothing) */
        h2o_socketpool_init_by_hostport(&s->pool, h2o_iovec_init(conf->host, strlen(conf->host)), conf->port, 0,
                                        u->max_connections);
        h2o_socketpool_set_timeout(&s->pool, loop, CF_UPSTREAM_POOL_IDLE_MS);
    }
    return u;
}

static void close_idle(struct st_upstream_idle_t *idle);

void cf_upstream_destroy(cf_upstream_t *u)
{
    assert(u->num_live == 0);
    for (size_t i = 0; i != u->num_servers; ++i) {
        /* idle sockets first: their close callback still refers to the h2o pool */
        while (!h2o_linklist_is_empty(&u->servers[i].idle))
            close_idle(H2O_STRUCT_FROM_MEMBER(struct st_upstream_idle_t, link, u->servers[i].idle.next));
        h2o_socketpool_dispose(&u->servers[i].pool);
        free(u->servers[i].hostport.base);
        if (u->servers[i].ssl_ctx != NULL)
            SSL_CTX_free(u->servers[i].ssl_ctx);
    }
    free(u->servers);
    free(u);
}

void cf_upstream_set_max_connections(cf_upstream_t *u, size_t max)
{
    u->max_connections = max != 0 ? max : 1;
}

size_t cf_upstream_active(const cf_upstream_t *u)
{
    return u->num_live;
}

/* --- request validation and serialization ------------------------------------------------------------------------ */

/* RFC 9110 5.6.2 tchar */
static int is_tchar(unsigned char c)
{
    if (('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_token(h2o_iovec_t s)
{
    if (s.len == 0)
        return 0;
    for (size_t i = 0; i != s.len; ++i) {
        if (!is_tchar((unsigned char)s.base[i]))
            return 0;
    }
    return 1;
}

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

    if (!is_token(req->method) || req->path.len == 0 || !is_target(req->path) || !is_target(req->authority))
        return -1;
    if (!(req->path.base[0] == '/' || (req->path.len == 1 && req->path.base[0] == '*')))
        return -1;
    for (i = 0; i != req->num_headers; ++i) {
        if (!is_token(*req->headers[i].name) || !is_field_value(req->headers[i].value))
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
        if (is_framing_header(h->name))
            continue;
        PUT(h->orig_name != NULL ? h->orig_name : h->name->base, h->name->len);
        PUT(": ", 2);
        PUT(h->value.base, h->value.len);
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
        h2o_linklist_t *idle = &u->servers[i].idle;
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
    cf_upstream_res_t res = {x->error, x->status, x->headers, x->num_headers, h2o_iovec_init(x->body, x->body_len)};

    if (res.error != NULL) {
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

/* Sets the result, closes the connection if still held, and schedules the callback. */
static void finish(cf_exchange_t *x, const char *error)
{
    assert(!x->finished);
    x->finished = 1;
    x->error = error;
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
    if (x->keepalive && sock->input->size == 0 && !h2o_socket_is_writing(sock)) {
        x->sock = NULL;
        park_idle(x->u, x->server, sock);
    }
    finish(x, NULL);
}

/* --- the exchange ------------------------------------------------------------------------------------------------ */

static void connect_attempt(cf_exchange_t *x, int fresh);

static void on_connect_timeout(h2o_timeout_entry_t *entry)
{
    cf_exchange_t *x = H2O_STRUCT_FROM_MEMBER(cf_exchange_t, connect_timer, entry);
    finish(x, "connect_failed");
}

static void on_deadline(h2o_timeout_entry_t *entry)
{
    cf_exchange_t *x = H2O_STRUCT_FROM_MEMBER(cf_exchange_t, deadline, entry);
    /* the socket is closed: a timed-out connection never becomes idle */
    finish(x, "timeout");
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
    finish(x, "reset");
}

/* Appends n bytes of body; returns -1 (after failing the exchange) when that exceeds max_response_body. */
static int append_body(cf_exchange_t *x, const char *p, size_t n)
{
    if (n > x->max_body - x->body_len) {
        finish(x, "too_large");
        return -1;
    }
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
    return 0;
}

/* Length of the line (LF included) at the start of the input, 0 when incomplete, SIZE_MAX when too long. */
static size_t line_length(h2o_buffer_t *in)
{
    if (in->size == 0)
        return 0;
    size_t scan = in->size < CF_UPSTREAM_MAX_LINE ? in->size : CF_UPSTREAM_MAX_LINE;
    const char *lf = memchr(in->bytes, '\n', scan);
    if (lf != NULL)
        return lf - in->bytes + 1;
    return in->size < CF_UPSTREAM_MAX_LINE ? 0 : SIZE_MAX;
}

static int hex_value(char c)
{
    if ('0' <= c && c <= '9')
        return c - '0';
    if ('a' <= c && c <= 'f')
        return c - 'a' + 10;
    if ('A' <= c && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decodes as much of a chunked body (RFC 9112 7.1) as the input holds. Returns 1 when the body is complete, 0 when
 * more is needed, -1 when the exchange failed (already finished).
 */
static int decode_chunked(cf_exchange_t *x)
{
    h2o_buffer_t **in = &x->sock->input;
    size_t len;

    while (1) {
        switch (x->chunk_state) {
        case CHUNK_SIZE: {
            if ((len = line_length(*in)) == 0)
                return 0;
            if (len == SIZE_MAX)
                goto Bad;
            const char *p = (*in)->bytes, *end = p + len;
            size_t size = 0, digits = 0;
            for (; p < end; ++p, ++digits) {
                int v = hex_value(*p);
                if (v < 0)
                    break;
                if (digits == 15) /* more than 15 hex digits could overflow */
                    goto Bad;
                size = size * 16 + v;
            }
            /* after the size: optional whitespace and chunk extensions (ignored), then CRLF (a bare LF is tolerated) */
            if (digits == 0 || !(*p == '\r' || *p == '\n' || *p == ';' || *p == ' ' || *p == '\t'))
                goto Bad;
            h2o_buffer_consume(in, len);
            if (size == 0) {
                x->chunk_state = CHUNK_TRAILER;
            } else {
                x->chunk_state = CHUNK_DATA;
                x->body_left = size;
            }
        } break;
        case CHUNK_DATA:
            if ((*in)->size == 0)
                return 0;
            len = (*in)->size < x->body_left ? (*in)->size : x->body_left;
            if (append_body(x, (*in)->bytes, len) != 0)
                return -1;
            h2o_buffer_consume(in, len);
            if ((x->body_left -= len) == 0)
                x->chunk_state = CHUNK_DATA_END;
            break;
        case CHUNK_DATA_END:
            /* CRLF (or a bare LF) must follow the data; anything else is refused at once */
            if ((*in)->size != 0 && !((*in)->bytes[0] == '\r' || (*in)->bytes[0] == '\n'))
                goto Bad;
            if ((*in)->size >= 2 && (*in)->bytes[0] == '\r' && (*in)->bytes[1] != '\n')
                goto Bad;
            if ((len = line_length(*in)) == 0)
                return 0;
            if (!(len == 1 || (len == 2 && (*in)->bytes[0] == '\r')))
                goto Bad;
            h2o_buffer_consume(in, len);
            x->chunk_state = CHUNK_SIZE;
            break;
        case CHUNK_TRAILER: { /* trailer fields are discarded; an empty line ends the message */
            if ((len = line_length(*in)) == 0)
                return 0;
            if (len == SIZE_MAX)
                goto Bad;
            int empty = len == 1 || (len == 2 && (*in)->bytes[0] == '\r');
            h2o_buffer_consume(in, len);
            if (empty) {
                x->chunk_state = CHUNK_DONE;
                return 1;
            }
        } break;
        default:
            return 1;
        }
    }
Bad:
    finish(x, "bad_response");
    return -1;
}

/* Consumes body bytes from the input; finishes the exchange when the body is complete. */
static void read_body(cf_exchange_t *x)
{
    h2o_buffer_t **in = &x->sock->input;
    size_t n;

    switch (x->body_mode) {
    case BODY_NONE:
        finish_ok(x);
        return;
    case BODY_LENGTH:
        n = (*in)->size < x->body_left ? (*in)->size : x->body_left;
        if (n != 0) {
            if (append_body(x, (*in)->bytes, n) != 0)
                return;
            h2o_buffer_consume(in, n);
            x->body_left -= n;
        }
        if (x->body_left == 0)
            finish_ok(x); /* bytes beyond the body keep the socket from becoming idle */
        return;
    case BODY_CHUNKED:
        if (decode_chunked(x) == 1)
            finish_ok(x);
        return;
    case BODY_CLOSE:
        if ((*in)->size != 0) {
            if (append_body(x, (*in)->bytes, (*in)->size) != 0)
                return;
            h2o_buffer_consume(in, (*in)->size);
        }
        return;
    }
}

static int token_list_contains(h2o_iovec_t value, const char *token)
{
    return h2o_contains_token(value.base, value.len, token, strlen(token), ',');
}

/* Parses the response head; returns 1 when the body (or the end) follows, 0 when more is needed, -1 on failure. */
static int read_head(cf_exchange_t *x)
{
    h2o_buffer_t **in = &x->sock->input;
    struct phr_header src[CF_UPSTREAM_MAX_HEADERS];
    size_t num_headers, i;
    int minor_version, status, rlen;
    const char *msg;
    size_t msg_len;

    while (1) {
        if ((*in)->size == 0)
            return 0; /* nothing (more) buffered yet */
        num_headers = CF_UPSTREAM_MAX_HEADERS;
        rlen = phr_parse_response((*in)->bytes, (*in)->size, &minor_version, &status, &msg, &msg_len, src, &num_headers, 0);
        if (rlen == -2) {
            if ((*in)->size >= CF_UPSTREAM_MAX_HEAD)
                goto Bad;
            return 0;
        }
        if (rlen < 0 || status < 100 || status > 999 || status == 101)
            goto Bad; /* malformed; or a 101 we never asked for */
        if (status >= 200)
            break;
        /* 1xx informational (RFC 9110 15.2): skipped */
        h2o_buffer_consume(in, rlen);
    }

    x->status = status;
    x->keepalive = minor_version >= 1; /* RFC 9112 9.3 */
    x->body_mode = BODY_CLOSE;
    x->headers = h2o_mem_alloc_pool(&x->pool, sizeof(*x->headers) * (num_headers != 0 ? num_headers : 1));
    x->num_headers = num_headers;
    size_t content_length = SIZE_MAX;
    int has_te = 0;
    for (i = 0; i != num_headers; ++i) {
        h2o_header_t *dst = x->headers + i;
        if (src[i].name == NULL)
            goto Bad; /* obs-fold (RFC 9112 5.2) */
        char *lower = h2o_strdup(&x->pool, src[i].name, src[i].name_len).base;
        h2o_strtolower(lower, src[i].name_len);
        const h2o_token_t *token = h2o_lookup_token(lower, src[i].name_len);
        if (token != NULL) {
            dst->name = (h2o_iovec_t *)&token->buf;
        } else {
            dst->name = h2o_mem_alloc_pool(&x->pool, sizeof(*dst->name));
            *dst->name = h2o_iovec_init(lower, src[i].name_len);
        }
        dst->orig_name = h2o_strdup(&x->pool, src[i].name, src[i].name_len).base;
        dst->value = h2o_strdup(&x->pool, src[i].value, src[i].value_len);
        if (token == H2O_TOKEN_CONNECTION) {
            if (token_list_contains(dst->value, "close"))
                x->keepalive = 0;
            else if (token_list_contains(dst->value, "keep-alive"))
                x->keepalive = 1;
        } else if (token == H2O_TOKEN_TRANSFER_ENCODING) {
            /* RFC 9112 6.1: chunked must be the final coding; we never ask for another one */
            if (!h2o_lcstris(dst->value.base, dst->value.len, H2O_STRLIT("chunked")) || has_te)
                goto Bad;
            has_te = 1;
        } else if (token == H2O_TOKEN_CONTENT_LENGTH) {
            size_t v = h2o_strtosize(dst->value.base, dst->value.len);
            if (v == SIZE_MAX || (content_length != SIZE_MAX && content_length != v))
                goto Bad; /* RFC 9112 6.3 item 5 */
            content_length = v;
        }
    }
    h2o_buffer_consume(in, rlen);

    /* RFC 9112 6.3: the message body length */
    if (x->is_head || status == 204 || status == 304) {
        x->body_mode = BODY_NONE;
    } else if (has_te) {
        x->body_mode = BODY_CHUNKED;
        x->chunk_state = CHUNK_SIZE;
        if (content_length != SIZE_MAX)
            x->keepalive = 0; /* both: chunked wins, and the connection must be closed afterwards */
    } else if (content_length != SIZE_MAX) {
        if (content_length > x->max_body) {
            finish(x, "too_large");
            return -1;
        }
        x->body_mode = BODY_LENGTH;
        x->body_left = content_length;
        if (content_length != 0) {
            x->body = h2o_mem_alloc(content_length);
            x->body_cap = content_length;
        }
    } else {
        x->body_mode = BODY_CLOSE;
        x->keepalive = 0;
    }
    return 1;
Bad:
    finish(x, "bad_response");
    return -1;
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    cf_exchange_t *x = sock->data;

    if (sock->input->size != 0)
        x->got_bytes = 1;
    if (err != NULL) {
        if (!x->in_head && x->body_mode == BODY_CLOSE) {
            read_body(x); /* the close delimits this body */
            if (!x->finished)
                finish(x, NULL);
        } else {
            fail_io(x); /* a head, chunked or Content-Length body cut short */
        }
        return;
    }
    if (x->in_head) {
        if (read_head(x) != 1)
            return;
        x->in_head = 0;
    }
    read_body(x);
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
        finish(x, "connect_failed");
        return;
    }
    x->sock = sock;
    sock->data = x;
    if (x->server->conf->tls) {
        /* a new https:// connection: the handshake (certificate and name verified) runs under the connect timer; an
         * idle one taken later keeps its TLS session */
        if (x->server->ssl_ctx == NULL) {
            finish(x, "connect_failed");
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
        finish(x, "connect_failed");
        return;
    }
    send_request(x);
}

static void send_request(cf_exchange_t *x)
{
    h2o_socket_t *sock = x->sock;
    h2o_timeout_unlink(&x->connect_timer);
    if (x->prepend_base_path && x->server->conf->base_path != NULL)
        x->reqbufs[REQ_BASE] = h2o_iovec_init(x->server->conf->base_path, strlen(x->server->conf->base_path));
    x->reqbufs[REQ_HOST] = x->host_override.len != 0 ? x->host_override : x->server->hostport;
    /* reading starts with the write, not after it: a connection taken from an idle list is still polled for reading,
     * so this only swaps the callback (no epoll_ctl), and a close racing the request is seen as early as possible */
    x->in_head = 1;
    h2o_socket_read_start(sock, on_read);
    h2o_socket_write(sock, x->reqbufs, REQ_NUM, on_written);
}

/* Starts one connection attempt: on the server's most recently used idle connection (unless `fresh`), which writes
 * the request at once, else on a new connection. */
static void connect_attempt(cf_exchange_t *x, int fresh)
{
    cf_upstream_t *u = x->u;
    uint64_t ct = u->backend->connect_timeout_ms != 0 ? u->backend->connect_timeout_ms : CF_UPSTREAM_DEFAULT_CONNECT_TIMEOUT_MS;
    h2o_socket_t *sock;

    x->reused = 0;
    x->got_bytes = 0;
    x->in_head = 0;
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

/* Gives x a connection slot and starts connecting. */
static void begin(cf_exchange_t *x)
{
    cf_upstream_t *u = x->u;
    x->holds_slot = 1;
    ++u->in_use;
    x->server = u->servers + u->next_server;
    u->next_server = (u->next_server + 1) % u->num_servers;
    connect_attempt(x, 0);
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

cf_exchange_t *cf_upstream_start(cf_upstream_t *u, const cf_upstream_req_t *req, cf_upstream_cb cb, void *data)
{
    cf_exchange_t *x = h2o_mem_alloc(sizeof(*x));
    *x = (cf_exchange_t){u, cb, data};
    h2o_mem_init_pool(&x->pool);
    x->deadline.cb = on_deadline;
    x->timeout_ms = req->timeout_ms != 0 ? req->timeout_ms
                                         : (u->backend->timeout_ms != 0 ? u->backend->timeout_ms : CF_UPSTREAM_DEFAULT_TIMEOUT_MS);
    x->max_body = req->max_response_body != 0 ? req->max_response_body : CF_UPSTREAM_DEFAULT_MAX_BODY;
    x->idempotent = req->idempotent != 0;
    x->prepend_base_path = req->prepend_base_path != 0;
    x->deadline_at = h2o_now(u->loop) + x->timeout_ms;
    ++u->num_live;

    if (build_request(x, req) != 0) {
        finish(x, "bad_request");
        return x;
    }
    if (u->num_servers == 0) {
        finish(x, "connect_failed");
        return x;
    }
    cf_timeouts_link(u->timeouts, x->timeout_ms, &x->deadline);
    if (u->in_use < u->max_connections && h2o_linklist_is_empty(&u->queue)) {
        begin(x);
    } else {
        h2o_linklist_insert(&u->queue, &x->queued);
    }
    return x;
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
