/* conflux-mock: argv, the listener, one catch-all h2o handler, signals and the event loop. */
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

static volatile sig_atomic_t stop_requested;
static h2o_globalconf_t globalconf;
static h2o_context_t context;
static h2o_accept_ctx_t accept_ctx;
static h2o_socket_t *listener; /* lives until exit */

static void usage(FILE *fp)
{
    fprintf(fp, "usage: conflux-mock [-c stubs.yaml] [--host ADDR] [--port N] [--stub STUB]... [options]\n"
                "\n"
                "A programmable slow upstream for tests and benchmarks.\n"
                "\n"
                "  -c, --config FILE    stubs file (listen: host:port, stubs: [...])\n"
                "      --host ADDR      listen address (default " DEFAULT_HOST ", or the file's listen:)\n"
                "  -p, --port N         listen port (default 9001, or the file's listen:); 0 picks a free port\n"
                "  -s, --stub STUB      add a stub: 'METHOD PATH STATUS [BODY] [key=value...]', repeatable;\n"
                "                       keys: delay=500ms|uniform:100ms:900ms|lognormal:50ms:800ms, fault=NAME,\n"
                "                       fault_rate=0.5, header=Name:Value, sequence=503,503,200, trickle_interval=100ms\n"
                "      --journal N      requests kept in the journal (default 10000)\n"
                "      --seed N         seed for delays and fault rates (default: from the clock)\n"
                "  -h, --help           this text\n"
                "  -v, --version        print the version\n"
                "\n"
                "Once listening it prints \"listening on HOST:PORT\". Admin: GET /__mock/requests, GET /__mock/stats,\n"
                "GET|POST /__mock/stubs, POST /__mock/reset; /__mock/respond?status=&delay=&body=&fault=&header=.\n");
}

static void on_signal(int signo)
{
    stop_requested = 1;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    size_t pathlen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    h2o_iovec_t path = h2o_iovec_init(req->path.base, pathlen);
    if (path.len >= 8 && memcmp(path.base, "/__mock/", 8) == 0) {
        if (h2o_memis(path.base, path.len, H2O_STRLIT("/__mock/respond")))
            cf_mock_serve_respond(req);
        else
            cf_mock_admin_handle(req);
        return 0;
    }
    h2o_iovec_t caps[CF_MOCK_MAX_PARAMS];
    cf_mock_stub_t *stub = cf_mock_stubs_match(req->method, path, caps);
    if (stub != NULL)
        cf_mock_serve_stub(req, stub, caps);
    else
        cf_mock_serve_unmatched(req);
    return 0;
}

static void on_accept(h2o_socket_t *lsock, const char *err)
{
    h2o_socket_t *sock;
    if (err != NULL)
        return;
    /* drain a burst of connections per wakeup (thousands arrive at once under load) */
    for (int i = 0; i != ACCEPTS_PER_WAKEUP && (sock = h2o_evloop_socket_accept(lsock)) != NULL; ++i)
        h2o_accept(&accept_ctx, sock);
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
    long opt_port = -1;
    unsigned long journal = DEFAULT_JOURNAL;
    unsigned long long seed = 0;
    const char **cli_stubs = h2o_mem_alloc((size_t)argc * sizeof(*cli_stubs));
    size_t n_cli_stubs = 0;
    char *end, err[1024], *listen_addr = NULL, *host = NULL;
    uint16_t port = DEFAULT_PORT;
    int ch, ret = 1;

    while ((ch = getopt_long(argc, argv, "c:p:s:hv", longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config_file = optarg;
            break;
        case 'H':
            opt_host = optarg;
            break;
        case 'p':
            opt_port = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || opt_port < 0 || opt_port > 65535) {
                fprintf(stderr, "conflux-mock: --port %s: not a port number (0-65535)\n", optarg);
                goto Exit;
            }
            break;
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

    /* stubs: the file first, then --stub (a --stub with the same method and path replaces the file's) */
    if (config_file != NULL && cf_mock_load_file(config_file, &listen_addr, err, sizeof(err)) != 0) {
        fprintf(stderr, "conflux-mock: %s\n", err);
        goto Exit;
    }
    for (size_t i = 0; i != n_cli_stubs; ++i) {
        if (cf_mock_load_cli(cli_stubs[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "conflux-mock: %s\n", err);
            goto Exit;
        }
    }
    if (listen_addr != NULL && cf_parse_hostport(listen_addr, &host, &port) != 0) {
        fprintf(stderr, "conflux-mock: listen: \"%s\" is not host:port\n", listen_addr);
        goto Exit;
    }
    if (opt_host != NULL) {
        free(host);
        host = h2o_strdup(NULL, opt_host, SIZE_MAX).base;
    }
    if (host == NULL)
        host = h2o_strdup(NULL, DEFAULT_HOST, SIZE_MAX).base;
    if (opt_port >= 0)
        port = (uint16_t)opt_port;

    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: epoll_wait returns EINTR and the loop sees the flag */
    sigaction(SIGINT, &sa, NULL);
    cf_mock_random_seed(seed);
    cf_mock_journal_init(journal);

    h2o_config_init(&globalconf);
    globalconf.server_name = h2o_iovec_init(H2O_STRLIT("conflux-mock"));
    globalconf.max_request_entity_size = MAX_REQUEST_BODY;
    globalconf.http1.upgrade_to_http2 = 0; /* the socket tricks in serve.c need HTTP/1 connections */
    h2o_hostconf_t *hostconf = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;

    h2o_context_init(&context, h2o_evloop_create(), &globalconf);
    accept_ctx.ctx = &context;
    accept_ctx.hosts = globalconf.hosts;
    cf_mock_timers_init(context.loop);

    int fd = cf_listen_tcp(host, port, 0, err, sizeof(err));
    if (fd == -1) {
        fprintf(stderr, "conflux-mock: %s\n", err);
        goto Exit;
    }
    listener = h2o_evloop_socket_create(context.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(listener, on_accept);

    size_t n_stubs;
    cf_mock_stubs_list(&n_stubs);
    int v6 = strchr(host, ':') != NULL;
    printf("listening on %s%s%s:%u\n", v6 ? "[" : "", host, v6 ? "]" : "", (unsigned)cf_bound_port(fd));
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
    free(listen_addr);
    free(host);
    return ret;
}
