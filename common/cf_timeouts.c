/* A per-loop set of h2o_timeout_t, one per distinct duration: h2o 2.2.5 timeouts have a fixed delay each. */
#include <stdlib.h>
#include "cf_timeouts.h"

struct st_cf_timeout_slot_t {
    uint64_t ms;
    h2o_timeout_t *timeout; /* separately allocated: h2o keeps pointers to it, so it must not move */
};

void cf_timeouts_init(cf_timeouts_t *t, h2o_loop_t *loop)
{
    t->loop = loop;
    t->slots = NULL;
    t->num_slots = t->cap = 0;
}

void cf_timeouts_dispose(cf_timeouts_t *t)
{
    for (size_t i = 0; i < t->num_slots; ++i) {
        h2o_timeout_dispose(t->loop, t->slots[i].timeout);
        free(t->slots[i].timeout);
    }
    free(t->slots);
    t->slots = NULL;
    t->num_slots = t->cap = 0;
}

void cf_timeouts_link(cf_timeouts_t *t, uint64_t ms, h2o_timeout_entry_t *entry)
{
    size_t i;
    for (i = 0; i < t->num_slots; ++i)
        if (t->slots[i].ms == ms)
            break;
    if (i == t->num_slots) {
        if (t->num_slots == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 8;
            t->slots = h2o_mem_realloc(t->slots, t->cap * sizeof(*t->slots));
        }
        t->slots[i].ms = ms;
        t->slots[i].timeout = h2o_mem_alloc(sizeof(*t->slots[i].timeout));
        h2o_timeout_init(t->loop, t->slots[i].timeout, ms);
        ++t->num_slots;
    }
    h2o_timeout_link(t->loop, t->slots[i].timeout, entry);
}
