/* Client connections: accept (cap, back-off), TLS and ALPN, and conflux's checks on their raw bytes before libh2o. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <h2o.h>
#include <h2o/http1.h>
#include <h2o/http2.h>
#include <h2o/http2_internal.h>
#include "cf_buf.h"
#include "conn.h"
#include "h1guard.h"
#include "h2scan.h"
#include "jsonout.h"
#include "metrics.h"

/*
 * How conflux stands in front of libh2o. libh2o 2.2.5 reads a client's bytes into sock->input and hands them to its
 * HTTP/1 or HTTP/2 parser through the socket's read callback, which it (re)installs with h2o_socket_read_start: once
 * when a connection starts and again after every response. There is no hook between the read and the parse. So this
 * file defines h2o_socket_read_start itself: the dynamic linker resolves libh2o's own calls to it (they go through
 * the PLT) to this definition, which forwards to libh2o's (found with dlsym(RTLD_NEXT)), putting on_guarded_read in
 * front of the callback for client connections only. on_guarded_read checks the bytes the read just appended
 * (the last sock->bytes_read bytes of sock->input) before libh2o sees them. cf_conns_init proves on a socket pair that
 * this holds in the running binary, and conflux refuses to start when it does not.
 *
 * Each client connection carries a cf_conn_t in its socket's on_close slot (libh2o never uses it): the guard's state,
 * the callback it stands in front of, and the count of open connections, which on_close keeps exact.
 */

enum {
    CONN_HANDSHAKE,  /* TLS handshake in progress: libh2o's handshake reads pass through */
    CONN_H1,         /* HTTP/1.1: every byte goes through the framing guard first */
    CONN_H2,         /* HTTP/2: frames are counted first */
    CONN_H2_CLOSING, /* GOAWAY sent: what the client sends now is dropped */
    CONN_REFUSING    /* an error answer is being written; then the connection closes */
};

typedef struct st_cf_conn_t {
    cf_listener_t *listener;
    h2o_socket_t *sock;
    uint8_t mode;
    uint8_t counted;               /* against the client connection cap (not on the admin listener) */
    h2o_socket_cb inner;           /* libh2o's read callback, which the checks stand in front of */
    h2o_timeout_entry_t handshake; /* linked during a TLS handshake */
    h2o_iovec_t refusal;           /* the error answer being written (owned) */
    union {
        cf_h1guard_t h1;
        struct {
            cf_h2scan_t scan;
            uint64_t window_start; /* ms, the loop's clock */
            uint32_t resets, idle_frames;
        } h2;
    } u;
} cf_conn_t;

static void (*libh2o_read_start)(h2o_socket_t *sock, h2o_socket_cb cb);
static size_t num_conns; /* atomic: open client connections in the process */
static size_t max_conns; /* atomic */

static void on_conn_close(void *data);
static void on_guarded_read(h2o_socket_t *sock, const char *err);
static void on_accept(h2o_socket_t *listener, const char *err);

static cf_conn_t *conn_of(h2o_socket_t *sock)
{
    return sock->on_close.cb == on_conn_close ? sock->on_close.data : NULL;
}

static void resolve_libh2o(void)
{
    if (__atomic_load_n(&libh2o_read_start, __ATOMIC_ACQUIRE) == NULL) {
        void *f = dlsym(RTLD_NEXT, "h2o_socket_read_start");
        __atomic_store_n(&libh2o_read_start, (void (*)(h2o_socket_t *, h2o_socket_cb))f, __ATOMIC_RELEASE);
    }
}

/* Stands in for libh2o's function (see the comment at the top). */
void h2o_socket_read_start(h2o_socket_t *sock, h2o_socket_cb cb)
{
    cf_conn_t *c = conn_of(sock);
    if (c != NULL && c->mode != CONN_HANDSHAKE) {
        if (cb != on_guarded_read)
            c->inner = cb;
        if (c->mode == CONN_REFUSING)
            return; /* the connection is about to close: it reads nothing more */
        cb = on_guarded_read;
    }
    resolve_libh2o();
    libh2o_read_start(sock, cb);
}

