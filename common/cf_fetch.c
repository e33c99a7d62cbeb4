/* A blocking HTTP/1.1 client for worker threads: URL parsing, connect, TLS, one request, the answer through cf_h1resp. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include "cf_fetch.h"
#include "cf_h1resp.h"
#include "cf_units.h"

/* --- URLs ---------------------------------------------------------------------------------------------------------- */

int cf_fetch_parse_url(const char *url, cf_fetch_url_t *out, const char **why)
{
    memset(out, 0, sizeof(*out));
    for (const char *c = url; *c != '\0'; ++c)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
            return *why = "has a space, a control character or a byte that is not ASCII", -1;
    const char *p;
    if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
        out->port = 80;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        p = url + 8;
        out->port = 443;
        out->is_https = 1;
    } else {
        return *why = "is not an http:// or https:// URL", -1;
    }
    size_t auth_len = strcspn(p, "/?#");
    const char *rest = p + auth_len;
    if (*rest == '#' || strchr(rest, '#') != NULL)
        return *why = "has a fragment (#...)", -1;
    if (memchr(p, '@', auth_len) != NULL)
        return *why = "has user information (user@), which is never sent", -1;
    const char *host = p, *host_end, *port = NULL;
    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', auth_len - 1);
        if (host_end == NULL)
            return *why = "has an unclosed [IPv6] address", -1;
        if (host_end + 1 != p + auth_len) {
            if (host_end[1] != ':')
                return *why = "has bytes after its [IPv6] address", -1;
            port = host_end + 2;
        }
        out->host_is_ip6 = 1;
    } else {
        host_end = memchr(p, ':', auth_len);
        if (host_end != NULL)
            port = host_end + 1;
        else
            host_end = p + auth_len;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0)
        return *why = "has no host", -1;
    if (host_len >= sizeof(out->host))
        return *why = "has a host name over 255 bytes", -1;
    memcpy(out->host, host, host_len);
    if (out->host_is_ip6) {
        struct in6_addr a6;
        if (inet_pton(AF_INET6, out->host, &a6) != 1)
            return *why = "has an invalid [IPv6] address", -1;
    } else {
        for (size_t i = 0; i != host_len; ++i)
            if (!(('a' <= (host[i] | 0x20) && (host[i] | 0x20) <= 'z') || ('0' <= host[i] && host[i] <= '9') || host[i] == '-' ||
                  host[i] == '.'))
                return *why = "has a host that is not a DNS name or an IPv4 address", -1;
    }
    if (port != NULL) {
        const char *port_end = p + auth_len;
        unsigned long v = 0;
        if (port == port_end || port_end - port > 5)
            return *why = "has an invalid port", -1;
        for (const char *d = port; d != port_end; ++d) {
            if (*d < '0' || *d > '9')
                return *why = "has an invalid port", -1;
            v = v * 10 + (unsigned long)(*d - '0');
        }
        if (v == 0 || v > 65535)
            return *why = "has a port outside 1-65535", -1;
        out->port = (uint16_t)v;
    }
    if (*rest == '\0')
        rest = "/";
    if (*rest == '?') { /* "http://h?q": the path is empty, so "/" comes first (RFC 9112 3.2.1) */
        if (strlen(rest) + 1 >= sizeof(out->path))
            return *why = "has a path over 2 KiB", -1;
        out->path[0] = '/';
        memcpy(out->path + 1, rest, strlen(rest) + 1);
        return 0;
    }
    if (strlen(rest) >= sizeof(out->path))
        return *why = "has a path over 2 KiB", -1;
    memcpy(out->path, rest, strlen(rest) + 1);
    return 0;
}

/* --- one connection, plain or TLS, every wait bounded by the deadline ---------------------------------------------- */

typedef struct st_conn_t {
    int fd;
    SSL *ssl;
    uint64_t deadline; /* CLOCK_MONOTONIC, ms */
    cf_fetch_result_t *res;
} conn_t;

static uint64_t now_ms(void)
{
    return cf_mono_ns() / 1000000;
}

static int fail(conn_t *c, const char *fmt, const char *arg)
{
    snprintf(c->res->error, sizeof(c->res->error), fmt, arg);
    return -1;
}

/* Waits until fd is ready for `events` or the deadline passes: 0, or -1 with the error set. */
static int wait_for(conn_t *c, short events, const char *doing)
{
    for (;;) {
        uint64_t now = now_ms();
        if (now >= c->deadline)
            return fail(c, "timed out %s", doing);
        struct pollfd pfd = {.fd = c->fd, .events = events};
        int r = poll(&pfd, 1, (int)(c->deadline - now > 60000 ? 60000 : c->deadline - now));
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return fail(c, "poll failed %s", doing);
    }
}

