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
#include "listeners.h"
#include "proxy.h"
#include "record.h"
#include "serve.h"
#include "stubs.h"
#include "timing.h"

#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 9001
#define DEFAULT_JOURNAL 10000
#define MAX_REQUEST_BODY (16 * 1024 * 1024)

static volatile sig_atomic_t stop_requested;
static h2o_globalconf_t globalconf;
static h2o_context_t context;

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
                "      --record DIR     write what proxied requests were answered to DIR/recorded.yaml at stop\n"
                "      --seed N         seed for delays and fault rates (default: from the clock)\n"
                "  -h, --help           this text\n"
                "  -v, --version        print the version\n"
                "\n"
                "Once listening it prints \"listening on HOST:PORT\" for each listener, in order.\n"
                "Admin: GET /__mock/requests, GET /__mock/stats, GET|POST /__mock/stubs, POST /__mock/reset,\n"
                "GET /__mock/listeners, POST /__mock/down?listener=NAME, POST /__mock/up?listener=NAME,\n"
                "GET /__mock/scenarios, PUT /__mock/scenarios/NAME;\n"
                "/__mock/respond?status=&delay=&body=&fault=&header=.\n");
}

static void on_signal(int signo)
{
    stop_requested = 1;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    size_t listener = cf_mock_listener_of(self);
    if (!cf_mock_listener_is_up(listener)) {
        cf_mock_serve_down(req, listener); /* a connection from before it went down: a dead server answers nothing */
        return 0;
    }
    size_t pathlen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    h2o_iovec_t path = h2o_iovec_init(req->path.base, pathlen);
    if (path.len >= 8 && memcmp(path.base, "/__mock/", 8) == 0) {
        if (h2o_memis(path.base, path.len, H2O_STRLIT("/__mock/respond")))
            cf_mock_serve_respond(req, listener);
        else
            cf_mock_admin_handle(req);
        return 0;
    }
    h2o_iovec_t caps[CF_MOCK_MAX_PARAMS];
    cf_mock_request_t r = {
        req->method, path,      h2o_iovec_init(NULL, 0), req->headers.entries, req->headers.size, req->authority, req->entity,
        listener,    &req->pool};
    if (req->query_at != SIZE_MAX)
        r.query = h2o_iovec_init(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
    cf_mock_stub_t *stub = cf_mock_stubs_match(&r, caps);
    if (stub != NULL)
        cf_mock_serve_stub(req, listener, stub, caps);
    else
        cf_mock_serve_unmatched(req, listener, cf_mock_stubs_near_miss(&r));
    cf_mock_request_dispose(&r);
    return 0;
}

/* Adds the listener of one --port [NAME=]N on host. Returns 0, or -1 with a message in err. */
static int add_port_listener(const char *arg, const char *host, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    char *name = eq != NULL ? h2o_strdup(NULL, arg, (size_t)(eq - arg)).base : NULL;
    int ret = 0;
    if (name != NULL && !cf_mock_listener_name_ok(name)) {
        snprintf(err, errlen, "--port %s: a listener's name is letters, digits, '_', '-' and '.'", arg);
        ret = -1;
    } else {
        ret = cf_mock_listeners_add(name, eq != NULL ? eq + 1 : arg, host, DEFAULT_HOST, err, errlen);
    }
    free(name);
    return ret;
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
        {"config", required_argument, NULL, 'c'},  {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},    {"stub", required_argument, NULL, 's'},
        {"journal", required_argument, NULL, 'j'}, {"seed", required_argument, NULL, 'S'},
        {"record", required_argument, NULL, 'R'},  {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'},       {NULL, 0, NULL, 0},
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
        case 'R':
            if (*optarg == '\0') {
                fprintf(stderr, "conflux-mock: --record needs a directory\n");
                goto Exit;
            }
            cf_mock_record_init(optarg);
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
        int failed = 0;
        for (size_t i = 0; i != n_opt_ports && !failed; ++i)
            failed = add_port_listener(opt_ports[i], host, err, sizeof(err)) != 0;
        free(file_host);
        if (failed) {
            fprintf(stderr, "conflux-mock: %s\n", err);
            goto Exit;
        }
    } else if (n_listen != 0) {
        for (size_t i = 0; i != n_listen; ++i) {
            if (cf_mock_listeners_add(listen[i].name, listen[i].address, opt_host, DEFAULT_HOST, err, sizeof(err)) != 0) {
                fprintf(stderr, "conflux-mock: %s\n", err);
                goto Exit;
            }
        }
    } else {
        char address[16];
        snprintf(address, sizeof(address), "%u", DEFAULT_PORT);
        cf_mock_listeners_add(NULL, address, opt_host, DEFAULT_HOST, err, sizeof(err));
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
    cf_mock_listeners_register(&globalconf, &context, on_req);
    cf_mock_listeners_on_down(cf_mock_serve_drop);
    h2o_context_init(&context, h2o_evloop_create(), &globalconf);
    cf_mock_timers_init(context.loop);
    cf_mock_proxy_init(context.loop);

    size_t n_listeners;
    const char *const *names = cf_mock_listeners_names(&n_listeners);
    if (cf_mock_listeners_start(err, sizeof(err)) != 0 || cf_mock_stubs_set_listeners(names, n_listeners, err, sizeof(err)) != 0) {
        fprintf(stderr, "conflux-mock: %s\n", err);
        goto Exit;
    }
    cf_mock_journal_init(journal, names, n_listeners);

    size_t n_stubs;
    cf_mock_stubs_list(&n_stubs);
    for (size_t i = 0; i != n_listeners; ++i)
        printf("listening on %s\n", cf_mock_listener_bound(i));
    fflush(stdout);
    fprintf(stderr, "conflux-mock: %zu stub%s\n", n_stubs, n_stubs == 1 ? "" : "s");

    /* h2o_evloop_run returns -1 on EINTR; the bounded wait also covers a signal landing just before epoll_wait */
    while (!stop_requested)
        h2o_evloop_run(context.loop, 1000);

    /* after the loop: the recording is written once no request can wait on the disk */
    ret = 0;
    if (cf_mock_record_write(err, sizeof(err)) != 0) {
        fprintf(stderr, "conflux-mock: %s\n", err);
        ret = 1;
    }
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
    cf_mock_listeners_dispose();
    return ret;
}