int cf_conn_setup(size_t max_client_connections, char *err, size_t errlen)
{
    resolve_libh2o();
    if (libh2o_read_start == NULL || libh2o_read_start == h2o_socket_read_start) {
        snprintf(err, errlen, "cannot find libh2o's h2o_socket_read_start (libh2o must be linked as a shared library)");
        return -1;
    }
    cf_conn_set_max(max_client_connections);
    return 0;
}

void cf_conn_set_max(size_t max_client_connections)
{
    __atomic_store_n(&max_conns, max_client_connections, __ATOMIC_RELAXED);
}

size_t cf_conn_count(void)
{
    return __atomic_load_n(&num_conns, __ATOMIC_RELAXED);
}

/* --- refusing a connection with an answer ------------------------------------------------------------------------ */

static void on_refusal_sent(h2o_socket_t *sock, const char *err)
{
    cf_conn_t *c = conn_of(sock);
    if (c->inner != NULL)
        c->inner(sock, "refused by conflux"); /* libh2o's connection closes itself and the socket */
    else
        h2o_socket_close(sock);
}

/* Answers `status` with conflux's JSON error and `Connection: close`, then closes: nothing the client sent after the
 * offending byte (a pipelined or smuggled request) ever reaches libh2o. */
static void refuse(cf_conn_t *c, h2o_socket_t *sock, int status, const char *code, const char *message, const char *allow)
{
    cf_buf_t body = CF_BUF_INIT, text = CF_BUF_INIT;
    cf_buf_appends(&body, "{\"error\":");
    cf_json_write_string(&body, code, strlen(code));
    cf_buf_appends(&body, ",\"message\":");
    cf_json_write_string(&body, message, strlen(message));
    cf_buf_appends(&body, "}");
    cf_buf_appendf(&text,
                   "HTTP/1.1 %d %s\r\nServer: conflux\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n%s%s%s\r\n",
                   status, cf_http_reason(status), body.len, allow != NULL ? "Allow: " : "", allow != NULL ? allow : "",
                   allow != NULL ? "\r\n" : "");
    cf_buf_append(&text, body.base, body.len);
    cf_buf_free(&body);

    c->mode = CONN_REFUSING;
    h2o_socket_read_stop(sock);
    c->refusal = h2o_iovec_init(text.base, text.len); /* freed with the connection */
    h2o_iovec_t buf = c->refusal;
    h2o_socket_write(sock, &buf, 1, on_refusal_sent);
}

/* --- HTTP/1.1: the framing guard -------------------------------------------------------------------------------- */

/* RFC 9110 §10.1.1: a server may answer a request that expects 100-continue with its final status at once. Without
 * this, libh2o sends "100 Continue" first and the client uploads its body for a request conflux then refuses. */
static int refuse_expectation(cf_conn_t *c, h2o_socket_t *sock, const char *head, size_t len)
{
    const char *sp1 = memchr(head, ' ', len);
    if (sp1 == NULL)
        return 0;
    const char *target = sp1 + 1, *sp2 = memchr(target, ' ', head + len - target);
    if (sp2 == NULL || target[0] != '/')
        return 0; /* absolute-form and the like: left to the handler */
    const char *q = memchr(target, '?', sp2 - target);
    char allow[128];
    int status = cf_gateway_precheck(c->listener->conns->worker, head, sp1 - head, target, (q != NULL ? q : sp2) - target, allow,
                                     sizeof(allow));
    if (status == 0)
        return 0;
    cf_metrics_http1_refused(status == 404 ? "expect_not_found" : "expect_method_not_allowed");
    if (status == 404)
        refuse(c, sock, 404, "not_found", "no route for this path", NULL);
    else
        refuse(c, sock, 405, "method_not_allowed", "method not allowed", allow);
    return -1;
}