/* Waits as OpenSSL asks after a call that returned r: 0 to call again, -1 failed. */
static int ssl_wait(conn_t *c, int r, const char *doing)
{
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return wait_for(c, POLLIN, doing);
    case SSL_ERROR_WANT_WRITE:
        return wait_for(c, POLLOUT, doing);
    default: {
        char buf[120];
        unsigned long e = ERR_get_error();
        ERR_error_string_n(e != 0 ? e : (unsigned long)SSL_R_UNEXPECTED_EOF_WHILE_READING, buf, sizeof(buf));
        ERR_clear_error();
        snprintf(c->res->error, sizeof(c->res->error), "TLS failed %s: %s", doing, e != 0 ? buf : "the connection closed");
        return -1;
    }
    }
}

static int connect_to(conn_t *c, const cf_fetch_url_t *url)
{
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)url->port);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai = NULL;
    int gai = getaddrinfo(url->host, port, &hints, &ai);
    if (gai != 0)
        return fail(c, "cannot resolve the host: %s", gai_strerror(gai));
    const char *last = "no address";
    for (struct addrinfo *a = ai; a != NULL; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            last = strerror(errno);
            continue;
        }
        c->fd = fd;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 || (errno == EINPROGRESS && wait_for(c, POLLOUT, "connecting") == 0)) {
            int err = 0;
            socklen_t len = sizeof(err);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                freeaddrinfo(ai);
                return 0;
            }
            last = strerror(err != 0 ? err : errno);
        } else {
            last = c->res->error[0] != '\0' ? "timed out" : strerror(errno);
        }
        close(fd);
        c->fd = -1;
        if (now_ms() >= c->deadline)
            break;
    }
    freeaddrinfo(ai);
    return fail(c, "cannot connect: %s", last);
}

