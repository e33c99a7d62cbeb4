/* The listeners of conflux-mock: several ports in one process, each standing for one server, which can go down. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cf_net.h"
#include "listeners.h"

#define ACCEPTS_PER_WAKEUP 256

/*
 * One listening socket. Each has its own h2o host (with a single host, h2o skips Host matching) whose handler knows
 * the listener's index: that is how a request tells which listener it arrived on, with no syscall per request.
 */
typedef struct st_listener_t {
    char *name;    /* malloc'ed: as configured, or the bound "host:port" */
    char *host;    /* malloc'ed */
    char *bound;   /* malloc'ed: "host:port" as bound */
    uint16_t port; /* as configured (0: any), then as bound */
    h2o_hostconf_t *host_conf[2];
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *sock; /* NULL while down */
} listener_t;

/* the catch-all handler of one listener */
typedef struct st_mock_handler_t {
    h2o_handler_t super;
    size_t listener;
} mock_handler_t;

static listener_t listeners[CF_MOCK_MAX_LISTENERS];
static const char *names[CF_MOCK_MAX_LISTENERS];
static size_t n_listeners;
static h2o_loop_t *loop;
static void (*on_down)(size_t index);

static void on_accept(h2o_socket_t *lsock, const char *err)
{
    listener_t *l = lsock->data;
    h2o_socket_t *sock;
    if (err != NULL)
        return;
    /* drain a burst of connections per wakeup (thousands arrive at once under load) */
    for (int i = 0; i != ACCEPTS_PER_WAKEUP && (sock = h2o_evloop_socket_accept(lsock)) != NULL; ++i)
        h2o_accept(&l->accept_ctx, sock);
}

int cf_mock_listeners_add(const char *name, const char *address, const char *host_override, const char *default_host, char *err,
                          size_t errlen)
{
    if (n_listeners == CF_MOCK_MAX_LISTENERS) {
        snprintf(err, errlen, "more than %d listeners", CF_MOCK_MAX_LISTENERS);
        return -1;
    }
    listener_t *l = listeners + n_listeners;
    if (cf_parse_hostport(address, &l->host, &l->port) != 0) {
        snprintf(err, errlen, "listen: \"%s\" is not host:port", address);
        return -1;
    }
    if (host_override != NULL) {
        free(l->host);
        l->host = h2o_strdup(NULL, host_override, SIZE_MAX).base;
    }
    if (l->host == NULL)
        l->host = h2o_strdup(NULL, default_host, SIZE_MAX).base;
    l->name = name != NULL ? h2o_strdup(NULL, name, SIZE_MAX).base : NULL;
    ++n_listeners;
    return 0;
}

void cf_mock_listeners_register(h2o_globalconf_t *conf, h2o_context_t *ctx, int (*on_req)(h2o_handler_t *, h2o_req_t *))
{
    for (size_t i = 0; i != n_listeners; ++i) {
        listener_t *l = listeners + i;
        char hostname[32];
        snprintf(hostname, sizeof(hostname), "listener-%zu", i);
        l->host_conf[0] = h2o_config_register_host(conf, h2o_iovec_init(hostname, strlen(hostname)), 65535);
        mock_handler_t *handler =
            (mock_handler_t *)h2o_create_handler(h2o_config_register_path(l->host_conf[0], "/", 0), sizeof(*handler));
        handler->super.on_req = on_req;
        handler->listener = i;
        l->accept_ctx.ctx = ctx;
        l->accept_ctx.hosts = l->host_conf;
    }
}

/* Binds a listener's address (its port once bound, after the first time) and starts accepting. */
static int bind_listener(listener_t *l, char *err, size_t errlen)
{
    int fd = cf_listen_tcp(l->host, l->port, 0, err, errlen);
    if (fd == -1)
        return -1;
    l->port = cf_bound_port(fd);
    l->sock = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    l->sock->data = l;
    h2o_socket_read_start(l->sock, on_accept);
    return 0;
}

int cf_mock_listeners_start(char *err, size_t errlen)
{
    for (size_t i = 0; i != n_listeners; ++i) {
        listener_t *l = listeners + i;
        loop = l->accept_ctx.ctx->loop;
        if (bind_listener(l, err, errlen) != 0)
            return -1;
        int v6 = strchr(l->host, ':') != NULL;
        char bound[128];
        snprintf(bound, sizeof(bound), "%s%s%s:%u", v6 ? "[" : "", l->host, v6 ? "]" : "", (unsigned)l->port);
        l->bound = h2o_strdup(NULL, bound, SIZE_MAX).base;
        if (l->name == NULL)
            l->name = h2o_strdup(NULL, bound, SIZE_MAX).base;
        for (size_t j = 0; j != i; ++j) {
            if (strcmp(listeners[j].name, l->name) == 0) {
                snprintf(err, errlen, "two listeners are named \"%s\"", l->name);
                return -1;
            }
        }
        names[i] = l->name;
    }
    return 0;
}

size_t cf_mock_listener_of(h2o_handler_t *handler)
{
    return ((mock_handler_t *)handler)->listener;
}

const char *const *cf_mock_listeners_names(size_t *n)
{
    *n = n_listeners;
    return names;
}

const char *cf_mock_listener_bound(size_t index)
{
    return listeners[index].bound;
}

int cf_mock_listener_is_up(size_t index)
{
    return listeners[index].sock != NULL;
}

int cf_mock_listener_set_up(size_t index, int up, char *err, size_t errlen)
{
    listener_t *l = listeners + index;
    if (up == (l->sock != NULL))
        return 0;
    if (up)
        return bind_listener(l, err, errlen);
    h2o_socket_read_stop(l->sock);
    h2o_socket_close(l->sock);
    l->sock = NULL;
    if (on_down != NULL)
        on_down(index);
    return 0;
}

void cf_mock_listeners_on_down(void (*cb)(size_t index))
{
    on_down = cb;
}

size_t cf_mock_listener_find(const char *name)
{
    for (size_t i = 0; i != n_listeners; ++i)
        if (strcmp(listeners[i].name, name) == 0)
            return i;
    return SIZE_MAX;
}

void cf_mock_listeners_dispose(void)
{
    for (size_t i = 0; i != n_listeners; ++i) {
        free(listeners[i].name);
        free(listeners[i].host);
        free(listeners[i].bound);
    }
    n_listeners = 0;
}