/* Checks `len` new bytes of an HTTP/1 connection; 0 when libh2o may have them, -1 when the connection is refused. */
static int check_h1(cf_conn_t *c, h2o_socket_t *sock, const char *bytes, size_t len)
{
    size_t off = 0, consumed;
    for (;;) {
        cf_h1guard_result_t r = cf_h1guard_feed(&c->u.h1, bytes + off, len - off, &consumed);
        off += consumed;
        if (r == CF_H1G_MORE)
            return 0;
        if (r == CF_H1G_EXPECT_CONTINUE) {
            /* the head ends here; its start is still in sock->input (libh2o consumes a request only once answered) */
            const char *head = bytes + off - c->u.h1.head_len;
            if (head >= sock->input->bytes && refuse_expectation(c, sock, head, c->u.h1.head_len) != 0)
                return -1;
            continue;
        }
        int status = cf_h1guard_status(r);
        cf_metrics_http1_refused(cf_h1guard_label(r));
        refuse(c, sock, status,
               status == 431   ? "headers_too_large"
               : status == 505 ? "http_version_not_supported"
                               : "bad_request",
               cf_h1guard_message(r), NULL);
        return -1;
    }
}

/* --- HTTP/2: resets and idle frames per second ------------------------------------------------------------------ */

enum { H2_OK, H2_TOO_MANY_RESETS, H2_TOO_MANY_IDLE_FRAMES };

static int on_h2_frame(void *ctx, const cf_h2_frame_t *f)
{
    cf_conn_t *c = ctx;
    uint64_t now = h2o_now(c->listener->conns->ctx->loop);
    if (now - c->u.h2.window_start >= 1000) {
        c->u.h2.window_start = now;
        c->u.h2.resets = c->u.h2.idle_frames = 0;
    }
    int idle;
    switch (f->type) {
    case CF_H2_RST_STREAM: /* Rapid Reset (CVE-2023-44487): each HEADERS + RST_STREAM pair costs a request */
        if (++c->u.h2.resets > CF_H2_MAX_RESETS_PER_SECOND)
            return H2_TOO_MANY_RESETS;
        return H2_OK;
    case CF_H2_PING:
    case CF_H2_SETTINGS:
        idle = (f->flags & 0x1) == 0; /* an ACK answers ours */
        break;
    case CF_H2_PRIORITY:
        idle = 1;
        break;
    case CF_H2_DATA:
    case CF_H2_HEADERS:
    case CF_H2_CONTINUATION: /* the 2019 "empty frames" and "0-length headers" floods */
        idle = f->length == 0 && (f->flags & CF_H2_FLAG_END_STREAM) == 0;
        break;
    default:
        idle = 0;
        break;
    }
    if (idle && ++c->u.h2.idle_frames > CF_H2_MAX_IDLE_FRAMES_PER_SECOND)
        return H2_TOO_MANY_IDLE_FRAMES;
    return H2_OK;
}

/* GOAWAY (ENHANCE_YOUR_CALM) through libh2o's own connection, as its parser does on a protocol error; the connection
 * then closes once the frame is written and the streams still open are done. Until then, input is dropped unread
 * (so that close() sends a FIN, not a reset that could lose the GOAWAY). */
static void h2_goaway(cf_conn_t *c, h2o_socket_t *sock, int why)
{
    static const char resets[] = "too many streams reset", idle[] = "too many frames without a request";
    h2o_http2_conn_t *conn = sock->data;
    cf_metrics_http2_goaway(why == H2_TOO_MANY_RESETS ? "rapid_reset" : "frame_flood");
    c->mode = CONN_H2_CLOSING;
    if (conn->state < H2O_HTTP2_CONN_STATE_HALF_CLOSED) {
        h2o_iovec_t debug =
            why == H2_TOO_MANY_RESETS ? h2o_iovec_init(resets, sizeof(resets) - 1) : h2o_iovec_init(idle, sizeof(idle) - 1);
        h2o_http2_encode_goaway_frame(&conn->_write.buf, conn->pull_stream_ids.max_open, H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM, debug);
        h2o_http2_conn_request_write(conn);
        conn->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED;
    }
}

