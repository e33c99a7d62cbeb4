/* The listeners of conflux-mock: several ports in one process, each standing for one server, which can go down. */
#ifndef CF_MOCK_LISTENERS_H
#define CF_MOCK_LISTENERS_H

#include <stddef.h>
#include <h2o.h>

/** The most listeners one mock holds. */
#define CF_MOCK_MAX_LISTENERS 64

/**
 * Adds a listener: name (copied; NULL names it after its bound address), "host:port" (copied), and a host that
 * replaces the address's (NULL: the address's, else default_host). Returns 0, or -1 with a message in err.
 */
int cf_mock_listeners_add(const char *name, const char *address, const char *host_override, const char *default_host, char *err,
                          size_t errlen);
/**
 * Registers an h2o host per listener in conf, each with one catch-all handler that calls on_req (before
 * h2o_context_init); cf_mock_listener_of tells a handler's listener. ctx is where accepted connections go.
 */
void cf_mock_listeners_register(h2o_globalconf_t *conf, h2o_context_t *ctx, int (*on_req)(h2o_handler_t *, h2o_req_t *));
/** Binds every listener and starts accepting. Returns 0, or -1 with a message in err (a bind failed, a name twice). */
int cf_mock_listeners_start(char *err, size_t errlen);
/** The index of the listener a handler registered by cf_mock_listeners_register serves. */
size_t cf_mock_listener_of(h2o_handler_t *handler);
/** The names of the listeners, in order (valid until exit), and their number in *n. */
const char *const *cf_mock_listeners_names(size_t *n);
/** The "host:port" a listener is bound to (valid until exit). */
const char *cf_mock_listener_bound(size_t index);
/** Whether a listener is up (accepting connections and answering requests). */
int cf_mock_listener_is_up(size_t index);
/** Sets what is called when a listener goes down, with its index: the serving of requests drops what it holds. */
void cf_mock_listeners_on_down(void (*cb)(size_t index));
/**
 * Takes a listener down (closes its socket: connections are refused; then the on_down callback) or up again (binds the
 * same address). Returns 0, or -1 with a message in err (rebinding failed: it stays down).
 */
int cf_mock_listener_set_up(size_t index, int up, char *err, size_t errlen);
/** The index of the listener of that name, or SIZE_MAX. */
size_t cf_mock_listener_find(const char *name);
/** Frees the listeners (at exit). */
void cf_mock_listeners_dispose(void);

#endif
