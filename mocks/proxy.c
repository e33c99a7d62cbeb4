/* Forwarding a request of conflux-mock to a real upstream (a proxy stub) and returning its answer. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <h2o.h>
#include <jansson.h>
#include "cf_buf.h"
#include "cf_http.h"
#include "cf_h1resp.h"
#include "http.h"
#include "journal.h"
#include "proxy.h"
#include "record.h"
#include "timing.h"

/*
 * One proxied request is one HTTP/1.1 exchange on a fresh connection ("Connection: close", no pool): a mock in front of
 * a service under test favours a plain, predictable exchange over connection reuse.
 *
 * - The exchange is driven here on an h2o_socket, not with h2o_http1client: in 2.2.5 that client aborts the process (a
 *   failed assert in on_error_before_head) when an HTTP/1.1 upstream sends an invalid Content-Length or an unknown
 *   Transfer-Encoding, and an upstream's bytes are hostile. The answer is read by the gateway's own response parser
 *   (common/cf_h1resp.c: 1xx skipped, framing by RFC 9112 6.3, strict chunked decoding, bounded head and body);
 *   anything it refuses, ambiguous framing included, fails the request with 502.
 * - Names are not resolved on the loop: a proxy URL names a numeric IPv4 address, or "localhost" (127.0.0.1).
 * - Each exchange has one deadline timer (the stub's proxy_timeout, from forwarding to the last byte): a service that
 *   trickles cannot hold a request past it.
 * - The answer is buffered whole (bounded by CF_MOCK_PROXY_MAX_BODY) and sent with a Content-Length: what the client
 *   sees is either the upstream's complete answer or a 502/504, never half of one.
 * - Hop-by-hop fields (RFC 9110 7.6.1: Connection, the fields it names, Keep-Alive, Proxy-Connection, TE, Trailer,
 *   Transfer-Encoding, Upgrade) are dropped both ways; so are Content-Length (recomputed) and, from the answer, Date
 *   and Server (h2o writes its own).
 */

static h2o_loop_t *proxy_loop;
/* "conflux-mock-PID": added to the Via field of what is forwarded (RFC 9110 7.6.3), and found there when a proxy stub
 * points back at this process, directly or through other proxies: that loop is answered 508 at once instead of
 * multiplying connections until descriptors run out */
static char via_token[64];

typedef struct st_proxy_exchange_t {
    h2o_req_t *req;
    uint64_t journal_id;
    h2o_socket_t *sock; /* NULL once closed */
    cf_mock_timer_t deadline;
    h2o_iovec_t reqbufs[2];
    int is_head;
    int done; /* the answer was sent */
    cf_h1resp_t parser;
    char *url;
    h2o_buffer_t *body; /* the upstream's body so far */
} proxy_exchange_t;

void cf_mock_proxy_init(h2o_loop_t *loop)
{
    proxy_loop = loop;
    snprintf(via_token, sizeof(via_token), "conflux-mock-%ld", (long)getpid());
}

/* Whether a field is hop-by-hop (RFC 9110 7.6.1) or one the mock sets itself: a fixed name, or one that a Connection
 * field (conn, n of them) names. */
static int is_hop_by_hop(h2o_iovec_t name, const h2o_iovec_t *conn, size_t n)
{
    if (cf_http_is_hop_by_hop(name.base, name.len) || h2o_lcstris(name.base, name.len, H2O_STRLIT("trailers")) ||
        h2o_lcstris(name.base, name.len, H2O_STRLIT("content-length")) || h2o_lcstris(name.base, name.len, H2O_STRLIT("host")))
        return 1;
    for (size_t i = 0; i != n; ++i)
        if (cf_http_list_has(conn[i].base, conn[i].len, name.base, name.len))
            return 1;
    return 0;
}

/* Whether a method, path or field carries a byte that must never reach the upstream's request line or head. */
static int unsafe_bytes(h2o_iovec_t v, int allow_space)
{
    for (size_t i = 0; i != v.len; ++i) {
        unsigned char c = (unsigned char)v.base[i];
        if (c < 0x20 ? c != '\t' || !allow_space : c == 0x7f || (c == ' ' && !allow_space))
            return 1;
    }
    return 0;
}

static void close_sock(proxy_exchange_t *px)
{
    if (px->sock != NULL) {
        h2o_socket_close(px->sock);
        px->sock = NULL;
    }
}

static void finish_error(proxy_exchange_t *px, int status, const char *error, const char *detail)
{
    close_sock(px);
    if (px->done)
        return;
    px->done = 1;
    cf_mock_timer_stop(&px->deadline);
    cf_mock_journal_answer(px->journal_id, status);
    cf_mock_journal_done(px->journal_id);
    cf_mock_send_json(px->req, status, json_pack("{ssssss}", "error", error, "upstream", px->url, "detail", detail));
}

