/* A minimal TAP producer for C unit tests: ok / is / is_str / done_testing, printing both values on failure. */
#ifndef CF_TAP_H
#define CF_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_count, tap_failed;

#define ok(cond, ...) tap_ok_((cond) ? 1 : 0, __FILE__, __LINE__, __VA_ARGS__)
#define is(got, expected, ...)                                                                                                     \
    do {                                                                                                                           \
        long long tap_g_ = (long long)(got), tap_e_ = (long long)(expected);                                                       \
        if (!tap_ok_(tap_g_ == tap_e_, __FILE__, __LINE__, __VA_ARGS__))                                                           \
            printf("#          got: %lld\n#     expected: %lld\n", tap_g_, tap_e_);                                                \
    } while (0)
#define is_str(got, expected, ...)                                                                                                 \
    do {                                                                                                                           \
        const char *tap_g_ = (got), *tap_e_ = (expected);                                                                          \
        int tap_same_ = (tap_g_ == NULL || tap_e_ == NULL) ? tap_g_ == tap_e_ : strcmp(tap_g_, tap_e_) == 0;                       \
        if (!tap_ok_(tap_same_, __FILE__, __LINE__, __VA_ARGS__))                                                                  \
            printf("#          got: '%s'\n#     expected: '%s'\n", tap_g_ ? tap_g_ : "(null)", tap_e_ ? tap_e_ : "(null)");        \
    } while (0)
#define diag(...) (printf("# "), printf(__VA_ARGS__), printf("\n"))

static int tap_ok_(int pass, const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
#include <stdarg.h>
static int tap_ok_(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    ++tap_count;
    printf("%s %d - ", pass ? "ok" : "not ok", tap_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!pass) {
        ++tap_failed;
        printf("#   Failed test at %s line %d.\n", file, line);
    }
    fflush(stdout);
    return pass;
}

/** The string with control and non-ASCII bytes shown as \xNN, for test names (in a static buffer, so one at a time). */
static inline const char *tap_printable(const char *s)
{
    static char buf[512];
    size_t o = 0;
    if (s == NULL)
        return "(null)";
    for (; *s != '\0' && o + 5 < sizeof(buf); ++s) {
        unsigned char c = (unsigned char)*s;
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, c < 0x20 || c >= 0x7f ? "\\x%02x" : "%c", c);
    }
    buf[o] = '\0';
    return buf;
}

/** Prints the plan; use as `return done_testing();` from main. */
static int done_testing(void)
{
    printf("1..%d\n", tap_count);
    return tap_failed != 0;
}

#endif
