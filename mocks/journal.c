/* The request journal of conflux-mock: a bounded ring of what arrived and how it was answered, and its counters. */
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <jansson.h>
#include "journal.h"

/* one journaled request */
typedef struct st_journal_entry_t {
    uint64_t id;
    char *method, *path, *query; /* query is NULL without '?' */
    json_t *headers;             /* owned: {"lower-case name": "value"} (repeats joined with ", ") */
    char *body;                  /* the first JOURNAL_BODY_MAX bytes of the request body; NULL without a body */
    size_t body_len, body_size;  /* kept, and as received */
    char *stub;                  /* "METHOD path" of the stub, "respond", or NULL when nothing matched */
    double time;                 /* wall clock, seconds */
    uint64_t arrived;            /* loop clock, ms */
    uint64_t answered;           /* loop clock, ms; 0 until answered */
    uint64_t finished;           /* loop clock, ms; 0 until complete */
    uint64_t delay;
    int status;
    const char *fault; /* static string or NULL */
    int aborted;
    int open;         /* counted in `inflight`: arrived, answer not yet complete */
    size_t listener;  /* index into listener_names */
    json_t *closest;  /* owned: the near miss of an unmatched request, or NULL */
    char *proxied_to; /* the upstream a proxy stub forwarded it to, or NULL */
} journal_entry_t;

/* request bodies are journaled up to this size, so a journal of N entries stays bounded */
#define JOURNAL_BODY_MAX 4096

/* a ring of the last `capacity` entries: entry id i lives in slot (i - 1) % capacity */
static journal_entry_t **ring;
static size_t capacity;
static uint64_t next_id = 1, first_id = 1; /* ids in the ring: [first_id, next_id) */
static cf_mock_journal_counts_t *counts;   /* [0]: every listener; [1 + i]: listener i */
static const char *const *listener_names;
static size_t n_listeners;
static h2o_loop_t *journal_loop;
/* requests being answered now (arrived, last byte not yet handed to the socket), and the most at once since the last
 * reset: what a caller's concurrency limit is checked against */
static uint64_t inflight, max_inflight;

/* The request of entry e is no longer in flight (answered, aborted, or dropped from the ring before it ended). */
static void entry_close(journal_entry_t *e)
{
    if (e != NULL && e->open) {
        e->open = 0;
        --inflight;
    }
}

/* A JSON string for bytes a client sent; bytes that are not UTF-8 become '?' so the journal stays valid JSON. */
static json_t *jstr(const char *s, size_t len)
{
    json_t *v = json_stringn(s, len);
    if (v != NULL)
        return v;
    char *copy = h2o_mem_alloc(len + 1);
    for (size_t i = 0; i != len; ++i)
        copy[i] = (unsigned char)s[i] < 0x80 && s[i] != '\0' ? s[i] : '?';
    v = json_stringn(copy, len);
    free(copy);
    return v;
}

static void entry_free(journal_entry_t *e)
{
    if (e == NULL)
        return;
    free(e->method);
    free(e->path);
    free(e->query);
    free(e->stub);
    free(e->body);
    json_decref(e->headers);
    json_decref(e->closest);
    free(e->proxied_to);
    free(e);
}

void cf_mock_journal_init(size_t cap, const char *const *listeners, size_t n)
{
    capacity = cap != 0 ? cap : 1;
    ring = h2o_mem_alloc(capacity * sizeof(*ring));
    memset(ring, 0, capacity * sizeof(*ring));
    listener_names = listeners;
    n_listeners = n;
    counts = h2o_mem_alloc((n + 1) * sizeof(*counts));
    memset(counts, 0, (n + 1) * sizeof(*counts));
}

static journal_entry_t *lookup(uint64_t id)
{
    if (id < first_id || id >= next_id)
        return NULL;
    return ring[(id - 1) % capacity];
}