static int start_tls(conn_t *c, const cf_fetch_url_t *url, SSL_CTX *ctx)
{
    if (ctx == NULL)
        return fail(c, "%s", "an https:// URL without a TLS context");
    if ((c->ssl = SSL_new(ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
        return fail(c, "%s", "SSL_new failed");
    struct in6_addr a6;
    struct in_addr a4;
    int is_ip = url->host_is_ip6 || inet_pton(AF_INET, url->host, &a4) == 1 || inet_pton(AF_INET6, url->host, &a6) == 1;
    /* the certificate must name the host (RFC 9110 4.3.4): a DNS name, or an IP address in its subjectAltName */
    X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, url->host) != 1
              : SSL_set_tlsext_host_name(c->ssl, url->host) != 1 || SSL_set1_host(c->ssl, url->host) != 1)
        return fail(c, "%s", "cannot set the host name to verify");
    SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
    for (;;) {
        int r = SSL_connect(c->ssl);
        if (r == 1)
            return 0;
        if (ssl_wait(c, r, "in the handshake") != 0)
            return -1;
    }
}

static int write_all(conn_t *c, const char *p, size_t n)
{
    while (n != 0) {
        ssize_t w;
        if (c->ssl != NULL) {
            int r = SSL_write(c->ssl, p, n > (1 << 30) ? (1 << 30) : (int)n);
            if (r <= 0) {
                if (ssl_wait(c, r, "sending the request") != 0)
                    return -1;
                continue;
            }
            w = r;
        } else if ((w = send(c->fd, p, n, MSG_NOSIGNAL)) < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return fail(c, "cannot send the request: %s", strerror(errno));
            if (wait_for(c, POLLOUT, "sending the request") != 0)
                return -1;
            continue;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads what is there (waiting up to the deadline): the byte count, 0 at the end of the stream, -1 failed. */
static ssize_t read_some(conn_t *c, char *p, size_t n)
{
    for (;;) {
        if (c->ssl != NULL) {
            int r = SSL_read(c->ssl, p, n > (1 << 30) ? (1 << 30) : (int)n);
            if (r > 0)
                return r;
            if (SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN)
                return 0;
            if (ssl_wait(c, r, "reading the answer") != 0)
                return -1;
            continue;
        }
        ssize_t r = recv(c->fd, p, n, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return fail(c, "cannot read the answer: %s", strerror(errno));
        if (wait_for(c, POLLIN, "reading the answer") != 0)
            return -1;
    }
}

/* --- the exchange -------------------------------------------------------------------------------------------------- */

static int exchange(conn_t *c, const cf_fetch_request_t *req)
{
    const cf_fetch_url_t *url = req->url;
    if (connect_to(c, url) != 0 || (url->is_https && start_tls(c, url, req->ssl_ctx) != 0))
        return -1;

    /* the head: every part was checked to be printable ASCII (cf_fetch_parse_url, and the caller's constants) */
    char head[4096];
    int is_default_port = url->port == (url->is_https ? 443 : 80);
    int n = snprintf(head, sizeof(head), "%s %s HTTP/1.1\r\nHost: %s%s%s", req->method, url->path, url->host_is_ip6 ? "[" : "",
                     url->host, url->host_is_ip6 ? "]" : "");
    if (!is_default_port)
        n += snprintf(head + n, sizeof(head) - (size_t)n, ":%u", (unsigned)url->port);
    n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\nConnection: close\r\nUser-Agent: conflux\r\n");
    if (req->accept != NULL)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Accept: %s\r\n", req->accept);
    if (req->body != NULL && req->content_type != NULL)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Type: %s\r\n", req->content_type);
    if (req->body != NULL || strcmp(req->method, "POST") == 0 || strcmp(req->method, "PUT") == 0)
        n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", req->body != NULL ? req->body_len : 0);
    n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
    if (n < 0 || (size_t)n >= sizeof(head))
        return fail(c, "%s", "the request head is too long");
    if (write_all(c, head, (size_t)n) != 0 || (req->body != NULL && write_all(c, req->body, req->body_len) != 0))
        return -1;

    /* the answer: bytes kept in `in` until the parser consumes them; the body copied out as it is reported */
    cf_h1resp_t parser;
    cf_h1resp_init(&parser, strcmp(req->method, "HEAD") == 0, req->max_body);
    size_t cap = 16384, len = 0, body_cap = 0;
    char *in = malloc(cap);
    cf_fetch_result_t *res = c->res;
    int eof = 0, ret = -1;
    if (in == NULL)
        return fail(c, "%s", "out of memory");
    for (;;) {
        cf_h1resp_event_t ev;
        cf_h1resp_kind_t kind = cf_h1resp_parse(&parser, len != 0 ? in : NULL, len, eof, &ev);
        if (kind == CF_H1RESP_HEAD) {
            res->status = ev.status;
        } else if (kind == CF_H1RESP_BODY) {
            if (res->body_len + ev.body_len + 1 > body_cap) {
                size_t want = body_cap == 0 ? 4096 : body_cap;
                while (want < res->body_len + ev.body_len + 1)
                    want *= 2;
                char *b = realloc(res->body, want);
                if (b == NULL) {
                    fail(c, "%s", "out of memory");
                    break;
                }
                res->body = b;
                body_cap = want;
            }
            memcpy(res->body + res->body_len, ev.body, ev.body_len);
            res->body_len += ev.body_len;
        } else if (kind == CF_H1RESP_DONE) {
            ret = 0;
            break;
        } else if (kind == CF_H1RESP_ERROR) {
            fail(c, "a bad answer: %s", ev.detail);
            break;
        }
        memmove(in, in + ev.consumed, len - ev.consumed);
        len -= ev.consumed;
        if (kind != CF_H1RESP_NEED_MORE)
            continue;
        if (len == cap) { /* a head is kept whole until it ends; cf_h1resp bounds it at 64 KiB */
            char *b = realloc(in, cap * 2);
            if (b == NULL) {
                fail(c, "%s", "out of memory");
                break;
            }
            in = b;
            cap *= 2;
        }
        ssize_t r = read_some(c, in + len, cap - len);
        if (r < 0)
            break;
        if (r == 0)
            eof = 1;
        len += (size_t)r;
    }
    free(in);
    if (ret != 0)
        return -1;
    if (res->body == NULL && (res->body = malloc(1)) == NULL)
        return fail(c, "%s", "out of memory");
    res->body[res->body_len] = '\0';
    return 0;
}

int cf_fetch(const cf_fetch_request_t *req, cf_fetch_result_t *res)
{
    memset(res, 0, sizeof(*res));
    conn_t c = {.fd = -1, .deadline = now_ms() + req->timeout_ms, .res = res};
    int ret = exchange(&c, req);
    if (c.ssl != NULL) {
        if (ret == 0)
            SSL_shutdown(c.ssl); /* a close_notify, best effort: the socket is non-blocking */
        SSL_free(c.ssl);
        ERR_clear_error();
    }
    if (c.fd >= 0)
        close(c.fd);
    if (ret != 0) {
        res->status = 0;
        free(res->body);
        res->body = NULL;
        res->body_len = 0;
        if (res->error[0] == '\0')
            snprintf(res->error, sizeof(res->error), "failed");
    }
    return ret;
}

void cf_fetch_result_free(cf_fetch_result_t *res)
{
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
}
