/* Unit tests of common/cf_fetch.c: URL parsing, and exchanges with a scripted server thread, plain and TLS. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include "tap.h"
#include "../../common/cf_fetch.c"

/* --- a server thread: accepts one connection, reads the request head (and a Content-Length body), writes `answer`,
 * then waits `hold_ms` before closing; SSL when ctx is set ------------------------------------------------------------ */

typedef struct st_server_t {
    int lfd;
    uint16_t port;
    SSL_CTX *ctx;
    const char *answer;
    size_t answer_len;
    int hold_ms;
    char request[8192]; /* what was received */
    size_t request_len;
    pthread_t thread;
} server_t;

static void *serve(void *_s)
{
    server_t *s = _s;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    SSL *ssl = NULL;
    if (s->ctx != NULL) {
        ssl = SSL_new(s->ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1)
            goto Close;
    }
    for (;;) {
        size_t room = sizeof(s->request) - 1 - s->request_len;
        ssize_t r =
            ssl != NULL ? SSL_read(ssl, s->request + s->request_len, (int)room) : read(fd, s->request + s->request_len, room);
        if (r <= 0)
            goto Close;
        s->request_len += (size_t)r;
        s->request[s->request_len] = '\0';
        char *end = strstr(s->request, "\r\n\r\n");
        if (end != NULL) {
            char *cl = strcasestr(s->request, "content-length: ");
            size_t want = (size_t)(end + 4 - s->request) + (cl != NULL && cl < end ? strtoul(cl + 16, NULL, 10) : 0);
            if (s->request_len >= want)
                break;
        }
    }
    if (s->answer_len != 0)
        ssl != NULL ? SSL_write(ssl, s->answer, (int)s->answer_len) : write(fd, s->answer, s->answer_len);
    if (s->hold_ms != 0)
        usleep((useconds_t)s->hold_ms * 1000);
    if (ssl != NULL)
        SSL_shutdown(ssl);
Close:
    if (ssl != NULL)
        SSL_free(ssl);
    close(fd);
    return NULL;
}

static void server_start(server_t *s, const char *answer, int hold_ms, SSL_CTX *ctx)
{
    memset(s, 0, sizeof(*s));
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin));
    listen(s->lfd, 4);
    getsockname(s->lfd, (struct sockaddr *)&sin, &len);
    s->port = ntohs(sin.sin_port);
    s->ctx = ctx;
    s->answer = answer;
    s->answer_len = answer != NULL ? strlen(answer) : 0;
    s->hold_ms = hold_ms;
    pthread_create(&s->thread, NULL, serve, s);
}

static void server_stop(server_t *s)
{
    shutdown(s->lfd, SHUT_RDWR); /* wakes an accept that never got a connection */
    pthread_join(s->thread, NULL);
    close(s->lfd);
}

/* One GET (or a POST with `body`) to the server's port; the result in *res. */
static int fetch_from(server_t *s, const char *scheme, const char *host, const char *body, uint64_t timeout_ms, size_t max_body,
                      SSL_CTX *ctx, cf_fetch_result_t *res)
{
    char url_s[128];
    const char *why = NULL;
    cf_fetch_url_t url;
    snprintf(url_s, sizeof(url_s), "%s://%s:%u/v1/traces?x=1", scheme, host, (unsigned)s->port);
    if (cf_fetch_parse_url(url_s, &url, &why) != 0) {
        diag("%s: %s", url_s, why);
        return -2;
    }
    cf_fetch_request_t req = {.method = body != NULL ? "POST" : "GET",
                              .url = &url,
                              .content_type = "application/json",
                              .body = body,
                              .body_len = body != NULL ? strlen(body) : 0,
                              .accept = "application/json",
                              .timeout_ms = timeout_ms,
                              .max_body = max_body,
                              .ssl_ctx = ctx};
    return cf_fetch(&req, res);
}

static uint64_t ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (uint64_t)((t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000);
}

/* --- a self-signed certificate for 127.0.0.1 (and the name "localhost"), made here --------------------------------- */

