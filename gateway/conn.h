/* Client connections: accepting them (a cap, back-off at the fd limit), TLS and ALPN, and the checks on their raw bytes
 * that stand in front of libh2o (strict HTTP/1 framing; HTTP/2 reset, flood and header block limits). */
#ifndef CF_CONN_H
#define CF_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <h2o.h>
#include "runtime.h"
#include "tls.h"

/** HTTP/2: the stream reset that makes this many within one second gets the connection GOAWAY: the client's
 * RST_STREAM (Rapid Reset, CVE-2023-44487) and the streams libh2o resets itself for what the client sent (MadeYouReset,
 * CVE-2025-8671) alike. GOAWAY comes with the one that reaches it, so that no stream opens after it. */
#define CF_H2_MAX_RESETS_PER_SECOND 200
/** HTTP/2: the same for frames that cost conflux work but move no request forward (PING, SETTINGS, PRIORITY, and
 * DATA/HEADERS/CONTINUATION that carry nothing, padding aside). */
#define CF_H2_MAX_IDLE_FRAMES_PER_SECOND 1000
/** How long accepting pauses at the fd limit, or at most while the client connection cap is reached (one of the loop's
 * own connections that closes ends that pause at once). */
#define CF_ACCEPT_BACKOFF_MS 100

typedef struct st_cf_conns_t cf_conns_t;

/** A listening socket of one event loop. */
typedef struct st_cf_listener_t {
    h2o_accept_ctx_t accept; /* the context and the host list (its ssl_ctx stays NULL: see `tls`) */
    cf_tls_slot_t *tls;      /* the TLS context, replaced on reload; NULL: plain HTTP/1.1 */
    h2o_socket_t *sock;
    cf_conns_t *conns;
    int http2; /* offer h2 (TLS listeners only) */
    int admin; /* the admin listener: not counted against the cap */
} cf_listener_t;

/** The client connections of one event loop. Only its own thread touches it. */
struct st_cf_conns_t {
    h2o_context_t *ctx;
    cf_worker_t *worker;
    cf_listener_t *listeners;
    size_t num_listeners, cap_listeners;
    h2o_timeout_entry_t resume; /* linked while accepting is paused */
    uint8_t paused_at_cap;      /* paused for the connection cap alone: a connection of this loop that closes resumes */
};

/**
 * Process-wide setup, once, before any loop runs: finds libh2o's own h2o_socket_read_start, h2o_http2_stream_reset and
 * h2o_socket_close (conflux puts its checks in front of libh2o by standing in for those functions; see conn.c) and
 * sets the connection cap. Returns 0, or -1 with a message.
 */
int cf_conn_setup(size_t max_client_connections, char *err, size_t errlen);
/** Changes the cap (a reload). */
void cf_conn_set_max(size_t max_client_connections);
/** Client connections open now, in the whole process. */
size_t cf_conn_count(void);

/**
 * Sets up a loop's connections. Checks, on socket pairs, that the HTTP/1 guard and the HTTP/2 limits really stand in
 * front of libh2o in this build (they cannot when libh2o is linked statically); returns -1 with a message when not.
 */
int cf_conns_init(cf_conns_t *cs, h2o_context_t *ctx, cf_worker_t *worker, h2o_hostconf_t **hosts, char *err, size_t errlen);
/**
 * Starts accepting on the listening socket `fd`: plain HTTP/1.1 when `tls` is NULL, else TLS with the slot's current
 * context at each handshake (h2 by ALPN when `http2`). The slot (borrowed) must outlive the loop. `admin`: the admin
 * listener, whose connections are not capped.
 */
void cf_conns_listen(cf_conns_t *cs, int fd, h2o_hostconf_t **hosts, cf_tls_slot_t *tls, int http2, int admin);
/** Stops accepting on the public listeners: connections the kernel completed already are taken first (none is
 * reset), then their sockets are closed. The admin listener stays (it reports the drain) until cf_conns_dispose. */
void cf_conns_stop_accepting(cf_conns_t *cs);
/** Closes what is left (the admin listener). */
void cf_conns_dispose(cf_conns_t *cs);

#endif
