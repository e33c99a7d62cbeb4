/* conflux: argv, signals, listeners and the event loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <h2o.h>
#include "cf_net.h"
#include "config.h"
#include "gateway.h"
#include "version.h"

static volatile sig_atomic_t stop_requested, reload_requested;

static struct {
    const char *config_path;
    h2o_globalconf_t globalconf;
    h2o_hostconf_t *gateway_hosts[2], *admin_hosts[2];
    h2o_context_t ctx;
    h2o_accept_ctx_t gateway_accept, admin_accept;
    cf_worker_t worker;
    h2o_socket_t **listeners;
    size_t num_listeners;
    int draining;
} conflux;

static void on_signal(int signo)
{
    if (signo == SIGHUP)
        reload_requested = 1;
    else
        stop_requested = 1;
}

static int on_gateway_req(h2o_handler_t *self, h2o_req_t *req)
{
    return cf_gateway_handle(&conflux.worker, req);
}

static int on_admin_req(h2o_handler_t *self, h2o_req_t *req)
{
    static h2o_generator_t generator = {NULL, NULL};
    size_t pathlen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    if (h2o_memis(req->path.base, pathlen, H2O_STRLIT("/healthz"))) {
        req->res.status = conflux.draining ? 503 : 200;
        req->res.reason = conflux.draining ? "Service Unavailable" : "OK";
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("text/plain"));
        h2o_iovec_t body = conflux.draining ? h2o_iovec_init(H2O_STRLIT("draining\n")) : h2o_iovec_init(H2O_STRLIT("ok\n"));
        req->res.content_length = body.len;
        h2o_start_response(req, &generator);
        h2o_send(req, &body, 1, H2O_SEND_STATE_FINAL);
        return 0;
    }
    cf_send_error(req, 404, "not_found", "the admin listener serves /healthz");
    return 0;
}

static h2o_hostconf_t *register_host(const char *name, int (*on_req)(h2o_handler_t *, h2o_req_t *))
{
    h2o_hostconf_t *hostconf = h2o_config_register_host(&conflux.globalconf, h2o_iovec_init(name, strlen(name)), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;
    return hostconf;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_socket_t *sock;
    if (err != NULL)
        return;
    if ((sock = h2o_evloop_socket_accept(listener)) == NULL)
        return;
    h2o_accept(listener->data, sock);
}

static int add_listener(const char *host, uint16_t port, h2o_accept_ctx_t *accept_ctx)
{
    char err[256];
    int fd = cf_listen_tcp(host, port, 0, err, sizeof(err));
    if (fd == -1) {
        fprintf(stderr, "conflux: %s\n", err);
        return -1;
    }
    h2o_socket_t *sock = h2o_evloop_socket_create(conflux.ctx.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    sock->data = accept_ctx;
    h2o_socket_read_start(sock, on_accept);
    conflux.listeners = h2o_mem_realloc(conflux.listeners, sizeof(*conflux.listeners) * (conflux.num_listeners + 1));
    conflux.listeners[conflux.num_listeners++] = sock;
    fprintf(stderr, "conflux: listening on %s%s%s:%u%s\n", host && strchr(host, ':') ? "[" : "", host ? host : "0.0.0.0",
            host && strchr(host, ':') ? "]" : "", cf_bound_port(fd), accept_ctx == &conflux.admin_accept ? " (admin)" : "");
    return 0;
}

static int same_listeners(const cf_config_t *a, const cf_config_t *b)
{
    if (a->num_listen != b->num_listen || (a->admin_host == NULL) != (b->admin_host == NULL) || a->admin_port != b->admin_port)
        return 0;
    if (a->admin_host != NULL && strcmp(a->admin_host, b->admin_host) != 0)
        return 0;
    for (size_t i = 0; i < a->num_listen; ++i)
        if (a->listen[i].port != b->listen[i].port || (a->listen[i].host == NULL) != (b->listen[i].host == NULL) ||
            (a->listen[i].host != NULL && strcmp(a->listen[i].host, b->listen[i].host) != 0))
            return 0;
    return 1;
}

/* SIGHUP: parse and check the file; swap the route table in if it is good, keep the old one otherwise. */
static void reload(void)
{
    char err[1024];
    cf_config_t *config = cf_config_load(conflux.config_path, err, sizeof(err));
    if (config == NULL) {
        fprintf(stderr, "conflux: reload rejected, keeping the running config: %s\n", err);
        return;
    }
    if (!same_listeners(conflux.worker.table->config, config)) {
        fprintf(stderr, "conflux: reload rejected: listen/admin addresses changed; they take effect on restart\n");
        cf_config_free(config);
        return;
    }
    cf_table_t *t = cf_table_create(&conflux.worker, config, err, sizeof(err));
    if (t == NULL) {
        fprintf(stderr, "conflux: reload rejected: %s\n", err);
        cf_config_free(config);
        return;
    }
    cf_worker_swap(&conflux.worker, t);
    fprintf(stderr, "conflux: reloaded %s\n", conflux.config_path);
}

