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
#include "cf_http.h"
#include "conn.h"
#include "dispatch.h"
#include "h1guard.h"
#include "observe.h"
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
 * (the last sock->bytes_read bytes of sock->input) before libh2o sees them. Two more functions of libh2o's stand in
 * the same way, for HTTP/2: h2o_http2_stream_reset (the streams libh2o resets itself count against the client) and
 * h2o_socket_close (a connection conflux sent GOAWAY on lingers before it closes). cf_conns_init proves on socket
 * pairs that all three hold in the running binary, and conflux refuses to start when they do not.
 *
 * Each client connection carries a cf_conn_t in its socket's on_close slot (libh2o never uses it): the guard's state,
 * the callback it stands in front of, and the count of open connections, which on_close keeps exact.
 */

enum {
    CONN_HANDSHAKE,  /* TLS handshake in progress: libh2o's handshake reads pass through */
    CONN_H1,         /* HTTP/1.1: every byte goes through the framing guard first */
    CONN_H2,         /* HTTP/2: frames are counted first */
    CONN_H2_CLOSING, /* GOAWAY sent: frames still reach libh2o (it starts no new stream now) and are still counted */
    CONN_LINGERING,  /* libh2o closed the connection after conflux's GOAWAY: what the client still sends is read and dropped */
    CONN_REFUSING    /* an error answer is being written; then the connection closes */
};

typedef struct st_cf_conn_t {
    cf_listener_t *listener;
    h2o_socket_t *sock;
    uint8_t mode;
    uint8_t counted;           /* against the client connection cap (not on the admin listener) */
    h2o_socket_cb inner;       /* libh2o's read callback, which the checks stand in front of */
    h2o_timeout_entry_t timer; /* linked during a TLS handshake, then after an HTTP/2 GOAWAY until the connection closes */
    h2o_iovec_t refusal;       /* the error answer being written (owned) */
    SSL_CTX *ssl_ctx;          /* TLS: a reference to the context its handshake began with (libh2o holds none) */
    union {
        cf_h1guard_t h1;
    } u;
    /* HTTP/2 only, allocated when ALPN chooses it: the HPACK scanner's table makes it ~900 bytes, which an HTTP/1
     * connection need not carry */
    struct st_conn_h2_t {
        cf_h2scan_t scan;
        uint64_t window_start; /* ms, the loop's clock */
        uint32_t resets, idle_frames;
        uint32_t client_resets; /* RST_STREAM frames passed to libh2o that no stream reset has matched yet */
        uint32_t drop_left;     /* bytes of a dropped frame still to come: cut out of the next reads */
    } * h2;
} cf_conn_t;

static void (*libh2o_read_start)(h2o_socket_t *sock, h2o_socket_cb cb);
static void (*libh2o_stream_reset)(h2o_http2_conn_t *conn, h2o_http2_stream_t *stream);
static void (*libh2o_socket_close)(h2o_socket_t *sock);
static __thread cf_conn_t *probe; /* the connection of this thread's self-test */
static __thread int probe_closed; /* libh2o closed it through h2o_socket_close below */
static size_t num_conns;          /* atomic: open client connections in the process */
static size_t max_conns;          /* atomic */

static void on_conn_close(void *data);
static void on_guarded_read(h2o_socket_t *sock, const char *err);
static void on_accept(h2o_socket_t *listener, const char *err);
static void on_stream_reset(cf_conn_t *c, h2o_http2_conn_t *conn);
static void linger(cf_conn_t *c, h2o_socket_t *sock);

static cf_conn_t *conn_of(h2o_socket_t *sock)
{
    return sock->on_close.cb == on_conn_close ? sock->on_close.data : NULL;
}

static void *resolve(void **slot, const char *name)
{
    void *f = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
    if (f == NULL) {
        f = dlsym(RTLD_NEXT, name);
        __atomic_store_n(slot, f, __ATOMIC_RELEASE);
    }
    return f;
}

