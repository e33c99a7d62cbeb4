/* conflux-mock: argv, the listeners, one catch-all h2o handler per listener, signals and the event loop. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "cf_net.h"
#include "admin.h"
#include "journal.h"
#include "serve.h"
#include "stubs.h"
#include "timing.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 9001
#define DEFAULT_JOURNAL 10000
#define MAX_REQUEST_BODY (16 * 1024 * 1024)
#define ACCEPTS_PER_WAKEUP 256

/* most listeners one mock holds (each stands for one upstream server) */
#define MAX_LISTENERS 64

/*
 * One listening socket. Each has its own h2o host (with a single host, h2o skips Host matching) whose handler knows
 * the listener's index: that is how a request tells which listener it arrived on, with no syscall per request.
 */
typedef struct st_listener_t {
    char *name;    /* malloc'ed: as configured, or the bound "host:port" */
    char *host;    /* malloc'ed */
    char *bound;   /* malloc'ed: "host:port" as bound */
    uint16_t port; /* as configured (0: any) */
    h2o_hostconf_t *host_conf[2];
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *sock; /* lives until exit */
} listener_t;

/* the catch-all handler of one listener */
typedef struct st_mock_handler_t {
    h2o_handler_t super;
    size_t listener;
} mock_handler_t;

static volatile sig_atomic_t stop_requested;
static h2o_globalconf_t globalconf;
static h2o_context_t context;
static listener_t listeners[MAX_LISTENERS];
static const char *listener_names[MAX_LISTENERS];
static size_t n_listeners;

static void usage(FILE *fp)
{
    fprintf(fp, "usage: conflux-mock [-c stubs.yaml] [--host ADDR] [--port N] [--stub STUB]... [options]\n"
                "\n"
                "A programmable slow upstream for tests and benchmarks.\n"
                "\n"
                "  -c, --config FILE    stubs file (listen: host:port, stubs: [...])\n"
                "      --host ADDR      listen address (default " DEFAULT_HOST ", or the file's listen:)\n"
                "  -p, --port [NAME=]N  listen port (default 9001, or the file's listen:); 0 picks a free port;\n"
                "                       repeatable: one listener each (named NAME, else after its address)\n"
                "  -s, --stub STUB      add a stub: 'METHOD PATH STATUS [BODY] [key=value...]', repeatable;\n"
                "                       keys: delay=500ms|uniform:100ms:900ms|lognormal:50ms:800ms, fault=NAME,\n"
                "                       fault_rate=0.5, header=Name:Value, listener=NAME, sequence=503,503,200,\n"
                "                       trickle_interval=100ms\n"
                "      --journal N      requests kept in the journal (default 10000)\n"
                "      --seed N         seed for delays and fault rates (default: from the clock)\n"
                "  -h, --help           this text\n"
                "  -v, --version        print the version\n"
                "\n"
                "Once listening it prints \"listening on HOST:PORT\" for each listener, in order. Admin: GET /__mock/requests, GET "
                "/__mock/stats,\n"
                "GET|POST /__mock/stubs, POST /__mock/reset; /__mock/respond?status=&delay=&body=&fault=&header=.\n");
}

static void on_signal(int signo)
{
    stop_requested = 1;
}

static int on_req(h2o_handler_t *_self, h2o_req_t *req)
{
    mock_handler_t *self = (mock_handler_t *)_self;
    size_t pathlen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    h2o_iovec_t path = h2o_iovec_init(req->path.base, pathlen);
    if (path.len >= 8 && memcmp(path.base, "/__mock/", 8) == 0) {
        if (h2o_memis(path.base, path.len, H2O_STRLIT("/__mock/respond")))
            cf_mock_serve_respond(req, self->listener);
        else
            cf_mock_admin_handle(req);
        return 0;
    }
    h2o_iovec_t caps[CF_MOCK_MAX_PARAMS];
    cf_mock_stub_t *stub = cf_mock_stubs_match(req->method, path, self->listener, caps);
    if (stub != NULL)
        cf_mock_serve_stub(req, self->listener, stub, caps);
    else
        cf_mock_serve_unmatched(req, self->listener);
    return 0;
}

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