/* --- the read callback in front of libh2o's --------------------------------------------------------------------- */

static void on_guarded_read(h2o_socket_t *sock, const char *err)
{
    cf_conn_t *c = conn_of(sock);
    if (err == NULL && sock->bytes_read != 0) {
        const char *fresh = sock->input->bytes + sock->input->size - sock->bytes_read;
        switch (c->mode) {
        case CONN_H1:
            if (check_h1(c, sock, fresh, sock->bytes_read) != 0)
                return;
            break;
        case CONN_H2: {
            int why = cf_h2scan_feed(&c->u.h2.scan, (const uint8_t *)fresh, sock->bytes_read, on_h2_frame, c);
            if (why == H2_OK)
                break;
            sock->input->size -= sock->bytes_read; /* libh2o never sees the frames of this read */
            h2_goaway(c, sock, why);
            return;
        }
        case CONN_H2_CLOSING:
            h2o_buffer_consume(&sock->input, sock->input->size);
            return;
        default:
            break;
        }
    }
    c->inner(sock, err);
}

/* --- accepting ---------------------------------------------------------------------------------------------------- */

static void on_conn_close(void *data)
{
    cf_conn_t *c = data;
    if (h2o_timeout_is_linked(&c->handshake))
        h2o_timeout_unlink(&c->handshake);
    if (c->counted)
        __atomic_sub_fetch(&num_conns, 1, __ATOMIC_RELAXED);
    free(c->refusal.base);
    free(c);
}

static void start_h1(cf_conn_t *c, h2o_socket_t *sock, struct timeval connected_at)
{
    c->mode = CONN_H1;
    cf_h1guard_init(&c->u.h1);
    /* bytes that came with the end of a TLS handshake are read by libh2o at once, before any read callback */
    if (sock->input->size != 0 && check_h1(c, sock, sock->input->bytes, sock->input->size) != 0)
        return;
    h2o_http1_accept(&c->listener->accept, sock, connected_at);
}

static void start_h2(cf_conn_t *c, h2o_socket_t *sock, struct timeval connected_at)
{
    c->mode = CONN_H2;
    memset(&c->u.h2, 0, sizeof(c->u.h2));
    c->u.h2.window_start = h2o_now(c->listener->conns->ctx->loop);
    /* bytes that came with the end of a TLS handshake are parsed by h2o_http2_accept at once, before any read
     * callback: a client that writes its flood right after the handshake has it all here */
    int why = H2_OK;
    if (sock->input->size != 0)
        why = cf_h2scan_feed(&c->u.h2.scan, (const uint8_t *)sock->input->bytes, sock->input->size, on_h2_frame, c);
    if (why != H2_OK) {
        /* libh2o gets the preface alone (it answers with its SETTINGS), then the GOAWAY goes as on any later read */
        static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        size_t keep = sizeof(preface) - 1;
        if (sock->input->size < keep || memcmp(sock->input->bytes, preface, keep) != 0)
            keep = 0;
        sock->input->size = keep;
    }
    h2o_http2_accept(&c->listener->accept, sock, connected_at);
    if (why != H2_OK)
        h2_goaway(c, sock, why);
}

static void on_handshake_timeout(h2o_timeout_entry_t *entry)
{
    cf_conn_t *c = H2O_STRUCT_FROM_MEMBER(cf_conn_t, handshake, entry);
    h2o_socket_close(c->sock); /* frees c */
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    cf_conn_t *c = conn_of(sock);
    h2o_timeout_unlink(&c->handshake);
    if (err != NULL) {
        h2o_socket_close(sock);
        return;
    }
    struct timeval connected_at = *h2o_get_timestamp(c->listener->conns->ctx, NULL, NULL);
    h2o_iovec_t proto = h2o_socket_ssl_get_selected_protocol(sock);
    for (const h2o_iovec_t *p = h2o_http2_alpn_protocols; c->listener->http2 && p->len != 0; ++p) {
        if (h2o_memis(proto.base, proto.len, p->base, p->len)) {
            start_h2(c, sock, connected_at);
            return;
        }
    }
    start_h1(c, sock, connected_at);
}