static void finish_ok(proxy_exchange_t *px)
{
    close_sock(px);
    px->done = 1;
    cf_mock_timer_stop(&px->deadline);
    h2o_req_t *req = px->req;
    cf_mock_journal_answer(px->journal_id, req->res.status);
    cf_mock_journal_done(px->journal_id);
    h2o_iovec_t body = h2o_iovec_init(NULL, 0);
    if (px->body->size != 0 && !px->is_head) {
        body.base = h2o_mem_alloc_pool(&req->pool, px->body->size);
        memcpy(body.base, px->body->bytes, px->body->size);
        body.len = px->body->size;
    }
    cf_mock_record_add(req, req->res.status, &req->res.headers, body);
    req->res.content_length = px->is_head ? SIZE_MAX : body.len;
    h2o_send_inline(req, body.base, body.len);
}

static void on_deadline(cf_mock_timer_t *timer)
{
    proxy_exchange_t *px = H2O_STRUCT_FROM_MEMBER(proxy_exchange_t, deadline, timer);
    finish_error(px, 504, "upstream timeout", "no complete answer within proxy_timeout");
}

/* Keeps a piece of the body (the parser has bounded the whole by CF_MOCK_PROXY_MAX_BODY). */
static void append_body(proxy_exchange_t *px, const char *p, size_t n)
{
    h2o_iovec_t dst = h2o_buffer_reserve(&px->body, n);
    memcpy(dst.base, p, n);
    px->body->size += n;
}

/* Takes the final response head: the status, the reason phrase and the end-to-end fields into the client's answer. */
static void take_head(proxy_exchange_t *px, const cf_h1resp_event_t *ev)
{
    h2o_req_t *req = px->req;
    h2o_iovec_t conn[CF_H1RESP_MAX_HEADERS];
    size_t n_conn = 0;
    for (size_t i = 0; i != ev->num_headers; ++i)
        if (h2o_lcstris(ev->headers[i].name, ev->headers[i].name_len, H2O_STRLIT("connection")))
            conn[n_conn++] = h2o_iovec_init(ev->headers[i].value, ev->headers[i].value_len);
    req->res.status = ev->status;
    req->res.reason = h2o_strdup(&req->pool, ev->reason, ev->reason_len).base;
    for (size_t i = 0; i != ev->num_headers; ++i) {
        h2o_iovec_t name = h2o_iovec_init(ev->headers[i].name, ev->headers[i].name_len);
        if (is_hop_by_hop(name, conn, n_conn) || h2o_lcstris(name.base, name.len, H2O_STRLIT("date")) ||
            h2o_lcstris(name.base, name.len, H2O_STRLIT("server")))
            continue;
        h2o_iovec_t n = h2o_strdup(&req->pool, name.base, name.len);
        h2o_iovec_t v = h2o_strdup(&req->pool, ev->headers[i].value, ev->headers[i].value_len);
        h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 0, NULL, v.base, v.len);
    }
}

/* Feeds what arrived to the response parser (common/cf_h1resp.c, the gateway's own: strict framing, 1xx skipped, bounded
 * head and body) until it needs more or the answer is complete or refused. `err`: the connection closed or failed. */
static void on_read(h2o_socket_t *sock, const char *err)
{
    proxy_exchange_t *px = sock->data;
    h2o_buffer_t **in = &sock->input;
    cf_h1resp_event_t ev;
    for (;;) {
        cf_h1resp_kind_t kind = cf_h1resp_parse(&px->parser, (*in)->size != 0 ? (*in)->bytes : NULL, (*in)->size, err != NULL, &ev);
        switch (kind) {
        case CF_H1RESP_NEED_MORE:
            h2o_buffer_consume(in, ev.consumed);
            return;
        case CF_H1RESP_HEAD:
            take_head(px, &ev);
            break;
        case CF_H1RESP_BODY:
            append_body(px, ev.body, ev.body_len);
            break;
        case CF_H1RESP_DONE:
            finish_ok(px);
            return;
        case CF_H1RESP_ERROR:
            if (ev.error == CF_H1RESP_TOO_LARGE)
                finish_error(px, 502, "upstream answer too large", "the body exceeds 64 MiB");
            else
                finish_error(px, 502, "upstream failed", ev.detail);
            return;
        }
        h2o_buffer_consume(in, ev.consumed);
    }
}

