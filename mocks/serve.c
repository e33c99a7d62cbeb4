/* Answering a request in conflux-mock: rendering, delays on the loop, faults as a client sees them, abort detection. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <jansson.h>
#include "cf_buf.h"
#include "cf_http.h"
#include "http.h"
#include "journal.h"
#include "proxy.h"
#include "serve.h"
#include "stubs.h"
#include "timing.h"

/*
 * How the mock reaches the socket.
 *
 * Every fault and the abort detection need the connection's socket, which h2o 2.2.5 exposes through
 * req->conn->callbacks->get_socket() (HTTP/1 only: the mock turns h2c upgrades off, and has no TLS). Stealing the
 * socket from h2o is not possible without a 101 response (h2o_http1_upgrade) or freeing it under the HTTP/1
 * connection (h2o_socket_export), so the mock borrows it instead, relying on two facts of lib/http1.c:
 *
 * - Once a request is handed to the handler, the HTTP/1 connection stops reading and has no timer running; it
 *   does not touch the socket again until the handler starts a response. So while a request waits (delay, hang)
 *   the mock may read from the socket itself: it swaps sock->data for its own state, reads with its own callback
 *   to see the client go away (EOF or error), and restores sock->data before it answers. Bytes a client pipelines
 *   meanwhile stay in sock->input for h2o to parse later (the request's method, path and headers were copied to
 *   its pool by h2o; the entity is copied by the mock before reading).
 *
 * - When a write fails, or a response ends on a non-persistent connection, h2o closes the connection and frees
 *   the request. So after doing something to the socket at the kernel level, the mock hands the request back by
 *   sending an empty non-persistent response; the connection is then torn down by its owner, never under it:
 *     reset:   SO_LINGER {1, 0} and connect(AF_UNSPEC), which on Linux aborts the connection with an RST at once
 *              (tcp_disconnect). The following write fails with EPIPE and h2o closes the (dead) fd.
 *     empty:   shutdown(SHUT_WR): the client reads EOF without a byte; the following write fails with EPIPE.
 *     garbage: non-HTTP bytes with send(MSG_DONTWAIT) into an idle socket buffer, then as empty.
 *
 * truncated and trickle need no kernel tricks: they are ordinary h2o responses with a Content-Length, one ended
 * early with H2O_SEND_STATE_ERROR (h2o then closes), the other fed one byte per timer tick through a generator.
 */

