/* Forwarding a request of conflux-mock to a real upstream (a proxy stub) and returning its answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <h2o.h>
#include <h2o/http1client.h>
#include <jansson.h>
#include "cf_buf.h"
#include "cf_http.h"
#include "http.h"
#include "journal.h"
#include "proxy.h"
#include "timing.h"

/*
 * One proxied request is one HTTP/1.1 exchange on a fresh connection (h2o_http1client, "Connection: close", no pool):
 * a mock in front of a service under test favours a plain, predictable exchange over connection reuse.
 *
 * - Names are not resolved on the loop: a proxy URL names a numeric IPv4 address, or "localhost" (127.0.0.1), and
 *   h2o_http1client_connect then calls connect(2) directly, without its resolver thread.
 * - h2o_http1client has only an inactivity timeout, so each exchange has its own deadline timer (the stub's
 *   proxy_timeout, from forwarding to the last byte); the client's io_timeout is set longer than any deadline.
 * - The answer is buffered whole (bounded by CF_MOCK_PROXY_MAX_BODY) and sent with a Content-Length: what the client
 *   sees is either the upstream's complete answer or a 502/504, never half of one.
 * - Hop-by-hop fields (RFC 9110 7.6.1: Connection, the fields it names, Keep-Alive, Proxy-Connection, TE, Trailer,
 *   Transfer-Encoding, Upgrade) are dropped both ways; so are Content-Length (recomputed) and, from the answer, Date
 *   and Server (h2o writes its own).
 */

/* longer than any proxy_timeout (at most an hour): the deadline timer ends an exchange first */
#define IO_TIMEOUT_MS (3600 * 1000 + 60 * 1000)

static h2o_http1client_ctx_t client_ctx;
static h2o_timeout_t io_timeout;

typedef struct st_proxy_exchange_t {
    h2o_req_t *req;
    uint64_t journal_id;
    h2o_http1client_t *client; /* NULL once the client is gone */
    cf_mock_timer_t deadline;
    h2o_iovec_t reqbufs[2];
    int is_head;
    int done; /* the answer was sent */
    char *url;
    h2o_buffer_t *body; /* the upstream's body so far */
} proxy_exchange_t;

void cf_mock_proxy_init(h2o_loop_t *loop)
{
    h2o_timeout_init(loop, &io_timeout, IO_TIMEOUT_MS);
    client_ctx.loop = loop;
    client_ctx.io_timeout = &io_timeout;
}

