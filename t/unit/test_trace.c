/* Unit tests of gateway/trace.c: traceparent, tracestate and X-Request-Id checks against hostile values; random ids. */
#include "tap.h"
#include "../../gateway/trace.c"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID "00f067aa0ba902b7"

static int parses(const char *s)
{
    cf_trace_t t;
    memset(&t, 'x', sizeof(t));
    return cf_trace_parse_traceparent(&t, s, strlen(s)) == 0;
}

static int state_ok(const char *s)
{
    return cf_trace_tracestate_ok(s, strlen(s));
}

static int id_ok(const char *s)
{
    return cf_trace_request_id_ok(s, strlen(s));
}

static void test_traceparent(void)
{
    cf_trace_t t;
    const char *good = "00-" TID "-" PID "-01";
    ok(cf_trace_parse_traceparent(&t, good, strlen(good)) == 0, "the W3C example parses");
    ok(memcmp(t.trace_id, TID, 32) == 0, "its trace-id");
    ok(memcmp(t.flags, "01", 2) == 0, "its flags");
    ok(parses("00-" TID "-" PID "-00"), "flags 00");
    ok(parses("00-" TID "-" PID "-ff"), "unknown flags are accepted");
    const char *ff = "00-" TID "-" PID "-ff", *fe = "00-" TID "-" PID "-fe";
    ok(cf_trace_parse_traceparent(&t, ff, strlen(ff)) == 0 && memcmp(t.flags, "01", 2) == 0 && t.sampled,
       "flags ff: sampled, propagated as 01 (the other bits set to zero)");
    ok(cf_trace_parse_traceparent(&t, fe, strlen(fe)) == 0 && memcmp(t.flags, "00", 2) == 0 && !t.sampled,
       "flags fe: not sampled, propagated as 00");

    static const char *const bad[] = {
        "",
        "00",
        "00-" TID "-" PID "-0",                           /* short flags */
        "00-" TID "-" PID "-011",                         /* long */
        "00-" TID "-" PID "-01-",                         /* a later version's fields, on version 00 */
        "01-" TID "-" PID "-01",                          /* another version */
        "ff-" TID "-" PID "-01",                          /* the forbidden version */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01", /* uppercase */
        "00-" TID "-00F067AA0BA902B7-01",                 /* uppercase */
        "00-" TID "-" PID "-0A",                          /* uppercase flags */
        "00-00000000000000000000000000000000-" PID "-01", /* all-zero trace-id */
        "00-" TID "-0000000000000000-01",                 /* all-zero parent-id */
        "00-4bf92f3577b34da6a3ce929d0e0e473-" PID "-011", /* fields shifted */
        "00_" TID "-" PID "-01",                          /* separators */
        "00-" TID "_" PID "-01",
        "00-" TID "-" PID "_01",
        "00-" TID " " PID "-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-" PID "-01", /* non-hex */
        "00-" TID "-00f067aa0ba902bz-01",
        "00-" TID "-" PID "-0g",
        "00-+bf92f3577b34da6a3ce929d0e0e4736-" PID "-01",
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        ok(!parses(bad[i]), "refused: '%s'", bad[i]);
    /* a NUL inside, which strlen would hide: the length is what counts */
    char nul[56];
    memcpy(nul, good, 55);
    nul[10] = '\0';
    ok(cf_trace_parse_traceparent(&t, nul, 55) != 0, "a NUL inside is refused");
    memcpy(&t, "untouched", 9);
    cf_trace_parse_traceparent(&t, "00-" TID "-" PID "-0", 54);
    ok(memcmp(&t, "untouched", 9) == 0, "a refused value leaves the trace alone");
}

static void test_tracestate(void)
{
    ok(state_ok("rojo=00f067aa0ba902b7"), "one member");
    ok(state_ok("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"), "two");
    ok(state_ok("rojo=1 , congo=2"), "spaces around the comma");
    ok(state_ok("rojo=1,\tcongo=2"), "a tab");
    ok(state_ok("a=1,,b=2"), "an empty member");
    ok(state_ok("tenant1@sys=v"), "a multi-tenant key");
    ok(state_ok("0tenant@sys=v"), "a tenant id may start with a digit");
    ok(state_ok("k_-*/=a b"), "key chars; a space inside a value");
    ok(!state_ok(""), "empty");
    ok(!state_ok(" , "), "only empty members");
    ok(!state_ok("Rojo=1"), "an uppercase key");
    ok(!state_ok("0k=1"), "a simple key starting with a digit");
    ok(!state_ok("k"), "no =");
    ok(!state_ok("=v"), "no key");
    ok(!state_ok("k="), "no value");
    ok(!state_ok("k=a="), "= in a value");
    ok(state_ok("k=a "), "a space after a value is OWS, not part of it");
    ok(!state_ok("k=\x01"), "a control byte");
    ok(!state_ok("k=caf\xc3\xa9"), "non-ASCII");
    ok(!state_ok("k=\"a\x7f\""), "DEL");
    ok(!state_ok("t@=v"), "an empty system id");
    ok(!state_ok("@s=v"), "an empty tenant id");
    ok(!state_ok("t@Sys=v"), "an uppercase system id");
    ok(!state_ok("t@abcdefghijklmno=v"), "a system id over 14");

    char buf[1200];
    /* 32 members: kept; 33: dropped */
    size_t n = 0;
    for (int i = 0; i != 32; ++i)
        n += sprintf(buf + n, "%sk%d=v", i ? "," : "", i);
    ok(cf_trace_tracestate_ok(buf, n), "32 members");
    n += sprintf(buf + n, ",k32=v");
    ok(!cf_trace_tracestate_ok(buf, n), "33 members");
    /* empty members are not counted */
    n = 0;
    for (int i = 0; i != 32; ++i)
        n += sprintf(buf + n, "%sk%d=v", i ? ",," : "", i);
    ok(cf_trace_tracestate_ok(buf, n), "32 members and empty ones");
    /* 512 bytes kept, 513 dropped */
    n = sprintf(buf, "a=");
    memset(buf + n, 'v', 254), n += 254;
    n += sprintf(buf + n, ",b=");
    memset(buf + n, 'v', 253), n += 253;
    is(n, 512, "a 512-byte tracestate");
    ok(cf_trace_tracestate_ok(buf, n), "is kept");
    buf[n++] = 'v';
    ok(!cf_trace_tracestate_ok(buf, n), "513 bytes are not");
    /* a value of 256 bytes, and 257 */
    n = sprintf(buf, "k=");
    memset(buf + n, 'v', 256), n += 256;
    ok(cf_trace_tracestate_ok(buf, n), "a value of 256");
    buf[n++] = 'v';
    ok(!cf_trace_tracestate_ok(buf, n), "a value of 257");
    /* a key of 256, and 257 */
    memset(buf, 'k', 257);
    buf[256] = '=', buf[257] = 'v';
    ok(cf_trace_tracestate_ok(buf, 258), "a key of 256");
    memset(buf, 'k', 258);
    buf[257] = '=', buf[258] = 'v';
    ok(!cf_trace_tracestate_ok(buf, 259), "a key of 257");
}

static void test_request_id(void)
{
    ok(id_ok("a"), "one character");
    ok(id_ok("req-42.a_b:C"), "every allowed kind");
    ok(id_ok("f47ac10b-58cc-4372-a567-0e02b2c3d479"), "a UUID");
    char buf[1001];
    memset(buf, 'a', sizeof(buf));
    ok(cf_trace_request_id_ok(buf, 128), "128 characters");
    ok(!cf_trace_request_id_ok(buf, 129), "129");
    ok(!cf_trace_request_id_ok(buf, 1000), "1000");
    ok(!id_ok(""), "empty");
    static const char *const bad[] = {"a b",         "\"a\"", "a/b",   "a\\b",     "a,b", "a;b", "{\"x\":1}",
                                      "caf\xc3\xa9", "a\tb",  "a\x7f", "<script>", "a=b", "a+b"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        ok(!id_ok(bad[i]), "refused: %s", tap_printable(bad[i]));
    ok(!cf_trace_request_id_ok("a\0b", 3), "a NUL");
}

static void test_ids(void)
{
    char hex[17] = {0};
    cf_trace_hex64(hex, 0x0123456789abcdefull);
    is_str(hex, "0123456789abcdef", "hex64, most significant first");
    cf_trace_hex64(hex, 0xfedcba9876543210ull);
    is_str(hex, "fedcba9876543210", "hex64, the letters");
    int same = 1;
    for (uint64_t v = 1, i = 0; i != 100000; ++i, v = v * 6364136223846793005ull + 1442695040888963407ull) {
        char want[17];
        snprintf(want, sizeof(want), "%016llx", (unsigned long long)v);
        cf_trace_hex64(hex, v);
        same &= strcmp(hex, want) == 0;
    }
    ok(same, "hex64 writes what printf(\"%%016llx\") does, for 100000 values");

    cf_trace_t t;
    cf_trace_start(&t, 0);
    ok(is_id(t.trace_id, 32), "a new trace-id is hex and not all zero");
    ok(memcmp(t.flags, "00", 2) == 0 && !t.continued && t.tracestate == NULL, "a new trace is not sampled, has no state");
    char tp[CF_TRACEPARENT_LEN + 1];
    uint64_t span = cf_trace_format_attempt(&t, tp);
    tp[CF_TRACEPARENT_LEN] = '\0';
    cf_trace_t back;
    ok(cf_trace_parse_traceparent(&back, tp, CF_TRACEPARENT_LEN) == 0, "an attempt's traceparent parses: %s", tp);
    ok(memcmp(back.trace_id, t.trace_id, 32) == 0, "with the trace's id");
    cf_trace_hex64(hex, span);
    ok(memcmp(tp + 36, hex, 16) == 0, "and the span id given back");
    char tp2[CF_TRACEPARENT_LEN];
    ok(cf_trace_format_attempt(&t, tp2) != span && memcmp(tp + 36, tp2 + 36, 16) != 0, "the next attempt has another span id");

    /* many ids: none zero, no repeat among consecutive ones */
    int zero = 0, dup = 0;
    uint64_t prev = 0;
    for (int i = 0; i != 100000; ++i) {
        uint64_t r = cf_trace_random64();
        zero += r == 0;
        dup += r == prev;
        prev = r;
    }
    is(zero, 0, "no id of 100000 is 0");
    is(dup, 0, "none repeats the one before");

    cf_spans_t spans = {0};
    for (uint64_t i = 1; i <= CF_TRACE_MAX_SPANS + 2; ++i)
        cf_spans_add(&spans, i);
    ok(spans.n == CF_TRACE_MAX_SPANS && spans.ids[0] == 1 && spans.ids[CF_TRACE_MAX_SPANS - 1] == CF_TRACE_MAX_SPANS,
       "span ids past the cap are not kept; the first ones are");

    /* xoshiro256** gives 0 whenever rng[1] is 0: with a state made so, the id is drawn again */
    uint64_t save[4];
    memcpy(save, rng, sizeof(save));
    rng[0] = 1, rng[1] = 0, rng[2] = 0, rng[3] = 0;
    rng_seeded = 1;
    ok(cf_trace_random64() != 0, "a zero draw is drawn again");
    memcpy(rng, save, sizeof(save));
}

int main(void)
{
    test_traceparent();
    test_tracestate();
    test_request_id();
    test_ids();
    return done_testing();
}