static void start_connection(cf_listener_t *l, h2o_socket_t *sock)
{
    cf_conn_t *c = h2o_mem_alloc(sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->listener = l;
    c->sock = sock;
    c->counted = !l->admin;
    sock->on_close.cb = on_conn_close;
    sock->on_close.data = c;
    if (l->accept.ssl_ctx == NULL) {
        start_h1(c, sock, *h2o_get_timestamp(l->conns->ctx, NULL, NULL));
        return;
    }
    c->mode = CONN_HANDSHAKE;
    c->handshake.cb = on_handshake_timeout;
    h2o_timeout_link(l->conns->ctx->loop, &l->conns->ctx->handshake_timeout, &c->handshake);
    h2o_socket_ssl_handshake(sock, l->accept.ssl_ctx, NULL, on_handshake);
}

static void set_accepting(cf_conns_t *cs, int on, int admin_too)
{
    for (size_t i = 0; i < cs->num_listeners; ++i) {
        if (cs->listeners[i].admin && !admin_too)
            continue;
        if (on)
            h2o_socket_read_start(cs->listeners[i].sock, on_accept);
        else
            h2o_socket_read_stop(cs->listeners[i].sock);
    }
}

static void on_resume(h2o_timeout_entry_t *entry)
{
    cf_conns_t *cs = H2O_STRUCT_FROM_MEMBER(cf_conns_t, resume, entry);
    set_accepting(cs, 1, 1); /* the listeners are level-triggered: a waiting connection wakes the loop at once */
}

/*
 * Stops accepting for CF_ACCEPT_BACKOFF_MS. At the fd limit accept() fails without taking the connection, so the
 * listener stays readable: accepting on would spin the loop (nginx pauses the same way); every listener pauses then,
 * the admin one too. At the connection cap, only the public listeners pause.
 */
static void pause_accepting(cf_conns_t *cs, const char *why, int admin_too)
{
    set_accepting(cs, 0, admin_too);
    if (h2o_timeout_is_linked(&cs->resume))
        return; /* paused already (perhaps for the other reason): resumes as planned */
    cf_metrics_accept_paused(why);
    cf_timeouts_link(&cs->worker->timeouts, CF_ACCEPT_BACKOFF_MS, &cs->resume);
}

/* enough to drain a burst quickly, few enough that one listener does not starve the loop's other sockets */
#define ACCEPTS_PER_WAKEUP 64

static void on_accept(h2o_socket_t *listener, const char *err)
{
    cf_listener_t *l = listener->data;
    if (err != NULL)
        return;
    /* a burst per wakeup: thousands of clients connect at once under load, and one accept per loop turn would make the
     * last of them wait thousands of turns (h2o's own server does the same) */
    for (int i = 0; i != ACCEPTS_PER_WAKEUP; ++i) {
        /* reserve a slot first, so that several threads can never all take the last one; the admin listener is
         * not capped (an operator must be able to look at a saturated gateway) */
        size_t reserved = l->admin ? 0 : 1;
        if (__atomic_add_fetch(&num_conns, reserved, __ATOMIC_RELAXED) > __atomic_load_n(&max_conns, __ATOMIC_RELAXED)) {
            __atomic_sub_fetch(&num_conns, reserved, __ATOMIC_RELAXED);
            pause_accepting(l->conns, "max_client_connections", 0);
            return;
        }
        h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
        if (sock == NULL) {
            int e = errno;
            __atomic_sub_fetch(&num_conns, reserved, __ATOMIC_RELAXED);
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
                pause_accepting(l->conns, "fd_limit", 1);
            return;
        }
        start_connection(l, sock);
    }
}

void cf_conns_listen(cf_conns_t *cs, int fd, h2o_hostconf_t **hosts, SSL_CTX *ssl_ctx, int http2, int admin)
{
    if (cs->num_listeners == cs->cap_listeners) {
        /* the listeners' addresses are handed out as accept contexts: grow only before the first accept */
        cs->cap_listeners = cs->cap_listeners * 2 + 4;
        cs->listeners = h2o_mem_realloc(cs->listeners, sizeof(*cs->listeners) * cs->cap_listeners);
        for (size_t i = 0; i < cs->num_listeners; ++i)
            cs->listeners[i].sock->data = &cs->listeners[i];
    }
    cf_listener_t *l = &cs->listeners[cs->num_listeners++];
    *l = (cf_listener_t){.accept = {cs->ctx, hosts, ssl_ctx}, .conns = cs, .http2 = http2, .admin = admin};
    l->sock = h2o_evloop_socket_create(cs->ctx->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    l->sock->data = l;
    h2o_socket_read_start(l->sock, on_accept);
}

void cf_conns_stop_accepting(cf_conns_t *cs)
{
    if (h2o_timeout_is_linked(&cs->resume))
        h2o_timeout_unlink(&cs->resume);
    size_t kept = 0;
    for (size_t i = 0; i < cs->num_listeners; ++i) {
        cf_listener_t *l = &cs->listeners[i];
        if (l->admin) {
            h2o_socket_read_start(l->sock, on_accept); /* it may have been paused */
            cs->listeners[kept] = *l;
            cs->listeners[kept].sock->data = &cs->listeners[kept];
            ++kept;
            continue;
        }
        h2o_socket_t *sock;
        while ((sock = h2o_evloop_socket_accept(l->sock)) != NULL) {
            __atomic_add_fetch(&num_conns, 1, __ATOMIC_RELAXED);
            start_connection(l, sock);
        }
        h2o_socket_close(l->sock);
    }
    cs->num_listeners = kept;
}

void cf_conns_dispose(cf_conns_t *cs)
{
    if (h2o_timeout_is_linked(&cs->resume))
        h2o_timeout_unlink(&cs->resume);
    for (size_t i = 0; i < cs->num_listeners; ++i)
        h2o_socket_close(cs->listeners[i].sock);
    cs->num_listeners = 0;
    free(cs->listeners);
    cs->listeners = NULL;
}

/* The proof that the guard stands in front of libh2o in this very binary: a connection over a socket pair must have
 * its read callback replaced once libh2o's HTTP/1 server has taken it. */
static int self_test(cf_conns_t *cs, h2o_hostconf_t **hosts)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        return 0; /* cannot tell; the first real connection works the same way */
    cf_listener_t probe = {.accept = {cs->ctx, hosts, NULL}, .conns = cs};
    h2o_socket_t *sock = h2o_evloop_socket_create(cs->ctx->loop, fds[0], 0);
    __atomic_add_fetch(&num_conns, 1, __ATOMIC_RELAXED);
    start_connection(&probe, sock);
    int ok = sock->_cb.read == on_guarded_read;
    conn_of(sock)->inner(sock, "self-test done"); /* libh2o closes its connection and the socket (and frees ours) */
    close(fds[1]);
    return ok ? 0 : -1;
}

int cf_conns_init(cf_conns_t *cs, h2o_context_t *ctx, cf_worker_t *worker, h2o_hostconf_t **hosts, char *err, size_t errlen)
{
    memset(cs, 0, sizeof(*cs));
    cs->ctx = ctx;
    cs->worker = worker;
    cs->resume.cb = on_resume;
    if (self_test(cs, hosts) != 0) {
        snprintf(err, errlen,
                 "the HTTP/1 framing checks could not be put in front of libh2o in this build "
                 "(libh2o must be a shared library); refusing to serve without them");
        return -1;
    }
    return 0;
}
