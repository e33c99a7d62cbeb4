/* libFuzzer harness for the config loader: any YAML text; what it accepts must hold together, what it refuses says where. */
/*
 * Input: the text of a config file, loaded with cf_config_load_string. A refusal must name the file, and the line and
 * column unless the file is empty, on one line of printable text (values quoted from the file are escaped).
 * An accepted config must be one the gateway can run and that means one thing:
 * - its routes go into a fresh router (as the gateway's route table does at every load and reload);
 * - indices, backend pointers and call names are consistent; each call's dependencies are sorted, unique, earlier
 *   calls' or later ones' but never its own, acyclic, and exactly the calls its path template refers to; template
 *   parameters exist in the route's pattern, and `rest` marks exactly the {name*} one;
 * - a route with `merge: merge` and no on_conflict (an error on conflict) really has no conflict on the keys the loader
 *   could know of: shaping (merge.c) a document holding every key named anywhere in the route's rules, through each
 *   call, gives objects with no key in common;
 * - loading the same text again explains (--explain) the same way, byte for byte.
 */
#define _GNU_SOURCE /* open_memstream */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../gateway/router.c"
#include "../../gateway/template.c"
#include "../../gateway/body.c"
#include "../../gateway/cors.c"
#include "../../gateway/ratelimit.c"
#include "../../gateway/jwt.c"
#include "../../gateway/auth.c"
#include "../../gateway/config.c"
#include "../../gateway/plan.c"
#include "../../gateway/jsonout.c"
#include "../../gateway/reason.c"
#include "../../gateway/merge.c"

#define NAME "fuzz.yaml"

static void bug(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_config: %s%s%s\n", what, detail != NULL ? ": " : "", detail != NULL ? detail : "");
    abort();
}

static char *explain(const cf_config_t *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    cf_plan_explain(c, fp);
    fclose(fp);
    return text;
}

/* Adds key to the NULL-terminated set `keys` (of room for cap) unless there. */
static void add_key(const char **keys, size_t cap, const char *key)
{
    size_t i = 0;
    for (; keys[i] != NULL; ++i)
        if (strcmp(keys[i], key) == 0)
            return;
    if (i + 1 < cap)
        keys[i] = key;
}

/* merge: merge with an error on conflict: the shaped documents of the calls share no key (see the top). */
static void check_no_conflict(const cf_route_t *r)
{
    const char *keys[512] = {NULL};
    size_t cap = sizeof(keys) / sizeof(keys[0]);
    for (size_t i = 0; i != r->num_calls; ++i) {
        const cf_call_t *c = &r->calls[i];
        for (size_t k = 0; k != c->allow.n; ++k)
            add_key(keys, cap, c->allow.items[k]);
        for (size_t k = 0; k != c->deny.n; ++k)
            add_key(keys, cap, c->deny.items[k]);
        for (size_t k = 0; k != c->num_rename; ++k) {
            add_key(keys, cap, c->rename[k].from);
            add_key(keys, cap, c->rename[k].to);
        }
    }
    json_t *seen = json_object();
    for (size_t i = 0; i != r->num_calls; ++i) {
        const cf_call_t *c = &r->calls[i];
        json_t *doc = json_object();
        for (size_t k = 0; keys[k] != NULL; ++k)
            json_object_set_new(doc, keys[k], json_integer((json_int_t)k));
        for (size_t t = c->num_target; t-- != 0;) {
            json_t *outer = json_object();
            json_object_set_new(outer, c->target[t], doc);
            doc = outer;
        }
        cf_outcome_t o = {doc, CF_REASON_NONE, 200};
        if (cf_shape(c, &o) != 0)
            bug("cf_shape failed", c->name);
        const char *key;
        json_t *value;
        if (json_is_object(o.value)) {
            json_object_foreach(o.value, key, value)
            {
                if (json_object_get(seen, key) != NULL)
                    bug("merge: merge without on_conflict, yet two calls produce the key", key);
                json_object_set(seen, key, json_true());
            }
        }
        json_decref(o.value);
    }
    json_decref(seen);
}

