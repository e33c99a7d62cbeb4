/* The process-wide state of each backend server: its circuit breaker and its health, shared by every event loop. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "peers.h"

struct st_cf_peer_t {
    cf_peer_t *next; /* the registry's list */
    size_t refcnt;   /* under registry_mutex */
    /* the key: who it is and what policy it runs */
    char *backend, *server;
    cf_breaker_policy_t bpolicy;
    uint64_t health_interval_ms, healthy_after, unhealthy_after; /* interval 0: no health checks */

    pthread_mutex_t mutex; /* serializes the breaker's transitions and the health streaks */
    cf_breaker_t breaker;  /* used when bpolicy.failures != 0 */
    uint64_t opens;        /* atomic */
    int healthy;           /* atomic; a peer starts healthy */
    uint64_t streak;       /* health checks in a row that disagree with `healthy` */
    int64_t next_check_ms; /* atomic: when the next health check is due (claimed with a compare-and-swap) */
};

static pthread_mutex_t registry_mutex = PTHREAD_MUTEX_INITIALIZER;
static cf_peer_t *registry;

int64_t cf_peer_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

cf_peer_key_t cf_peer_key(const cf_backend_t *b)
{
    return (cf_peer_key_t){.backend = b->name,
                           .breaker = b->breaker,
                           .health_interval_ms = b->health.path != NULL ? b->health.interval_ms : 0,
                           .healthy = b->health.healthy,
                           .unhealthy = b->health.unhealthy};
}

static int same_key(const cf_peer_t *p, const cf_peer_key_t *k)
{
    return strcmp(p->backend, k->backend) == 0 && strcmp(p->server, k->server) == 0 && p->bpolicy.failures == k->breaker.failures &&
           p->bpolicy.open_for_ms == k->breaker.open_for_ms && p->health_interval_ms == k->health_interval_ms &&
           p->healthy_after == k->healthy && p->unhealthy_after == k->unhealthy;
}

cf_peer_t *cf_peer_get(const cf_peer_key_t *k)
{
    if (k->breaker.failures == 0 && k->health_interval_ms == 0)
        return NULL;
    pthread_mutex_lock(&registry_mutex);
    cf_peer_t *p = registry;
    while (p != NULL && !same_key(p, k))
        p = p->next;
    if (p == NULL) {
        p = calloc(1, sizeof(*p));
        p->backend = strdup(k->backend);
        p->server = strdup(k->server);
        p->bpolicy = k->breaker;
        p->health_interval_ms = k->health_interval_ms;
        p->healthy_after = k->healthy;
        p->unhealthy_after = k->unhealthy;
        pthread_mutex_init(&p->mutex, NULL);
        if (p->bpolicy.failures != 0)
            cf_breaker_init(&p->breaker, (unsigned)p->bpolicy.failures, p->bpolicy.open_for_ms, CF_BREAKER_MAX_OPEN_MS);
        p->healthy = 1;
        p->next = registry;
        registry = p;
    }
    ++p->refcnt;
    pthread_mutex_unlock(&registry_mutex);
    return p;
}

void cf_peer_release(cf_peer_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&registry_mutex);
    if (--p->refcnt == 0) {
        /* no runtime uses it (a reload keeps a server's peer: the new tables take theirs before the old ones go), so
         * addresses that come and go with DNS do not pile up */
        cf_peer_t **link = &registry;
        while (*link != p)
            link = &(*link)->next;
        *link = p->next;
        pthread_mutex_destroy(&p->mutex);
        free(p->backend);
        free(p->server);
        free(p);
    }
    pthread_mutex_unlock(&registry_mutex);
}

/* --- the breaker ----------------------------------------------------------------------------------------------- */

cf_breaker_admit_t cf_peer_admit(cf_peer_t *p, int64_t now_ms)
{
    if (!__atomic_load_n(&p->healthy, __ATOMIC_RELAXED))
        return CF_BREAKER_SKIP;
    if (p->bpolicy.failures == 0 || cf_breaker_state(&p->breaker) == CF_BREAKER_CLOSED)
        return CF_BREAKER_PASS;
    if (cf_breaker_skips(&p->breaker, now_ms)) /* open, no probe due: no lock */
        return CF_BREAKER_SKIP;
    pthread_mutex_lock(&p->mutex);
    cf_breaker_admit_t a = cf_breaker_admit(&p->breaker, now_ms);
    pthread_mutex_unlock(&p->mutex);
    return a;
}