static void raise_nofile(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

static void usage(FILE *out)
{
    fprintf(out, "usage: conflux -c FILE          run the gateway\n"
                 "       conflux -t -c FILE       check the config file and exit (0: good, 1: bad)\n"
                 "       conflux --explain -c FILE  print each route's call plan\n"
                 "       conflux --version\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'}, {"test", no_argument, NULL, 't'},
                                             {"explain", no_argument, NULL, 'e'},      {"version", no_argument, NULL, 'v'},
                                             {"help", no_argument, NULL, 'h'},         {NULL}};
    int opt, test_only = 0, explain = 0;
    while ((opt = getopt_long(argc, argv, "c:th", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            conflux.config_path = optarg;
            break;
        case 't':
            test_only = 1;
            break;
        case 'e':
            explain = 1;
            break;
        case 'v':
            printf("conflux %s (libh2o %s)\n", cf_version, H2O_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (conflux.config_path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }

    char err[1024];
    cf_config_t *config = cf_config_load(conflux.config_path, err, sizeof(err));
    if (config == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (test_only || explain) {
        if (explain)
            cf_config_explain(config, stdout);
        else
            fprintf(stderr, "conflux: %s: configuration OK\n", conflux.config_path);
        cf_config_free(config);
        return 0;
    }

    struct sigaction sa = {0};
    sa.sa_handler = on_signal; /* no SA_RESTART: the loop's epoll_wait returns on a signal */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();

    h2o_config_init(&conflux.globalconf);
    conflux.globalconf.server_name = h2o_iovec_init(H2O_STRLIT("conflux"));
    conflux.globalconf.max_request_entity_size = config->limits.max_request_body;
    conflux.gateway_hosts[0] = register_host("default", on_gateway_req);
    conflux.admin_hosts[0] = register_host("admin", on_admin_req);
    h2o_context_init(&conflux.ctx, h2o_evloop_create(), &conflux.globalconf);
    conflux.gateway_accept = (h2o_accept_ctx_t){&conflux.ctx, conflux.gateway_hosts};
    conflux.admin_accept = (h2o_accept_ctx_t){&conflux.ctx, conflux.admin_hosts};

    if (cf_worker_init(&conflux.worker, &conflux.ctx, config, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", conflux.config_path, err);
        return 1;
    }
    for (size_t i = 0; i < config->num_listen; ++i)
        if (add_listener(config->listen[i].host, config->listen[i].port, &conflux.gateway_accept) != 0)
            return 1;
    if (config->admin_host != NULL && add_listener(config->admin_host, config->admin_port, &conflux.admin_accept) != 0)
        return 1;

    /* h2o_evloop_run returns -1 on EINTR, so the loop runs on the flags with a bounded wait */
    while (!stop_requested) {
        h2o_evloop_run(conflux.ctx.loop, 1000);
        if (reload_requested) {
            reload_requested = 0;
            reload();
        }
    }

    /* graceful stop: no new connections; requests in flight finish within shutdown_timeout */
    conflux.draining = 1;
    for (size_t i = 0; i < conflux.num_listeners; ++i)
        h2o_socket_close(conflux.listeners[i]);
    uint64_t limit = cf_now_ns() + conflux.worker.table->config->shutdown_timeout_ms * 1000000;
    while (conflux.worker.inflight != 0 && cf_now_ns() < limit)
        h2o_evloop_run(conflux.ctx.loop, 50);
    if (conflux.worker.inflight != 0) {
        fprintf(stderr, "conflux: shutdown_timeout passed with %zu requests in flight\n", conflux.worker.inflight);
    } else {
        cf_worker_dispose(&conflux.worker);
        cf_upstream_dispose_loop(conflux.ctx.loop);
    }
    fprintf(stderr, "conflux: stopped\n");
    return 0;
}
