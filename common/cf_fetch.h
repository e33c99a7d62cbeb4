/* A blocking HTTP/1.1 client for conflux's own worker threads (never an event loop): one exchange per call. */
#ifndef CF_FETCH_H
#define CF_FETCH_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

/*
 * For work that runs beside the event loops and may wait: fetching a JWKS, posting spans to a collector. Each call is
 * one exchange on a new connection (Connection: close), bounded as a whole by its timeout: name resolution (see
 * cf_fetch), connect, TLS handshake, sending and receiving. The answer is read by common/cf_h1resp.c, the parser of the
 * gateway's upstream answers, so the same framing rules and bounds apply.
 */

/** A parsed http:// or https:// URL. */
typedef struct st_cf_fetch_url_t {
    int is_https;
    char host[256];  /* a name, an IPv4 address, or an IPv6 address without its brackets */
    int host_is_ip6; /* written in brackets in the Host field */
    uint16_t port;   /* 80 or 443 when the URL has none */
    char path[2048]; /* from the first '/', query included; "/" when the URL has none */
} cf_fetch_url_t;

/**
 * Parses `url` (http://HOST[:PORT][/PATH] or https://...; no user info, no fragment, HOST a DNS name, an IPv4
 * address or [IPv6]). Returns 0, or -1 with `*why` set to a static phrase. Nothing but printable ASCII without
 * spaces is accepted anywhere, so the parts can be written into a request as they are.
 */
int cf_fetch_parse_url(const char *url, cf_fetch_url_t *out, const char **why);

/** One exchange to make. */
typedef struct st_cf_fetch_request_t {
    const char *method; /* "GET", "POST", ... */
    const cf_fetch_url_t *url;
    const char *content_type; /* with a body; NULL: no Content-Type */
    const char *body;         /* NULL: no body (and no Content-Length unless the method is POST or PUT) */
    size_t body_len;
    const char *accept;  /* NULL: no Accept field */
    uint64_t timeout_ms; /* the whole exchange */
    size_t max_body;     /* a longer answer fails (its bytes are not kept) */
    SSL_CTX *ssl_ctx;    /* for https: a client context that verifies peers; the host name is checked too */
} cf_fetch_request_t;

/** What came back. */
typedef struct st_cf_fetch_result_t {
    int status; /* the final status, or 0 when the exchange failed */
    char *body; /* malloc'ed, NUL-terminated (not counted in body_len); NULL when it failed */
    size_t body_len;
    char error[160]; /* when status is 0: why, in a few words */
} cf_fetch_result_t;

/**
 * Makes one exchange; blocks the calling thread up to the timeout (name resolution with getaddrinfo is outside that
 * bound: glibc's own resolver timeouts apply, which is why this is never called on an event loop). Returns 0 with
 * `res->status` set for any complete answer (whatever its status), or -1 with `res->error` set. Free the result with
 * cf_fetch_result_free in either case.
 */
int cf_fetch(const cf_fetch_request_t *req, cf_fetch_result_t *res);

/** Frees what cf_fetch kept in `res`. */
void cf_fetch_result_free(cf_fetch_result_t *res);

#endif
