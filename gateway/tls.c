/* TLS contexts for listeners (certificate, key, ALPN) and for https:// backends (verification against a CA store). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
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

/* The reason of the most recent OpenSSL error, or `fallback`; clears the error queue. */
static const char *ssl_reason(char *buf, size_t len, const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
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

SSL_CTX *cf_tls_server_ctx(const cf_config_t *config, size_t index, char *err, size_t errlen)
{
    const cf_listen_t *l = &config->listen[index];
    char why[256];
    SSL_CTX *ctx = new_ctx(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new: %s", ssl_reason(why, sizeof(why), "failed"));
        return NULL;
    }
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, l->tls_certificate) != 1) {
        snprintf(err, errlen, "%s:%d:%d: listen[%zu].tls.certificate: cannot load \"%s\": %s", config->filename, l->tls_line,
                 l->tls_col, index, l->tls_certificate, ssl_reason(why, sizeof(why), "not a PEM certificate"));
        goto Fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, l->tls_key, SSL_FILETYPE_PEM) != 1 &&
        ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
        snprintf(err, errlen, "%s:%d:%d: listen[%zu].tls.key: cannot load \"%s\": %s", config->filename, l->tls_line, l->tls_col,
                 index, l->tls_key, ssl_reason(why, sizeof(why), "not a PEM private key"));
        goto Fail;
    }
    if (ERR_peek_last_error() != 0 || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "%s:%d:%d: listen[%zu].tls.key: \"%s\" does not match the certificate \"%s\": %s", config->filename,
                 l->tls_line, l->tls_col, index, l->tls_key, l->tls_certificate, ssl_reason(why, sizeof(why), "mismatch"));
        goto Fail;
    }
    /* HTTP/2 only when asked for: h2o 2.2.5 lacks the Rapid Reset (CVE-2023-44487) and 2019 flood mitigations */
    h2o_ssl_register_alpn_protocols(ctx, l->http2 ? h2o_http2_alpn_protocols : alpn_http1_only);
    return ctx;
Fail:
    SSL_CTX_free(ctx);
    return NULL;
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
