/* Unit tests of common/cf_spool.c: the bounds of the queue and of the buffers it keeps for reuse. */
#define _GNU_SOURCE /* pthread_timedjoin_np, in cf_spool.c */
#include <stdlib.h>
#include "tap.h"
#include "../../common/cf_spool.c"

static cf_spool_item_t item(size_t cap, size_t len)
{
    return (cf_spool_item_t){malloc(cap), len, 1, cap};
}

static void test_bounds(void)
{
    cf_spool_t s;
    ok(cf_spool_init(&s, 2, 2, 1000) == 0, "init");
    ok(cf_spool_put(&s, item(16, 10)) == 0, "an item fits");
    ok(cf_spool_put(&s, item(2000, 1500)) == -1, "one over the bytes bound does not");
    ok(cf_spool_put(&s, item(16, 10)) == 0, "a second fits");
    ok(cf_spool_put(&s, item(16, 10)) == -1, "a third is over the items bound");
    cf_spool_item_t out[4];
    cf_spool_take_t got = cf_spool_take(&s, out, 4, 0, 0, cf_mono_ns());
    is(got.n, 2, "both are taken");
    cf_spool_recycle(&s, out, got.n);
    cf_spool_stop(&s, 0);
    while (s.num_spares != 0)
        free(s.spares[--s.num_spares].base);
    free(s.ring);
    free(s.spares);
}

static void test_spares(void)
{
    cf_spool_t s;
    ok(cf_spool_init(&s, 8, 8, 1 << 30) == 0, "init");
    cf_spool_item_t back[2] = {item(CF_SPOOL_MAX_SPARE_CAP + 1, 10), item(4096, 10)};
    char *small = back[1].base;
    cf_spool_recycle(&s, back, 2);
    is(s.num_spares, 1, "a buffer over CF_SPOOL_MAX_SPARE_CAP is freed, not kept");
    cf_spool_item_t it = cf_spool_borrow(&s);
    ok(it.base == small && it.cap == 4096 && it.len == 0, "the small one is lent again");
    free(it.base);

    /* a borrowed buffer grown large by a long item, then dropped because the spool is full */
    for (int i = 0; i != 8; ++i)
        cf_spool_put(&s, item(16, 1));
    ok(cf_spool_put(&s, item(CF_SPOOL_MAX_SPARE_CAP * 2, 10)) == -1, "a put into a full spool is a drop");
    is(s.num_spares, 0, "and its large buffer is not kept");
    ok(cf_spool_put(&s, item(1024, 10)) == -1, "another drop");
    is(s.num_spares, 1, "whose small buffer is");

    cf_spool_item_t out[8];
    cf_spool_take_t got = cf_spool_take(&s, out, 8, 0, 0, cf_mono_ns());
    for (size_t i = 0; i != got.n; ++i)
        free(out[i].base);
    while (s.num_spares != 0)
        free(s.spares[--s.num_spares].base);
    free(s.ring);
    free(s.spares);
}

int main(void)
{
    test_bounds();
    test_spares();
    return done_testing();
}