/* Whether a field is hop-by-hop (RFC 9110 7.6.1) or one the mock sets itself; name is lower case. */
static int is_hop_by_hop(const h2o_iovec_t *name, const h2o_headers_t *headers)
{
    static const char *const fixed[] = {"connection",        "keep-alive", "proxy-connection", "te",   "trailer", "trailers",
                                        "transfer-encoding", "upgrade",    "content-length",   "host", NULL};
    for (size_t i = 0; fixed[i] != NULL; ++i)
        if (h2o_memis(name->base, name->len, fixed[i], strlen(fixed[i])))
            return 1;
    /* the fields the Connection field names */
    for (size_t i = 0; i != headers->size; ++i) {
        const h2o_header_t *h = headers->entries + i;
        if (h->name == &H2O_TOKEN_CONNECTION->buf && h2o_contains_token(h->value.base, h->value.len, name->base, name->len, ','))
            return 1;
    }
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

static void finish_error(proxy_exchange_t *px, int status, const char *error, const char *detail)
{
    if (px->done)
        return;
    px->done = 1;
    cf_mock_timer_stop(&px->deadline);
    cf_mock_journal_answer(px->journal_id, status);
    cf_mock_journal_done(px->journal_id);
    cf_mock_send_json(px->req, status, json_pack("{ssssss}", "error", error, "upstream", px->url, "detail", detail));
}

static void on_deadline(cf_mock_timer_t *timer)
{
    proxy_exchange_t *px = H2O_STRUCT_FROM_MEMBER(proxy_exchange_t, deadline, timer);
    if (px->client != NULL) {
        h2o_http1client_cancel(px->client); /* no callback follows */
        px->client = NULL;
    }
    finish_error(px, 504, "upstream timeout", "no complete answer within proxy_timeout");
}

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    proxy_exchange_t *px = client->data;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        px->client = NULL; /* the client closes itself after this callback */
        finish_error(px, 502, "upstream failed", errstr);
        return -1;
    }
    h2o_buffer_t **in = &client->sock->input;
    if (px->body->size + (*in)->size > CF_MOCK_PROXY_MAX_BODY) {
        px->client = NULL; /* the client closes the connection on -1 */
        finish_error(px, 502, "upstream answer too large", "the body exceeds 64 MiB");
        return -1;
    }
    if ((*in)->size != 0) {
        h2o_iovec_t dst = h2o_buffer_reserve(&px->body, (*in)->size);
        memcpy(dst.base, (*in)->bytes, (*in)->size);
        px->body->size += (*in)->size;
        h2o_buffer_consume(in, (*in)->size);
    }
    if (errstr == NULL)
        return 0;
    /* complete */
    px->client = NULL;
    px->done = 1;
    cf_mock_timer_stop(&px->deadline);
    cf_mock_journal_answer(px->journal_id, px->req->res.status);
    cf_mock_journal_done(px->journal_id);
    h2o_req_t *req = px->req;
    h2o_iovec_t body = h2o_iovec_init(NULL, 0);
    if (px->body->size != 0 && !px->is_head) {
        body.base = h2o_mem_alloc_pool(&req->pool, px->body->size);
        memcpy(body.base, px->body->bytes, px->body->size);
        body.len = px->body->size;
    }
    req->res.content_length = px->is_head ? SIZE_MAX : body.len;
    h2o_send_inline(req, body.base, body.len);
    return 0;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *errstr, int minor_version, int status,
                                       h2o_iovec_t msg, h2o_header_t *headers, size_t num_headers, int rlen)
{
    proxy_exchange_t *px = client->data;
    if (errstr != NULL && errstr != h2o_http1client_error_is_eos) {
        px->client = NULL;
        finish_error(px, 502, "upstream failed", errstr);
        return NULL;
    }
    h2o_req_t *req = px->req;
    if (status < 200 || status > 999) {
        px->client = NULL; /* the client closes itself when this returns NULL */
        finish_error(px, 502, "upstream failed", status == 101 ? "101 Switching Protocols is not proxied" : "bad status");
        return NULL;
    }
    req->res.status = status;
    req->res.reason = h2o_strdup(&req->pool, msg.base, msg.len).base;
    h2o_headers_t upstream = {headers, num_headers, num_headers};
    for (size_t i = 0; i != num_headers; ++i) {
        const h2o_iovec_t *name = headers[i].name;
        if (is_hop_by_hop(name, &upstream) || h2o_memis(name->base, name->len, H2O_STRLIT("date")) ||
            h2o_memis(name->base, name->len, H2O_STRLIT("server")))
            continue;
        h2o_iovec_t v = h2o_strdup(&req->pool, headers[i].value.base, headers[i].value.len);
        h2o_iovec_t n = h2o_strdup(&req->pool, name->base, name->len);
        h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 0, headers[i].orig_name, v.base, v.len);
    }
    if (errstr == h2o_http1client_error_is_eos) { /* no body: HEAD, 204, 304; the client closes itself */
        on_body(client, errstr);
        return NULL;
    }
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr, h2o_iovec_t **reqbufs, size_t *reqbufcnt,
                                          int *method_is_head)
{
    proxy_exchange_t *px = client->data;
    if (errstr != NULL) {
        px->client = NULL;
        finish_error(px, 502, "upstream unreachable", errstr);
        return NULL;
    }
    *reqbufs = px->reqbufs;
    *reqbufcnt = px->reqbufs[1].len != 0 ? 2 : 1;
    *method_is_head = px->is_head;
    return on_head;
}

static void on_dispose(void *_px)
{
    proxy_exchange_t *px = _px;
    cf_mock_timer_stop(&px->deadline);
    if (px->client != NULL) /* the client went away first */
        h2o_http1client_cancel(px->client);
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
    cf_buf_t head = CF_BUF_INIT;
    cf_buf_append(&head, req->method.base, req->method.len);
    cf_buf_appendc(&head, ' ');
    cf_buf_append(&head, req->path.base, req->path.len);
    cf_buf_appendf(&head, " HTTP/1.1\r\nHost: %s\r\n", up->hostport);
    for (size_t i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = req->headers.entries + i;
        if (is_hop_by_hop(h->name, &req->headers))
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
    if (req->entity.base != NULL)
        cf_buf_appendf(&head, "Content-Length: %zu\r\n", req->entity.len);
    cf_buf_appends(&head, "Connection: close\r\n\r\n");
    px->reqbufs[0] = h2o_strdup(&req->pool, head.base, head.len);
    cf_buf_free(&head);
    px->reqbufs[1] = req->entity.base != NULL ? req->entity : h2o_iovec_init(NULL, 0);

    cf_mock_timer_start(&px->deadline, up->timeout);
    h2o_http1client_connect(&px->client, px, &client_ctx, h2o_iovec_init(up->host, strlen(up->host)), up->port, 0, on_connect);
}
