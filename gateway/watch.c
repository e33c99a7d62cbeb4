/* Client-disconnect watches: the only code that touches epoll; and the fd of a request's client socket. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include "watch.h"

/*
 * h2o 2.2.5's HTTP/1 stops reading a connection while its request is handled, so a client that leaves is only noticed
 * when the answer is written. Reading the socket ourselves is not safe either: req->path, the headers and the entity
 * point into sock->input, which a read may reallocate. So each loop keeps a second epoll set in which client sockets
 * are registered for EPOLLRDHUP only (never EPOLLIN: pipelined bytes stay untouched for h2o); that set's own fd sits
 * on the loop as a DONT_READ socket, which h2o reports as readable without reading it, like a listener.
 */

struct st_cf_watch_set_t {
    cf_timeouts_t *timeouts;
    int epfd;           /* HTTP/1 client sockets watched for disconnects */
    h2o_socket_t *sock; /* epfd on the loop; NULL when the set watches nothing */
};

/* h2o 2.2.5 has no accessor for a socket's fd; its evloop socket starts with {h2o_socket_t super; int fd;}.
 * cf_watch_set_create checks this layout on a socket whose fd it knows (layout_ok: -1 not checked yet, 0 or 1). */
struct st_evloop_socket_prefix_t {
    h2o_socket_t super;
    int fd;
};
static int layout_ok = -1;

static int socket_fd(h2o_socket_t *sock)
{
    return ((struct st_evloop_socket_prefix_t *)sock)->fd;
}

int cf_watch_client_fd(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket != NULL ? req->conn->callbacks->get_socket(req->conn) : NULL;
    /* each loop's cf_watch_set_create stores it (atomically) while the other loops may read it */
    return sock != NULL && __atomic_load_n(&layout_ok, __ATOMIC_RELAXED) == 1 ? socket_fd(sock) : -1;
}

static void on_watch_ready(h2o_socket_t *sock, const char *err)
{
    cf_watch_set_t *set = sock->data;
    struct epoll_event events[64];
    int n;
    while ((n = epoll_wait(set->epfd, events, sizeof(events) / sizeof(events[0]), 0)) > 0) {
        for (int i = 0; i < n; ++i) {
            cf_watch_t *watch = events[i].data.ptr;
            cf_watch_stop(watch);
            watch->on_gone(watch);
        }
    }
}

cf_watch_set_t *cf_watch_set_create(h2o_loop_t *loop, cf_timeouts_t *timeouts)
{
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd == -1)
        return NULL;
    cf_watch_set_t *set = h2o_mem_alloc(sizeof(*set));
    *set = (cf_watch_set_t){.timeouts = timeouts, .epfd = epfd};
    set->sock = h2o_evloop_socket_create(loop, epfd, H2O_SOCKET_FLAG_DONT_READ);
    set->sock->data = set;
    int ok = socket_fd(set->sock) == epfd;
    if (__atomic_exchange_n(&layout_ok, ok, __ATOMIC_RELAXED) == -1 && !ok)
        fprintf(stderr, "conflux: warning: unexpected libh2o socket layout; client disconnects are noticed late\n");
    if (!ok) {
        h2o_socket_close(set->sock); /* closes epfd */
        set->sock = NULL;
        set->epfd = -1;
        return set;
    }
    h2o_socket_read_start(set->sock, on_watch_ready);
    return set;
}

void cf_watch_set_destroy(cf_watch_set_t *set)
{
    if (set == NULL)
        return;
    if (set->sock != NULL)
        h2o_socket_close(set->sock); /* closes epfd */
    free(set);
}

static void on_watch_arm(h2o_timeout_entry_t *entry)
{
    cf_watch_t *watch = H2O_STRUCT_FROM_MEMBER(cf_watch_t, arm, entry);
    int fd = cf_watch_client_fd(watch->req);
    /* a peer that hung up already is reported at once: epoll checks readiness when a descriptor is added */
    struct epoll_event ev = {.events = EPOLLRDHUP | EPOLLET, .data.ptr = watch};
    if (fd != -1 && epoll_ctl(watch->set->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
        watch->fd = fd;
}

int cf_watch_start(cf_watch_set_t *set, h2o_req_t *req, cf_watch_t *watch)
{
    watch->set = set;
    watch->req = req;
    watch->fd = -1;
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL || set->sock == NULL)
        return -1; /* HTTP/2: h2o disposes a reset stream's request itself */
    watch->arm.cb = on_watch_arm;
    cf_timeouts_link(set->timeouts, CF_WATCH_DELAY_MS, &watch->arm);
    return 0;
}

void cf_watch_stop(cf_watch_t *watch)
{
    if (h2o_timeout_is_linked(&watch->arm))
        h2o_timeout_unlink(&watch->arm);
    if (watch->fd == -1)
        return;
    epoll_ctl(watch->set->epfd, EPOLL_CTL_DEL, watch->fd, NULL);
    watch->fd = -1;
}