static void verify_route(const cf_config_t *c, const cf_route_t *r, size_t index)
{
    if (r->index != index || r->methods == 0 || r->pattern.src == NULL || r->pattern.src[0] != '/')
        bug("route index, methods or pattern", r->pattern.src);
    if ((r->proxy != NULL) == (r->num_calls != 0))
        bug("a route has either calls or a proxy backend", r->pattern.src);
    if (r->proxy != NULL && (r->proxy < c->backends || r->proxy >= c->backends + c->num_backends))
        bug("a proxy backend outside the config's", r->pattern.src);
    for (size_t i = 0; i != r->num_calls; ++i) {
        const cf_call_t *call = &r->calls[i];
        char uses[CF_CONFIG_MAX_CALLS] = {0};
        if (call->index != i || call->name == NULL || call->backend < c->backends || call->backend >= c->backends + c->num_backends)
            bug("call index, name or backend", call->name);
        for (size_t j = 0; j != i; ++j)
            if (strcmp(r->calls[j].name, call->name) == 0)
                bug("two calls of a route with one name", call->name);
        if (call->allow.n != 0 && call->deny.n != 0)
            bug("both allow and deny", call->name);
        for (size_t k = 0; k != call->path.num_parts; ++k) {
            const cf_tpl_part_t *part = &call->path.parts[k];
            if (part->kind == CF_TPL_CALL) {
                if (part->call_index < 0 || (size_t)part->call_index >= r->num_calls || (size_t)part->call_index == i)
                    bug("a template refers to a call that is not another of the route's", call->name);
                if (r->calls[part->call_index].foreach.source != NULL)
                    bug("a template takes a field of a foreach call", call->name);
                uses[part->call_index] = 1;
            } else if (part->kind == CF_TPL_PARAM) {
                int idx = cf_pattern_param_index(&r->pattern, part->text, part->len);
                if (idx < 0 || part->rest != (idx == r->pattern.rest_index))
                    bug("a template parameter the pattern does not have, or a wrong rest flag", call->name);
            } else if (part->kind == CF_TPL_ITEM && (call->foreach.source == NULL || call->foreach.batch != 0)) {
                bug("an {item} placeholder without foreach, or with batch", call->name);
            } else if (part->kind == CF_TPL_ITEMS && (call->foreach.source == NULL || call->foreach.batch == 0)) {
                bug("an {items} placeholder without foreach and batch", call->name);
            }
        }
        if (call->foreach.source != NULL) {
            /* it waits for its source, which is another call of the route and not a foreach call itself */
            int src = call->foreach.call_index;
            if (src < 0 || (size_t)src >= r->num_calls || (size_t)src == i || r->calls[src].foreach.source != NULL)
                bug("a foreach source that is not another plain call of the route", call->name);
            uses[src] = 1;
            if (call->foreach.concurrency < 1 || call->foreach.concurrency > CF_FOREACH_MAX_CONCURRENCY ||
                call->foreach.max_items < 1 || call->foreach.max_items > CF_FOREACH_MAX_ITEMS ||
                call->foreach.batch > CF_FOREACH_MAX_BATCH || r->merge == CF_MERGE_MERGE)
                bug("foreach bounds, or foreach in merge: merge", call->name);
        }
        size_t n = 0;
        for (size_t d = 0; d != r->num_calls; ++d) {
            if (!uses[d])
                continue;
            if (n >= call->num_deps || call->deps[n] != d)
                bug("dependencies are not exactly, and in order, the calls the template uses", call->name);
            ++n;
        }
        if (n != call->num_deps)
            bug("more dependencies than calls the template uses", call->name);
    }
    /* acyclic: some order runs every call after its dependencies */
    char done[CF_CONFIG_MAX_CALLS] = {0};
    for (size_t round = 0; round != r->num_calls; ++round) {
        size_t progress = 0;
        for (size_t i = 0; i != r->num_calls; ++i) {
            int ready = !done[i];
            for (size_t d = 0; ready && d != r->calls[i].num_deps; ++d)
                ready = done[r->calls[i].deps[d]] == 1;
            if (ready)
                done[i] = 2, ++progress;
        }
        for (size_t i = 0; i != r->num_calls; ++i)
            done[i] = done[i] != 0;
        if (progress == 0)
            break;
    }
    for (size_t i = 0; i != r->num_calls; ++i)
        if (!done[i])
            bug("the calls' dependencies have a cycle", r->calls[i].name);
    if (r->merge == CF_MERGE_MERGE && r->on_conflict == CF_CONFLICT_ERROR)
        check_no_conflict(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    err[0] = '\0';
    cf_config_t *c = cf_config_load_string(NAME, (const char *)data, size, err, sizeof(err));
    if (c == NULL) {
        unsigned line, col;
        if (sscanf(err, NAME ":%u:%u: ", &line, &col) != 2 &&
            strncmp(err, NAME ": the file is empty", sizeof(NAME ": the file is empty") - 1) != 0)
            bug("an error without file:line:col", err);
        for (const char *p = err; *p != '\0'; ++p)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                bug("a control byte in an error message", err);
        return 0;
    }

    if (c->num_routes == 0 || strlen(c->sha256) != 64)
        bug("no routes, or no hash", NULL);
    for (size_t i = 0; i != c->num_backends; ++i) {
        const cf_backend_t *b = &c->backends[i];
        if (b->index != i || b->num_servers == 0 || b->name == NULL)
            bug("backend index, servers or name", b->name);
        for (size_t s = 0; s != b->num_servers; ++s)
            if (b->servers[s].host == NULL || b->servers[s].host[0] == '\0' || b->servers[s].port == 0)
                bug("a server without host or port", b->servers[s].url);
    }
    cf_router_t *router = cf_router_new();
    for (size_t i = 0; i != c->num_routes; ++i) {
        const cf_route_t *r = &c->routes[i];
        verify_route(c, r, i);
        if (cf_router_add(router, r->pattern.src, r->methods, (void *)r, err, sizeof(err)) != 0)
            bug("an accepted config whose routes a router refuses", err);
    }
    cf_router_free(router);

    char *first = explain(c);
    cf_config_t *again = cf_config_load_string(NAME, (const char *)data, size, err, sizeof(err));
    if (again == NULL)
        bug("the same text refused the second time", err);
    char *second = explain(again);
    if (strcmp(first, second) != 0)
        bug("the same text explained two ways", NULL);
    free(first);
    free(second);
    cf_config_retain(again);
    cf_config_free(again);
    cf_config_free(again);
    cf_config_free(c);
    return 0;
}
