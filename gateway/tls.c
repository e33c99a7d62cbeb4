/* TLS contexts for listeners (certificate, key, ALPN) and for https:// backends (verification against a CA store). */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <h2o.h>
#include <h2o/http2.h>
#include "tls.h"

/* TLS 1.2 suites: ECDHE key exchange with AEAD ciphers only (TLS 1.3 has its own, all sound, list) */
#define CF_TLS12_CIPHERS                                                                                                           \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"         \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* ALPN lists (h2o keeps a pointer to them for the context's life) */
static const h2o_iovec_t alpn_http1_only[] = {{H2O_STRLIT("http/1.1")}, {NULL}};

/* an error that only says which layer failed ("PEM lib", "system lib"), stacked on the one that says why */
static int is_generic(unsigned long e)
{
    return ERR_SYSTEM_ERROR(e) || ERR_GET_REASON(e) == ERR_R_PEM_LIB || ERR_GET_REASON(e) == ERR_R_SYS_LIB;
}

/* The reason of the OpenSSL error queue (its first specific entry, else its first), or `fallback`; clears the queue. */
static const char *ssl_reason(char *buf, size_t len, const char *fallback)
{
    unsigned long e = 0, next;
    while ((next = ERR_get_error()) != 0)
        if (e == 0 || (is_generic(e) && !is_generic(next)))
            e = next;
    if (e == 0) {
        snprintf(buf, len, "%s", fallback);
    } else {
        const char *r = ERR_reason_error_string(e);
        snprintf(buf, len, "%s", r != NULL ? r : fallback);
    }
    ERR_clear_error();
    return buf;
}

static SSL_CTX *new_ctx(const SSL_METHOD *method)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_cipher_list(ctx, CF_TLS12_CIPHERS);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

/* which file of a listener's pair could not be used */
enum { TLS_BAD_CERTIFICATE = 1, TLS_BAD_KEY, TLS_KEY_MISMATCH };

/*
 * Reads a listener's certificate chain and key into a new server context. On failure returns NULL with `*bad` naming
 * the file at fault and its reason in `why`. A certificate outside its validity period still loads (as nginx does: a
 * renewal that lags must not take the listener down), with a note in `warn` (empty otherwise).
 */
static SSL_CTX *load_server_ctx(const cf_listen_t *l, int *bad, char *why, size_t whylen, char *warn, size_t warnlen)
{
    *warn = '\0';
    SSL_CTX *ctx = new_ctx(TLS_server_method());
    if (ctx == NULL) {
        *bad = TLS_BAD_CERTIFICATE;
        ssl_reason(why, whylen, "SSL_CTX_new failed");
        return NULL;
    }
    ERR_clear_error();
    /* OpenSSL reports an unreadable file as "system lib": say which errno */
    const char *unreadable = l->tls_certificate;
    FILE *fp = fopen(unreadable, "r");
    if (fp != NULL) {
        fclose(fp);
        if ((fp = fopen(unreadable = l->tls_key, "r")) != NULL)
            fclose(fp);
    }
    if (fp == NULL) {
        *bad = unreadable == l->tls_certificate ? TLS_BAD_CERTIFICATE : TLS_BAD_KEY;
        snprintf(why, whylen, "%s", strerror(errno));
        goto Fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, l->tls_certificate) != 1) {
        *bad = TLS_BAD_CERTIFICATE;
        ssl_reason(why, whylen, "not a PEM certificate");
        goto Fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, l->tls_key, SSL_FILETYPE_PEM) != 1 &&
        ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
        *bad = TLS_BAD_KEY;
        ssl_reason(why, whylen, "not a PEM private key");
        goto Fail;
    }
    if (ERR_peek_last_error() != 0 || SSL_CTX_check_private_key(ctx) != 1) {
        *bad = TLS_KEY_MISMATCH;
        ssl_reason(why, whylen, "mismatch");
        goto Fail;
    }
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    const ASN1_TIME *not_after = X509_get0_notAfter(cert), *not_before = X509_get0_notBefore(cert);
    const ASN1_TIME *when = NULL;
    if (X509_cmp_current_time(not_after) < 0)
        when = not_after;
    else if (X509_cmp_current_time(not_before) > 0)
        when = not_before;
    if (when != NULL) {
        char date[64] = "?";
        BIO *b = BIO_new(BIO_s_mem());
        if (b != NULL && ASN1_TIME_print(b, when) == 1) {
            int n = BIO_read(b, date, sizeof(date) - 1);
            date[n > 0 ? n : 0] = '\0';
        }
        BIO_free(b);
        snprintf(warn, warnlen, "%s %s; serving it anyway", when == not_after ? "expired on" : "not valid before", date);
    }
    ERR_clear_error();
    /* HTTP/2 only when asked for: h2o 2.2.5 lacks the Rapid Reset (CVE-2023-44487) and 2019 flood mitigations */
    h2o_ssl_register_alpn_protocols(ctx, l->http2 ? h2o_http2_alpn_protocols : alpn_http1_only);
    return ctx;
Fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *cf_tls_server_ctx(const cf_config_t *config, size_t index, char *err, size_t errlen)
{
    const cf_listen_t *l = &config->listen[index];
    char why[256], warn[128];
    int bad = 0;
    SSL_CTX *ctx = load_server_ctx(l, &bad, why, sizeof(why), warn, sizeof(warn));
    switch (ctx != NULL ? 0 : bad) {
    case 0:
        if (*warn != '\0')
            fprintf(stderr, "conflux: warning: %s:%d:%d: listen[%zu].tls.certificate: \"%s\" %s\n", config->filename, l->tls_line,
                    l->tls_col, index, l->tls_certificate, warn);
        break;
    case TLS_BAD_CERTIFICATE:
        snprintf(err, errlen, "%s:%d:%d: listen[%zu].tls.certificate: cannot load \"%s\": %s", config->filename, l->tls_line,
                 l->tls_col, index, l->tls_certificate, why);
        break;
    case TLS_BAD_KEY:
        snprintf(err, errlen, "%s:%d:%d: listen[%zu].tls.key: cannot load \"%s\": %s", config->filename, l->tls_line, l->tls_col,
                 index, l->tls_key, why);
        break;
    default:
        snprintf(err, errlen, "%s:%d:%d: listen[%zu].tls.key: \"%s\" does not match the certificate \"%s\": %s", config->filename,
                 l->tls_line, l->tls_col, index, l->tls_key, l->tls_certificate, why);
        break;
    }
    return ctx;
}

SSL_CTX *cf_tls_reload_ctx(const cf_listen_t *l, char *err, size_t errlen, char *warn, size_t warnlen)
{
    char why[256], note[128];
    int bad = 0;
    SSL_CTX *ctx = load_server_ctx(l, &bad, why, sizeof(why), note, sizeof(note));
    *warn = '\0';
    if (ctx != NULL) {
        if (*note != '\0')
            snprintf(warn, warnlen, "certificate %s: %s", l->tls_certificate, note);
    } else if (bad == TLS_BAD_CERTIFICATE) {
        snprintf(err, errlen, "certificate %s: %s", l->tls_certificate, why);
    } else if (bad == TLS_BAD_KEY) {
        snprintf(err, errlen, "key %s: %s", l->tls_key, why);
    } else {
        snprintf(err, errlen, "key %s: does not match the certificate %s (%s)", l->tls_key, l->tls_certificate, why);
    }
    return ctx;
}

/*
 * Why a slot and not a swap of each loop's accept context: libh2o 2.2.5 keeps the SSL_CTX pointer given to
 * h2o_socket_ssl_handshake without a reference and calls SSL_new() on it only when the ClientHello arrives, which may
 * be seconds later. So whoever starts a handshake takes a reference of its own (cf_tls_slot_get) and keeps it until the
 * connection closes; the SSL object holds another from SSL_new on. The slot's own reference is dropped when a reload
 * replaces the context, and the old context is freed by OpenSSL once its last connection is gone. The mutex covers only
 * "load the pointer and up-ref it" against "replace it and drop the slot's reference" (a few instructions per new TLS
 * connection, uncontended but for a reload); no file is ever read under it or on an event loop.
 */
struct st_cf_tls_slot_t {
    pthread_mutex_t mutex;
    SSL_CTX *ctx;
};

cf_tls_slot_t *cf_tls_slot_new(SSL_CTX *ctx)
{
    cf_tls_slot_t *slot = h2o_mem_alloc(sizeof(*slot));
    pthread_mutex_init(&slot->mutex, NULL);
    slot->ctx = ctx;
    return slot;
}

SSL_CTX *cf_tls_slot_get(cf_tls_slot_t *slot)
{
    pthread_mutex_lock(&slot->mutex);
    SSL_CTX *ctx = slot->ctx;
    SSL_CTX_up_ref(ctx);
    pthread_mutex_unlock(&slot->mutex);
    return ctx;
}

void cf_tls_slot_set(cf_tls_slot_t *slot, SSL_CTX *ctx)
{
    pthread_mutex_lock(&slot->mutex);
    SSL_CTX *old = slot->ctx;
    slot->ctx = ctx;
    pthread_mutex_unlock(&slot->mutex);
    SSL_CTX_free(old);
}

void cf_tls_slot_free(cf_tls_slot_t *slot)
{
    if (slot == NULL)
        return;
    SSL_CTX_free(slot->ctx);
    pthread_mutex_destroy(&slot->mutex);
    free(slot);
}

SSL_CTX *cf_tls_client_ctx(const char *ca_file, const char *name, char *err, size_t errlen)
{
    char why[256];
    SSL_CTX *ctx = new_ctx(TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new: %s", ssl_reason(why, sizeof(why), "failed"));
        return NULL;
    }
    ERR_clear_error();
    if (ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1 : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        snprintf(err, errlen, "cannot load CA certificates from %s: %s", ca_file != NULL ? ca_file : "the system store",
                 ssl_reason(why, sizeof(why), "no certificates"));
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    /* the chain alone proves nothing about whom we talk to: the certificate must name the server (RFC 9110 4.3.4) */
    X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
    unsigned char addr[16];
    int ok = inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1
                 ? X509_VERIFY_PARAM_set1_ip_asc(param, name)
                 : X509_VERIFY_PARAM_set1_host(param, name, 0);
    if (ok != 1) {
        snprintf(err, errlen, "cannot verify certificates for \"%s\"", name);
        SSL_CTX_free(ctx);
        return NULL;
    }
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return ctx;
}

int cf_tls_check_config(const cf_config_t *config, char *err, size_t errlen)
{
    for (size_t i = 0; i < config->num_listen; ++i) {
        if (config->listen[i].tls_certificate == NULL)
            continue;
        SSL_CTX *ctx = cf_tls_server_ctx(config, i, err, errlen);
        if (ctx == NULL)
            return -1;
        SSL_CTX_free(ctx);
    }
    return 0;
}