static void resolve_libh2o(void)
{
    resolve((void **)&libh2o_read_start, "h2o_socket_read_start");
    resolve((void **)&libh2o_stream_reset, "h2o_http2_stream_reset");
    resolve((void **)&libh2o_socket_close, "h2o_socket_close");
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

/*
 * Stands in for libh2o's function, which its HTTP/2 frame handlers call (through the PLT, like h2o_socket_read_start)
 * for every stream libh2o resets: the client's RST_STREAM, and the stream errors libh2o answers with its own
 * RST_STREAM. A client can provoke those at will (MadeYouReset, CVE-2025-8671: a WINDOW_UPDATE of 0 on a stream, DATA
 * after END_STREAM, ...), each after its request has started work, so they count like the client's resets.
 */
void h2o_http2_stream_reset(h2o_http2_conn_t *conn, h2o_http2_stream_t *stream)
{
    cf_conn_t *c = conn->sock != NULL ? conn_of(conn->sock) : NULL;
    if (c != NULL && (c->mode == CONN_H2 || c->mode == CONN_H2_CLOSING))
        on_stream_reset(c, conn);
    resolve_libh2o();
    libh2o_stream_reset(conn, stream);
}

/*
 * Stands in for libh2o's function, for one case: libh2o closing an HTTP/2 connection after conflux's GOAWAY. It does
 * so as soon as the GOAWAY is written when no stream is left, while a flooding client is still sending: the kernel
 * answers the unread bytes with a reset, which discards what the client has not read yet (the GOAWAY, if it is still
 * in flight). So conflux lingers (nginx's lingering close): see linger().
 */
void h2o_socket_close(h2o_socket_t *sock)
{
    cf_conn_t *c = conn_of(sock);
    if (c != NULL && c == probe)
        probe_closed = 1;
    if (c != NULL && c->mode == CONN_H2_CLOSING) {
        linger(c, sock);
        return;
    }
    resolve_libh2o();
    libh2o_socket_close(sock);
}

int cf_conn_setup(size_t max_client_connections, char *err, size_t errlen)
{
    resolve_libh2o();
    if (libh2o_read_start == NULL || libh2o_read_start == h2o_socket_read_start || libh2o_stream_reset == NULL ||
        libh2o_stream_reset == h2o_http2_stream_reset || libh2o_socket_close == NULL || libh2o_socket_close == h2o_socket_close) {
        snprintf(err, errlen,
                 "cannot find libh2o's h2o_socket_read_start, h2o_http2_stream_reset and h2o_socket_close (libh2o "
                 "must be linked as a shared library)");
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

/* Answers `status` with conflux's JSON error and `Connection: close` (and `extra`, a whole header line, when not NULL),
 * then closes: nothing the client sent after the offending byte (a pipelined or smuggled request) ever reaches libh2o. */
static void refuse(cf_conn_t *c, h2o_socket_t *sock, int status, const char *label, const char *code, const char *message,
                   const char *extra)
{
    cf_metrics_http1_refused(label);
    cf_observe_refusal(sock, status, label);
    cf_buf_t body = CF_BUF_INIT, text = CF_BUF_INIT;
    cf_buf_appends(&body, "{\"error\":");
    cf_json_write_string(&body, code, strlen(code));
    cf_buf_appends(&body, ",\"message\":");
    cf_json_write_string(&body, message, strlen(message));
    cf_buf_appends(&body, "}");
    cf_buf_appendf(&text,
                   "HTTP/1.1 %d %s\r\nServer: conflux\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n%s%s\r\n",
                   status, cf_http_reason(status), body.len, extra != NULL ? extra : "", extra != NULL ? "\r\n" : "");
    cf_buf_append(&text, body.base, body.len);
    cf_buf_free(&body);

    c->mode = CONN_REFUSING;
    h2o_socket_read_stop(sock);
    c->refusal = h2o_iovec_init(text.base, text.len); /* freed with the connection */
    h2o_iovec_t buf = c->refusal;
    h2o_socket_write(sock, &buf, 1, on_refusal_sent);
}

/* --- HTTP/1.1: the framing guard -------------------------------------------------------------------------------- */

/* Whether a head (`len` bytes, the framing guard has passed it: CRLF lines, token names) has a field `lc_name`. */
static int has_field(const char *head, size_t len, const char *lc_name)
{
    size_t n = strlen(lc_name);
    for (const char *p = head, *end = head + len; (p = memchr(p, '\n', end - p)) != NULL;) {
        ++p;
        if ((size_t)(end - p) > n && p[n] == ':' && h2o_lcstris(p, n, lc_name, n))
            return 1;
    }
    return 0;
}

/* RFC 9110 §10.1.1: a server may answer a request that expects 100-continue with its final status at once. Without
 * this, libh2o sends "100 Continue" first and the client uploads its body for a request conflux then refuses. */
static int refuse_expectation(cf_conn_t *c, h2o_socket_t *sock, const char *head, size_t len)
{
    const char *sp1 = memchr(head, ' ', len);
    if (sp1 == NULL)
        return 0;
    const char *target = sp1 + 1, *sp2 = memchr(target, ' ', head + len - target);
    if (sp2 == NULL)
        return 0;
    const char *q = memchr(target, '?', sp2 - target);
    char allow[128] = "Allow: ";
    int status = cf_gateway_precheck(c->listener->conns->worker, head, sp1 - head, target, (q != NULL ? q : sp2) - target,
                                     has_field(head, len, "authorization"), allow + 7, sizeof(allow) - 7);
    switch (status) {
    case 0:
        return 0;
    case 401: /* as dispatch would answer it, before the body is sent for nothing */
        refuse(c, sock, 401, "expect_unauthorized", "unauthorized", "this route needs a bearer token",
               "WWW-Authenticate: Bearer realm=\"conflux\"");
        break;
    case 404:
        refuse(c, sock, 404, "expect_not_found", "not_found", "no route for this path", NULL);
        break;
    case 405:
        refuse(c, sock, 405, "expect_method_not_allowed", "method_not_allowed", "method not allowed", allow);
        break;
    default:
        refuse(c, sock, 400, "expect_bad_request", "bad_request", "malformed request path", NULL);
        break;
    }
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
        refuse(c, sock, status, cf_h1guard_label(r),
               status == 431   ? "headers_too_large"
               : status == 505 ? "http_version_not_supported"
               : status == 413 ? "too_large"
                               : "bad_request",
               cf_h1guard_message(r), NULL);
        return -1;
    }
}

/* --- HTTP/2: resets, idle frames and header blocks ----------------------------------------------------------- */

/*
 * Per connection and per second, conflux counts the streams reset (the client's RST_STREAM, as frames are read, and
 * the streams libh2o resets itself, in h2o_http2_stream_reset) and the frames that move no request forward; it bounds
 * each header block (hpack.h). Past a bound: GOAWAY (ENHANCE_YOUR_CALM), written through libh2o's own connection as
 * its parser does on a protocol error, and the frames of the read that went past never reach libh2o. Then, for
 * resets and idle frames, the streams the GOAWAY still promises may finish: libh2o keeps reading (it starts no new
 * stream once half closed, and needs the client's WINDOW_UPDATEs to send the rest of an answer), and the counting
 * goes on with a fresh budget. A second excess closes the connection at once, and so does the end of libh2o's HTTP/2
 * idle timeout (10 s) after the GOAWAY: libh2o's own runs only while no stream is open, and a client that opens no
 * window keeps one open for ever. A header block past its bound closes the connection as soon as the GOAWAY is out.
 */

enum { H2_OK, H2_TOO_MANY_RESETS, H2_TOO_MANY_SERVER_RESETS, H2_TOO_MANY_IDLE_FRAMES, H2_HEADER_FLOOD };

static const struct {
    const char *label; /* of conflux_http2_goaway_total */
    const char *debug; /* the GOAWAY's debug data */
} goaways[] = {
    [H2_TOO_MANY_RESETS] = {"rapid_reset", "too many streams reset"},
    [H2_TOO_MANY_SERVER_RESETS] = {"made_you_reset", "too many streams reset"},
    [H2_TOO_MANY_IDLE_FRAMES] = {"frame_flood", "too many frames without a request"},
    [H2_HEADER_FLOOD] = {"header_flood", "header block too large"},
};

static void h2_count_window(cf_conn_t *c)
{
    uint64_t now = h2o_now(c->listener->conns->ctx->loop);
    if (now - c->h2->window_start >= 1000) {
        c->h2->window_start = now;
        c->h2->resets = c->h2->idle_frames = 0;
    }
}

/* Counts a frame: H2_OK, or the bound it reaches. */
static int h2_count_frame(cf_conn_t *c, const cf_h2_frame_t *f)
{
    int idle;
    h2_count_window(c);
    switch (f->type) {
    case CF_H2_RST_STREAM: /* Rapid Reset (CVE-2023-44487): each HEADERS + RST_STREAM pair costs a request */
        return ++c->h2->resets >= CF_H2_MAX_RESETS_PER_SECOND ? H2_TOO_MANY_RESETS : H2_OK;
    case CF_H2_PING:
    case CF_H2_SETTINGS:
        idle = (f->flags & CF_H2_FLAG_ACK) == 0; /* an ACK answers ours */
        break;
    case CF_H2_PRIORITY:
        idle = 1;
        break;
    case CF_H2_DATA:
    case CF_H2_HEADERS:
    case CF_H2_CONTINUATION: /* the 2019 "empty frames" and "0-length headers" floods, padded or not (CVE-2019-9518) */
        idle = f->data_length == 0 && (f->type == CF_H2_CONTINUATION || (f->flags & CF_H2_FLAG_END_STREAM) == 0);
        break;
    default:
        idle = 0;
        break;
    }
    return idle && ++c->h2->idle_frames >= CF_H2_MAX_IDLE_FRAMES_PER_SECOND ? H2_TOO_MANY_IDLE_FRAMES : H2_OK;
}

static void on_h2_grace_over(h2o_timeout_entry_t *entry);

/* GOAWAY (ENHANCE_YOUR_CALM) naming the last stream libh2o opened; libh2o then closes the connection once the streams
 * still open are done (or at once when there are none). The counting restarts: a second excess closes at once. */
static void h2_goaway(cf_conn_t *c, h2o_http2_conn_t *conn, int why)
{
    cf_metrics_http2_goaway(goaways[why].label);
    c->mode = CONN_H2_CLOSING;
    c->h2->window_start = h2o_now(c->listener->conns->ctx->loop);
    c->h2->resets = c->h2->idle_frames = 0;
    cf_hpack_lose_track(&c->h2->scan.hpack); /* libh2o no longer decodes the header blocks of new streams */
    if (conn->state < H2O_HTTP2_CONN_STATE_IS_CLOSING) {
        h2o_http2_encode_goaway_frame(&conn->_write.buf, conn->pull_stream_ids.max_open, H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM,
                                      h2o_iovec_init(goaways[why].debug, strlen(goaways[why].debug)));
        h2o_http2_conn_request_write(conn);
        conn->state = H2O_HTTP2_CONN_STATE_HALF_CLOSED; /* libh2o's frame handlers open no stream from now on */
    }
    if (!h2o_timeout_is_linked(&c->timer)) {
        c->timer.cb = on_h2_grace_over;
        h2o_timeout_link(c->listener->conns->ctx->loop, &c->listener->conns->ctx->http2.idle_timeout, &c->timer);
    }
}

/*
 * Closes the connection whatever libh2o is doing: both directions of the socket are shut, so libh2o's next read finds
 * the end of the stream and its next write fails, and it closes the connection itself (a write it is waiting on, to a
 * client that reads nothing, fails at once). Safe anywhere, even inside libh2o's frame handling: it touches nothing
 * of libh2o's.
 */
static void h2_shut(cf_conn_t *c)
{
    shutdown(h2o_socket_get_fd(c->sock), SHUT_RDWR);
}

static void on_h2_grace_over(h2o_timeout_entry_t *entry)
{
    cf_conn_t *c = H2O_STRUCT_FROM_MEMBER(cf_conn_t, timer, entry);
    h2_shut(c);
}

static void linger_done(cf_conn_t *c)
{
    if (h2o_timeout_is_linked(&c->timer))
        h2o_timeout_unlink(&c->timer);
    libh2o_socket_close(c->sock); /* frees c */
}

static void on_linger_read(h2o_socket_t *sock, const char *err)
{
    if (err != NULL) {
        linger_done(conn_of(sock)); /* the client is gone */
        return;
    }
    h2o_buffer_consume(&sock->input, sock->input->size);
}

static void on_linger_write(h2o_socket_t *sock, const char *err)
{
    /* the last write libh2o started (its GOAWAY, say) is done: libh2o, whose callback this replaces, is gone */
}

static void on_linger_over(h2o_timeout_entry_t *entry)
{
    linger_done(H2O_STRUCT_FROM_MEMBER(cf_conn_t, timer, entry));
}

/* libh2o let go of the connection (and freed its own state) after conflux's GOAWAY: the socket stays open for one more
 * second, reading and dropping what the client sends, so that the client reads what libh2o wrote (the GOAWAY) before
 * the end of the stream, which does not come in the same read then. */
static void linger(cf_conn_t *c, h2o_socket_t *sock)
{
    c->mode = CONN_LINGERING;
    if (sock->_cb.write != NULL)
        sock->_cb.write = on_linger_write;
    h2o_buffer_consume(&sock->input, sock->input->size);
    libh2o_read_start(sock, on_linger_read);
    if (h2o_timeout_is_linked(&c->timer))
        h2o_timeout_unlink(&c->timer);
    c->timer.cb = on_linger_over;
    h2o_timeout_link(c->listener->conns->ctx->loop, &c->listener->conns->ctx->one_sec_timeout, &c->timer);
}

/* A stream libh2o resets (see h2o_http2_stream_reset above). Runs inside libh2o's frame handling. */
static void on_stream_reset(cf_conn_t *c, h2o_http2_conn_t *conn)
{
    if (c->h2->client_resets != 0) {
        --c->h2->client_resets; /* the client's RST_STREAM (or one that found no stream), counted as a frame already */
        return;
    }
    h2_count_window(c);
    if (++c->h2->resets < CF_H2_MAX_RESETS_PER_SECOND)
        return;
    if (c->mode == CONN_H2)
        h2_goaway(c, conn, H2_TOO_MANY_SERVER_RESETS); /* the rest of this read opens no stream */
    else
        h2_shut(c);
}

/* Whether the frame in progress is a RST_STREAM that has been reported (it reaches libh2o once complete). */
static int rst_in_progress(const cf_h2scan_t *scan)
{
    return scan->payload_left != 0 && !scan->want_pad && scan->frame.type == CF_H2_RST_STREAM;
}

/* One read of an HTTP/2 connection, as its frames are counted. */
typedef struct st_h2_read_t {
    cf_conn_t *c;
    size_t base;     /* where in sock->input the new bytes start */
    size_t cut_from; /* SIZE_MAX, or where in sock->input the frames dropped by this read start */
    int goaway;      /* H2_OK, or why a GOAWAY goes once libh2o has read what is left */
} h2_read_t;

static int on_h2_frame(void *_r, const cf_h2_frame_t *f)
{
    h2_read_t *r = _r;
    cf_conn_t *c = r->c;
    if (r->cut_from != SIZE_MAX)
        return 0; /* dropped with the rest of the read that went past a bound: libh2o never sees it, so it costs nothing */
    int why = h2_count_frame(c, f);
    if (why == H2_OK) {
        if (f->type == CF_H2_RST_STREAM)
            ++c->h2->client_resets;
        return 0;
    }
    if (c->mode == CONN_H2_CLOSING)
        return why; /* a second excess */
    /* this frame and the rest of the read never reach libh2o: it starts at the header, which may have come with the
     * previous read (libh2o leaves a frame it has not seen whole in sock->input) */
    r->cut_from = r->base + f->at - f->seen;
    r->goaway = why; /* after libh2o has read what is left: its SETTINGS (sent as it reads the client's preface, perhaps
                      * in this very read) must be the first frame the client gets (RFC 9113 §3.4) */
    return 0;
}

/* Counts the frames of what a read appended to sock->input, and cuts out the ones conflux drops. Returns 0 when
 * libh2o may read what is left, -1 when the connection is closing (and `c` may be gone). */
static int check_h2(cf_conn_t *c, h2o_socket_t *sock, int *goaway)
{
    h2o_http2_conn_t *conn = sock->data;
    h2o_buffer_t *in = sock->input;
    cf_h2scan_t *scan = &c->h2->scan;
    h2_read_t r = {c, in->size - sock->bytes_read, SIZE_MAX, H2_OK};

    if (conn->state >= H2O_HTTP2_CONN_STATE_HALF_CLOSED)
        cf_hpack_lose_track(&scan->hpack); /* a GOAWAY of libh2o's own: it skips the header blocks of new streams */
    /* the RST_STREAM frames libh2o read before did not all reset a stream (the stream was gone): those left over must
     * not hide other resets; the one libh2o has not read whole yet will reset one when it has */
    c->h2->client_resets = c->h2->drop_left == 0 && rst_in_progress(scan);

    int why = cf_h2scan_feed(scan, (const uint8_t *)in->bytes + r.base, sock->bytes_read, on_h2_frame, &r);
    if (why < 0) {
        if (c->mode == CONN_H2)
            h2_goaway(c, conn, H2_HEADER_FLOOD);
        c->inner(sock, "conflux: header block too large"); /* libh2o closes once the GOAWAY is written */
        return -1;
    }
    if (why > 0) {
        h2_shut(c);
        c->inner(sock, "conflux: too many streams reset or frames without a request after GOAWAY");
        return -1;
    }

    if (r.cut_from != SIZE_MAX) {
        /* keep the start of a frame not reported yet (its fate is decided with the next read); drop the rest of the
         * frame in progress otherwise */
        size_t keep = cf_h2scan_unreported(scan);
        memmove(in->bytes + r.cut_from, in->bytes + in->size - keep, keep);
        in->size = r.cut_from + keep;
        c->h2->drop_left = keep == 0 ? scan->payload_left : 0;
    } else if (c->h2->drop_left != 0) {
        /* the rest of a frame dropped by an earlier read */
        size_t n = c->h2->drop_left < sock->bytes_read ? c->h2->drop_left : sock->bytes_read;
        memmove(in->bytes + r.base, in->bytes + r.base + n, in->size - r.base - n);
        in->size -= n;
        c->h2->drop_left -= (uint32_t)n;
    }
    if (c->h2->drop_left == 0 && rst_in_progress(scan) && c->h2->client_resets != 0)
        --c->h2->client_resets; /* counted as it was reported, but libh2o reads it whole with a later read */
    *goaway = r.goaway;
    return 0;
}

/* --- the read callback in front of libh2o's --------------------------------------------------------------------- */

static __thread const cf_conn_t *closed_now; /* the connection on_conn_close freed last on this thread (compared only) */

static void on_guarded_read(h2o_socket_t *sock, const char *err)
{
    cf_conn_t *c = conn_of(sock);
    int goaway = H2_OK;
    if (err == NULL && sock->bytes_read != 0) {
        const char *fresh = sock->input->bytes + sock->input->size - sock->bytes_read;
        switch (c->mode) {
        case CONN_H1:
            if (check_h1(c, sock, fresh, sock->bytes_read) != 0)
                return;
            break;
        case CONN_H2:
        case CONN_H2_CLOSING:
            if (check_h2(c, sock, &goaway) != 0)
                return;
            break;
        default:
            break;
        }
    }
    closed_now = NULL;
    c->inner(sock, err);
    /* a bound was passed in this read: libh2o has read what came before it (its SETTINGS went first), now the GOAWAY */
    if (goaway != H2_OK && closed_now != c && c->mode == CONN_H2)
        h2_goaway(c, sock->data, goaway);
}

/* --- accepting ---------------------------------------------------------------------------------------------------- */

static void resume_accepting(cf_conns_t *cs);

static void on_conn_close(void *data)
{
    cf_conn_t *c = data;
    closed_now = c;
    if (h2o_timeout_is_linked(&c->timer))
        h2o_timeout_unlink(&c->timer);
    if (c->counted) {
        __atomic_sub_fetch(&num_conns, 1, __ATOMIC_RELAXED);
        if (c->listener->conns->paused_at_cap)
            resume_accepting(c->listener->conns); /* a slot is free: no need to wait for the back-off */
    }
    free(c->refusal.base);
    free(c->h2);
    if (c->ssl_ctx != NULL)
        SSL_CTX_free(c->ssl_ctx); /* after libh2o's SSL_free (its socket is disposed of before this callback) */
    free(c);
}

static void start_h1(cf_conn_t *c, h2o_socket_t *sock, struct timeval connected_at)
{
    c->mode = CONN_H1;
    cf_h1guard_init(&c->u.h1);
    /* libh2o would answer a longer body itself (max_request_entity_size), in plain text and uncounted */
    c->u.h1.max_body = c->listener->conns->worker->table->config->limits.max_request_body;
    /* bytes that came with the end of a TLS handshake are read by libh2o at once, before any read callback */
    if (sock->input->size != 0 && check_h1(c, sock, sock->input->bytes, sock->input->size) != 0)
        return;
    h2o_http1_accept(&c->listener->accept, sock, connected_at);
}

static void start_h2(cf_conn_t *c, h2o_socket_t *sock, struct timeval connected_at)
{
    c->mode = CONN_H2;
    c->h2 = h2o_mem_alloc(sizeof(*c->h2));
    memset(c->h2, 0, sizeof(*c->h2));
    cf_h2scan_init(&c->h2->scan);
    c->h2->window_start = h2o_now(c->listener->conns->ctx->loop);
    /* libh2o would parse the bytes that came with the end of the TLS handshake as it takes the connection, unchecked:
     * it takes the connection without them, and they go through the checks like any read */
    h2o_buffer_t *early = sock->input;
    h2o_buffer_init(&sock->input, &h2o_socket_buffer_prototype);
    h2o_http2_accept(&c->listener->accept, sock, connected_at);
    if (early->size != 0) {
        h2o_buffer_reserve(&sock->input, early->size);
        memcpy(sock->input->bytes + sock->input->size, early->bytes, early->size);
        sock->input->size += early->size;
        sock->bytes_read = early->size;
        on_guarded_read(sock, NULL);
    }
    h2o_buffer_dispose(&early);
}

static void on_handshake_timeout(h2o_timeout_entry_t *entry)
{
    cf_conn_t *c = H2O_STRUCT_FROM_MEMBER(cf_conn_t, timer, entry);
    h2o_socket_close(c->sock); /* frees c */
}

static void on_handshake(h2o_socket_t *sock, const char *err)
{
    cf_conn_t *c = conn_of(sock);
    h2o_timeout_unlink(&c->timer);
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

static cf_conn_t *new_conn(cf_listener_t *l, h2o_socket_t *sock)
{
    cf_conn_t *c = h2o_mem_alloc(sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->listener = l;
    c->sock = sock;
    c->counted = !l->admin;
    sock->on_close.cb = on_conn_close;
    sock->on_close.data = c;
    return c;
}

static void start_connection(cf_listener_t *l, h2o_socket_t *sock)
{
    cf_conn_t *c = new_conn(l, sock);
    if (l->tls == NULL) {
        start_h1(c, sock, *h2o_get_timestamp(l->conns->ctx, NULL, NULL));
        return;
    }
    c->mode = CONN_HANDSHAKE;
    c->timer.cb = on_handshake_timeout;
    h2o_timeout_link(l->conns->ctx->loop, &l->conns->ctx->handshake_timeout, &c->timer);
    /* the certificate of the moment, which a reload may replace while this handshake runs: see tls.c */
    c->ssl_ctx = cf_tls_slot_get(l->tls);
    h2o_socket_ssl_handshake(sock, c->ssl_ctx, NULL, on_handshake);
}

static void set_accepting(cf_conns_t *cs, int on, int admin_too)
{
    for (size_t i = 0; i < cs->num_listeners; ++i) {
        if ((cs->listeners[i].admin && !admin_too) || cs->listeners[i].sock == NULL)
            continue;
        if (on)
            h2o_socket_read_start(cs->listeners[i].sock, on_accept);
        else
            h2o_socket_read_stop(cs->listeners[i].sock);
    }
}

static void resume_accepting(cf_conns_t *cs)
{
    if (h2o_timeout_is_linked(&cs->resume))
        h2o_timeout_unlink(&cs->resume);
    cs->paused_at_cap = 0;
    set_accepting(cs, 1, 1); /* the listeners are level-triggered: a waiting connection wakes the loop at once */
}

static void on_resume(h2o_timeout_entry_t *entry)
{
    resume_accepting(H2O_STRUCT_FROM_MEMBER(cf_conns_t, resume, entry));
}

/*
 * Stops accepting. At the fd limit accept() fails without taking the connection, so the listener stays readable:
 * accepting on would spin the loop (nginx pauses the same way); every listener pauses then, the admin one too, for
 * CF_ACCEPT_BACKOFF_MS. At the connection cap, only the public listeners pause, until one of this loop's connections
 * closes or CF_ACCEPT_BACKOFF_MS passes (the cap is process-wide: a connection that closes on another thread frees
 * the slot too).
 */
static void pause_accepting(cf_conns_t *cs, const char *why, int at_fd_limit)
{
    set_accepting(cs, 0, at_fd_limit);
    if (at_fd_limit)
        cs->paused_at_cap = 0; /* only the back-off resumes: the descriptor a connection frees may go to an upstream */
    if (h2o_timeout_is_linked(&cs->resume))
        return; /* paused already (perhaps for the other reason): resumes as planned */
    cs->paused_at_cap = !at_fd_limit;
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

void cf_conns_listen(cf_conns_t *cs, int fd, h2o_hostconf_t **hosts, cf_tls_slot_t *tls, int http2, int admin)
{
    if (cs->num_listeners == cs->cap_listeners) {
        /* the listeners' addresses are handed out as accept contexts: grow only before the first accept */
        cs->cap_listeners = cs->cap_listeners * 2 + 4;
        cs->listeners = h2o_mem_realloc(cs->listeners, sizeof(*cs->listeners) * cs->cap_listeners);
        for (size_t i = 0; i < cs->num_listeners; ++i)
            cs->listeners[i].sock->data = &cs->listeners[i];
    }
    cf_listener_t *l = &cs->listeners[cs->num_listeners++];
    *l = (cf_listener_t){.accept = {cs->ctx, hosts}, .tls = tls, .conns = cs, .http2 = http2, .admin = admin};
    l->sock = h2o_evloop_socket_create(cs->ctx->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    l->sock->data = l;
    h2o_socket_read_start(l->sock, on_accept);
}

void cf_conns_stop_accepting(cf_conns_t *cs)
{
    if (h2o_timeout_is_linked(&cs->resume))
        h2o_timeout_unlink(&cs->resume);
    cs->paused_at_cap = 0;
    /* the listeners stay where they are in the array: connections still in their TLS handshake point at theirs */
    for (size_t i = 0; i < cs->num_listeners; ++i) {
        cf_listener_t *l = &cs->listeners[i];
        if (l->sock == NULL)
            continue;
        if (l->admin) {
            h2o_socket_read_start(l->sock, on_accept); /* it may have been paused */
            continue;
        }
        h2o_socket_t *sock;
        while ((sock = h2o_evloop_socket_accept(l->sock)) != NULL) {
            __atomic_add_fetch(&num_conns, 1, __ATOMIC_RELAXED);
            start_connection(l, sock);
        }
        h2o_socket_close(l->sock);
        l->sock = NULL;
    }
}

void cf_conns_dispose(cf_conns_t *cs)
{
    if (h2o_timeout_is_linked(&cs->resume))
        h2o_timeout_unlink(&cs->resume);
    cs->paused_at_cap = 0;
    for (size_t i = 0; i < cs->num_listeners; ++i)
        if (cs->listeners[i].sock != NULL)
            h2o_socket_close(cs->listeners[i].sock);
    cs->num_listeners = 0;
    free(cs->listeners);
    cs->listeners = NULL;
}

/*
 * The proof that conflux stands in front of libh2o in this very binary, on connections over socket pairs. HTTP/1: the
 * read callback is replaced once libh2o's server has taken the connection, and libh2o closes it through
 * h2o_socket_close. HTTP/2: a request without :path (RFC 9113 §8.3.1) makes libh2o reset its stream, through
 * h2o_http2_stream_reset.
 */
static int self_test_h1(cf_conns_t *cs, h2o_hostconf_t **hosts)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        return 0; /* cannot tell; the first real connection works the same way */
    cf_listener_t listener = {.accept = {cs->ctx, hosts, NULL}, .conns = cs};
    h2o_socket_t *sock = h2o_evloop_socket_create(cs->ctx->loop, fds[0], 0);
    __atomic_add_fetch(&num_conns, 1, __ATOMIC_RELAXED);
    start_connection(&listener, sock);
    int ok = sock->_cb.read == on_guarded_read;
    probe = conn_of(sock);
    probe_closed = 0;
    probe->inner(sock, "self-test done"); /* libh2o closes its connection and the socket (and frees ours) */
    ok = ok && probe_closed;
    probe = NULL;
    close(fds[1]);
    return ok ? 0 : -1;
}

static void on_probe_write(h2o_socket_t *sock, const char *err)
{
}

static int self_test_h2(cf_conns_t *cs, h2o_hostconf_t **hosts)
{
    static const char bytes[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                                "\x00\x00\x00\x04\x00\x00\x00\x00\x00"      /* SETTINGS */
                                "\x00\x00\x01\x01\x05\x00\x00\x00\x01\x82"; /* HEADERS (END_STREAM, END_HEADERS) :method GET */
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        return 0;
    cf_listener_t listener = {.accept = {cs->ctx, hosts, NULL}, .conns = cs, .http2 = 1};
    h2o_socket_t *sock = h2o_evloop_socket_create(cs->ctx->loop, fds[0], 0);
    __atomic_add_fetch(&num_conns, 1, __ATOMIC_RELAXED);
    cf_conn_t *c = new_conn(&listener, sock);
    start_h2(c, sock, *h2o_get_timestamp(cs->ctx, NULL, NULL));
    /* as if a write were in flight: libh2o queues its answers instead of writing them, so that it closes at once */
    sock->_cb.write = on_probe_write;
    h2o_buffer_reserve(&sock->input, sizeof(bytes) - 1);
    memcpy(sock->input->bytes + sock->input->size, bytes, sizeof(bytes) - 1);
    sock->input->size += sizeof(bytes) - 1;
    sock->bytes_read = sizeof(bytes) - 1;
    on_guarded_read(sock, NULL);
    int ok = c->mode == CONN_H2 && c->h2->resets == 1;
    sock->_cb.write = NULL;
    c->inner(sock, "self-test done");
    close(fds[1]);
    return ok ? 0 : -1;
}

int cf_conns_init(cf_conns_t *cs, h2o_context_t *ctx, cf_worker_t *worker, h2o_hostconf_t **hosts, char *err, size_t errlen)
{
    memset(cs, 0, sizeof(*cs));
    cs->ctx = ctx;
    cs->worker = worker;
    cs->resume.cb = on_resume;
    if (self_test_h1(cs, hosts) != 0 || self_test_h2(cs, hosts) != 0) {
        snprintf(err, errlen,
                 "the HTTP/1 framing checks and the HTTP/2 limits could not be put in front of libh2o in this build "
                 "(libh2o must be a shared library); refusing to serve without them");
        return -1;
    }
    return 0;
}
