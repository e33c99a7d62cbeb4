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
 * A certificate outside its validity period loads, with a warning on stderr.
 */
SSL_CTX *cf_tls_server_ctx(const cf_config_t *config, size_t index, char *err, size_t errlen);

/**
 * The same load for a reload: returns a new context, or NULL with "certificate PATH: REASON", "key PATH: REASON" or
 * "key PATH: does not match the certificate PATH (...)" in err. A certificate outside its validity period loads, with
 * "certificate PATH: expired on DATE; serving it anyway" in warn (else warn is empty). Reads files: never call it on an
 * event loop.
 */
SSL_CTX *cf_tls_reload_ctx(const cf_listen_t *l, char *err, size_t errlen, char *warn, size_t warnlen);

/** A TLS listener's current server context, shared by every event loop, replaceable on reload (see tls.c). */
typedef struct st_cf_tls_slot_t cf_tls_slot_t;

/** Makes a slot holding `ctx` (the slot takes over the caller's reference). */
cf_tls_slot_t *cf_tls_slot_new(SSL_CTX *ctx);
/** The current context, with a new reference the caller drops with SSL_CTX_free. Safe from any thread. */
SSL_CTX *cf_tls_slot_get(cf_tls_slot_t *slot);
/** Makes `ctx` current (taking over the caller's reference); handshakes that took the old one keep it. Any thread. */
void cf_tls_slot_set(cf_tls_slot_t *slot, SSL_CTX *ctx);
/** Drops the slot and its reference (NULL: nothing). */
void cf_tls_slot_free(cf_tls_slot_t *slot);

/**
 * Builds a client context for an https:// backend server: TLS 1.2 and later, the peer verified against `ca_file`
 * (PEM) or, when NULL, the system's CA store, and its certificate checked for `name` (a DNS name or an IP address).
 * Returns a new context, or NULL with a message in err.
 */
SSL_CTX *cf_tls_client_ctx(const char *ca_file, const char *name, char *err, size_t errlen);

/** Checks every tls: listener of a config (for -t and startup); returns 0, or -1 with the first error. */
int cf_tls_check_config(const cf_config_t *config, char *err, size_t errlen);

#endif