/* Adds a listener from "[NAME=]host:port" parts; returns 0, or -1 with a message in err. */
static int add_listener(const char *name, const char *address, const char *host_override, char *err, size_t errlen)
{
    if (n_listeners == MAX_LISTENERS) {
        snprintf(err, errlen, "more than %d listeners", MAX_LISTENERS);
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
        l->host = h2o_strdup(NULL, DEFAULT_HOST, SIZE_MAX).base;
    l->name = name != NULL ? h2o_strdup(NULL, name, SIZE_MAX).base : NULL;
    ++n_listeners;
    return 0;
}

/* Registers the h2o host and handler of every listener (before h2o_context_init). */
static void register_hosts(void)
{
    for (size_t i = 0; i != n_listeners; ++i) {
        listener_t *l = listeners + i;
        char hostname[32];
        snprintf(hostname, sizeof(hostname), "listener-%zu", i);
        l->host_conf[0] = h2o_config_register_host(&globalconf, h2o_iovec_init(hostname, strlen(hostname)), 65535);
        mock_handler_t *handler =
            (mock_handler_t *)h2o_create_handler(h2o_config_register_path(l->host_conf[0], "/", 0), sizeof(*handler));
        handler->super.on_req = on_req;
        handler->listener = i;
        l->accept_ctx.ctx = &context;
        l->accept_ctx.hosts = l->host_conf;
    }
}

/* Binds every listener, names the unnamed ones after their bound address, and starts accepting. */
static int start_listeners(char *err, size_t errlen)
{
    for (size_t i = 0; i != n_listeners; ++i) {
        listener_t *l = listeners + i;
        int fd = cf_listen_tcp(l->host, l->port, 0, err, errlen);
        if (fd == -1)
            return -1;
        int v6 = strchr(l->host, ':') != NULL;
        char bound[128];
        snprintf(bound, sizeof(bound), "%s%s%s:%u", v6 ? "[" : "", l->host, v6 ? "]" : "", (unsigned)cf_bound_port(fd));
        l->bound = h2o_strdup(NULL, bound, SIZE_MAX).base;
        if (l->name == NULL)
            l->name = h2o_strdup(NULL, bound, SIZE_MAX).base;
        for (size_t j = 0; j != i; ++j) {
            if (strcmp(listeners[j].name, l->name) == 0) {
                snprintf(err, errlen, "two listeners are named \"%s\"", l->name);
                close(fd);
                return -1;
            }
        }
        listener_names[i] = l->name;
        l->sock = h2o_evloop_socket_create(context.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
        l->sock->data = l;
        h2o_socket_read_start(l->sock, on_accept);
    }
    return 0;
}

/* One process holds thousands of connections: take every descriptor the hard limit allows. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            fprintf(stderr, "conflux-mock: cannot raise the descriptor limit: %s\n", strerror(errno));
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"host", required_argument, NULL, 'H'},    {"port", required_argument, NULL, 'p'},
        {"stub", required_argument, NULL, 's'},   {"journal", required_argument, NULL, 'j'}, {"seed", required_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'v'},       {NULL, 0, NULL, 0},
    };
    const char *config_file = NULL, *opt_host = NULL;
    const char **opt_ports = h2o_mem_alloc((size_t)argc * sizeof(*opt_ports));
    size_t n_opt_ports = 0;
    unsigned long journal = DEFAULT_JOURNAL;
    unsigned long long seed = 0;
    const char **cli_stubs = h2o_mem_alloc((size_t)argc * sizeof(*cli_stubs));
    size_t n_cli_stubs = 0;
    char *end, err[1024];
    cf_mock_listen_t *listen = NULL;
    size_t n_listen = 0;
    int ch, ret = 1;

    while ((ch = getopt_long(argc, argv, "c:p:s:hv", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config_file = optarg;
            break;
        case 'H':
            opt_host = optarg;
            break;
        case 'p': {
            const char *eq = strchr(optarg, '='), *num = eq != NULL ? eq + 1 : optarg;
            long v = strtol(num, &end, 10);
            if (*num == '\0' || *end != '\0' || v < 0 || v > 65535) {
                fprintf(stderr, "conflux-mock: --port %s: not a port number (0-65535), or NAME=port\n", optarg);
                goto Exit;
            }
            opt_ports[n_opt_ports++] = optarg;
            break;
        }
        case 's':
            cli_stubs[n_cli_stubs++] = optarg;
            break;
        case 'j':
            journal = strtoul(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || journal == 0 || journal > 10000000) {
                fprintf(stderr, "conflux-mock: --journal %s: not a count (1-10000000)\n", optarg);
                goto Exit;
            }
            break;
        case 'S':
            seed = strtoull(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0') {
                fprintf(stderr, "conflux-mock: --seed %s: not a number\n", optarg);
                goto Exit;
            }
            break;
        case 'h':
            usage(stdout);
            ret = 0;
            goto Exit;
        case 'v':
            printf("conflux-mock %s\n", CONFLUX_VERSION);
            ret = 0;
            goto Exit;
        default:
            usage(stderr);
            goto Exit;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "conflux-mock: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        goto Exit;
    }

    /* stubs: the file first, then --stub (a --stub with the same method and path replaces the file's); each seeds its
     * random stream from the run's seed as it is loaded */
    cf_mock_random_seed(seed);
    if (config_file != NULL && cf_mock_load_file(config_file, &listen, &n_listen, err, sizeof(err)) != 0) {
        fprintf(stderr, "conflux-mock: %s\n", err);
        goto Exit;
    }
    for (size_t i = 0; i != n_cli_stubs; ++i) {
        if (cf_mock_load_cli(cli_stubs[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "conflux-mock: %s\n", err);
            goto Exit;
        }
    }
    /* the listeners: every --port (on --host, else the file's first host), else the file's listen:, else the default */
    if (n_opt_ports != 0) {
        char *file_host = NULL;
        uint16_t unused;
        if (n_listen != 0)
            cf_parse_hostport(listen[0].address, &file_host, &unused);
        const char *host = opt_host != NULL ? opt_host : file_host != NULL ? file_host : DEFAULT_HOST;
        for (size_t i = 0; i != n_opt_ports && ret == 1; ++i) {
            const char *eq = strchr(opt_ports[i], '=');
            char *name = eq != NULL ? h2o_strdup(NULL, opt_ports[i], (size_t)(eq - opt_ports[i])).base : NULL;
            if (name != NULL && !cf_mock_listener_name_ok(name)) {
                snprintf(err, sizeof(err), "--port %s: a listener's name is letters, digits, '_', '-' and '.'", opt_ports[i]);
                ret = 2;
            } else if (add_listener(name, eq != NULL ? eq + 1 : opt_ports[i], host, err, sizeof(err)) != 0) {
                ret = 2;
            }
            free(name);
        }
        free(file_host);
        if (ret != 1) {
            ret = 1;
            fprintf(stderr, "conflux-mock: %s\n", err);
            goto Exit;
        }
    } else if (n_listen != 0) {
        for (size_t i = 0; i != n_listen; ++i) {
            if (add_listener(listen[i].name, listen[i].address, opt_host, err, sizeof(err)) != 0) {
                fprintf(stderr, "conflux-mock: %s\n", err);
                goto Exit;
            }
        }
    } else {
        char address[16];
        snprintf(address, sizeof(address), "%u", DEFAULT_PORT);
        add_listener(NULL, address, opt_host, err, sizeof(err));
    }

    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: epoll_wait returns EINTR and the loop sees the flag */
    sigaction(SIGINT, &sa, NULL);

    h2o_config_init(&globalconf);
    globalconf.server_name = h2o_iovec_init(H2O_STRLIT("conflux-mock"));
    globalconf.max_request_entity_size = MAX_REQUEST_BODY;
    globalconf.http1.upgrade_to_http2 = 0; /* the socket tricks in serve.c need HTTP/1 connections */
    register_hosts();
    h2o_context_init(&context, h2o_evloop_create(), &globalconf);
    cf_mock_timers_init(context.loop);

    if (start_listeners(err, sizeof(err)) != 0 || cf_mock_stubs_set_listeners(listener_names, n_listeners, err, sizeof(err)) != 0) {
        fprintf(stderr, "conflux-mock: %s\n", err);
        goto Exit;
    }
    cf_mock_journal_init(journal, listener_names, n_listeners);

    size_t n_stubs;
    cf_mock_stubs_list(&n_stubs);
    for (size_t i = 0; i != n_listeners; ++i)
        printf("listening on %s\n", listeners[i].bound);
    fflush(stdout);
    fprintf(stderr, "conflux-mock: %zu stub%s\n", n_stubs, n_stubs == 1 ? "" : "s");

    /* h2o_evloop_run returns -1 on EINTR; the bounded wait also covers a signal landing just before epoll_wait */
    while (!stop_requested)
        h2o_evloop_run(context.loop, 1000);

    ret = 0;
Exit:
    cf_mock_stubs_dispose();
    cf_mock_journal_dispose();
    free(cli_stubs);
    free(opt_ports);
    for (size_t i = 0; i != n_listen; ++i) {
        free(listen[i].name);
        free(listen[i].address);
    }
    free(listen);
    for (size_t i = 0; i != n_listeners; ++i) {
        free(listeners[i].name);
        free(listeners[i].host);
        free(listeners[i].bound);
    }
    return ret;
}
