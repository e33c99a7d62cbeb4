/*
 * libFuzzer harness for gateway/trace.c, which reads three client headers: traceparent, tracestate, X-Request-Id.
 * Input: the value itself, given to all three checks. Checks:
 *  - a traceparent that parses is 55 bytes of "00-" hex32 "-" hex16 "-" hex2, lowercase, ids not all zero, and the
 *    trace-id and flags it yields are the input's; an attempt's traceparent written from it parses back to them;
 *  - a tracestate that passes is 1 to 512 bytes of printable ASCII or tab (nothing that could end a header line);
 *  - an X-Request-Id that passes is 1 to 128 bytes of [A-Za-z0-9._:-].
 * Build and run: see README.md.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../gateway/trace.c"

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    cf_trace_t t;
    memset(&t, 0, sizeof(t));
    if (cf_trace_parse_traceparent(&t, s, size) == 0) {
        check(size == CF_TRACEPARENT_LEN && memcmp(s, "00-", 3) == 0 && s[35] == '-' && s[52] == '-');
        check(is_id(s + 3, 32) && is_id(s + 36, 16) && is_lchex(s[53]) && is_lchex(s[54]));
        check(memcmp(t.trace_id, s + 3, 32) == 0 && memcmp(t.flags, s + 53, 2) == 0);
        char tp[CF_TRACEPARENT_LEN], span[16];
        cf_trace_hex64(span, cf_trace_format_attempt(&t, tp));
        cf_trace_t back;
        check(cf_trace_parse_traceparent(&back, tp, sizeof(tp)) == 0);
        check(memcmp(back.trace_id, t.trace_id, 32) == 0 && memcmp(back.flags, t.flags, 2) == 0);
        check(is_id(span, 16) && memcmp(tp + 36, span, 16) == 0);
    }
    if (cf_trace_tracestate_ok(s, size)) {
        check(size >= 1 && size <= CF_TRACESTATE_MAX_LEN);
        for (size_t i = 0; i != size; ++i)
            check((data[i] >= 0x20 && data[i] <= 0x7e) || data[i] == '\t');
    }
    if (cf_trace_request_id_ok(s, size)) {
        check(size >= 1 && size <= CF_REQUEST_ID_MAX_LEN);
        for (size_t i = 0; i != size; ++i)
            check(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-", data[i]) != NULL && data[i] != 0);
    }
    return 0;
}