/* garbage: bytes that parse as nothing (a TLS-looking record header, binary, no "HTTP/") */
static const char garbage[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xde\xad\xbe\xef garbage, not HTTP \xff\xfe\x00\r\n\r\n";

/* while a waiting request reads its socket, stop if a client pipelines more than this */
#define WATCH_INPUT_LIMIT (1024 * 1024)

typedef enum en_exchange_state_t {
    EX_WAITING,   /* delay or hang running */
    EX_ANSWERING, /* a response (or trickle) is under way */
    EX_DONE,      /* nothing more to do */
} exchange_state_t;

/* one request being answered; allocated in the request's pool, torn down by on_dispose */
typedef struct st_exchange_t {
    h2o_req_t *req;
    cf_mock_stub_t *stub; /* retained, or NULL for /__mock/respond */
    uint64_t journal_id;
    size_t listener; /* the index of the listener it arrived on */
    exchange_state_t state;
    int status;
    cf_mock_fault_t fault;
    int faulted; /* the stub's fault (or fault status) was drawn for this request */
    uint64_t delay;
    h2o_iovec_t body;
    const h2o_iovec_t *hnames, *hvalues; /* the stub's headers, or a pool array for /__mock/respond */
    size_t n_headers;
    int has_content_type;
    uint64_t trickle_interval;
    size_t trickle_sent;
    cf_mock_timer_t timer;
    h2o_generator_t generator; /* trickle */
    h2o_socket_t *watched;     /* borrowed while waiting, else NULL */
    void *watched_data;        /* the socket's data (the HTTP/1 connection) to restore */
    h2o_linklist_t waiting;    /* in `waiting` while EX_WAITING */
} exchange_t;

/* the exchanges waiting out a delay or a hang, which a listener going down resets */
static h2o_linklist_t waiting = {&waiting, &waiting};

/* ---- rendering ---- */

static void append_value(cf_buf_t *buf, h2o_iovec_t v, int json_escape)
{
    if (!json_escape) {
        cf_buf_append(buf, v.base, v.len);
        return;
    }
    for (size_t i = 0; i != v.len; ++i) {
        unsigned char c = (unsigned char)v.base[i];
        if (c == '"' || c == '\\') {
            cf_buf_appendc(buf, '\\');
            cf_buf_appendc(buf, (char)c);
        } else if (c < 0x20) {
            cf_buf_appendf(buf, "\\u%04x", c);
        } else {
            cf_buf_appendc(buf, (char)c);
        }
    }
}

/* The stub's body with {param} and {query.name} filled in, in the request's pool. */
static h2o_iovec_t render_body(h2o_req_t *req, cf_mock_stub_t *stub, const h2o_iovec_t *caps)
{
    if (stub->n_pieces == 1 && stub->pieces[0].kind == CF_MOCK_PIECE_TEXT)
        return stub->pieces[0].text; /* the stub outlives the request (it is retained) */
    if (stub->n_pieces == 0)
        return h2o_iovec_init("", 0);
    cf_buf_t buf = CF_BUF_INIT;
    for (size_t i = 0; i != stub->n_pieces; ++i) {
        const cf_mock_piece_t *p = stub->pieces + i;
        switch (p->kind) {
        case CF_MOCK_PIECE_TEXT:
            cf_buf_append(&buf, p->text.base, p->text.len);
            break;
        case CF_MOCK_PIECE_PARAM:
            append_value(&buf, caps[p->param], stub->json_escape);
            break;
        case CF_MOCK_PIECE_QUERY: {
            h2o_iovec_t v = cf_mock_query_param(req, p->text.base);
            if (v.base != NULL)
                append_value(&buf, cf_mock_url_decode(&req->pool, v), stub->json_escape);
            break;
        }
        }
    }
    h2o_iovec_t out = h2o_strdup(&req->pool, buf.base != NULL ? buf.base : "", buf.len);
    cf_buf_free(&buf);
    return out;
}

static int looks_like_json(h2o_iovec_t s)
{
    size_t i = 0;
    while (i < s.len && (s.base[i] == ' ' || s.base[i] == '\n' || s.base[i] == '\t' || s.base[i] == '\r'))
        ++i;
    return i < s.len && (s.base[i] == '{' || s.base[i] == '[');
}

/* Status line and headers of the planned answer (the body is sent by the caller). */
static void set_response_head(exchange_t *ex)
{
    h2o_req_t *req = ex->req;
    req->res.status = ex->status;
    req->res.reason = cf_http_reason(ex->status);
    for (size_t i = 0; i != ex->n_headers; ++i) {
        h2o_iovec_t lower = h2o_strdup(&req->pool, ex->hnames[i].base, ex->hnames[i].len);
        h2o_strtolower(lower.base, lower.len);
        h2o_add_header_by_str(&req->pool, &req->res.headers, lower.base, lower.len, 1, ex->hnames[i].base, ex->hvalues[i].base,
                              ex->hvalues[i].len);
    }
    if (!ex->has_content_type && ex->body.len != 0) {
        if (looks_like_json(ex->body))
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
        else
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain; charset=utf-8"));
    }
}

/* ---- borrowing the socket while waiting ---- */

static h2o_socket_t *socket_of(h2o_req_t *req)
{
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return NULL;
    return req->conn->callbacks->get_socket(req->conn);
}

static void unwatch(exchange_t *ex)
{
    if (ex->watched == NULL)
        return;
    h2o_socket_read_stop(ex->watched);
    ex->watched->data = ex->watched_data;
    ex->watched = NULL;
}

static void finish_aborted(exchange_t *ex);

static void on_client_read(h2o_socket_t *sock, const char *err)
{
    exchange_t *ex = sock->data;
    if (err != NULL) {
        /* the client closed (or reset) the connection before the answer */
        cf_mock_journal_abort(ex->journal_id, ex->listener);
        finish_aborted(ex);
        return;
    }
    if (sock->input->size > WATCH_INPUT_LIMIT)
        unwatch(ex); /* a client pipelining this much can wait; it loses only abort detection */
}

static void watch(exchange_t *ex)
{
    h2o_socket_t *sock = socket_of(ex->req);
    if (sock == NULL)
        return;
    /* the entity points into sock->input, which reading may reallocate */
    if (ex->req->entity.base != NULL)
        ex->req->entity = h2o_strdup(&ex->req->pool, ex->req->entity.base, ex->req->entity.len);
    ex->watched = sock;
    ex->watched_data = sock->data;
    sock->data = ex;
    h2o_socket_read_start(sock, on_client_read);
}

/* ---- ending the exchange ---- */

/* Hands the request back to h2o with an empty non-persistent answer, which makes it close the connection. */
static void close_via_h2o(exchange_t *ex, int status)
{
    ex->state = EX_DONE;
    ex->req->http1_is_persistent = 0;
    cf_mock_send(ex->req, status, NULL, "", 0);
}

static void finish_aborted(exchange_t *ex)
{
    cf_mock_timer_stop(&ex->timer);
    unwatch(ex);
    if (h2o_linklist_is_linked(&ex->waiting))
        h2o_linklist_unlink(&ex->waiting);
    close_via_h2o(ex, 499);
}

static void do_socket_fault(exchange_t *ex)
{
    h2o_socket_t *sock = socket_of(ex->req);
    if (sock == NULL) {
        ex->state = EX_DONE;
        cf_mock_send(ex->req, 500, "text/plain", H2O_STRLIT("conflux-mock: socket faults need HTTP/1\n"));
        return;
    }
    int fd = h2o_socket_get_fd(sock);
    switch (ex->fault) {
    case CF_MOCK_FAULT_RESET: {
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        struct sockaddr sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_family = AF_UNSPEC;
        if (connect(fd, &sa, sizeof(sa)) != 0)
            shutdown(fd, SHUT_RDWR); /* not Linux: FIN now, and the RST when h2o closes the fd (linger 0) */
        break;
    }
    case CF_MOCK_FAULT_GARBAGE:
        if (send(fd, garbage, sizeof(garbage) - 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
            /* nothing to do: the client then sees an empty answer */
        }
        shutdown(fd, SHUT_WR);
        break;
    default: /* empty */
        shutdown(fd, SHUT_WR);
        break;
    }
    close_via_h2o(ex, 500);
}

static void do_truncated(exchange_t *ex)
{
    static h2o_generator_t generator = {NULL, NULL};
    h2o_req_t *req = ex->req;
    set_response_head(ex);
    /* promise the whole body (at least 2 bytes), send less than half of it, then close */
    req->res.content_length = ex->body.len >= 2 ? ex->body.len : 2;
    req->http1_is_persistent = 0;
    ex->state = EX_DONE;
    h2o_iovec_t half = h2o_iovec_init(ex->body.base, ex->body.len / 2);
    h2o_start_response(req, &generator);
    h2o_send(req, &half, half.len != 0 ? 1 : 0, H2O_SEND_STATE_ERROR);
}

static void trickle_next(exchange_t *ex)
{
    h2o_iovec_t one = h2o_iovec_init(ex->body.base + ex->trickle_sent, 1);
    ++ex->trickle_sent;
    int last = ex->trickle_sent == ex->body.len;
    if (last) {
        ex->state = EX_DONE;
        cf_mock_journal_done(ex->journal_id);
    }
    h2o_send(ex->req, &one, 1, last ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void on_trickle_timer(cf_mock_timer_t *timer)
{
    exchange_t *ex = H2O_STRUCT_FROM_MEMBER(exchange_t, timer, timer);
    trickle_next(ex);
}

static void on_trickle_proceed(h2o_generator_t *gen, h2o_req_t *req)
{
    exchange_t *ex = H2O_STRUCT_FROM_MEMBER(exchange_t, generator, gen);
    cf_mock_timer_start(&ex->timer, ex->trickle_interval);
}

static void on_trickle_stop(h2o_generator_t *gen, h2o_req_t *req)
{
    exchange_t *ex = H2O_STRUCT_FROM_MEMBER(exchange_t, generator, gen);
    cf_mock_timer_stop(&ex->timer);
}

static void do_trickle(exchange_t *ex)
{
    h2o_req_t *req = ex->req;
    set_response_head(ex);
    req->res.content_length = ex->body.len;
    ex->generator.proceed = on_trickle_proceed;
    ex->generator.stop = on_trickle_stop;
    ex->timer.cb = on_trickle_timer;
    h2o_start_response(req, &ex->generator);
    if (ex->body.len == 0) {
        ex->state = EX_DONE;
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return;
    }
    trickle_next(ex);
}

static int is_head(h2o_req_t *req)
{
    return h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
}

static void answer(exchange_t *ex)
{
    unwatch(ex);
    if (h2o_linklist_is_linked(&ex->waiting))
        h2o_linklist_unlink(&ex->waiting);
    if (ex->stub != NULL && ex->stub->proxy.url != NULL && !ex->faulted) {
        /* a proxy stub whose fault was not drawn: the upstream answers (proxy.c journals it) */
        ex->state = EX_DONE;
        cf_mock_proxy_forward(ex->req, &ex->stub->proxy, ex->journal_id);
        return;
    }
    ex->state = EX_ANSWERING;
    int sends_status =
        ex->fault == CF_MOCK_FAULT_NONE || ex->fault == CF_MOCK_FAULT_TRUNCATED || ex->fault == CF_MOCK_FAULT_TRICKLE;
    cf_mock_journal_answer(ex->journal_id, sends_status ? ex->status : 0);
    switch (ex->fault) {
    case CF_MOCK_FAULT_RESET:
    case CF_MOCK_FAULT_EMPTY:
    case CF_MOCK_FAULT_GARBAGE:
        do_socket_fault(ex);
        return;
    case CF_MOCK_FAULT_TRUNCATED:
        if (!is_head(ex->req))
            return do_truncated(ex);
        break;
    case CF_MOCK_FAULT_TRICKLE:
        if (!is_head(ex->req))
            return do_trickle(ex);
        break;
    default:
        break;
    }
    ex->state = EX_DONE;
    cf_mock_journal_done(ex->journal_id);
    set_response_head(ex);
    ex->req->res.content_length = ex->body.len;
    h2o_send_inline(ex->req, ex->body.base, ex->body.len);
}

static void on_delay_done(cf_mock_timer_t *timer)
{
    exchange_t *ex = H2O_STRUCT_FROM_MEMBER(exchange_t, timer, timer);
    answer(ex);
}

static void on_dispose(void *_ex)
{
    exchange_t *ex = _ex;
    cf_mock_timer_stop(&ex->timer);
    unwatch(ex);
    if (h2o_linklist_is_linked(&ex->waiting))
        h2o_linklist_unlink(&ex->waiting);
    if (ex->state == EX_ANSWERING) /* a trickle cut short: the client went away */
        cf_mock_journal_abort(ex->journal_id, ex->listener);
    cf_mock_journal_close(ex->journal_id); /* a socket fault or a truncated answer is no longer in flight either */
    cf_mock_stub_release(ex->stub);
}

static exchange_t *exchange_new(h2o_req_t *req, size_t listener)
{
    exchange_t *ex = h2o_mem_alloc_shared(&req->pool, sizeof(*ex), on_dispose);
    memset(ex, 0, sizeof(*ex));
    ex->req = req;
    ex->listener = listener;
    ex->status = 200;
    ex->trickle_interval = 100;
    ex->timer.cb = on_delay_done;
    return ex;
}

/* Waits out the delay (or forever for hang) watching for the client to leave, or answers at once. */
static void start(exchange_t *ex)
{
    ex->state = EX_WAITING;
    cf_mock_journal_plan(ex->journal_id, cf_mock_fault_names[ex->fault], ex->fault == CF_MOCK_FAULT_HANG ? 0 : ex->delay);
    if (ex->fault != CF_MOCK_FAULT_HANG && ex->delay == 0) {
        answer(ex);
        return;
    }
    h2o_linklist_insert(&waiting, &ex->waiting);
    watch(ex);
    if (ex->fault != CF_MOCK_FAULT_HANG)
        cf_mock_timer_start(&ex->timer, ex->delay);
}

void cf_mock_serve_down(h2o_req_t *req, size_t listener)
{
    exchange_t *ex = exchange_new(req, listener); /* not journaled: the server is gone */
    ex->fault = CF_MOCK_FAULT_RESET;
    answer(ex);
}

void cf_mock_serve_drop(size_t listener)
{
    h2o_linklist_t *node = waiting.next;
    while (node != &waiting) {
        exchange_t *ex = H2O_STRUCT_FROM_MEMBER(exchange_t, waiting, node);
        node = node->next; /* answer() unlinks ex, and only ex */
        if (ex->listener != listener)
            continue;
        cf_mock_timer_stop(&ex->timer);
        ex->fault = CF_MOCK_FAULT_RESET;
        cf_mock_journal_plan(ex->journal_id, cf_mock_fault_names[ex->fault], ex->delay);
        answer(ex);
    }
}

void cf_mock_serve_stub(h2o_req_t *req, size_t listener, cf_mock_stub_t *stub, h2o_iovec_t *caps)
{
    exchange_t *ex = exchange_new(req, listener);
    ex->stub = stub;
    ex->journal_id = cf_mock_journal_add(req, listener, stub->key);
    uint64_t call = ++stub->calls;
    ex->status = (int)stub->status;
    if ((stub->fault != CF_MOCK_FAULT_NONE || stub->fault_status != 0) &&
        (stub->fault_rate >= 1 || cf_mock_random(&stub->rng) < stub->fault_rate)) {
        ex->fault = (cf_mock_fault_t)stub->fault;
        ex->faulted = 1;
        if (stub->fault_status != 0)
            ex->status = (int)stub->fault_status;
    }
    if (stub->n_sequence != 0) {
        const cf_mock_step_t *step = stub->sequence + (call < stub->n_sequence ? call : stub->n_sequence) - 1;
        if (step->fault != CF_MOCK_FAULT_NONE)
            ex->fault = step->fault;
        else
            ex->status = step->status;
    }
    ex->delay = cf_mock_delay_sample(&stub->delay, &stub->rng);
    ex->body = render_body(req, stub, caps);
    ex->hnames = stub->header_names;
    ex->hvalues = stub->header_values;
    ex->n_headers = stub->n_headers;
    ex->has_content_type = stub->has_content_type;
    ex->trickle_interval = stub->trickle_interval;
    start(ex);
}

static void respond_error(h2o_req_t *req, const char *fmt, const char *arg)
{
    char msg[512];
    snprintf(msg, sizeof(msg), fmt, arg);
    cf_mock_send_json(req, 400, json_pack("{ss}", "error", msg));
}

void cf_mock_serve_respond(h2o_req_t *req, size_t listener)
{
    exchange_t *ex = exchange_new(req, listener);
    ex->journal_id = cf_mock_journal_add(req, listener, "respond");
    ex->body = h2o_iovec_init("", 0);
    size_t max_headers = 0;
    if (req->query_at != SIZE_MAX)
        for (size_t i = req->query_at; i != req->path.len; ++i)
            max_headers += req->path.base[i] == '&' || req->path.base[i] == '?';
    h2o_iovec_t *names = h2o_mem_alloc_pool(&req->pool, (max_headers + 1) * sizeof(*names));
    h2o_iovec_t *values = h2o_mem_alloc_pool(&req->pool, (max_headers + 1) * sizeof(*values));
    ex->hnames = names;
    ex->hvalues = values;

    const char *p = req->query_at != SIZE_MAX ? req->path.base + req->query_at + 1 : NULL, *end = req->path.base + req->path.len;
    while (p != NULL && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *pend = amp != NULL ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pend - p));
        h2o_iovec_t key = h2o_iovec_init(p, (size_t)((eq != NULL ? eq : pend) - p));
        h2o_iovec_t val =
            eq != NULL ? cf_mock_url_decode(&req->pool, h2o_iovec_init(eq + 1, (size_t)(pend - eq - 1))) : h2o_iovec_init("", 0);
        char err[300];
        p = pend + 1;
        if (key.len == 0)
            continue;
        if (h2o_memis(key.base, key.len, H2O_STRLIT("status"))) {
            char *e;
            long st = strtol(val.base, &e, 10);
            if (*e != '\0' || st < 200 || st > 599)
                return respond_error(req, "status \"%s\" is not 200-599", val.base);
            ex->status = (int)st;
        } else if (h2o_memis(key.base, key.len, H2O_STRLIT("delay"))) {
            cf_mock_delay_t d;
            if (cf_mock_delay_parse(val.base, &d, err, sizeof(err)) != 0)
                return respond_error(req, "delay: %s", err);
            ex->delay = cf_mock_delay_sample(&d, NULL);
        } else if (h2o_memis(key.base, key.len, H2O_STRLIT("body"))) {
            ex->body = val;
        } else if (h2o_memis(key.base, key.len, H2O_STRLIT("fault"))) {
            int i;
            for (i = 0; cf_mock_fault_names[i] != NULL; ++i)
                if (strcmp(val.base, cf_mock_fault_names[i]) == 0)
                    break;
            if (cf_mock_fault_names[i] == NULL)
                return respond_error(req, "fault \"%s\" is not one of none, reset, hang, empty, garbage, truncated, trickle",
                                     val.base);
            ex->fault = (cf_mock_fault_t)i;
        } else if (h2o_memis(key.base, key.len, H2O_STRLIT("header"))) {
            char *colon = strchr(val.base, ':');
            if (colon == NULL || colon == val.base || strpbrk(val.base, "\r\n") != NULL)
                return respond_error(req, "header \"%s\" is not Name:Value", val.base);
            names[ex->n_headers] = h2o_iovec_init(val.base, (size_t)(colon - val.base));
            const char *v = colon + 1;
            while (*v == ' ')
                ++v;
            values[ex->n_headers] = h2o_iovec_init(v, strlen(v));
            *colon = '\0';
            if (strcasecmp(val.base, "content-type") == 0)
                ex->has_content_type = 1;
            if (strcasecmp(val.base, "content-length") == 0 || strcasecmp(val.base, "transfer-encoding") == 0 ||
                strcasecmp(val.base, "connection") == 0)
                return respond_error(req, "header %s is set by the mock itself", val.base);
            ++ex->n_headers;
        } else {
            char *k = h2o_strdup(&req->pool, key.base, key.len).base;
            return respond_error(req, "unknown parameter \"%s\" (status, delay, body, fault, header)", k);
        }
    }
    start(ex);
}

void cf_mock_serve_unmatched(h2o_req_t *req, size_t listener, json_t *closest)
{
    uint64_t id = cf_mock_journal_add(req, listener, NULL);
    cf_mock_journal_closest(id, closest);
    cf_mock_journal_plan(id, "none", 0);
    cf_mock_journal_answer(id, 404);
    cf_mock_journal_done(id);
    size_t n, pathlen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    cf_mock_stub_t **stubs = cf_mock_stubs_list(&n);
    json_t *known = json_array();
    for (size_t i = 0; i != n && i != 50; ++i)
        json_array_append_new(known, json_string(stubs[i]->key));
    json_t *v = json_object();
    json_object_set_new(v, "error", json_string("no stub"));
    json_object_set_new(v, "method", json_stringn(req->method.base, req->method.len)); /* NULL (skipped) if not UTF-8 */
    json_object_set_new(v, "path", json_stringn(req->path.base, pathlen));
    json_object_set_new(v, "stubs", known);
    json_object_set_new(v, "closest", closest != NULL ? closest : json_null());
    cf_mock_send_json(req, 404, v);
}
