/* conflux: argv, signals, the event-loop threads and their listeners, reload and graceful stop. */
#define _GNU_SOURCE /* pthread_setname_np */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <h2o.h>
#include <systemd/sd-daemon.h>
#include "cf_net.h"
#include "config.h"
#include "accesslog.h"
#include "otlp.h"
#include "conn.h"
#include "admin.h"
#include "cache.h"
#include "dispatch.h"
#include "runtime.h"
#include "metrics.h"
#include "plan.h"
#include "tls.h"
#include "version.h"

/* How long an event loop may sleep before it looks at the shared flags again (messages wake it at once). */
#define CF_LOOP_WAIT_MS 1000

/*
 * One event loop: its own h2o context, worker (route table, upstream pools, timers) and one SO_REUSEPORT listening
 * socket per listen: entry, so the kernel spreads connections over the threads. Thread 0 also owns the admin listener.
 * Only its own thread touches it, but for `control` (posted to by the main thread) and the fields marked shared.
 */
typedef struct st_cf_thread_t {
    size_t index;
    pthread_t tid;
    h2o_context_t ctx;
    cf_worker_t worker;
    cf_conns_t conns;                   /* client connections and the listeners they come from */
    cf_config_t *first_config;          /* the reference its first table takes over */
    int *fds;                           /* listening fds opened by the main thread, one per listen: entry */
    h2o_multithread_receiver_t control; /* wakes the loop for a reload or a stop */
    uint64_t reload_gen;                /* the last reload generation applied */
} cf_thread_t;

typedef struct st_control_msg_t {
    h2o_multithread_message_t super;
} control_msg_t;

static struct {
    const char *config_path;
    h2o_globalconf_t globalconf;
    h2o_hostconf_t *gateway_hosts[2], *admin_hosts[2];
    cf_tls_slot_t **tls; /* per listen: entry, its certificate and key; NULL for plain HTTP */
    cf_config_t *config; /* the live config (the main thread's reference) */
    cf_thread_t *threads;
    size_t num_threads;
    int admin_fd;
    uint64_t nofile; /* the open-file limit in force */
    /* shared between threads: atomics, or under `mutex` */
    int stopping; /* atomic: stop accepting and drain */
    int draining; /* atomic: /healthz answers 503 */
    uint64_t stop_deadline_ns;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    size_t started, start_failed, stopped;
    cf_config_t *reload_config; /* the config being swapped in, with one reference per thread still to take it */
    uint64_t reload_gen;
    size_t reload_done, reload_failed;
} conflux = {.admin_fd = -1, .mutex = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static cf_thread_t *thread_of(h2o_context_t *ctx)
{
    return H2O_STRUCT_FROM_MEMBER(cf_thread_t, ctx, ctx);
}

static int on_gateway_req(h2o_handler_t *self, h2o_req_t *req)
{
    if (__atomic_load_n(&conflux.draining, __ATOMIC_RELAXED))
        req->http1_is_persistent = 0; /* draining: no further requests on this connection */
    return cf_gateway_handle(&thread_of(req->conn->ctx)->worker, req);
}

static int on_admin_req(h2o_handler_t *self, h2o_req_t *req)
{
    return cf_admin_handle(req, __atomic_load_n(&conflux.draining, __ATOMIC_RELAXED));
}

static h2o_hostconf_t *register_host(const char *name, int (*on_req)(h2o_handler_t *, h2o_req_t *))
{
    h2o_hostconf_t *hostconf = h2o_config_register_host(&conflux.globalconf, h2o_iovec_init(name, strlen(name)), 65535);
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;
    return hostconf;
}

/* "host:port", "[v6]:port" or "0.0.0.0:port" */
static const char *format_address(char *buf, size_t len, const char *host, uint16_t port)
{
    int v6 = host != NULL && strchr(host, ':') != NULL;
    snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", host != NULL ? host : "0.0.0.0", v6 ? "]" : "", port);
    return buf;
}

static void log_address(const char *host, uint16_t port, const char *what)
{
    char addr[320];
    fprintf(stderr, "conflux: listening on %s%s\n", format_address(addr, sizeof(addr), host, port), what);
}

/* --- the event-loop threads ----------------------------------------------------------------------------------- */

static void on_control(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    /* the message only wakes the loop; the loop then reads the shared state */
    while (!h2o_linklist_is_empty(messages)) {
        control_msg_t *msg = H2O_STRUCT_FROM_MEMBER(control_msg_t, super.link, messages->next);
        h2o_linklist_unlink(&msg->super.link);
        free(msg);
    }
}