static void on_written(h2o_socket_t *sock, const char *err)
{
    proxy_exchange_t *px = sock->data;
    if (err != NULL) {
        finish_error(px, 502, "upstream failed", "connection lost while sending the request");
        return;
    }
    h2o_socket_read_start(sock, on_read);
}

static void on_connect(h2o_socket_t *sock, const char *err)
{
    proxy_exchange_t *px = sock->data;
    if (err != NULL) {
        finish_error(px, 502, "upstream unreachable", err);
        return;
    }
    h2o_socket_write(sock, px->reqbufs, px->reqbufs[1].len != 0 ? 2 : 1, on_written);
}

static void on_dispose(void *_px)
{
    proxy_exchange_t *px = _px;
    cf_mock_timer_stop(&px->deadline);
    close_sock(px); /* the client went away first */
    if (!px->done)
        cf_mock_journal_close(px->journal_id);
    h2o_buffer_dispose(&px->body);
}

void cf_mock_proxy_forward(h2o_req_t *req, const cf_mock_upstream_t *up, uint64_t journal_id)
{
    proxy_exchange_t *px = h2o_mem_alloc_shared(&req->pool, sizeof(*px), on_dispose);
    memset(px, 0, sizeof(*px));
    px->req = req;
    px->journal_id = journal_id;
    px->deadline.cb = on_deadline;
    px->url = h2o_strdup(&req->pool, up->url, SIZE_MAX).base;
    px->is_head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_buffer_init(&px->body, &h2o_socket_buffer_prototype);
    cf_h1resp_init(&px->parser, px->is_head, CF_MOCK_PROXY_MAX_BODY);
    cf_mock_journal_proxied(journal_id, up->url);

    /* the request head: h2o parsed it, but check again that nothing can split a line */
    if (unsafe_bytes(req->method, 0) || unsafe_bytes(req->path, 0) || req->path.len == 0 || req->path.base[0] != '/') {
        finish_error(px, 400, "request not forwardable", "control bytes or spaces in the method or path");
        return;
    }
    for (size_t i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = req->headers.entries + i;
        if (!h2o_lcstris(h->name->base, h->name->len, H2O_STRLIT("via")))
            continue;
        if (h2o_strstr(h->value.base, h->value.len, via_token, strlen(via_token)) != SIZE_MAX) {
            finish_error(px, 508, "proxy loop", "the request already passed through this mock (Via)");
            return;
        }
    }
    cf_buf_t head = CF_BUF_INIT;
    cf_buf_append(&head, req->method.base, req->method.len);
    cf_buf_appendc(&head, ' ');
    cf_buf_append(&head, req->path.base, req->path.len);
    cf_buf_appendf(&head, " HTTP/1.1\r\nHost: %s\r\n", up->hostport);
    h2o_iovec_t conn[32];
    size_t n_conn = 0;
    for (size_t i = 0; i != req->headers.size && n_conn != 32; ++i)
        if (req->headers.entries[i].name == &H2O_TOKEN_CONNECTION->buf)
            conn[n_conn++] = req->headers.entries[i].value;
    for (size_t i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = req->headers.entries + i;
        if (is_hop_by_hop(*h->name, conn, n_conn))
            continue;
        if (unsafe_bytes(*h->name, 0) || unsafe_bytes(h->value, 1)) {
            cf_buf_free(&head);
            finish_error(px, 400, "request not forwardable", "control bytes in a header field");
            return;
        }
        cf_buf_append(&head, h->orig_name != NULL ? h->orig_name : h->name->base, h->name->len);
        cf_buf_append(&head, ": ", 2);
        cf_buf_append(&head, h->value.base, h->value.len);
        cf_buf_append(&head, "\r\n", 2);
    }
    cf_buf_appendf(&head, "Via: 1.1 %s\r\n", via_token); /* after the client's own Via fields: a list in order of hops */
    if (req->entity.base != NULL)
        cf_buf_appendf(&head, "Content-Length: %zu\r\n", req->entity.len);
    cf_buf_appends(&head, "Connection: close\r\n\r\n");
    px->reqbufs[0] = h2o_strdup(&req->pool, head.base, head.len);
    cf_buf_free(&head);
    px->reqbufs[1] = req->entity.base != NULL ? req->entity : h2o_iovec_init(NULL, 0);

    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(up->port);
    inet_pton(AF_INET, up->host, &sin.sin_addr); /* checked when the stub was loaded */
    if ((px->sock = h2o_socket_connect(proxy_loop, (struct sockaddr *)&sin, sizeof(sin), on_connect)) == NULL) {
        finish_error(px, 502, "upstream unreachable", "connect failed");
        return;
    }
    px->sock->data = px;
    cf_mock_timer_start(&px->deadline, up->timeout);
}
