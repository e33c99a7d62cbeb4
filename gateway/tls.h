/* TLS contexts: a server context per TLS listener, a client context per https:// backend server. */
#ifndef CF_TLS_H
#define CF_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>
#include "config.h"

/**
 * Builds the server context of a listener with tls: (TLS 1.2 and later, forward-secret AEAD ciphers for 1.2), loading
 * and cross-checking its certificate chain and key now, so that a bad file is reported at startup and by -t. ALPN
 * offers "h2" and "http/1.1" when the listener has http2: true, else "http/1.1" only. `index` is the listener's place
 * in config->listen. Returns a new context (SSL_CTX_free), or NULL with "file:line:col: listen[i].tls: ..." in err.
 */
SSL_CTX *cf_tls_server_ctx(const cf_config_t *config, size_t index, char *err, size_t errlen);

/**
 * Builds a client context for an https:// backend server: TLS 1.2 and later, the peer verified against `ca_file`
 * (PEM) or, when NULL, the system's CA store, and its certificate checked for `name` (a DNS name or an IP address).
 * Returns a new context, or NULL with a message in err.
 */
SSL_CTX *cf_tls_client_ctx(const char *ca_file, const char *name, char *err, size_t errlen);

/** Checks every tls: listener of a config (for -t and startup); returns 0, or -1 with the first error. */
int cf_tls_check_config(const cf_config_t *config, char *err, size_t errlen);

#endif