static void wake_threads(void)
{
    for (size_t i = 0; i < conflux.num_threads; ++i) {
        control_msg_t *msg = h2o_mem_alloc(sizeof(*msg));
        memset(msg, 0, sizeof(*msg));
        h2o_multithread_send_message(&conflux.threads[i].control, &msg->super);
    }
}

/* Builds this thread's table for a config the main thread posted, and swaps it in; in-flight requests keep theirs. */
static void apply_reload(cf_thread_t *th)
{
    if (__atomic_load_n(&conflux.reload_gen, __ATOMIC_ACQUIRE) == th->reload_gen)
        return;
    pthread_mutex_lock(&conflux.mutex);
    if (th->reload_gen == conflux.reload_gen) {
        pthread_mutex_unlock(&conflux.mutex);
        return;
    }
    th->reload_gen = conflux.reload_gen;
    cf_config_t *config = conflux.reload_config;
    cf_config_retain(config);
    pthread_mutex_unlock(&conflux.mutex);

    char err[1024];
    cf_table_t *t = cf_table_create(&th->worker, config, err, sizeof(err));
    if (t != NULL)
        cf_worker_swap(&th->worker, t);
    else
        cf_config_free(config);

    pthread_mutex_lock(&conflux.mutex);
    if (t == NULL) {
        fprintf(stderr, "conflux: thread %zu: reload failed, keeping the running config: %s\n", th->index, err);
        ++conflux.reload_failed;
    }
    ++conflux.reload_done;
    pthread_cond_broadcast(&conflux.cond);
    pthread_mutex_unlock(&conflux.mutex);
}

static int setup_thread(cf_thread_t *th)
{
    char err[1024];
    const cf_config_t *config = th->first_config;
    h2o_context_init(&th->ctx, h2o_evloop_create(), &conflux.globalconf);
    h2o_multithread_register_receiver(th->ctx.queue, &th->control, on_control);
    if (cf_worker_init(&th->worker, &th->ctx, th->first_config, err, sizeof(err)) != 0) {
        fprintf(stderr, "conflux: %s: %s\n", conflux.config_path, err);
        return -1;
    }
    if (cf_conns_init(&th->conns, &th->ctx, &th->worker, conflux.gateway_hosts, err, sizeof(err)) != 0) {
        fprintf(stderr, "conflux: %s\n", err);
        return -1;
    }
    for (size_t i = 0; i < config->num_listen; ++i)
        cf_conns_listen(&th->conns, th->fds[i], conflux.gateway_hosts, conflux.tls[i], config->listen[i].http2, 0);
    if (th->index == 0 && conflux.admin_fd != -1)
        cf_conns_listen(&th->conns, conflux.admin_fd, conflux.admin_hosts, NULL, 0, 1);
    return 0;
}

static void *thread_main(void *arg)
{
    cf_thread_t *th = arg;
    char name[16];
    snprintf(name, sizeof(name), "conflux-w%zu", th->index);
    pthread_setname_np(pthread_self(), name); /* shows in ps -L, top -H and /proc/PID/task/TID/comm */
    int ok = setup_thread(th) == 0;

    pthread_mutex_lock(&conflux.mutex);
    ++conflux.started;
    if (!ok)
        ++conflux.start_failed;
    pthread_cond_broadcast(&conflux.cond);
    pthread_mutex_unlock(&conflux.mutex);
    if (!ok)
        return NULL;

    /* h2o_evloop_run returns -1 on EINTR, so the loop runs on the flags with a bounded wait */
    while (!__atomic_load_n(&conflux.stopping, __ATOMIC_ACQUIRE)) {
        h2o_evloop_run(th->ctx.loop, CF_LOOP_WAIT_MS);
        apply_reload(th);
    }

    /* graceful stop: no new connections; requests in flight (on any thread) finish within shutdown_timeout, while
     * thread 0 keeps the admin listener open so that /healthz reports the draining */
    cf_conns_stop_accepting(&th->conns);
    uint64_t deadline = __atomic_load_n(&conflux.stop_deadline_ns, __ATOMIC_RELAXED);
    while (cf_pending_total() != 0 && cf_now_ns() < deadline)
        h2o_evloop_run(th->ctx.loop, 50);
    if (th->worker.inflight == 0) {
        cf_conns_dispose(&th->conns);
        cf_worker_dispose(&th->worker);
    }
    pthread_mutex_lock(&conflux.mutex);
    ++conflux.stopped;
    pthread_cond_broadcast(&conflux.cond);
    pthread_mutex_unlock(&conflux.mutex);
    /* the thread stays until the process exits: h2o keeps per-thread recycled memory that would otherwise be lost */
    while (1)
        pause();
    return NULL;
}

