/* The access log: JSON lines handed by the event loops to one writer thread through a bounded queue. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "accesslog.h"
#include "cf_spool.h"
#include "metrics.h"

#define EVENT_REOPEN 1u

/* The lines go through a spool (cf_spool.h): the loops never wait on the disk. */
static struct {
    cf_spool_t spool;
    pthread_mutex_t mutex; /* guards path */
    int started, stopping;
    char *path;    /* the wanted log: NULL, "-" or a file (guarded by mutex) */
    int enabled;   /* atomic: lines are wanted */
    int fd;        /* writer-owned: -1, 2 or the file */
    char *fd_path; /* writer-owned: what fd is */
} L = {.mutex = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

static int open_log(const char *path, char *err, size_t errlen)
{
    if (strcmp(path, "-") == 0)
        return 2;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd == -1)
        snprintf(err, errlen, "access_log: cannot open %s: %s", path, strerror(errno));
    return fd;
}

static void close_log(void)
{
    if (L.fd > 2)
        close(L.fd);
    L.fd = -1;
    free(L.fd_path);
    L.fd_path = NULL;
}

/* Writer thread: switches files when asked to, then writes what it took from the ring. */
static void apply_reopen(char *path)
{
    char err[512];
    if (path == NULL) {
        close_log();
        return;
    }
    int fd = open_log(path, err, sizeof(err));
    if (fd == -1) {
        fprintf(stderr, "conflux: %s; still writing to %s\n", err, L.fd_path != NULL ? L.fd_path : "nothing");
        free(path);
        return;
    }
    close_log();
    L.fd = fd;
    L.fd_path = path;
}

static void write_all(const char *p, size_t len)
{
    while (len != 0 && L.fd != -1) {
        ssize_t n = write(L.fd, p, len);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            /* a full disk or a revoked file: lose this batch, say so once per batch */
            fprintf(stderr, "conflux: access_log: write to %s failed: %s\n", L.fd_path, strerror(errno));
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

static void *writer_main(void *unused)
{
    cf_spool_item_t *batch = malloc(sizeof(*batch) * CF_ACCESSLOG_MAX_LINES);
    char *buf = NULL;
    size_t bufcap = 0;
    while (1) {
        cf_spool_take_t got = cf_spool_take(&L.spool, batch, CF_ACCESSLOG_MAX_LINES, 0, 0, 0);
        char *reopen_path = NULL;
        if (got.events & EVENT_REOPEN) {
            pthread_mutex_lock(&L.mutex);
            reopen_path = L.path != NULL ? strdup(L.path) : NULL;
            pthread_mutex_unlock(&L.mutex);
        }

        /* lines queued before a switch were meant for the old file */
        size_t total = 0;
        for (size_t i = 0; i != got.n; ++i)
            total += batch[i].len;
        if (total > bufcap) {
            free(buf);
            bufcap = total * 2;
            buf = malloc(bufcap);
        }
        size_t off = 0;
        for (size_t i = 0; i != got.n; ++i) {
            memcpy(buf + off, batch[i].base, batch[i].len);
            off += batch[i].len;
            free(batch[i].base);
        }
        write_all(buf, off);
        if (got.events & EVENT_REOPEN)
            apply_reopen(reopen_path);
        if (got.closed && got.n == 0)
            break;
    }
    free(buf);
    free(batch);
    return NULL;
}

int cf_accesslog_start(const char *path, char *err, size_t errlen)
{
    if (L.started)
        return 0;
    if (path != NULL) {
        int fd = open_log(path, err, errlen);
        if (fd == -1)
            return -1;
        L.fd = fd;
        L.fd_path = strdup(path);
        L.path = strdup(path);
        __atomic_store_n(&L.enabled, 1, __ATOMIC_RELAXED);
    }
    if (cf_spool_init(&L.spool, CF_ACCESSLOG_MAX_LINES, CF_ACCESSLOG_MAX_LINES, CF_ACCESSLOG_MAX_BYTES) != 0) {
        snprintf(err, errlen, "access_log: no memory for its queue");
        close_log();
        return -1;
    }
    if ((errno = cf_spool_start(&L.spool, writer_main, NULL)) != 0) {
        snprintf(err, errlen, "access_log: cannot start the writer thread: %s", strerror(errno));
        close_log();
        return -1;
    }
    L.started = 1;
    return 0;
}

int cf_accesslog_enabled(void)
{
    return __atomic_load_n(&L.enabled, __ATOMIC_RELAXED);
}

void cf_accesslog_write(char *copy, size_t len)
{
    if (cf_spool_put(&L.spool, (cf_spool_item_t){copy, len, 1}) != 0)
        cf_metrics_log_dropped();
}

void cf_accesslog_reopen(const char *path)
{
    pthread_mutex_lock(&L.mutex);
    if (L.started && !L.stopping) {
        free(L.path);
        L.path = path != NULL ? strdup(path) : NULL;
        __atomic_store_n(&L.enabled, path != NULL, __ATOMIC_RELAXED);
        cf_spool_poke(&L.spool, EVENT_REOPEN);
    }
    pthread_mutex_unlock(&L.mutex);
}

void cf_accesslog_stop(void)
{
    pthread_mutex_lock(&L.mutex);
    L.stopping = 1;
    __atomic_store_n(&L.enabled, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&L.mutex);
    if (cf_spool_stop(&L.spool, 0) != 1) /* the writer writes what is queued first */
        return;
    close_log();
    free(L.path);
    L.path = NULL;
}
