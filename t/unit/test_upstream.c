/* Unit tests of gateway/upstream.c against tiny scripted TCP servers running on the same event loop. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "../../gateway/tls.c" /* https:// servers */
#include "../../gateway/reason.c"
#include "../../gateway/trace.c"
#include "../../common/cf_h1resp.c"
#include "../../gateway/breaker.c"
#include "../../gateway/peers.c" /* circuit breakers */
#include "../../gateway/upstream.c"
#include "tap.h"

static h2o_loop_t *loop;
static h2o_multithread_queue_t *mt_queue;
static h2o_multithread_receiver_t getaddr_receiver;
static cf_timeouts_t timeouts;                       /* the loop's, as a worker has them */
static h2o_timeout_t delay_timeout, trickle_timeout; /* the servers' own timers: 30ms and 50ms */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

#define RUN_UNTIL(cond, max_ms)                                                                                                    \
    do {                                                                                                                           \
        double run_t0_ = now_ms();                                                                                                 \
        while (!(cond) && now_ms() - run_t0_ < (max_ms))                                                                           \
            h2o_evloop_run(loop, 10);                                                                                              \
    } while (0)
#define RUN_FOR(ms) RUN_UNTIL(0, ms)

/* --- scripted servers -------------------------------------------------------------------------------------------- */

enum {
    ACT_RESPOND,       /* write bytes, keep the connection */
    ACT_RESPOND_CLOSE, /* write bytes, then close (FIN) */
    ACT_DELAYED,       /* write bytes after 30ms, keep the connection */
    ACT_HANG,          /* never answer */
    ACT_CLOSE,         /* close (FIN) without answering */
    ACT_RESET,         /* close with RST without answering */
    ACT_TRICKLE,       /* write bytes (a head), then one body byte every 50ms */
};

typedef struct st_action_t {
    int kind;
    const char *bytes;
} action_t;

typedef struct st_test_server_t test_server_t;

typedef struct st_test_conn_t {
    test_server_t *srv;
    h2o_socket_t *sock;
    size_t nreq; /* requests seen on this connection */
    action_t act;
    h2o_timeout_entry_t timer;
    h2o_linklist_t link;
} test_conn_t;

struct st_test_server_t {
    h2o_socket_t *listener;
    uint16_t port;
    size_t accepts, open, max_open, requests, peer_closes;
    /* picks what to do with a request: from the server's request count and the connection's */
    action_t (*decide)(test_server_t *srv, test_conn_t *conn);
    const char *canned; /* for decide_canned */
    h2o_linklist_t conns;
    char last_request[4096];
};

static action_t decide_canned(test_server_t *srv, test_conn_t *conn)
{
    return (action_t){ACT_RESPOND, srv->canned};
}

static void conn_close(test_conn_t *conn, int by_peer)
{
    test_server_t *srv = conn->srv;
    if (by_peer)
        ++srv->peer_closes;
    --srv->open;
    h2o_timeout_unlink(&conn->timer);
    h2o_linklist_unlink(&conn->link);
    h2o_socket_close(conn->sock);
    free(conn);
}

static void on_trickle_timer(h2o_timeout_entry_t *entry);

static void on_server_written(h2o_socket_t *sock, const char *err)
{
    test_conn_t *conn = sock->data;
    if (err != NULL) {
        conn_close(conn, 1);
        return;
    }
    switch (conn->act.kind) {
    case ACT_RESPOND_CLOSE:
        conn_close(conn, 0);
        break;
    case ACT_TRICKLE:
        conn->timer.cb = on_trickle_timer;
        h2o_timeout_link(loop, &trickle_timeout, &conn->timer);
        break;
    default:
        break;
    }
}

static void server_write(test_conn_t *conn, const char *bytes, size_t len)
{
    h2o_iovec_t buf = h2o_iovec_init(bytes, len);
    h2o_socket_write(conn->sock, &buf, 1, on_server_written);
}

static void on_trickle_timer(h2o_timeout_entry_t *entry)
{
    test_conn_t *conn = H2O_STRUCT_FROM_MEMBER(test_conn_t, timer, entry);
    server_write(conn, "x", 1);
}

static void on_delay_timer(h2o_timeout_entry_t *entry)
{
    test_conn_t *conn = H2O_STRUCT_FROM_MEMBER(test_conn_t, timer, entry);
    server_write(conn, conn->act.bytes, strlen(conn->act.bytes));
}

/* the length of a complete request at the head of buf (head + Content-Length body), or 0 */
static size_t request_length(const char *buf, size_t len)
{
    if (len == 0)
        return 0;
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    size_t head = end + 4 - buf, body = 0;
    for (const char *p = buf; p < end; ++p) {
        if (strncasecmp(p, "\ncontent-length:", 16) == 0) {
            body = strtoul(p + 16, NULL, 10);
            break;
        }
    }
    return head + body <= len ? head + body : 0;
}