uint64_t cf_mock_journal_add(h2o_req_t *req, size_t listener, const char *stub)
{
    journal_loop = req->conn->ctx->loop;
    for (size_t i = 0; i != 2; ++i) {
        cf_mock_journal_counts_t *c = counts + (i == 0 ? 0 : 1 + listener);
        ++c->total;
        if (stub == NULL)
            ++c->unmatched;
        else if (strcmp(stub, "respond") == 0)
            ++c->respond;
    }

    journal_entry_t *e = h2o_mem_alloc(sizeof(*e));
    memset(e, 0, sizeof(*e));
    e->id = next_id++;
    e->listener = listener;
    e->method = h2o_strdup(NULL, req->method.base, req->method.len).base;
    size_t pathlen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    e->path = h2o_strdup(NULL, req->path.base, pathlen).base;
    if (req->query_at != SIZE_MAX)
        e->query = h2o_strdup(NULL, req->path.base + req->query_at + 1, req->path.len - req->query_at - 1).base;
    e->headers = json_object();
    for (size_t i = 0; i != req->headers.size; ++i) {
        const h2o_header_t *h = req->headers.entries + i;
        char name[256];
        size_t nlen = h->name->len < sizeof(name) - 1 ? h->name->len : sizeof(name) - 1;
        memcpy(name, h->name->base, nlen);
        name[nlen] = '\0';
        json_t *prev = json_object_get(e->headers, name);
        if (prev != NULL) {
            size_t plen = json_string_length(prev), total = plen + 2 + h->value.len;
            char *joined = h2o_mem_alloc(total);
            memcpy(joined, json_string_value(prev), plen);
            memcpy(joined + plen, ", ", 2);
            memcpy(joined + plen + 2, h->value.base, h->value.len);
            json_object_set_new(e->headers, name, jstr(joined, total));
            free(joined);
        } else {
            json_object_set_new(e->headers, name, jstr(h->value.base, h->value.len));
        }
    }
    /* Host is not a header in h2o's request, but it is what a client sent */
    if (req->authority.len != 0 && json_object_get(e->headers, "host") == NULL)
        json_object_set_new(e->headers, "host", jstr(req->authority.base, req->authority.len));
    if (req->entity.base != NULL) {
        e->body_size = req->entity.len;
        e->body_len = req->entity.len < JOURNAL_BODY_MAX ? req->entity.len : JOURNAL_BODY_MAX;
        e->body = h2o_strdup(NULL, req->entity.base, e->body_len).base;
    }
    e->stub = stub != NULL ? h2o_strdup(NULL, stub, SIZE_MAX).base : NULL;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    e->time = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
    e->arrived = h2o_now(journal_loop);

    e->open = 1;
    if (++inflight > max_inflight)
        max_inflight = inflight;
    size_t slot = (e->id - 1) % capacity;
    if (ring[slot] != NULL) {
        entry_close(ring[slot]);
        entry_free(ring[slot]);
        ++first_id;
    }
    ring[slot] = e;
    return e->id;
}

void cf_mock_journal_plan(uint64_t id, const char *fault, uint64_t delay)
{
    journal_entry_t *e = lookup(id);
    if (e == NULL)
        return;
    e->fault = fault;
    e->delay = delay;
}

void cf_mock_journal_answer(uint64_t id, int status)
{
    journal_entry_t *e = lookup(id);
    if (e == NULL)
        return;
    e->answered = h2o_now(journal_loop);
    if (e->answered == 0)
        e->answered = 1;
    e->status = status;
}

void cf_mock_journal_abort(uint64_t id, size_t listener)
{
    ++counts[0].aborted;
    ++counts[1 + listener].aborted;
    journal_entry_t *e = lookup(id);
    entry_close(e);
    if (e != NULL && !e->aborted) {
        e->aborted = 1;
        e->finished = h2o_now(journal_loop);
    }
}

void cf_mock_journal_closest(uint64_t id, json_t *closest)
{
    journal_entry_t *e = lookup(id);
    if (e != NULL && closest != NULL)
        e->closest = json_incref(closest);
}

void cf_mock_journal_proxied(uint64_t id, const char *upstream)
{
    journal_entry_t *e = lookup(id);
    if (e != NULL && e->proxied_to == NULL)
        e->proxied_to = h2o_strdup(NULL, upstream, SIZE_MAX).base;
}