/* --- reload and stop (main thread) ----------------------------------------------------------------------------- */

static int same_string(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The parts of a config that only a restart applies: addresses, TLS on or off, threads. NULL when none changed. (The TLS
 * files' paths may change: they are read again on every reload.) */
static const char *restart_only_change(const cf_config_t *a, const cf_config_t *b)
{
    if (a->threads != b->threads)
        return "threads";
    if (a->num_listen != b->num_listen)
        return "listen";
    if (!same_string(a->admin_host, b->admin_host) || a->admin_port != b->admin_port)
        return "admin";
    for (size_t i = 0; i < a->num_listen; ++i) {
        const cf_listen_t *x = &a->listen[i], *y = &b->listen[i];
        if (x->port != y->port || !same_string(x->host, y->host) || x->http2 != y->http2 ||
            (x->tls_certificate == NULL) != (y->tls_certificate == NULL))
            return "listen";
    }
    if (a->limits.max_request_body != b->limits.max_request_body)
        return "limits.max_request_body";
    return NULL;
}

/*
 * Reads every TLS listener's certificate and key again (the paths of the new config; a renewed file at the same path is
 * the common case) and makes them current for new handshakes; connections already up keep theirs. Runs on the main
 * thread, which is no event loop, so reading files here blocks no request. A file that cannot be used keeps the
 * previous pair for that listener, with one line saying why.
 */
static void reload_certificates(const cf_config_t *config)
{
    for (size_t i = 0; i < config->num_listen; ++i) {
        const cf_listen_t *l = &config->listen[i];
        if (l->tls_certificate == NULL || conflux.tls[i] == NULL)
            continue;
        char err[1024], warn[512], addr[320];
        format_address(addr, sizeof(addr), l->host, cf_bound_port(conflux.threads[0].fds[i]));
        SSL_CTX *ctx = cf_tls_reload_ctx(l, err, sizeof(err), warn, sizeof(warn));
        if (ctx == NULL) {
            fprintf(stderr, "conflux: reload: listener %s: %s; keeping the previous one\n", addr, err);
            continue;
        }
        if (*warn != '\0')
            fprintf(stderr, "conflux: reload: listener %s: %s\n", addr, warn);
        cf_tls_slot_set(conflux.tls[i], ctx);
    }
}

/* The client context of a jwks_url's fetch thread: the system's CA store, the URL's host checked (auth.c). */
static SSL_CTX *jwks_tls_ctx(const char *host, char *err, size_t errlen)
{
    return cf_tls_client_ctx(NULL, host, err, errlen);
}

static void notify_ready(void)
{
    sd_notifyf(0, "READY=1\nSTATUS=serving with %zu threads, config %s", conflux.num_threads, conflux.config_path);
}

/* SIGHUP: parse and check the file once; then every thread builds its own table from the shared config and swaps it
 * in. A bad file changes nothing. */
static void reload(void)
{
    char err[1024];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=reloading %s",
               (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000, conflux.config_path);
    cf_config_t *config = cf_config_load(conflux.config_path, err, sizeof(err));
    if (config == NULL) {
        fprintf(stderr, "conflux: reload rejected, keeping the running config: %s\n", err);
        cf_metrics_reload(0);
        notify_ready();
        return;
    }
    const char *what = restart_only_change(conflux.config, config);
    if (what != NULL) {
        fprintf(stderr, "conflux: reload rejected, keeping the running config: %s: %s changed; that takes a restart\n",
                conflux.config_path, what);
        cf_config_free(config);
        cf_metrics_reload(0);
        notify_ready();
        return;
    }

    pthread_mutex_lock(&conflux.mutex);
    conflux.reload_config = config;
    __atomic_store_n(&conflux.reload_gen, conflux.reload_gen + 1, __ATOMIC_RELEASE);
    conflux.reload_done = conflux.reload_failed = 0;
    pthread_mutex_unlock(&conflux.mutex);
    wake_threads();
    pthread_mutex_lock(&conflux.mutex);
    while (conflux.reload_done < conflux.num_threads)
        pthread_cond_wait(&conflux.cond, &conflux.mutex);
    size_t failed = conflux.reload_failed;
    conflux.reload_config = NULL;
    pthread_mutex_unlock(&conflux.mutex);

    reload_certificates(config);
    if (cf_auth_start_fetchers(jwks_tls_ctx, err, sizeof(err)) != 0) /* a jwks_url new in this config */
        fprintf(stderr, "conflux: reload: %s\n", err);
    cf_config_t *old = conflux.config;
    conflux.config = config;
    cf_config_free(old);
    if (failed < conflux.num_threads) {
        cf_admin_config_loaded(config);
        cf_conn_set_max(cf_config_max_client_connections(config, conflux.nofile));
    }
    cf_metrics_reload(failed == 0);
    if (failed == 0)
        fprintf(stderr, "conflux: reloaded %s\n", conflux.config_path);
    else
        fprintf(stderr, "conflux: reloaded %s on %zu of %zu threads\n", conflux.config_path, conflux.num_threads - failed,
                conflux.num_threads);
    notify_ready();
}

/* SIGTERM/SIGINT: every thread stops accepting and drains; returns once they are all done. */
static void stop(void)
{
    sd_notify(0, "STOPPING=1\nSTATUS=draining");
    fprintf(stderr, "conflux: stopping: draining requests in flight (shutdown_timeout %" PRIu64 "ms)\n",
            conflux.config->shutdown_timeout_ms);
    __atomic_store_n(&conflux.stop_deadline_ns, cf_now_ns() + conflux.config->shutdown_timeout_ms * 1000000, __ATOMIC_RELAXED);
    __atomic_store_n(&conflux.draining, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&conflux.stopping, 1, __ATOMIC_RELEASE);
    wake_threads();
    pthread_mutex_lock(&conflux.mutex);
    while (conflux.stopped < conflux.num_threads)
        pthread_cond_wait(&conflux.cond, &conflux.mutex);
    pthread_mutex_unlock(&conflux.mutex);
    size_t left = cf_pending_total();
    if (left != 0)
        fprintf(stderr, "conflux: shutdown_timeout passed with %zu requests in flight\n", left);
}

/* --- startup ------------------------------------------------------------------------------------------------- */

/* Raises the soft open-file limit to the hard one (connections are files) and returns the limit in force. */
static uint64_t raise_nofile(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0)
        return 1024;
    if (r.rlim_cur < r.rlim_max) {
        struct rlimit want = {r.rlim_max, r.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            r = want;
    }
    return r.rlim_cur == RLIM_INFINITY ? 1u << 20 : (uint64_t)r.rlim_cur;
}

/*
 * Opens the listening sockets of every thread. With several threads each has its own SO_REUSEPORT socket per address;
 * a probe without SO_REUSEPORT first makes sure no other process already listens there (SO_REUSEPORT would otherwise
 * share the port with it silently).
 */
static int open_listeners(const cf_config_t *config)
{
    char err[256];
    int reuseport = conflux.num_threads > 1;
    for (size_t i = 0; i < config->num_listen; ++i) {
        const cf_listen_t *l = &config->listen[i];
        if (reuseport) {
            int probe = cf_listen_tcp(l->host, l->port, 0, err, sizeof(err));
            if (probe == -1) {
                fprintf(stderr, "conflux: %s\n", err);
                return -1;
            }
            close(probe);
        }
        for (size_t t = 0; t < conflux.num_threads; ++t) {
            if ((conflux.threads[t].fds[i] = cf_listen_tcp(l->host, l->port, reuseport, err, sizeof(err))) == -1) {
                fprintf(stderr, "conflux: %s\n", err);
                return -1;
            }
        }
        log_address(l->host, cf_bound_port(conflux.threads[0].fds[i]),
                    l->tls_certificate == NULL ? ""
                    : l->http2                 ? " (tls, h2)"
                                               : " (tls)");
    }
    if (config->admin_host != NULL) {
        if ((conflux.admin_fd = cf_listen_tcp(config->admin_host, config->admin_port, 0, err, sizeof(err))) == -1) {
            fprintf(stderr, "conflux: %s\n", err);
            return -1;
        }
        log_address(config->admin_host, cf_bound_port(conflux.admin_fd), " (admin)");
    }
    return 0;
}

static int start_threads(cf_config_t *config)
{
    for (size_t i = 0; i < conflux.num_threads; ++i) {
        cf_thread_t *th = &conflux.threads[i];
        th->index = i;
        cf_config_retain(config);
        th->first_config = config;
        if ((errno = pthread_create(&th->tid, NULL, thread_main, th)) != 0) {
            fprintf(stderr, "conflux: pthread_create: %s\n", strerror(errno));
            cf_config_free(config);
            return -1;
        }
    }
    pthread_mutex_lock(&conflux.mutex);
    while (conflux.started < conflux.num_threads)
        pthread_cond_wait(&conflux.cond, &conflux.mutex);
    size_t failed = conflux.start_failed;
    pthread_mutex_unlock(&conflux.mutex);
    return failed == 0 ? 0 : -1;
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
    if (explain) {
        cf_plan_explain(config, stdout);
        cf_config_free(config);
        return 0;
    }
    /* certificates and keys are read now, so that -t and startup report a bad one */
    conflux.tls = h2o_mem_alloc(sizeof(*conflux.tls) * config->num_listen);
    for (size_t i = 0; i < config->num_listen; ++i) {
        conflux.tls[i] = NULL;
        if (config->listen[i].tls_certificate == NULL)
            continue;
        SSL_CTX *ctx = cf_tls_server_ctx(config, i, err, sizeof(err));
        if (ctx == NULL) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        conflux.tls[i] = cf_tls_slot_new(ctx);
    }
    if (test_only) {
        fprintf(stderr, "conflux: %s: configuration OK\n", conflux.config_path);
        for (size_t i = 0; i < config->num_listen; ++i)
            cf_tls_slot_free(conflux.tls[i]);
        free(conflux.tls);
        cf_config_free(config);
        return 0;
    }

    /* signals are taken by the main thread alone (sigwait); the event-loop threads inherit them blocked */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    conflux.nofile = raise_nofile();
    uint64_t max_clients = cf_config_max_client_connections(config, conflux.nofile);
    if (cf_conn_setup(max_clients, err, sizeof(err)) != 0) {
        fprintf(stderr, "conflux: %s\n", err);
        return 1;
    }
    fprintf(stderr, "conflux: open-file limit %" PRIu64 "; up to %" PRIu64 " client connections\n", conflux.nofile, max_clients);

    h2o_config_init(&conflux.globalconf);
    conflux.globalconf.server_name = h2o_iovec_init(H2O_STRLIT("conflux"));
    /* no h2c (Upgrade: h2c, or the h2 preface on a plain listener): HTTP/2 only where a TLS listener asks for it */
    conflux.globalconf.http1.upgrade_to_http2 = 0;
    /* +1: libh2o refuses a chunked HTTP/1 body of exactly its limit (it compares with >=), in plain text; the framing
     * guard (h1guard.c) enforces max_request_body itself on HTTP/1, so libh2o's bound only ever acts on HTTP/2 */
    conflux.globalconf.max_request_entity_size = config->limits.max_request_body + 1;
    conflux.gateway_hosts[0] = register_host("default", on_gateway_req);
    conflux.admin_hosts[0] = register_host("admin", on_admin_req);

    conflux.config = config;
    conflux.num_threads = config->threads < CF_MAX_WORKERS ? (size_t)config->threads : CF_MAX_WORKERS;
    conflux.threads = h2o_mem_alloc(sizeof(*conflux.threads) * conflux.num_threads);
    memset(conflux.threads, 0, sizeof(*conflux.threads) * conflux.num_threads);
    for (size_t i = 0; i < conflux.num_threads; ++i)
        conflux.threads[i].fds = h2o_mem_alloc(sizeof(int) * config->num_listen);
    cf_admin_config_loaded(config);
    if (cf_accesslog_start(config->access_log, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", conflux.config_path, err);
        return 1;
    }
    if (cf_otlp_start(config, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", conflux.config_path, err);
        return 1;
    }
    cf_cache_create(config->cache.memory, config->cache.memcached_host, config->cache.memcached_port,
                    config->cache.memcached_timeout_ms);
    if (cf_auth_start_fetchers(jwks_tls_ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "conflux: %s\n", err);
        return 1;
    }
    if (open_listeners(config) != 0 || start_threads(config) != 0)
        return 1;
    fprintf(stderr, "conflux: serving with %zu thread%s\n", conflux.num_threads, conflux.num_threads == 1 ? "" : "s");
    notify_ready();

    while (1) {
        int signo;
        if (sigwait(&sigs, &signo) != 0)
            continue;
        if (signo == SIGHUP) {
            reload();
            cf_accesslog_reopen(conflux.config->access_log); /* log rotation, or a changed access_log */
            cf_otlp_configure(conflux.config);
        } else {
            stop();
            break;
        }
    }
    cf_accesslog_stop(); /* writes what is queued */
    cf_otlp_stop();      /* sends what is queued, each request bounded */
    if (cf_pending_total() == 0)
        cf_cache_destroy(cf_cache_get());
    fprintf(stderr, "conflux: stopped\n");
    return 0;
}
