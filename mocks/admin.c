/* The admin API of conflux-mock: the /__mock/ endpoints over the journal and the live stubs. */
#include <string.h>
#include <jansson.h>
#include "admin.h"
#include "http.h"
#include "journal.h"
#include "listeners.h"
#include "stubs.h"

static void send_json(h2o_req_t *req, int status, json_t *v)
{
    req->res.headers = (h2o_headers_t){NULL};
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    cf_mock_send_json(req, status, v);
}

static void send_error(h2o_req_t *req, int status, const char *msg)
{
    send_json(req, status, json_pack("{ss}", "error", msg));
}

/* GET /__mock/requests[?path=/exact&method=GET&stub=KEY&limit=N]: the journal, oldest first */
static void on_requests(h2o_req_t *req)
{
    h2o_iovec_t fpath = cf_mock_query_param(req, "path"), fstub = cf_mock_query_param(req, "stub"),
                flimit = cf_mock_query_param(req, "limit"), flistener = cf_mock_query_param(req, "listener");
    cf_mock_journal_filter_t filter = {NULL, cf_mock_query_param(req, "method"), NULL, NULL, SIZE_MAX};
    if (flistener.base != NULL)
        filter.listener = cf_mock_url_decode(&req->pool, flistener).base;
    if (fpath.base != NULL)
        filter.path = cf_mock_url_decode(&req->pool, fpath).base;
    if (fstub.base != NULL)
        filter.stub = cf_mock_url_decode(&req->pool, fstub).base;
    if (flimit.base != NULL && (filter.limit = h2o_strtosize(flimit.base, flimit.len)) == SIZE_MAX)
        return send_error(req, 400, "limit must be a number");
    send_json(req, 200, cf_mock_journal_json(&filter));
}

static json_t *counts_json(size_t listener)
{
    cf_mock_journal_counts_t c;
    cf_mock_journal_counts(listener, &c);
    return json_pack("{sIsIsIsI}", "total", (json_int_t)c.total, "unmatched", (json_int_t)c.unmatched, "respond",
                     (json_int_t)c.respond, "aborted", (json_int_t)c.aborted);
}

/*
 * GET /__mock/stats: {"total": N, "unmatched": N, "respond": N, "aborted": N, "inflight": N, "max_inflight": N,
 * "stubs": {"GET /path": N, ...},
 * "listeners": {"NAME": {"total": N, "unmatched": N, "respond": N, "aborted": N}, ...}}
 */
static void on_stats(h2o_req_t *req)
{
    size_t n;
    cf_mock_stub_t **stubs = cf_mock_stubs_list(&n);
    json_t *per = json_object(), *listeners = json_object(), *v = counts_json(SIZE_MAX);
    for (size_t i = 0; i != n; ++i)
        json_object_set_new(per, stubs[i]->key, json_integer((json_int_t)stubs[i]->calls));
    size_t n_listeners;
    const char *const *names = cf_mock_journal_listeners(&n_listeners);
    for (size_t i = 0; i != n_listeners; ++i)
        json_object_set_new(listeners, names[i], counts_json(i));
    uint64_t inflight, max_inflight;
    cf_mock_journal_inflight(&inflight, &max_inflight);
    json_object_set_new(v, "inflight", json_integer((json_int_t)inflight));
    json_object_set_new(v, "max_inflight", json_integer((json_int_t)max_inflight));
    json_object_set_new(v, "stubs", per);
    json_object_set_new(v, "listeners", listeners);
    send_json(req, 200, v);
}

