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
#include "cf_picohttp.h"
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
 *   Transfer-Encoding, and an upstream's bytes are hostile. The head is parsed with picohttpparser (bundled in and
 *   exported by libh2o; its header is not installed, so the two prototypes are declared below); the framing
 *   (RFC 9112 6.3) is decided here and anything ambiguous fails the request with 502.
 * - Names are not resolved on the loop: a proxy URL names a numeric IPv4 address, or "localhost" (127.0.0.1).
 * - Each exchange has one deadline timer (the stub's proxy_timeout, from forwarding to the last byte): a service that
 *   trickles cannot hold a request past it.
 * - The answer is buffered whole (bounded by CF_MOCK_PROXY_MAX_BODY) and sent with a Content-Length: what the client
 *   sees is either the upstream's complete answer or a 502/504, never half of one.
 * - Hop-by-hop fields (RFC 9110 7.6.1: Connection, the fields it names, Keep-Alive, Proxy-Connection, TE, Trailer,
 *   Transfer-Encoding, Upgrade) are dropped both ways; so are Content-Length (recomputed) and, from the answer, Date
 *   and Server (h2o writes its own).
 */

/* a response head larger than this, or with more fields, fails with 502 */
#define MAX_HEAD (64 * 1024)
#define MAX_HEADERS 100

static h2o_loop_t *proxy_loop;
/* "conflux-mock-PID": added to the Via field of what is forwarded (RFC 9110 7.6.3), and found there when a proxy stub
 * points back at this process, directly or through other proxies: that loop is answered 508 at once instead of
 * multiplying connections until descriptors run out */
static char via_token[64];

typedef enum en_framing_t { FRAMING_NONE, FRAMING_LENGTH, FRAMING_CHUNKED, FRAMING_CLOSE } framing_t;

typedef struct st_proxy_exchange_t {
    h2o_req_t *req;
    uint64_t journal_id;
    h2o_socket_t *sock; /* NULL once closed */
    cf_mock_timer_t deadline;
    h2o_iovec_t reqbufs[2];
    int is_head;
    int done;      /* the answer was sent */
    int head_seen; /* the final response head was parsed */
    framing_t framing;
    uint64_t left; /* FRAMING_LENGTH: body bytes still to come */
    struct phr_chunked_decoder chunked;
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
static int is_hop_by_hop(h2o_mem_pool_t *pool, h2o_iovec_t name, const h2o_iovec_t *conn, size_t n)
{
    static const char *const fixed[] = {"connection",        "keep-alive", "proxy-connection", "te",   "trailer", "trailers",
                                        "transfer-encoding", "upgrade",    "content-length",   "host", NULL};
    for (size_t i = 0; fixed[i] != NULL; ++i)
        if (h2o_lcstris(name.base, name.len, fixed[i], strlen(fixed[i])))
            return 1;
    if (n == 0)
        return 0;
    h2o_iovec_t lc = h2o_strdup(pool, name.base, name.len);
    h2o_strtolower(lc.base, lc.len);
    for (size_t i = 0; i != n; ++i)
        if (h2o_contains_token(conn[i].base, conn[i].len, lc.base, lc.len, ','))
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

static int append_body(proxy_exchange_t *px, const char *p, size_t n)
{
    if (px->body->size + n > CF_MOCK_PROXY_MAX_BODY) {
        finish_error(px, 502, "upstream answer too large", "the body exceeds 64 MiB");
        return -1;
    }
    if (n != 0) {
        h2o_iovec_t dst = h2o_buffer_reserve(&px->body, n);
        memcpy(dst.base, p, n);
        px->body->size += n;
    }
    return 0;
}

/* Parses the head in sock->input: returns 1 when the final head was taken (its bytes consumed), 0 for more, -1 failed. */
static int parse_head(proxy_exchange_t *px)
{
    h2o_buffer_t **in = &px->sock->input;
    h2o_req_t *req = px->req;
    for (;;) {
        struct phr_header headers[MAX_HEADERS];
        size_t num_headers = MAX_HEADERS, msg_len;
        int minor, status;
        const char *msg;
        int rlen = phr_parse_response((*in)->bytes, (*in)->size, &minor, &status, &msg, &msg_len, headers, &num_headers, 0);
        if (rlen == -2) {
            if ((*in)->size > MAX_HEAD)
                return finish_error(px, 502, "upstream failed", "response head too large"), -1;
            return 0;
        }
        if (rlen < 0)
            return finish_error(px, 502, "upstream failed", "not an HTTP/1 response"), -1;
        if (status < 100 || status > 999 || status == 101)
            return finish_error(px, 502, "upstream failed", "unusable status"), -1;
        if (status < 200) { /* 1xx: skipped (RFC 9110 15.2) */
            h2o_buffer_consume(in, (size_t)rlen);
            continue;
        }
        h2o_iovec_t conn[MAX_HEADERS];
        size_t n_conn = 0, n_cl = 0;
        int te = 0, te_chunked = 0;
        uint64_t cl = 0;
        for (size_t i = 0; i != num_headers; ++i) {
            h2o_iovec_t name = h2o_iovec_init(headers[i].name, headers[i].name_len);
            h2o_iovec_t value = h2o_iovec_init(headers[i].value, headers[i].value_len);
            if (name.base == NULL) /* a continuation line (obsolete folding, RFC 9112 5.2): refused */
                return finish_error(px, 502, "upstream failed", "folded header field"), -1;
            if (h2o_lcstris(name.base, name.len, H2O_STRLIT("connection"))) {
                conn[n_conn++] = value;
            } else if (h2o_lcstris(name.base, name.len, H2O_STRLIT("transfer-encoding"))) {
                te = 1;
                te_chunked = h2o_lcstris(value.base, value.len, H2O_STRLIT("chunked"));
                if (!te_chunked)
                    return finish_error(px, 502, "upstream failed", "unsupported transfer-encoding"), -1;
            } else if (h2o_lcstris(name.base, name.len, H2O_STRLIT("content-length"))) {
                uint64_t v = 0;
                if (value.len == 0 || value.len > 19)
                    return finish_error(px, 502, "upstream failed", "invalid content-length"), -1;
                for (size_t k = 0; k != value.len; ++k) {
                    if (value.base[k] < '0' || value.base[k] > '9')
                        return finish_error(px, 502, "upstream failed", "invalid content-length"), -1;
                    v = v * 10 + (uint64_t)(value.base[k] - '0');
                }
                if (n_cl++ != 0 && v != cl)
                    return finish_error(px, 502, "upstream failed", "conflicting content-length"), -1;
                cl = v;
            }
        }
        if (te && n_cl != 0) /* RFC 9112 6.1: both is a smuggling attempt at worst */
            return finish_error(px, 502, "upstream failed", "transfer-encoding with content-length"), -1;
        req->res.status = status;
        req->res.reason = h2o_strdup(&req->pool, msg, msg_len).base;
        for (size_t i = 0; i != num_headers; ++i) {
            h2o_iovec_t name = h2o_iovec_init(headers[i].name, headers[i].name_len);
            if (is_hop_by_hop(&req->pool, name, conn, n_conn) || h2o_lcstris(name.base, name.len, H2O_STRLIT("date")) ||
                h2o_lcstris(name.base, name.len, H2O_STRLIT("server")))
                continue;
            h2o_iovec_t n = h2o_strdup(&req->pool, name.base, name.len);
            h2o_iovec_t v = h2o_strdup(&req->pool, headers[i].value, headers[i].value_len);
            h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 0, NULL, v.base, v.len);
        }
        if (px->is_head || status == 204 || status == 304)
            px->framing = FRAMING_NONE;
        else if (te)
            px->framing = FRAMING_CHUNKED;
        else if (n_cl != 0)
            px->framing = FRAMING_LENGTH, px->left = cl;
        else
            px->framing = FRAMING_CLOSE;
        if (px->framing == FRAMING_LENGTH && cl > CF_MOCK_PROXY_MAX_BODY)
            return finish_error(px, 502, "upstream answer too large", "the body exceeds 64 MiB"), -1;
        h2o_buffer_consume(in, (size_t)rlen);
        px->head_seen = 1;
        return 1;
    }
}

static void on_read(h2o_socket_t *sock, const char *err)
{
    proxy_exchange_t *px = sock->data;
    h2o_buffer_t **in = &sock->input;
    if (!px->head_seen) {
        int r = parse_head(px);
        if (r < 0)
            return;
        if (r == 0) {
            if (err != NULL)
                finish_error(px, 502, "upstream failed", "connection closed before a complete response head");
            return;
        }
    }
    switch (px->framing) {
    case FRAMING_NONE:
        finish_ok(px);
        return;
    case FRAMING_LENGTH: {
        size_t n = (*in)->size < px->left ? (*in)->size : (size_t)px->left;
        if (append_body(px, (*in)->bytes, n) != 0)
            return;
        px->left -= n;
        h2o_buffer_consume(in, (*in)->size);
        if (px->left == 0)
            finish_ok(px);
        else if (err != NULL)
            finish_error(px, 502, "upstream failed", "connection closed before the end of the body");
        return;
    }
    case FRAMING_CHUNKED: {
        size_t n = (*in)->size;
        ssize_t r = phr_decode_chunked(&px->chunked, (*in)->bytes, &n); /* decodes in place */
        if (r == -1) {
            finish_error(px, 502, "upstream failed", "malformed chunked body");
            return;
        }
        if (append_body(px, (*in)->bytes, n) != 0)
            return;
        h2o_buffer_consume(in, (*in)->size);
        if (r >= 0)
            finish_ok(px);
        else if (err != NULL)
            finish_error(px, 502, "upstream failed", "connection closed before the end of the body");
        return;
    }
    case FRAMING_CLOSE:
        if (append_body(px, (*in)->bytes, (*in)->size) != 0)
            return;
        h2o_buffer_consume(in, (*in)->size);
        if (err != NULL)
            finish_ok(px); /* the close is the end of the body (RFC 9112 6.3 item 8) */
        return;
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
        if (is_hop_by_hop(&req->pool, *h->name, conn, n_conn))
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