static void on_server_read(h2o_socket_t *sock, const char *err)
{
    test_conn_t *conn = sock->data;
    test_server_t *srv = conn->srv;
    size_t reqlen;

    if (err != NULL) {
        conn_close(conn, 1);
        return;
    }
    while ((reqlen = request_length(sock->input->bytes, sock->input->size)) != 0) {
        size_t n = reqlen < sizeof(srv->last_request) - 1 ? reqlen : sizeof(srv->last_request) - 1;
        memcpy(srv->last_request, sock->input->bytes, n);
        srv->last_request[n] = '\0';
        h2o_buffer_consume(&sock->input, reqlen);
        ++conn->nreq;
        ++srv->requests;
        conn->act = srv->decide(srv, conn);
        switch (conn->act.kind) {
        case ACT_RESPOND:
        case ACT_RESPOND_CLOSE:
        case ACT_TRICKLE:
            server_write(conn, conn->act.bytes, strlen(conn->act.bytes));
            break;
        case ACT_DELAYED:
            conn->timer.cb = on_delay_timer;
            h2o_timeout_link(loop, &delay_timeout, &conn->timer);
            break;
        case ACT_HANG:
            break;
        case ACT_RESET: {
            struct linger lg = {1, 0};
            setsockopt(h2o_socket_get_fd(sock), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        } /* fallthru */
        case ACT_CLOSE:
            conn_close(conn, 0);
            return;
        }
    }
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    test_server_t *srv = listener->data;
    h2o_socket_t *sock;
    if (err != NULL)
        return;
    while ((sock = h2o_evloop_socket_accept(listener)) != NULL) {
        test_conn_t *conn = calloc(1, sizeof(*conn));
        conn->srv = srv;
        conn->sock = sock;
        sock->data = conn;
        h2o_linklist_insert(&srv->conns, &conn->link);
        ++srv->accepts;
        if (++srv->open > srv->max_open)
            srv->max_open = srv->open;
        h2o_socket_read_start(sock, on_server_read);
    }
}

static int listen_fd(int backlog, uint16_t *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (bind(fd, (void *)&sin, sizeof(sin)) != 0 || listen(fd, backlog) != 0 || getsockname(fd, (void *)&sin, &len) != 0) {
        perror("listen");
        exit(1);
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    *port = ntohs(sin.sin_port);
    return fd;
}

static test_server_t *server_start(action_t (*decide)(test_server_t *, test_conn_t *), const char *canned)
{
    test_server_t *srv = calloc(1, sizeof(*srv));
    int fd = listen_fd(64, &srv->port);
    srv->decide = decide != NULL ? decide : decide_canned;
    srv->canned = canned;
    h2o_linklist_init_anchor(&srv->conns);
    srv->listener = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    srv->listener->data = srv;
    h2o_socket_read_start(srv->listener, on_accept);
    return srv;
}

static void server_stop(test_server_t *srv)
{
    while (!h2o_linklist_is_empty(&srv->conns))
        conn_close(H2O_STRUCT_FROM_MEMBER(test_conn_t, link, srv->conns.next), 0);
    h2o_socket_read_stop(srv->listener);
    h2o_socket_close(srv->listener);
    free(srv);
}

/* --- the client side --------------------------------------------------------------------------------------------- */

typedef struct st_result_t {
    int called;
    int reentrant; /* the callback ran inside cf_upstream_start */
    const char *error;
    int status;
    char body[256];
    size_t body_len;
    char header[64]; /* the value of x-test */
    double started_at, elapsed;
    cf_upstream_t *destroy; /* destroy this upstream from the callback */
} result_t;

static int in_start;

static void on_result(void *data, const cf_upstream_res_t *res)
{
    result_t *r = data;
    ++r->called;
    r->reentrant = in_start;
    r->error = res->reason != CF_REASON_NONE ? cf_reasons[res->reason].name : NULL; /* the checks read names */
    r->status = res->status;
    r->body_len = res->body.len;
    memcpy(r->body, res->body.base, res->body.len < sizeof(r->body) - 1 ? res->body.len : sizeof(r->body) - 1);
    for (size_t i = 0; i != res->num_headers; ++i) {
        if (h2o_memis(res->headers[i].name->base, res->headers[i].name->len, H2O_STRLIT("x-test")))
            snprintf(r->header, sizeof(r->header), "%.*s", (int)res->headers[i].value.len, res->headers[i].value.base);
    }
    r->elapsed = now_ms() - r->started_at;
    if (r->destroy != NULL)
        cf_upstream_release(r->destroy);
}

typedef struct st_backend_holder_t {
    cf_server_t servers[2];
    cf_backend_t backend;
} backend_holder_t;

static cf_upstream_t *upstream_new(backend_holder_t *b, test_server_t *s1, test_server_t *s2, uint64_t max_connections)
{
    memset(b, 0, sizeof(*b));
    b->servers[0] = (cf_server_t){"http://t1", "127.0.0.1", s1 != NULL ? s1->port : 1, ""};
    b->servers[1] = (cf_server_t){"http://t2", "127.0.0.1", s2 != NULL ? s2->port : 1, ""};
    b->backend.name = "test";
    b->backend.servers = b->servers;
    b->backend.num_servers = s2 != NULL ? 2 : 1;
    b->backend.timeout_ms = 2000;
    b->backend.connect_timeout_ms = 300;
    b->backend.max_connections = max_connections;
    return cf_upstream_create(loop, &timeouts, &getaddr_receiver, &b->backend);
}

/* an upstream on one server given by port (for servers that are not test_server_t) */
static cf_upstream_t *upstream_on_port(backend_holder_t *b, uint16_t port, uint64_t connect_timeout_ms)
{
    memset(b, 0, sizeof(*b));
    b->servers[0] = (cf_server_t){"http://t1", "127.0.0.1", port, ""};
    b->backend.name = "test";
    b->backend.servers = b->servers;
    b->backend.num_servers = 1;
    b->backend.timeout_ms = 2000;
    b->backend.connect_timeout_ms = connect_timeout_ms;
    b->backend.max_connections = 4;
    return cf_upstream_create(loop, &timeouts, &getaddr_receiver, &b->backend);
}

static cf_upstream_req_t req_get(const char *path, uint64_t timeout_ms)
{
    return (cf_upstream_req_t){.method = h2o_iovec_init(H2O_STRLIT("GET")),
                               .path = h2o_iovec_init(path, strlen(path)),
                               .timeout_ms = timeout_ms,
                               .max_response_body = 1024,
                               .idempotent = 1};
}

static cf_exchange_t *start(cf_upstream_t *u, const cf_upstream_req_t *req, result_t *r)
{
    cf_exchange_t *x;
    r->started_at = now_ms();
    in_start = 1;
    x = cf_upstream_start(u, req, on_result, r);
    in_start = 0;
    return x;
}

static cf_exchange_t *get(cf_upstream_t *u, const char *path, uint64_t timeout_ms, result_t *r)
{
    cf_upstream_req_t req = req_get(path, timeout_ms);
    return start(u, &req, r);
}

/* one GET, run to completion */
static void get_sync(cf_upstream_t *u, const char *path, result_t *r)
{
    *r = (result_t){0};
    get(u, path, 2000, r);
    RUN_UNTIL(r->called, 3000);
}

#define RESP_OK "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: yes\r\n\r\nhello"

/* --- tests ------------------------------------------------------------------------------------------------------- */

static void test_normal(void)
{
    test_server_t *srv = server_start(NULL, RESP_OK);
    backend_holder_t b;
    cf_upstream_t *u = upstream_new(&b, srv, NULL, 4);
    result_t r = {0};
    char expect[64];

    get(u, "/a?b=1", 2000, &r);
    ok(!r.called, "no callback inside cf_upstream_start");
    is(cf_upstream_active(u), 1, "one exchange active");
    RUN_UNTIL(r.called, 3000);
    is(r.called, 1, "callback once");
    ok(!r.reentrant, "not re-entrant");
    is_str(r.error, NULL, "no error");
    is(r.status, 200, "status 200");
    is_str(r.body, "hello", "body");
    is_str(r.header, "yes", "response header copied");
    is(cf_upstream_active(u), 0, "nothing active after the callback");
    ok(strncmp(srv->last_request, "GET /a?b=1 HTTP/1.1\r\n", 21) == 0, "request line");
    snprintf(expect, sizeof(expect), "\r\nHost: 127.0.0.1:%u\r\n", srv->port);
    ok(strstr(srv->last_request, expect) != NULL, "default Host is the server's host:port");
    ok(strstr(srv->last_request, "content-length") == NULL, "no Content-Length on a body-less GET");

    /* extra headers; framing headers of the caller are dropped; POST carries its body */
    h2o_iovec_t n1 = h2o_iovec_init(H2O_STRLIT("x-req")), n2 = h2o_iovec_init(H2O_STRLIT("host")),
                n3 = h2o_iovec_init(H2O_STRLIT("content-length"));
    h2o_header_t hdrs[] = {{&n1, "X-Req", h2o_iovec_init(H2O_STRLIT("1"))},
                           {&n2, NULL, h2o_iovec_init(H2O_STRLIT("evil.example"))},
                           {&n3, NULL, h2o_iovec_init(H2O_STRLIT("99"))}};
    cf_upstream_req_t req = {.method = h2o_iovec_init(H2O_STRLIT("POST")),
                             .path = h2o_iovec_init(H2O_STRLIT("/p")),
                             .authority = h2o_iovec_init(H2O_STRLIT("api.example")),
                             .headers = hdrs,
                             .num_headers = 3,
                             .body = h2o_iovec_init(H2O_STRLIT("body")),
                             .timeout_ms = 2000,
                             .max_response_body = 1024};
    r = (result_t){0};
    start(u, &req, &r);
    RUN_UNTIL(r.called, 3000);
    is_str(r.error, NULL, "POST ok");
    ok(strncmp(srv->last_request, "POST /p HTTP/1.1\r\nHost: api.example\r\n", 37) == 0, "authority used as Host");
    ok(strstr(srv->last_request, "\r\nX-Req: 1\r\n") != NULL, "extra header sent with its original case");
    ok(strstr(srv->last_request, "evil") == NULL && strstr(srv->last_request, "99") == NULL, "caller's framing headers dropped");
    ok(strstr(srv->last_request, "\r\ncontent-length: 4\r\n") != NULL, "Content-Length of the body");
    ok(strstr(srv->last_request, "\r\n\r\nbody") != NULL, "body after the head");
    is(srv->accepts, 1, "both on one connection");

    cf_upstream_release(u);
    server_stop(srv);
}

static void test_base_path_and_round_robin(void)
{
    test_server_t *s1 = server_start(NULL, RESP_OK), *s2 = server_start(NULL, RESP_OK);
    backend_holder_t b;
    cf_upstream_t *u = upstream_new(&b, s1, s2, 4);
    result_t r1, r2;
    cf_upstream_release(u);
    b.servers[1].base_path = "/v2";
    u = cf_upstream_create(loop, &timeouts, &getaddr_receiver, &b.backend);
    /* the upstream keeps copies of what it reads of its backend: the config may go first (a cache flight holds an
     * upstream across a reload) */
    b.servers[1].base_path = "/changed";
    b.servers[0].base_path = "/changed";

    cf_upstream_req_t req = req_get("/x", 2000);
    req.prepend_base_path = 1;
    r1 = (result_t){0};
    start(u, &req, &r1);
    RUN_UNTIL(r1.called, 3000);
    req.path = h2o_iovec_init(H2O_STRLIT("/y"));
    r2 = (result_t){0};
    start(u, &req, &r2);
    RUN_UNTIL(r2.called, 3000);
    ok(r1.error == NULL && r2.error == NULL, "both ok");
    is(s1->requests, 1, "first server got one request");
    is(s2->requests, 1, "second server got one request");
    ok(strncmp(s2->last_request, "GET /v2/y HTTP/1.1", 18) == 0, "the chosen server's base path prepended on request");
    ok(strncmp(s1->last_request, "GET /x HTTP/1.1", 15) == 0, "as the backend was when the upstream was created");
    get_sync(u, "/z", &r1);
    get_sync(u, "/z", &r2);
    ok(strncmp(s2->last_request, "GET /z HTTP/1.1", 15) == 0, "not by default");
    cf_upstream_release(u);
    server_stop(s1);
    server_stop(s2);
}

static void test_chunked_head_1xx(void)
{
    test_server_t *srv =
        server_start(NULL, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    backend_holder_t b;
    cf_upstream_t *u = upstream_new(&b, srv, NULL, 4);
    result_t r;

    get_sync(u, "/", &r);
    is_str(r.error, NULL, "chunked ok");
    is_str(r.body, "hello world", "chunked body decoded");

    srv->canned = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
    get_sync(u, "/", &r);
    is_str(r.error, NULL, "1xx skipped");
    is(r.status, 201, "final status");
    is_str(r.body, "ok", "final body");

    /* HEAD: a Content-Length but no body; the connection stays usable */
    srv->canned = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    cf_upstream_req_t req = req_get("/", 2000);
    req.method = h2o_iovec_init(H2O_STRLIT("HEAD"));
    r = (result_t){0};
    start(u, &req, &r);
    RUN_UNTIL(r.called, 3000);
    is_str(r.error, NULL, "HEAD ok");
    is(r.body_len, 0, "HEAD has no body");
    srv->canned = "HTTP/1.1 204 No Content\r\n\r\n";
    get_sync(u, "/", &r);
    ok(r.error == NULL && r.status == 204 && r.body_len == 0, "204 without body");
    srv->canned = RESP_OK;
    get_sync(u, "/", &r);
    is_str(r.body, "hello", "GET after HEAD and 204 on the same connection");
    is(srv->accepts, 1, "one connection for all");

    cf_upstream_release(u);
    server_stop(srv);
}

static void test_keepalive(void)
{
    test_server_t *srv = server_start(NULL, RESP_OK);
    backend_holder_t b;
    cf_upstream_t *u = upstream_new(&b, srv, NULL, 4);
    result_t r;

    for (int i = 0; i != 3; ++i) {
        get_sync(u, "/", &r);
        is_str(r.error, NULL, "request %d ok", i + 1);
    }
    is(srv->accepts, 1, "three requests, one connection");
    is(srv->requests, 3, "three requests seen");
    cf_upstream_release(u);
    RUN_UNTIL(srv->open == 0, 500);
    is(srv->open, 0, "destroy closes the pooled connection");
    server_stop(srv);
}

static action_t decide_second_closes(test_server_t *srv, test_conn_t *conn)
{
    /* the first connection answers once then closes when its second request arrives (the keep-alive race) */
    if (conn->nreq == 2)
        return (action_t){ACT_CLOSE, NULL};
    return (action_t){ACT_RESPOND, RESP_OK};
}

static action_t decide_always_fail_after_first(test_server_t *srv, test_conn_t *conn)
{
    /* request 1 ok; then every request fails, on reused and fresh connections alike */
    if (srv->requests == 1)
        return (action_t){ACT_RESPOND, RESP_OK};
    return (action_t){ACT_CLOSE, NULL};
}

static void test_retry(void)
{
    backend_holder_t b;
    cf_upstream_t *u;
    result_t r;

    /* idle pooled connection closed by the server: the pool's liveness probe skips it, even for a POST */
    test_server_t *srv = server_start(NULL, NULL);
    srv->decide = decide_canned;
    srv->canned = RESP_OK;
    u = upstream_new(&b, srv, NULL, 4);
    get_sync(u, "/", &r);
    is_str(r.error, NULL, "first ok");
    while (!h2o_linklist_is_empty(&srv->conns))
        conn_close(H2O_STRUCT_FROM_MEMBER(test_conn_t, link, srv->conns.next), 0);
    RUN_FOR(30);
    cf_upstream_req_t post = req_get("/", 2000);
    post.method = h2o_iovec_init(H2O_STRLIT("POST"));
    post.idempotent = 0;
    r = (result_t){0};
    start(u, &post, &r);
    RUN_UNTIL(r.called, 3000);
    is_str(r.error, NULL, "POST after an idle close: ok on a new connection");
    is(srv->accepts, 2, "two connections");
    cf_upstream_release(u);
    server_stop(srv);

    /* the server closes the reused connection when the request arrives: an idempotent request is retried */
    srv = server_start(decide_second_closes, NULL);
    u = upstream_new(&b, srv, NULL, 4);
    get_sync(u, "/", &r);
    is_str(r.error, NULL, "first ok");
    get_sync(u, "/", &r);
    is_str(r.error, NULL, "second ok after a transparent retry");
    is_str(r.body, "hello", "body of the retried request");
    is(srv->accepts, 2, "retried on a fresh connection");
    is(srv->requests, 3, "three requests reached the server");
    get_sync(u, "/", &r);
    is_str(r.error, NULL, "third ok");
    is(srv->accepts, 3, "the retry's connection is not pooled");
    cf_upstream_release(u);
    server_stop(srv);

    /* not for a non-idempotent request */
    srv = server_start(decide_second_closes, NULL);
    u = upstream_new(&b, srv, NULL, 4);
    get_sync(u, "/", &r);
    r = (result_t){0};
    start(u, &post, &r);
    RUN_UNTIL(r.called, 3000);
    is_str(r.error, "reset", "POST on a connection that dies: reset, no retry");
    is(srv->accepts, 1, "no second connection");
    is(srv->requests, 2, "two requests reached the server");
    cf_upstream_release(u);
    server_stop(srv);

    /* at most one retry */
    srv = server_start(decide_always_fail_after_first, NULL);
    u = upstream_new(&b, srv, NULL, 4);
    get_sync(u, "/", &r);
    get_sync(u, "/", &r);
    is_str(r.error, "reset", "retry fails too: reset");
    is(srv->requests, 3, "one retry only");
    cf_upstream_release(u);
    server_stop(srv);
}

static void test_connect_failures(void)
{
    backend_holder_t b;
    cf_upstream_t *u;
    result_t r = {0};
    uint16_t port;
    int fd;

    /* refused: a port nobody listens on */
    fd = listen_fd(1, &port);
    close(fd);
    u = upstream_on_port(&b, port, 300);
    get(u, "/", 2000, &r);
    ok(!r.called, "no callback inside cf_upstream_start");
    RUN_UNTIL(r.called, 3000);
    is_str(r.error, "connect_failed", "refused: connect_failed");
    ok(!r.reentrant, "not re-entrant");
    is(r.status, 0, "no status");
    cf_upstream_release(u);

    /* connect timeout: a listener whose accept queue is full drops further SYNs, so connect() never completes */
    fd = listen_fd(0, &port);
    int fillers[4], nfill = 0;
    for (; nfill != 4; ++nfill) {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(port)};
        fillers[nfill] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[nfill], (void *)&sin, sizeof(sin));
    }
    RUN_FOR(50);
    u = upstream_on_port(&b, port, 200);
    r = (result_t){0};
    get(u, "/", 2000, &r);
    RUN_UNTIL(r.called, 3000);
    is_str(r.error, "connect_failed", "connect timeout: connect_failed");
    ok(r.elapsed >= 190 && r.elapsed < 600, "after connect_timeout (%.0fms)", r.elapsed);
    cf_upstream_release(u);
    for (int i = 0; i != nfill; ++i)
        close(fillers[i]);
    close(fd);
}

static action_t decide_hang_first(test_server_t *srv, test_conn_t *conn)
{
    if (srv->requests == 1)
        return (action_t){ACT_HANG, NULL};
    return (action_t){ACT_RESPOND, RESP_OK};
}

static void test_timeouts(void)
{
    backend_holder_t b;
    cf_upstream_t *u;
    result_t r = {0};

    /* accepts, never answers; the connection that timed out is closed and not reused */
    test_server_t *srv = server_start(decide_hang_first, NULL);
    u = upstream_new(&b, srv, NULL, 4);
    get(u, "/", 300, &r);
    RUN_UNTIL(r.called, 3000);
    is_str(r.error, "timeout", "no answer: timeout");
    ok(r.elapsed >= 290 && r.elapsed < 450, "at timeout_ms (%.0fms)", r.elapsed);
    RUN_UNTIL(srv->peer_closes == 1, 500);
    is(srv->peer_closes, 1, "the server sees the connection closed");
    get_sync(u, "/", &r);
    is_str(r.error, NULL, "next request ok");
    is(srv->accepts, 2, "on a new connection: the timed-out one was not pooled");
    cf_upstream_release(u);
    server_stop(srv);
}

static action_t decide_trickle(test_server_t *srv, test_conn_t *conn)
{
    return (action_t){ACT_TRICKLE, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"};
}

static void test_trickle(void)
{
    test_server_t *srv = server_start(decide_trickle, NULL);
    backend_holder_t b;
    cf_upstream_t *u = upstream_new(&b, srv, NULL, 4);
    result_t r = {0};

    get(u, "/", 400, &r);
    RUN_UNTIL(r.called, 3000);
    is_str(r.error, "timeout", "trickle: timeout");
    ok(r.elapsed >= 390 && r.elapsed < 550, "at timeout_ms although bytes kept coming (%.0fms)", r.elapsed);
    is(r.status, 200, "the head had arrived");
    RUN_UNTIL(srv->peer_closes == 1, 500);
    is(srv->peer_closes, 1, "the server sees the connection closed");
    cf_upstream_release(u);
    server_stop(srv);
}

static action_t decide_reset(test_server_t *srv, test_conn_t *conn)
{
    return (action_t){ACT_RESET, NULL};
}

static action_t decide_respond_close(test_server_t *srv, test_conn_t *conn)
{
    return (action_t){ACT_RESPOND_CLOSE, srv->canned};
}

static void test_faults(void)
{
    backend_holder_t b;
    cf_upstream_t *u;
    result_t r;
    test_server_t *srv;

    srv = server_start(decide_reset, NULL);
    u = upstream_new(&b, srv, NULL, 4);
    get_sync(u, "/", &r);
    is_str(r.error, "reset", "RST before the head: reset");
    cf_upstream_release(u);
    server_stop(srv);

    static const struct {
        const char *bytes;
        const char *error;
        const char *name;
    } cases[] = {
        {"HELLO WORLD\r\n\r\n", "bad_response", "garbage"},
        {"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", "bad_response", "invalid Content-Length"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "bad_response", "unknown Transfer-Encoding"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n", "bad_response", "malformed chunk"},
        {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", "bad_response", "unasked-for 101"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789", "reset", "truncated body (Content-Length)"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "reset", "truncated body (inside a chunk)"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", "reset", "truncated body (after a chunk)"},
        {"HTTP/1.1 200 OK\r\nContent-Le", "reset", "truncated head"},
        {"", "reset", "closed without a byte"},
        {"HTTP/1.0 200 OK\r\n\r\nuntil close", NULL, "body delimited by close"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "bad_response", "conflicting Content-Length"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n", "bad_response",
         "chunk longer than its size"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", "bad_response", "chunk size overflow"},
        {"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n", "bad_response", "obs-fold"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n", NULL,
         "chunk extension and trailer"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "bad_response",
         "both Transfer-Encoding and Content-Length"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", "bad_response",
         "a chunk size that is not pure hex"},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n", "bad_response", "bare-LF chunk lines"},
        {"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "bad_response",
         "Transfer-Encoding from HTTP/1.0"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", NULL, "a complete response and the close together"},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        srv = server_start(decide_respond_close, cases[i].bytes);
        u = upstream_new(&b, srv, NULL, 4);
        get_sync(u, "/", &r);
        is_str(r.error, cases[i].error, "%s", cases[i].name);
        ok(r.error == NULL || r.body_len == 0, "%s: no partial body", cases[i].name);
        cf_upstream_release(u);
        server_stop(srv);
    }
}

static void test_head_limit_and_persistence(void)
{
    backend_holder_t b;
    cf_upstream_t *u;
    result_t r;
    static char big_head[80 * 1024];
    size_t n = (size_t)snprintf(big_head, sizeof(big_head), "HTTP/1.1 200 OK\r\n");
    while (n < 70 * 1024)
        n += (size_t)snprintf(big_head + n, sizeof(big_head) - n, "X-Pad: %0100d\r\n", 0);

    test_server_t *srv = server_start(decide_respond_close, big_head);
    u = upstream_new(&b, srv, NULL, 4);
    get_sync(u, "/", &r);
    is_str(r.error, "bad_response", "a head over 64KiB: bad_response");
    cf_upstream_release(u);
    server_stop(srv);

    static const struct {
        const char *bytes;
        size_t accepts;
        const char *name;
    } cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", 2, "Connection: close is not pooled"},
        {"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello", 2, "HTTP/1.0 is not pooled"},
        {"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello", 1, "HTTP/1.0 keep-alive is pooled"},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA", 2, "bytes beyond the body: not pooled"},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        srv = server_start(NULL, cases[i].bytes);
        u = upstream_new(&b, srv, NULL, 4);
        get_sync(u, "/", &r);
        is_str(r.body, "hello", "%s: body", cases[i].name);
        get_sync(u, "/", &r);
        is_str(r.body, "hello", "%s: second body", cases[i].name);
        is(srv->accepts, cases[i].accepts, "%s", cases[i].name);
        cf_upstream_release(u);
        server_stop(srv);
    }
}

static action_t decide_respond_keep(test_server_t *srv, test_conn_t *conn)
{
    return (action_t){ACT_RESPOND, srv->canned};
}

static void test_too_large(void)
{
    backend_holder_t b;
    cf_upstream_t *u;
    result_t r;
    static const char *const bodies[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n",              /* declared */
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n", /* found while reading (padded below) */
        NULL,                                                           /* chunked, complete in one read */
    };
    static char chunked_big[2048], chunked_complete[2048], chunked_small[2048], until_close[2048];
    memset(chunked_big, 0, sizeof(chunked_big));
    snprintf(chunked_big, sizeof(chunked_big), "%s", bodies[1]);
    memset(chunked_big + strlen(chunked_big), 'a', 1100);
    snprintf(chunked_complete, sizeof(chunked_complete),
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%01100d\r\n0\r\n\r\n", 1100, 0);
    snprintf(chunked_small, sizeof(chunked_small),
             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n190\r\n%0400d\r\n190\r\n%0400d\r\n190\r\n%0400d\r\n0\r\n\r\n", 0,
             0, 0);
    snprintf(until_close, sizeof(until_close), "HTTP/1.0 200 OK\r\n\r\n%01100d", 0);
    const char *cases[] = {bodies[0], chunked_big, chunked_complete, chunked_small, until_close};
    const char *names[] = {"declared Content-Length", "chunked, cut while reading", "chunked, complete but too large",
                           "chunks adding up to too much", "delimited by the close"};

    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        test_server_t *srv = server_start(decide_respond_keep, cases[i]);
        u = upstream_new(&b, srv, NULL, 4);
        get_sync(u, "/", &r); /* max_response_body 1024 */
        is_str(r.error, "too_large", "%s: too_large", names[i]);
        is(r.status, 200, "%s: status kept", names[i]);
        RUN_UNTIL(srv->peer_closes == 1, 500);
        is(srv->peer_closes, 1, "%s: the connection is closed", names[i]);
        srv->canned = RESP_OK;
        get_sync(u, "/", &r);
        is_str(r.error, NULL, "%s: next request ok", names[i]);
        is(srv->accepts, 2, "%s: on a new connection", names[i]);
        cf_upstream_release(u);
        server_stop(srv);
    }

    /* exactly at the limit is fine */
    static char exact[2048];
    snprintf(exact, sizeof(exact), "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n%01024d", 0);
    test_server_t *srv = server_start(decide_respond_keep, exact);
    u = upstream_new(&b, srv, NULL, 4);
    get_sync(u, "/", &r);
    is_str(r.error, NULL, "body of exactly max_response_body: ok");
    is(r.body_len, 1024, "whole body");
    cf_upstream_release(u);
    server_stop(srv);
}

static action_t decide_delayed(test_server_t *srv, test_conn_t *conn)
{
    return (action_t){ACT_DELAYED, RESP_OK};
}

static void test_queue(void)
{
    test_server_t *srv = server_start(decide_delayed, NULL);
    backend_holder_t b;
    cf_upstream_t *u = upstream_new(&b, srv, NULL, 2);
    result_t r[5];
    int all, errors = 0;

    memset(r, 0, sizeof(r));
    for (int i = 0; i != 5; ++i)
        get(u, "/", 2000, r + i);
    is(cf_upstream_active(u), 5, "five active (two running, three queued)");
    is(u->in_use, 2, "two connections in use");
    RUN_UNTIL((all = r[0].called + r[1].called + r[2].called + r[3].called + r[4].called) == 5, 3000);
    is(all, 5, "all five complete");
    for (int i = 0; i != 5; ++i)
        errors += r[i].error != NULL || strcmp(r[i].body, "hello") != 0;
    is(errors, 0, "all five ok");
    ok(srv->max_open <= 2, "at most 2 connections open at once (%zu)", srv->max_open);
    ok(srv->accepts <= 2, "connections reused (%zu accepts)", srv->accepts);
    ok(r[4].elapsed >= 80, "the last waited its turn (%.0fms)", r[4].elapsed);
    is(cf_upstream_active(u), 0, "nothing left");
    cf_upstream_release(u);
    server_stop(srv);
}

static action_t decide_hang(test_server_t *srv, test_conn_t *conn)
{
    return (action_t){ACT_HANG, NULL};
}

static void test_queued_timeout_and_cancel(void)
{
    test_server_t *srv = server_start(decide_hang, NULL);
    backend_holder_t b;
    cf_upstream_t *u = upstream_new(&b, srv, NULL, 1);
    result_t ra = {0}, rb = {0}, rc = {0};
    cf_exchange_t *a, *c;

    /* a queued request whose timeout passes while queued */
    a = get(u, "/a", 2000, &ra);
    get(u, "/b", 200, &rb);
    is(u->in_use, 1, "one running");
    RUN_UNTIL(rb.called, 3000);
    is_str(rb.error, "timeout", "queued request: timeout");
    ok(rb.elapsed >= 190 && rb.elapsed < 400, "at its own timeout (%.0fms)", rb.elapsed);
    ok(!ra.called, "the running one is unaffected");
    is(srv->accepts, 1, "the queued one never connected");

    /* cancel of a queued exchange */
    c = get(u, "/c", 2000, &rc);
    is(cf_upstream_active(u), 2, "two active");
    cf_upstream_cancel(c);
    is(cf_upstream_active(u), 1, "one active after cancelling the queued one");

    /* cancel of a running exchange */
    RUN_UNTIL(srv->requests == 1, 500);
    cf_upstream_cancel(a);
    is(cf_upstream_active(u), 0, "nothing active");
    RUN_UNTIL(srv->peer_closes == 1, 500);
    is(srv->peer_closes, 1, "the server sees the cancelled connection closed");
    RUN_FOR(50);
    ok(!ra.called && !rc.called, "no callback after cancel");
    is(u->in_use, 0, "slot released");

    /* cancel right after start, while connecting */
    ra = (result_t){0};
    a = get(u, "/d", 2000, &ra);
    cf_upstream_cancel(a);
    RUN_FOR(50);
    ok(!ra.called, "no callback after cancelling a connecting exchange");
    is(srv->open, 0, "no connection left open");

    /* cancel of a finished exchange whose callback is still due */
    srv->decide = decide_canned;
    srv->canned = "";
    cf_upstream_req_t bad = req_get("/bad path", 1000);
    ra = (result_t){0};
    a = start(u, &bad, &ra);
    cf_upstream_cancel(a);
    RUN_FOR(30);
    ok(!ra.called, "no callback after cancelling a failed-but-undelivered exchange");

    cf_upstream_release(u);
    server_stop(srv);
}

static void test_bad_request(void)
{
    test_server_t *srv = server_start(NULL, RESP_OK);
    backend_holder_t b;
    cf_upstream_t *u = upstream_new(&b, srv, NULL, 4);
    h2o_iovec_t name_ok = h2o_iovec_init(H2O_STRLIT("x-a")), name_bad = h2o_iovec_init(H2O_STRLIT("x a"));
    h2o_header_t bad_value = {&name_ok, NULL, h2o_iovec_init(H2O_STRLIT("v\r\nInjected: 1"))};
    h2o_header_t bad_nul = {&name_ok, NULL, h2o_iovec_init("v\0w", 3)};
    h2o_header_t bad_name = {&name_bad, NULL, h2o_iovec_init(H2O_STRLIT("v"))};
    struct {
        const char *method, *path, *authority;
        h2o_header_t *header;
        const char *name;
    } cases[] = {
        {"GET", "/a b", "", NULL, "space in path"},
        {"GET", "/a\r\nX: y", "", NULL, "CRLF in path"},
        {"GET", "", "", NULL, "empty path"},
        {"GET", "a", "", NULL, "path without a slash"},
        {"G T", "/", "", NULL, "space in method"},
        {"GET", "/", "h\r\nx", NULL, "CRLF in authority"},
        {"GET", "/", "", &bad_value, "CRLF in a header value"},
        {"GET", "/", "", &bad_nul, "NUL in a header value"},
        {"GET", "/", "", &bad_name, "space in a header name"},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        cf_upstream_req_t req = req_get(cases[i].path, 1000);
        req.method = h2o_iovec_init(cases[i].method, strlen(cases[i].method));
        req.authority = h2o_iovec_init(cases[i].authority, strlen(cases[i].authority));
        req.headers = cases[i].header;
        req.num_headers = cases[i].header != NULL;
        result_t r = {0};
        start(u, &req, &r);
        ok(!r.called, "%s: no callback inside start", cases[i].name);
        RUN_UNTIL(r.called, 1000);
        is_str(r.error, "bad_request", "%s: bad_request", cases[i].name);
    }
    RUN_FOR(20);
    is(srv->accepts, 0, "nothing reached the server");
    cf_upstream_release(u);
    server_stop(srv);
}

/* the idle list: live keep-alive connections that stay on the loop, watched for a close, bytes, or their idle timeout */
static void test_idle_list(void)
{
    test_server_t *srv = server_start(NULL, RESP_OK), *srv2;
    backend_holder_t b;
    cf_upstream_t *u = upstream_new(&b, srv, NULL, 4);
    result_t r, r2;
    cf_exchange_t *x;

    /* an idle connection closed by the server is dropped at once, not used */
    get_sync(u, "/", &r);
    is_str(r.error, NULL, "first ok");
    is(u->num_idle, 1, "its connection is idle");
    while (!h2o_linklist_is_empty(&srv->conns))
        conn_close(H2O_STRUCT_FROM_MEMBER(test_conn_t, link, srv->conns.next), 0);
    RUN_UNTIL(u->num_idle == 0, 500);
    is(u->num_idle, 0, "closed by the server while idle: dropped from the idle list");
    ok(h2o_linklist_is_empty(&u->servers[0]->idle), "the server's idle list is empty");
    r = (result_t){0};
    x = get(u, "/", 2000, &r);
    ok(!x->reused, "the next request does not run on a reused connection");
    RUN_UNTIL(r.called, 3000);
    is_str(r.error, NULL, "next request ok");
    is(srv->accepts, 2, "on a new connection");
    is(srv->requests, 2, "no request was written to the dead one");

    /* bytes arriving on an idle connection: it is dropped too */
    is(u->num_idle, 1, "idle again");
    test_conn_t *conn = H2O_STRUCT_FROM_MEMBER(test_conn_t, link, srv->conns.next);
    server_write(conn, H2O_STRLIT("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
    RUN_UNTIL(u->num_idle == 0, 500);
    is(u->num_idle, 0, "unexpected bytes on an idle connection: dropped");
    RUN_UNTIL(srv->open == 0, 500);
    is(srv->open, 0, "and closed");

    /* LIFO: the most recently used idle connection is taken, and the request is written at once */
    srv->decide = decide_delayed;
    r = (result_t){0};
    r2 = (result_t){0};
    get(u, "/", 2000, &r);
    get(u, "/", 2000, &r2);
    RUN_UNTIL(r.called && r2.called, 3000);
    is(u->num_idle, 2, "two idle connections");
    h2o_socket_t *newest = H2O_STRUCT_FROM_MEMBER(struct st_upstream_idle_t, link, u->servers[0]->idle.next)->sock;
    r = (result_t){0};
    x = get(u, "/", 2000, &r);
    ok(x->reused && x->sock == newest, "the most recently used idle connection is taken");
    ok(x->connect_req == NULL && !x->got_bytes && h2o_socket_is_writing(x->sock), "taken synchronously, request written at once");
    is(u->num_idle, 1, "one left idle");
    RUN_UNTIL(r.called, 3000);
    is_str(r.error, NULL, "ok on it");
    is(srv->accepts, 4, "no new connection");

    /* the idle timeout closes idle connections after about 2s */
    double t0 = now_ms();
    RUN_UNTIL(srv->open == 0, 3500);
    is(srv->open, 0, "idle connections closed by the idle timeout");
    ok(now_ms() - t0 >= 1500, "not before the idle timeout (%.0fms)", now_ms() - t0);
    is(u->num_idle, 0, "idle list empty");
    cf_upstream_release(u);
    server_stop(srv);

    /* the cap counts idle connections: with max_connections 1, a request to the other server first closes the idle one */
    srv = server_start(NULL, RESP_OK);
    srv2 = server_start(NULL, RESP_OK);
    u = upstream_new(&b, srv, srv2, 1);
    get_sync(u, "/", &r);
    is_str(r.error, NULL, "server 1 ok");
    is(srv->open, 1, "its connection stays open, idle");
    get_sync(u, "/", &r);
    is_str(r.error, NULL, "server 2 ok");
    RUN_UNTIL(srv->open == 0, 500);
    is(srv->open, 0, "server 1's idle connection was closed to stay within the cap");
    ok(u->in_use + u->num_idle <= 1, "in use + idle within the cap");
    ok(srv->max_open + srv2->max_open <= 2 && srv2->open == 1, "server 2's connection idle");
    cf_upstream_release(u);
    RUN_UNTIL(srv2->open == 0, 500);
    is(srv2->open, 0, "destroy closes it");
    server_stop(srv);
    server_stop(srv2);
}

static void test_destroy_from_callback(void)
{
    test_server_t *srv = server_start(NULL, RESP_OK);
    backend_holder_t b;
    cf_upstream_t *u = upstream_new(&b, srv, NULL, 4);
    result_t r = {0};

    r.destroy = u;
    get(u, "/", 2000, &r);
    RUN_UNTIL(r.called, 3000);
    is_str(r.error, NULL, "ok, and the upstream was destroyed from the callback");
    RUN_UNTIL(srv->open == 0, 500);
    is(srv->open, 0, "its pooled connection is closed");
    server_stop(srv);
}

int main(void)
{
    /* the reasons a response the parser refused is reported under */
    is(h1resp_reason(CF_H1RESP_BAD_RESPONSE), CF_REASON_BAD_RESPONSE, "a malformed response: bad_response");
    is(h1resp_reason(CF_H1RESP_TOO_LARGE), CF_REASON_TOO_LARGE, "a body over max_response_body: too_large");
    is(h1resp_reason(CF_H1RESP_TRUNCATED), CF_REASON_RESET, "a response cut short: reset");

    loop = h2o_evloop_create();
    cf_timeouts_init(&timeouts, loop);
    mt_queue = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(mt_queue, &getaddr_receiver, h2o_hostinfo_getaddr_receiver);
    h2o_timeout_init(loop, &delay_timeout, 30);
    h2o_timeout_init(loop, &trickle_timeout, 50);

    test_normal();
    test_base_path_and_round_robin();
    test_chunked_head_1xx();
    test_keepalive();
    test_retry();
    test_connect_failures();
    test_timeouts();
    test_trickle();
    test_faults();
    test_head_limit_and_persistence();
    test_too_large();
    test_queue();
    test_queued_timeout_and_cancel();
    test_bad_request();
    test_destroy_from_callback();
    test_idle_list();

    RUN_FOR(20); /* let closed sockets be disposed */
    cf_timeouts_dispose(&timeouts);
    h2o_timeout_dispose(loop, &delay_timeout);
    h2o_timeout_dispose(loop, &trickle_timeout);
    h2o_multithread_unregister_receiver(mt_queue, &getaddr_receiver);
    h2o_multithread_destroy_queue(mt_queue);
    free(mt_queue);
    h2o_evloop_destroy(loop);
    return done_testing();
}