void cf_mock_journal_done(uint64_t id)
{
    journal_entry_t *e = lookup(id);
    entry_close(e);
    if (e != NULL && e->finished == 0)
        e->finished = h2o_now(journal_loop);
}

void cf_mock_journal_close(uint64_t id)
{
    entry_close(lookup(id));
}

void cf_mock_journal_inflight(uint64_t *now, uint64_t *max)
{
    *now = inflight;
    *max = max_inflight;
}

void cf_mock_journal_reset(void)
{
    for (size_t i = 0; i != capacity; ++i) {
        entry_free(ring[i]);
        ring[i] = NULL;
    }
    /* ids keep growing so that a request in flight across a reset cannot touch a newer entry */
    first_id = next_id;
    inflight = max_inflight = 0; /* what is in flight across a reset is forgotten with its entry */
    if (counts != NULL)
        memset(counts, 0, (n_listeners + 1) * sizeof(*counts));
}

void cf_mock_journal_dispose(void)
{
    cf_mock_journal_reset();
    free(ring);
    ring = NULL;
    free(counts);
    counts = NULL;
}

static json_t *entry_json(const journal_entry_t *e)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer((json_int_t)e->id));
    json_object_set_new(o, "method", jstr(e->method, strlen(e->method)));
    json_object_set_new(o, "path", jstr(e->path, strlen(e->path)));
    json_object_set_new(o, "query", e->query != NULL ? jstr(e->query, strlen(e->query)) : json_null());
    json_object_set(o, "headers", e->headers);
    json_object_set_new(o, "time", json_real(e->time));
    json_object_set_new(o, "listener", json_string(listener_names[e->listener]));
    json_object_set_new(o, "stub", e->stub != NULL ? jstr(e->stub, strlen(e->stub)) : json_null());
    json_object_set_new(o, "aborted", json_boolean(e->aborted));
    json_object_set_new(o, "body", e->body != NULL ? jstr(e->body, e->body_len) : json_null());
    json_object_set_new(o, "body_size", json_integer((json_int_t)e->body_size));
    json_object_set_new(o, "fault", e->fault != NULL ? json_string(e->fault) : json_null());
    json_object_set_new(o, "delay_ms", e->fault != NULL ? json_integer((json_int_t)e->delay) : json_null());
    json_object_set_new(o, "status", e->answered != 0 && e->status != 0 ? json_integer(e->status) : json_null());
    json_object_set_new(o, "answered_at",
                        e->answered != 0 ? json_real(e->time + (double)(e->answered - e->arrived) / 1000.0) : json_null());
    json_object_set_new(o, "duration_ms", e->finished != 0 ? json_integer((json_int_t)(e->finished - e->arrived)) : json_null());
    if (e->proxied_to != NULL)
        json_object_set_new(o, "proxied_to", json_string(e->proxied_to));
    if (e->stub == NULL)
        json_object_set(o, "closest", e->closest != NULL ? e->closest : json_null());
    return o;
}

json_t *cf_mock_journal_json(const cf_mock_journal_filter_t *filter)
{
    json_t *arr = json_array();
    for (uint64_t id = first_id; id != next_id; ++id) {
        journal_entry_t *e = lookup(id);
        if (e == NULL)
            continue;
        if (filter->path != NULL && strcmp(e->path, filter->path) != 0)
            continue;
        if (filter->method.base != NULL && !h2o_memis(e->method, strlen(e->method), filter->method.base, filter->method.len))
            continue;
        if (filter->stub != NULL && (e->stub == NULL || strcmp(e->stub, filter->stub) != 0))
            continue;
        if (filter->listener != NULL && strcmp(listener_names[e->listener], filter->listener) != 0)
            continue;
        json_array_append_new(arr, entry_json(e));
    }
    while (json_array_size(arr) > filter->limit)
        json_array_remove(arr, 0);
    return arr;
}

const char *const *cf_mock_journal_listeners(size_t *n)
{
    *n = n_listeners;
    return listener_names;
}

void cf_mock_journal_counts(size_t listener, cf_mock_journal_counts_t *out)
{
    *out = counts[listener < n_listeners ? 1 + listener : 0];
}
