/* The admin side of conflux-mock: the bounded request journal, stats, and the /__mock/ endpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <jansson.h>
#include "mock.h"

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
} journal_entry_t;

/* request bodies are journaled up to this size, so a journal of N entries stays bounded */
#define JOURNAL_BODY_MAX 4096

/* a ring of the last `capacity` entries: entry id i lives in slot (i - 1) % capacity */
static journal_entry_t **ring;
static size_t capacity;
static uint64_t next_id = 1, first_id = 1; /* ids in the ring: [first_id, next_id) */
static uint64_t n_total, n_unmatched, n_respond, n_aborted;
static h2o_loop_t *journal_loop;

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
    free(e);
}

void cf_mock_journal_init(size_t cap)
{
    capacity = cap != 0 ? cap : 1;
    ring = h2o_mem_alloc(capacity * sizeof(*ring));
    memset(ring, 0, capacity * sizeof(*ring));
}

static journal_entry_t *lookup(uint64_t id)
{
    if (id < first_id || id >= next_id)
        return NULL;
    return ring[(id - 1) % capacity];
}

uint64_t cf_mock_journal_add(h2o_req_t *req, const char *stub)
{
    journal_loop = req->conn->ctx->loop;
    ++n_total;
    if (stub == NULL)
        ++n_unmatched;
    else if (strcmp(stub, "respond") == 0)
        ++n_respond;

    journal_entry_t *e = h2o_mem_alloc(sizeof(*e));
    memset(e, 0, sizeof(*e));
    e->id = next_id++;
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

    size_t slot = (e->id - 1) % capacity;
    if (ring[slot] != NULL) {
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

void cf_mock_journal_abort(uint64_t id)
{
    ++n_aborted;
    journal_entry_t *e = lookup(id);
    if (e != NULL && !e->aborted) {
        e->aborted = 1;
        e->finished = h2o_now(journal_loop);
    }
}

void cf_mock_journal_done(uint64_t id)
{
    journal_entry_t *e = lookup(id);
    if (e != NULL && e->finished == 0)
        e->finished = h2o_now(journal_loop);
}

void cf_mock_journal_reset(void)
{
    for (size_t i = 0; i != capacity; ++i) {
        entry_free(ring[i]);
        ring[i] = NULL;
    }
    /* ids keep growing so that a request in flight across a reset cannot touch a newer entry */
    first_id = next_id;
    n_total = n_unmatched = n_respond = n_aborted = 0;
}

void cf_mock_journal_dispose(void)
{
    cf_mock_journal_reset();
    free(ring);
    ring = NULL;
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
    return o;
}

h2o_iovec_t cf_mock_query_param(h2o_req_t *req, const char *name)
{
    if (req->query_at == SIZE_MAX)
        return h2o_iovec_init(NULL, 0);
    const char *p = req->path.base + req->query_at + 1, *end = req->path.base + req->path.len;
    size_t nlen = strlen(name);
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pend = amp != NULL ? amp : end;
        if ((size_t)(pend - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=')
            return h2o_iovec_init(p + nlen + 1, (size_t)(pend - p - nlen - 1));
        p = pend + 1;
    }
    return h2o_iovec_init(NULL, 0);
}

static void send_json(h2o_req_t *req, int status, json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    req->res.headers = (h2o_headers_t){NULL};
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    cf_mock_send(req, status, "application/json", s, strlen(s));
    free(s);
}

static void send_error(h2o_req_t *req, int status, const char *msg)
{
    send_json(req, status, json_pack("{ss}", "error", msg));
}

/* GET /__mock/requests[?path=/exact&method=GET&stub=KEY&limit=N]: the journal, oldest first */
static void on_requests(h2o_req_t *req)
{
    h2o_iovec_t fpath = cf_mock_query_param(req, "path"), fmethod = cf_mock_query_param(req, "method"),
                fstub = cf_mock_query_param(req, "stub"), flimit = cf_mock_query_param(req, "limit");
    char *dpath = NULL, *dstub = NULL;
    if (fpath.base != NULL)
        dpath = cf_mock_url_decode(&req->pool, fpath).base;
    if (fstub.base != NULL)
        dstub = cf_mock_url_decode(&req->pool, fstub).base;
    size_t limit = SIZE_MAX;
    if (flimit.base != NULL && (limit = h2o_strtosize(flimit.base, flimit.len)) == SIZE_MAX)
        return send_error(req, 400, "limit must be a number");

    json_t *arr = json_array();
    for (uint64_t id = first_id; id != next_id; ++id) {
        journal_entry_t *e = lookup(id);
        if (e == NULL)
            continue;
        if (dpath != NULL && strcmp(e->path, dpath) != 0)
            continue;
        if (fmethod.base != NULL && !h2o_memis(e->method, strlen(e->method), fmethod.base, fmethod.len))
            continue;
        if (dstub != NULL && (e->stub == NULL || strcmp(e->stub, dstub) != 0))
            continue;
        json_array_append_new(arr, entry_json(e));
    }
    while (json_array_size(arr) > limit)
        json_array_remove(arr, 0);
    send_json(req, 200, arr);
}

/* GET /__mock/stats: {"total": N, "unmatched": N, "respond": N, "aborted": N, "stubs": {"GET /path": N, ...}} */
static void on_stats(h2o_req_t *req)
{
    size_t n;
    cf_mock_stub_t **stubs = cf_mock_stubs_list(&n);
    json_t *per = json_object();
    for (size_t i = 0; i != n; ++i)
        json_object_set_new(per, stubs[i]->key, json_integer((json_int_t)stubs[i]->calls));
    send_json(req, 200,
              json_pack("{sIsIsIsIso}", "total", (json_int_t)n_total, "unmatched", (json_int_t)n_unmatched, "respond",
                        (json_int_t)n_respond, "aborted", (json_int_t)n_aborted, "stubs", per));
}

/* GET /__mock/stubs: what is live */
static void on_list_stubs(h2o_req_t *req)
{
    size_t n;
    cf_mock_stub_t **stubs = cf_mock_stubs_list(&n);
    json_t *arr = json_array();
    for (size_t i = 0; i != n; ++i) {
        cf_mock_stub_t *s = stubs[i];
        json_array_append_new(arr, json_pack("{sssssssisssIsi}", "key", s->key, "method", s->method, "path", s->path, "status",
                                             (int)s->status, "fault", cf_mock_fault_names[s->fault], "calls", (json_int_t)s->calls,
                                             "sequence_length", (int)s->n_sequence));
    }
    send_json(req, 200, arr);
}

/* POST /__mock/stubs: a stub, a list, or {stubs: [...]} as YAML or JSON */
static void on_post_stubs(h2o_req_t *req)
{
    char err[1024];
    size_t replaced = 0, n;
    int added =
        cf_mock_load_runtime(req->entity.base != NULL ? req->entity.base : "", req->entity.len, &replaced, err, sizeof(err));
    if (added < 0)
        return send_error(req, 400, err);
    cf_mock_stubs_list(&n);
    send_json(req, 200, json_pack("{sisisi}", "published", added, "replaced", (int)replaced, "stubs", (int)n));
}

/* POST /__mock/reset: journal, counters and sequence positions back to zero (stubs stay) */
static void on_reset(h2o_req_t *req)
{
    cf_mock_journal_reset();
    cf_mock_stubs_reset();
    send_json(req, 200, json_pack("{sb}", "reset", 1));
}

void cf_mock_admin_handle(h2o_req_t *req)
{
    static const struct {
        const char *method, *path;
        void (*handle)(h2o_req_t *req);
    } endpoints[] = {
        {"GET", "/__mock/requests", on_requests}, {"GET", "/__mock/stats", on_stats},  {"GET", "/__mock/stubs", on_list_stubs},
        {"POST", "/__mock/stubs", on_post_stubs}, {"POST", "/__mock/reset", on_reset}, {"DELETE", "/__mock/requests", on_reset},
    };
    size_t pathlen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    int path_known = 0;
    for (size_t i = 0; i != sizeof(endpoints) / sizeof(endpoints[0]); ++i) {
        if (!h2o_memis(req->path.base, pathlen, endpoints[i].path, strlen(endpoints[i].path)))
            continue;
        path_known = 1;
        if (h2o_memis(req->method.base, req->method.len, endpoints[i].method, strlen(endpoints[i].method)))
            return endpoints[i].handle(req);
    }
    if (path_known)
        return send_error(req, 405, "method not allowed for this admin endpoint");
    send_error(req, 404, "no such admin endpoint (requests, stats, stubs, reset, respond)");
}