static void make_cert(EVP_PKEY **key, X509 **cert)
{
    *key = EVP_EC_gen("P-256");
    *cert = X509_new();
    X509_set_version(*cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(*cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(*cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(*cert), 3600);
    X509_NAME *name = X509_get_subject_name(*cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(*cert, name);
    X509_set_pubkey(*cert, *key);
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, *cert, *cert, NULL, NULL, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    X509_add_ext(*cert, san, -1);
    X509_EXTENSION_free(san);
    X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(*cert, bc, -1);
    X509_EXTENSION_free(bc);
    X509_sign(*cert, *key, EVP_sha256());
}

static void test_urls(void)
{
    cf_fetch_url_t u;
    const char *why = NULL;
    is(cf_fetch_parse_url("http://collector:4318/v1/traces", &u, &why), 0, "a URL with a port");
    is_str(u.host, "collector", "its host");
    is(u.port, 4318, "its port");
    is_str(u.path, "/v1/traces", "its path");
    is(u.is_https, 0, "http");
    is(cf_fetch_parse_url("https://keys.example.org", &u, &why), 0, "an https URL with no path");
    is(u.port, 443, "port 443 by default");
    is_str(u.path, "/", "path /");
    is(cf_fetch_parse_url("HTTP://h?x=1", &u, &why), 0, "a scheme in capitals, a query and no path");
    is_str(u.path, "/?x=1", "the path is / before the query");
    is(cf_fetch_parse_url("http://[::1]:8080/a", &u, &why), 0, "an IPv6 address");
    is_str(u.host, "::1", "without its brackets");
    ok(u.host_is_ip6 && u.port == 8080, "marked, with its port");
    static const char *const bad[] = {
        "ftp://h/",      "http://",           "http://:80/",    "http://h:0/",      "http://h:65536/",
        "http://h:8x/",  "http://u@h/",       "http://h/#frag", "http://h/a b",     "http://h/\r\nX: 1",
        "http://[::1/",  "http://[zz]/",      "http://h_x/",    "http://[::1]x/",   "http://h:/",
        "http://h\x7f/", "http://h/\xc3\xa9", "//h/",           "http://h:123456/", NULL};
    for (size_t i = 0; bad[i] != NULL; ++i) {
        why = NULL;
        ok(cf_fetch_parse_url(bad[i], &u, &why) == -1 && why != NULL, "refused: %zu (%s)", i, why != NULL ? why : "accepted");
    }
    char longpath[3000] = "http://h/";
    memset(longpath + 9, 'a', sizeof(longpath) - 10);
    longpath[sizeof(longpath) - 1] = '\0';
    ok(cf_fetch_parse_url(longpath, &u, &why) == -1, "a path over 2 KiB is refused");
}

static void test_plain(void)
{
    server_t s;
    cf_fetch_result_t res;

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0, NULL);
    is(fetch_from(&s, "http", "127.0.0.1", "{\"a\":1}", 2000, 1024, NULL, &res), 0, "a POST: answered");
    server_stop(&s);
    is(res.status, 200, "status 200");
    is_str(res.body, "hello", "the body");
    ok(strncmp(s.request, "POST /v1/traces?x=1 HTTP/1.1\r\n", 30) == 0, "the request line");
    ok(strstr(s.request, "\r\nHost: 127.0.0.1:") != NULL, "a Host field with the port");
    ok(strstr(s.request, "\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}") != NULL,
       "its body, typed and sized");
    ok(strstr(s.request, "\r\nConnection: close\r\n") != NULL, "Connection: close");
    cf_fetch_result_free(&res);

    server_start(
        &s, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        0, NULL);
    is(fetch_from(&s, "http", "localhost", NULL, 2000, 1024, NULL, &res), 0, "a GET by name: a chunked 503 after a 100");
    server_stop(&s);
    is(res.status, 503, "any complete answer is a result: status 503");
    is_str(res.body, "abcde", "the chunks joined");
    ok(strncmp(s.request, "GET /v1/traces?x=1 HTTP/1.1\r\n", 29) == 0 && strstr(s.request, "Content-Length") == NULL,
       "a GET has no Content-Length");
    cf_fetch_result_free(&res);

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", 0, NULL);
    is(fetch_from(&s, "http", "127.0.0.1", NULL, 2000, 1024, NULL, &res), -1, "a body over max_body fails");
    server_stop(&s);
    ok(res.status == 0 && res.body == NULL && strstr(res.error, "max_response_body") != NULL, "saying why: %s", res.error);
    cf_fetch_result_free(&res);

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 0, NULL);
    is(fetch_from(&s, "http", "127.0.0.1", NULL, 2000, 1024, NULL, &res), -1, "ambiguous framing fails");
    server_stop(&s);
    ok(strstr(res.error, "bad answer") != NULL, "as a bad answer: %s", res.error);
    cf_fetch_result_free(&res);

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, NULL);
    is(fetch_from(&s, "http", "127.0.0.1", NULL, 2000, 1024, NULL, &res), -1, "an answer cut short fails");
    server_stop(&s);
    cf_fetch_result_free(&res);

    /* a server that takes the request and never answers: the timeout bounds the whole exchange */
    struct timespec t0;
    server_start(&s, NULL, 1500, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    is(fetch_from(&s, "http", "127.0.0.1", NULL, 200, 1024, NULL, &res), -1, "no answer: fails");
    uint64_t took = ms_since(&t0);
    ok(took >= 190 && took < 1400, "at the timeout (%llu ms of 200)", (unsigned long long)took);
    ok(strstr(res.error, "timed out") != NULL, "saying so: %s", res.error);
    server_stop(&s);
    cf_fetch_result_free(&res);

    /* a closed port */
    server_start(&s, NULL, 0, NULL);
    server_stop(&s);
    is(fetch_from(&s, "http", "127.0.0.1", NULL, 1000, 1024, NULL, &res), -1, "a closed port fails");
    ok(strstr(res.error, "cannot connect") != NULL, "cannot connect: %s", res.error);
    cf_fetch_result_free(&res);
}

static void test_tls(void)
{
    EVP_PKEY *key;
    X509 *cert;
    make_cert(&key, &cert);
    SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(sctx, cert);
    SSL_CTX_use_PrivateKey(sctx, key);
    SSL_CTX *trusting = SSL_CTX_new(TLS_client_method()); /* trusts the certificate */
    X509_STORE_add_cert(SSL_CTX_get_cert_store(trusting), cert);
    SSL_CTX *stranger = SSL_CTX_new(TLS_client_method()); /* trusts nothing */
    server_t s;
    cf_fetch_result_t res;

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nkeys", 0, sctx);
    is(fetch_from(&s, "https", "127.0.0.1", NULL, 3000, 1024, trusting, &res), 0, "https to 127.0.0.1 with a trusted certificate");
    server_stop(&s);
    is(res.status, 200, "status 200");
    is_str(res.body, "keys", "the body");
    cf_fetch_result_free(&res);

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nkeys", 0, sctx);
    is(fetch_from(&s, "https", "localhost", NULL, 3000, 1024, trusting, &res), 0, "https to the name in the certificate");
    server_stop(&s);
    cf_fetch_result_free(&res);

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nkeys", 0, sctx);
    is(fetch_from(&s, "https", "127.0.0.1", NULL, 3000, 1024, stranger, &res), -1, "a certificate nobody vouches for fails");
    server_stop(&s);
    ok(strstr(res.error, "TLS failed") != NULL, "in the handshake: %s", res.error);
    cf_fetch_result_free(&res);

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nkeys", 0, sctx);
    is(fetch_from(&s, "https", "127.0.0.1", NULL, 3000, 1024, NULL, &res), -1, "https without a TLS context fails");
    server_stop(&s);
    cf_fetch_result_free(&res);

    SSL_CTX_free(sctx);
    SSL_CTX_free(trusting);
    SSL_CTX_free(stranger);
    X509_free(cert);
    EVP_PKEY_free(key);
}

int main(void)
{
    test_urls();
    test_plain();
    test_tls();
    return done_testing();
}