/* GET /__mock/stubs: what is live */
static void on_list_stubs(h2o_req_t *req)
{
    size_t n;
    cf_mock_stub_t **stubs = cf_mock_stubs_list(&n);
    json_t *arr = json_array();
    for (size_t i = 0; i != n; ++i) {
        cf_mock_stub_t *s = stubs[i];
        json_t *v =
            json_pack("{sssssssisssIsi}", "key", s->key, "method", s->method, "path", s->path, "status", (int)s->status, "fault",
                      cf_mock_fault_names[s->fault], "calls", (json_int_t)s->calls, "sequence_length", (int)s->n_sequence);
        if (s->fault_status != 0)
            json_object_set_new(v, "fault", json_integer((json_int_t)s->fault_status));
        if (s->listener != NULL)
            json_object_set_new(v, "listener", json_string(s->listener));
        json_object_set_new(v, "priority", json_integer((json_int_t)s->priority));
        if (s->scenario != NULL) {
            json_object_set_new(v, "scenario", json_string(s->scenario));
            json_object_set_new(v, "state", s->state != NULL ? json_string(s->state) : json_null());
            json_object_set_new(v, "next_state", s->next_state != NULL ? json_string(s->next_state) : json_null());
        }
        json_array_append_new(arr, v);
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

/* GET /__mock/listeners: [{"name", "address", "up"}, ...] */
static void on_listeners(h2o_req_t *req)
{
    size_t n;
    const char *const *names = cf_mock_listeners_names(&n);
    json_t *arr = json_array();
    for (size_t i = 0; i != n; ++i)
        json_array_append_new(
            arr, json_pack("{sssssb}", "name", names[i], "address", cf_mock_listener_bound(i), "up", cf_mock_listener_is_up(i)));
    send_json(req, 200, arr);
}

/* POST /__mock/down?listener=NAME and /__mock/up?listener=NAME: a server that dies (and comes back) */
static void set_up(h2o_req_t *req, int up)
{
    h2o_iovec_t name = cf_mock_query_param(req, "listener");
    if (name.base == NULL)
        return send_error(req, 400, "which listener? ?listener=NAME");
    const char *s = cf_mock_url_decode(&req->pool, name).base;
    size_t i = cf_mock_listener_find(s);
    if (i == SIZE_MAX)
        return send_error(req, 404, "no listener of that name");
    char err[512];
    if (cf_mock_listener_set_up(i, up, err, sizeof(err)) != 0)
        return send_error(req, 500, err);
    send_json(req, 200, json_pack("{sssb}", "listener", s, "up", up));
}

static void on_down(h2o_req_t *req)
{
    set_up(req, 0);
}

static void on_up(h2o_req_t *req)
{
    set_up(req, 1);
}

/* The states a scenario can be in: its first, then every state and next_state its live stubs name, in order. */
static json_t *scenario_states(const cf_mock_scenario_t *scen)
{
    size_t n;
    cf_mock_stub_t **stubs = cf_mock_stubs_list(&n);
    json_t *states = json_array();
    json_array_append_new(states, json_string(CF_MOCK_SCENARIO_START));
    for (size_t i = 0; i != n; ++i) {
        if (stubs[i]->scen != scen)
            continue;
        const char *names[] = {stubs[i]->state, stubs[i]->next_state};
        for (size_t k = 0; k != 2; ++k) {
            size_t j;
            for (j = 0; names[k] != NULL && j != json_array_size(states); ++j)
                if (strcmp(json_string_value(json_array_get(states, j)), names[k]) == 0)
                    break;
            if (names[k] != NULL && j == json_array_size(states))
                json_array_append_new(states, json_string(names[k]));
        }
    }
    return states;
}

static json_t *scenario_json(const cf_mock_scenario_t *scen)
{
    return json_pack("{ssssso}", "name", scen->name, "state", scen->state, "states", scenario_states(scen));
}

/* GET /__mock/scenarios: [{"name", "state", "states"}, ...] in the order stubs first named them */
static void on_scenarios(h2o_req_t *req)
{
    size_t n;
    cf_mock_scenario_t **scenarios = cf_mock_scenarios_list(&n);
    json_t *arr = json_array();
    for (size_t i = 0; i != n; ++i)
        json_array_append_new(arr, scenario_json(scenarios[i]));
    send_json(req, 200, arr);
}

/* PUT /__mock/scenarios/NAME {"state": "paid"}: moves a scenario to one of its states */
static void on_put_scenario(h2o_req_t *req, h2o_iovec_t name)
{
    char *s = cf_mock_url_decode(&req->pool, name).base;
    cf_mock_scenario_t *scen = cf_mock_scenario_find(s);
    if (scen == NULL)
        return send_error(req, 404, "no scenario of that name (GET /__mock/scenarios lists them)");
    json_t *body =
        req->entity.len <= 4096 ? json_loadb(req->entity.base != NULL ? req->entity.base : "", req->entity.len, 0, NULL) : NULL;
    const char *state = json_string_value(json_object_get(body, "state"));
    if (state == NULL || json_object_size(body) != 1) {
        json_decref(body);
        return send_error(req, 400, "expected {\"state\": \"NAME\"}");
    }
    json_t *states = scenario_states(scen);
    size_t i;
    for (i = 0; i != json_array_size(states); ++i)
        if (strcmp(json_string_value(json_array_get(states, i)), state) == 0)
            break;
    if (i == json_array_size(states)) {
        json_t *err = json_pack("{sssO}", "error", "not a state of this scenario", "states", states);
        json_decref(states);
        json_decref(body);
        return send_json(req, 400, err);
    }
    json_decref(states);
    cf_mock_scenario_set(scen, state);
    json_decref(body);
    send_json(req, 200, scenario_json(scen));
}

/* POST /__mock/reset: journal, counters and sequence positions back to zero, scenarios to their first state (stubs stay) */
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
        {"GET", "/__mock/requests", on_requests},   {"GET", "/__mock/stats", on_stats},  {"GET", "/__mock/stubs", on_list_stubs},
        {"POST", "/__mock/stubs", on_post_stubs},   {"POST", "/__mock/reset", on_reset}, {"DELETE", "/__mock/requests", on_reset},
        {"GET", "/__mock/listeners", on_listeners}, {"POST", "/__mock/down", on_down},   {"POST", "/__mock/up", on_up},
        {"GET", "/__mock/scenarios", on_scenarios},
    };
    size_t pathlen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    static const char scenario_prefix[] = "/__mock/scenarios/";
    if (pathlen > sizeof(scenario_prefix) - 1 && memcmp(req->path.base, scenario_prefix, sizeof(scenario_prefix) - 1) == 0) {
        if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("PUT")))
            return send_error(req, 405, "method not allowed for this admin endpoint");
        return on_put_scenario(
            req, h2o_iovec_init(req->path.base + sizeof(scenario_prefix) - 1, pathlen - (sizeof(scenario_prefix) - 1)));
    }
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
    send_error(req, 404, "no such admin endpoint (requests, stats, stubs, reset, respond, listeners, down, up, scenarios)");
}