void cf_peer_report(cf_peer_t *p, int64_t now_ms, int probe, int ok)
{
    if (p->bpolicy.failures == 0)
        return;
    if (ok && !probe && cf_breaker_state(&p->breaker) == CF_BREAKER_CLOSED &&
        __atomic_load_n(&p->breaker.failures, __ATOMIC_RELAXED) == 0)
        return; /* the healthy path takes no lock */
    pthread_mutex_lock(&p->mutex);
    int was = p->breaker.state, to = cf_breaker_report(&p->breaker, now_ms, probe, ok);
    uint64_t open_ms = p->breaker.open_ms;
    pthread_mutex_unlock(&p->mutex);
    if (to == CF_BREAKER_OPEN && was == CF_BREAKER_CLOSED) {
        __atomic_add_fetch(&p->opens, 1, __ATOMIC_RELAXED);
        fprintf(stderr,
                "conflux: backend %s: server %s: %" PRIu64 " failed attempts in a row; out of rotation for %" PRIu64
                "ms, then one probe (the period doubles while probes fail, up to %ds)\n",
                p->backend, p->server, p->bpolicy.failures, open_ms, CF_BREAKER_MAX_OPEN_MS / 1000);
    } else if (to == CF_BREAKER_CLOSED) {
        fprintf(stderr, "conflux: backend %s: server %s: the probe succeeded; back in rotation\n", p->backend, p->server);
    }
}

/* --- health ---------------------------------------------------------------------------------------------------- */

int cf_peer_claim_check(cf_peer_t *p, int64_t now_ms)
{
    if (p->health_interval_ms == 0)
        return 0;
    int64_t due = __atomic_load_n(&p->next_check_ms, __ATOMIC_RELAXED);
    if (now_ms < due)
        return 0;
    return __atomic_compare_exchange_n(&p->next_check_ms, &due, now_ms + (int64_t)p->health_interval_ms, 0, __ATOMIC_RELAXED,
                                       __ATOMIC_RELAXED);
}

void cf_peer_health_report(cf_peer_t *p, int ok)
{
    int changed = 0;
    pthread_mutex_lock(&p->mutex);
    int healthy = p->healthy;
    if ((ok != 0) == healthy) {
        p->streak = 0;
    } else if (++p->streak >= (healthy ? p->unhealthy_after : p->healthy_after)) {
        p->streak = 0;
        __atomic_store_n(&p->healthy, !healthy, __ATOMIC_RELAXED);
        changed = 1;
    }
    pthread_mutex_unlock(&p->mutex);
    if (changed)
        fprintf(stderr, "conflux: backend %s: server %s: %" PRIu64 " health checks in a row %s; %s rotation\n", p->backend,
                p->server, healthy ? p->unhealthy_after : p->healthy_after, healthy ? "failed" : "passed",
                healthy ? "out of" : "back in");
}

/* --- what /metrics shows --------------------------------------------------------------------------------------- */

void cf_peers_foreach(void (*cb)(const cf_peer_view_t *view, void *data), void *data)
{
    pthread_mutex_lock(&registry_mutex);
    for (cf_peer_t *p = registry; p != NULL; p = p->next) {
        cf_peer_view_t v = {.backend = p->backend,
                            .server = p->server,
                            .has_breaker = p->bpolicy.failures != 0,
                            .breaker_state = p->bpolicy.failures != 0 ? cf_breaker_state(&p->breaker) : CF_BREAKER_CLOSED,
                            .opens = __atomic_load_n(&p->opens, __ATOMIC_RELAXED),
                            .has_health = p->health_interval_ms != 0,
                            .healthy = __atomic_load_n(&p->healthy, __ATOMIC_RELAXED)};
        cb(&v, data);
    }
    pthread_mutex_unlock(&registry_mutex);
}
