/* Strict HTTP/1.1 request framing (RFC 9112) over a client's raw byte stream: pure, one byte at a time, no buffer. */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include "cf_http.h"
#include "h1guard.h"

enum {
    S_START,          /* before a request; one empty line may precede it (RFC 9112 §2.2) */
    S_START_LF,       /* after the CR of that empty line */
    S_METHOD,         /* in the method token */
    S_TARGET_FIRST,   /* the byte after the method's space */
    S_TARGET,         /* in the request-target */
    S_VERSION,        /* in "HTTP/1.x" */
    S_LINE_LF,        /* after the request line's CR */
    S_FIELD_START,    /* at the start of a header line (or the empty line that ends the head) */
    S_NAME,           /* in a field name */
    S_OWS,            /* after the colon, before the value */
    S_VALUE,          /* in a field value */
    S_FIELD_LF,       /* after a field line's CR */
    S_HEAD_END_LF,    /* after the CR of the empty line */
    S_BODY,           /* skipping Content-Length bytes */
    S_CHUNK_SIZE,     /* in a chunk size */
    S_CHUNK_BWS,      /* whitespace after the size, before ";" */
    S_CHUNK_EXT,      /* in a chunk extension */
    S_CHUNK_SIZE_LF,  /* after the chunk line's CR */
    S_CHUNK_DATA,     /* skipping chunk data */
    S_CHUNK_DATA_CR,  /* the CR after chunk data */
    S_CHUNK_DATA_LF,  /* the LF after chunk data */
    S_TRAILER_START,  /* at the start of a trailer line (or the empty line that ends the message) */
    S_TRAILER_END_LF, /* after the CR of that empty line */
    S_ERROR
};

/* per-head flags */
#define F_HTTP10 0x01
#define F_CL 0x02
#define F_TE 0x04
#define F_HOST 0x08
#define F_EXPECT_CONTINUE 0x10
#define F_TRAILER 0x20 /* the field lines being read are trailers */
#define F_SKIPPED_CRLF 0x40

/* per-value flags */
#define V_DIGITS 0x01
#define V_SPACE 0x02    /* whitespace seen after the value's text: only more whitespace may follow */
#define V_MISMATCH 0x04 /* an Expect value that is not 100-continue */

/* the fields whose values the guard reads; the name is matched a byte at a time, lower-cased */
enum { FIELD_OTHER, FIELD_CONTENT_LENGTH, FIELD_TRANSFER_ENCODING, FIELD_HOST, FIELD_EXPECT };
static const char *const field_names[] = {NULL, "content-length", "transfer-encoding", "host", "expect"};

#define MAX_METHOD 32
#define MAX_CONTENT_LENGTH 1000000000000000000ull /* 10^18: no body is that large, and the arithmetic cannot overflow */

static const struct {
    const char *message, *label;
    int status;
} results[CF_H1G_NUM_RESULTS] = {
    [CF_H1G_MORE] = {"ok", "ok", 0},
    [CF_H1G_EXPECT_CONTINUE] = {"expects 100-continue", "expect_continue", 0},
    [CF_H1G_ERR_REQUEST_LINE] = {"malformed request line", "request_line", 400},
    [CF_H1G_ERR_METHOD] = {"malformed method", "method", 400},
    [CF_H1G_ERR_TARGET] = {"malformed request target (a control byte)", "target", 400},
    [CF_H1G_ERR_VERSION] = {"unsupported HTTP version (HTTP/1.0 and HTTP/1.1 only)", "version", 505},
    [CF_H1G_ERR_HTTP2_PREFACE] = {"HTTP/2 is not enabled on this listener", "http2_preface", 505},
    [CF_H1G_ERR_BARE_LF] = {"line ends in a bare LF (CRLF required)", "bare_lf", 400},
    [CF_H1G_ERR_BARE_CR] = {"CR not followed by LF", "bare_cr", 400},
    [CF_H1G_ERR_OBS_FOLD] = {"obsolete line folding (a header line starting with whitespace)", "obs_fold", 400},
    [CF_H1G_ERR_FIELD_NAME] = {"malformed header field name", "field_name", 400},
    [CF_H1G_ERR_SPACE_BEFORE_COLON] = {"whitespace between a header field name and its colon", "space_before_colon", 400},
    [CF_H1G_ERR_FIELD_VALUE] = {"control character in a header field value", "field_value", 400},
    [CF_H1G_ERR_TOO_MANY_FIELDS] = {"too many header fields", "too_many_fields", 431},
    [CF_H1G_ERR_HEAD_TOO_LARGE] = {"request head too large", "head_too_large", 431},
    [CF_H1G_ERR_CONTENT_LENGTH] = {"malformed Content-Length", "content_length", 400},
    [CF_H1G_ERR_TWO_CONTENT_LENGTHS] = {"more than one Content-Length", "two_content_lengths", 400},
    [CF_H1G_ERR_CL_AND_TE] = {"both Content-Length and Transfer-Encoding", "cl_and_te", 400},
    [CF_H1G_ERR_TRANSFER_ENCODING] = {"Transfer-Encoding other than exactly \"chunked\"", "transfer_encoding", 400},
    [CF_H1G_ERR_TE_HTTP10] = {"Transfer-Encoding in an HTTP/1.0 request", "te_http10", 400},
    [CF_H1G_ERR_NO_HOST] = {"HTTP/1.1 request without Host", "no_host", 400},
    [CF_H1G_ERR_TWO_HOSTS] = {"more than one Host", "two_hosts", 400},
    [CF_H1G_ERR_HOST] = {"malformed Host", "host", 400},
    [CF_H1G_ERR_CHUNK_SIZE] = {"malformed chunk size (hex digits only)", "chunk_size", 400},
    [CF_H1G_ERR_CHUNK_EXT] = {"malformed chunk extension, or over 4 KiB of them in one body", "chunk_ext", 400},
    [CF_H1G_ERR_CHUNK_END] = {"chunk data not followed by CRLF", "chunk_end", 400},
    [CF_H1G_ERR_TRAILER] = {"framing field in the trailer section", "trailer", 400},
    [CF_H1G_ERR_BODY_TOO_LARGE] = {"request body too large", "body_too_large", 413},
};

const char *cf_h1guard_message(cf_h1guard_result_t r)
{
    return r < CF_H1G_NUM_RESULTS ? results[r].message : "invalid request";
}

int cf_h1guard_status(cf_h1guard_result_t r)
{
    return r < CF_H1G_NUM_RESULTS && results[r].status != 0 ? results[r].status : 400;
}

const char *cf_h1guard_label(cf_h1guard_result_t r)
{
    return r < CF_H1G_NUM_RESULTS ? results[r].label : "other";
}

void cf_h1guard_init(cf_h1guard_t *g)
{
    memset(g, 0, sizeof(*g));
    g->max_body = UINT64_MAX;
}

int cf_h1guard_idle(const cf_h1guard_t *g)
{
    return g->state == S_START && (g->flags & F_SKIPPED_CRLF) == 0;
}

/* the characters of a Host value: uri-host [":" port] (RFC 3986 reg-name, IP-literal, IPv4): ALPHA DIGIT
 * "-._~!$&'()*+,;=:[]%" */
/* clang-format off */
static const unsigned char host_chars[256] = {
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, /* 0x00 */
    0,1,0,0,1,1,1,1,1,1,1,1,1,1,1,0,1,1,1,1,1,1,1,1,1,1,1,1,0,1,0,0, /* 0x20 */
    0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0,1,0,1, /* 0x40 */
    0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,0,0,0,1,0, /* 0x60 */
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, /* 0x80 */
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, /* 0xa0 */
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, /* 0xc0 */
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, /* 0xe0 */
};
/* clang-format on */

static int lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* A field name's byte: narrows which framing field the name can still be. */
static void name_byte(cf_h1guard_t *g, unsigned char c)
{
    if (g->field == FIELD_OTHER)
        return;
    const char *want = field_names[g->field];
    if (want[g->match] != '\0' && want[g->match] == lower(c))
        ++g->match;
    else
        g->field = FIELD_OTHER;
}

/* The colon after a name: a framing field is now known. Returns an error or CF_H1G_MORE. */
static cf_h1guard_result_t name_end(cf_h1guard_t *g)
{
    if (g->field != FIELD_OTHER && field_names[g->field][g->match] != '\0')
        g->field = FIELD_OTHER; /* a prefix of one ("host" vs "hos") */
    g->match = 0;
    g->value_flags = 0;
    if (g->field == FIELD_OTHER)
        return CF_H1G_MORE;
    if ((g->flags & F_TRAILER) != 0 && g->field != FIELD_EXPECT)
        return CF_H1G_ERR_TRAILER; /* RFC 9110 §6.5.1: framing and routing fields never come in trailers */
    switch (g->field) {
    case FIELD_CONTENT_LENGTH:
        if (g->flags & F_CL)
            return CF_H1G_ERR_TWO_CONTENT_LENGTHS; /* RFC 9112 §6.3: even equal ones would be a list */
        g->flags |= F_CL;
        g->remaining = 0;
        break;
    case FIELD_TRANSFER_ENCODING:
        if (g->flags & F_TE)
            return CF_H1G_ERR_TRANSFER_ENCODING; /* two fields make a list: only "chunked" alone is framed here */
        g->flags |= F_TE;
        break;
    case FIELD_HOST:
        if (g->flags & F_HOST)
            return CF_H1G_ERR_TWO_HOSTS; /* RFC 9112 §3.2 */
        g->flags |= F_HOST;
        break;
    }
    return CF_H1G_MORE;
}

/* A byte of a field value (not CR/LF; a CTL was refused already). */
static cf_h1guard_result_t value_byte(cf_h1guard_t *g, unsigned char c)
{
    int space = c == ' ' || c == '\t';
    if (g->field == FIELD_OTHER)
        return CF_H1G_MORE;
    if (space) {
        g->value_flags |= V_SPACE; /* leading whitespace was skipped: this ends the text */
        return CF_H1G_MORE;
    }
    if ((g->value_flags & V_SPACE) != 0) {
        switch (g->field) {
        case FIELD_CONTENT_LENGTH:
            return CF_H1G_ERR_CONTENT_LENGTH;
        case FIELD_TRANSFER_ENCODING:
            return CF_H1G_ERR_TRANSFER_ENCODING;
        case FIELD_HOST:
            return CF_H1G_ERR_HOST;
        default:
            g->value_flags |= V_MISMATCH;
            return CF_H1G_MORE;
        }
    }
    switch (g->field) {
    case FIELD_CONTENT_LENGTH:
        if (c == ',')
            return CF_H1G_ERR_TWO_CONTENT_LENGTHS;
        if (c < '0' || c > '9' || g->remaining >= MAX_CONTENT_LENGTH / 10)
            return CF_H1G_ERR_CONTENT_LENGTH;
        g->remaining = g->remaining * 10 + (c - '0');
        g->value_flags |= V_DIGITS;
        return CF_H1G_MORE;
    case FIELD_TRANSFER_ENCODING:
        /* exactly "chunked": no other coding, no list, no other case (transfer codings are case-insensitive, but a
         * proxy in front that disagrees on case is the very ambiguity a smuggler looks for) */
        if (g->match >= 7 || c != (unsigned char)"chunked"[g->match])
            return CF_H1G_ERR_TRANSFER_ENCODING;
        ++g->match;
        return CF_H1G_MORE;
    case FIELD_HOST:
        return host_chars[c] ? CF_H1G_MORE : CF_H1G_ERR_HOST;
    case FIELD_EXPECT: /* the expectation is case-insensitive (RFC 9110 §10.1.1) */
        if (g->match < 12 && lower(c) == (unsigned char)"100-continue"[g->match])
            ++g->match;
        else
            g->value_flags |= V_MISMATCH;
        return CF_H1G_MORE;
    }
    return CF_H1G_MORE;
}

/* The CR that ends a value. */
static cf_h1guard_result_t value_end(cf_h1guard_t *g)
{
    switch (g->field) {
    case FIELD_CONTENT_LENGTH:
        return (g->value_flags & V_DIGITS) != 0 ? CF_H1G_MORE : CF_H1G_ERR_CONTENT_LENGTH;
    case FIELD_TRANSFER_ENCODING:
        return g->match == 7 ? CF_H1G_MORE : CF_H1G_ERR_TRANSFER_ENCODING;
    case FIELD_EXPECT:
        if (g->match == 12 && (g->value_flags & V_MISMATCH) == 0)
            g->flags |= F_EXPECT_CONTINUE;
        break;
    }
    return CF_H1G_MORE;
}

/* The LF that ends the head: the framing it declares. */
static cf_h1guard_result_t head_end(cf_h1guard_t *g)
{
    if ((g->flags & (F_HTTP10 | F_HOST)) == 0)
        return CF_H1G_ERR_NO_HOST;
    if ((g->flags & (F_CL | F_TE)) == (F_CL | F_TE))
        return CF_H1G_ERR_CL_AND_TE; /* RFC 9112 §6.3: a sender must not; a proxy may have framed it either way */
    if ((g->flags & (F_TE | F_HTTP10)) == (F_TE | F_HTTP10))
        return CF_H1G_ERR_TE_HTTP10; /* RFC 9112 §6.1 */
    if ((g->flags & F_CL) != 0 && g->remaining > g->max_body)
        return CF_H1G_ERR_BODY_TOO_LARGE; /* answered before the body is read (and before a 100 Continue) */
    if (g->flags & F_TE) {
        g->state = S_CHUNK_SIZE;
        g->hex_digits = 0;
        g->remaining = 0;
        g->chunked = 0;
        g->ext_len = 0; /* extensions are bounded per body: 4 KiB of them in one-byte chunks is 4 KiB, not gigabytes */
    } else if ((g->flags & F_CL) != 0 && g->remaining != 0) {
        g->state = S_BODY;
    } else {
        g->state = S_START;
    }
    return (g->flags & F_EXPECT_CONTINUE) != 0 ? CF_H1G_EXPECT_CONTINUE : CF_H1G_MORE;
}

/* The first byte of a field line (or of the empty line that ends a head or trailer section). */
static cf_h1guard_result_t line_start(cf_h1guard_t *g, unsigned char c, int end_state)
{
    if (c == '\r') {
        g->state = end_state;
        return CF_H1G_MORE;
    }
    if (c == '\n')
        return CF_H1G_ERR_BARE_LF;
    if (c == ' ' || c == '\t')
        return CF_H1G_ERR_OBS_FOLD; /* RFC 9112 §5.2 (and §2.2 for whitespace before the first field) */
    if (!cf_http_tchar[c])
        return CF_H1G_ERR_FIELD_NAME;
    if (++g->num_fields > CF_H1G_MAX_FIELDS)
        return CF_H1G_ERR_TOO_MANY_FIELDS;
    switch (lower(c)) {
    case 'c':
        g->field = FIELD_CONTENT_LENGTH;
        break;
    case 't':
        g->field = FIELD_TRANSFER_ENCODING;
        break;
    case 'h':
        g->field = FIELD_HOST;
        break;
    case 'e':
        g->field = FIELD_EXPECT;
        break;
    default:
        g->field = FIELD_OTHER;
        break;
    }
    g->match = 1;
    g->state = S_NAME;
    return CF_H1G_MORE;
}

static cf_h1guard_result_t fail(cf_h1guard_t *g, cf_h1guard_result_t r)
{
    g->state = S_ERROR;
    g->remaining = r; /* kept so that feeding more bytes repeats the error */
    return r;
}

/*
 * Fast paths for the common lines of a head, when all of a line is in the bytes at hand: a request line
 * (method, origin-form-like target, "HTTP/1.1" or "HTTP/1.0") and a field line whose name frames nothing (or is
 * Host), each checked in one pass. They accept only what the byte-at-a-time machine below accepts and leave the guard
 * in the state it would; anything else (a framing field, an odd byte, a line cut by the end of the bytes) returns 0
 * and goes the slow way from the line's start, so verdicts and error offsets never depend on them. t/fuzz/fuzz_h1guard
 * checks that: it compares the verdict for the whole stream with the one fed a byte at a time.
 */
static size_t fast_request_line(cf_h1guard_t *g, const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len && i <= MAX_METHOD && cf_http_tchar[p[i]])
        ++i;
    if (i == 0 || i > MAX_METHOD || i >= len || p[i] != ' ')
        return 0;
    size_t t = ++i;
    while (i < len && p[i] > 0x20 && p[i] != 0x7f)
        ++i;
    if (i == t || len - i < 11 || memcmp(p + i, " HTTP/1.", 8) != 0 || (p[i + 8] != '0' && p[i + 8] != '1') || p[i + 9] != '\r' ||
        p[i + 10] != '\n')
        return 0;
    i += 11;
    if (i > CF_H1G_MAX_HEAD)
        return 0;
    g->flags = p[i - 3] == '0' ? F_HTTP10 : 0;
    g->num_fields = 0;
    g->head_len = (uint32_t)i;
    g->state = S_FIELD_START;
    return i;
}

/*
 * How many of the len bytes at p, taken 16 or 8 at a time, are field-value bytes other than HTAB: none below 0x20 and
 * no DEL (RFC 9110 5.5). Long values (a bearer token, cookies) are most of a large head; a byte at a time they cost
 * about six instructions each, 8 at a time about two, 16 at a time (SSE2, every x86-64) under one. A block with a byte
 * below 0x20 (CR, HTAB, a control) or a DEL ends the run: the caller goes on a byte at a time from there. Bytes of 0x80
 * and above are obs-text, allowed.
 */
static size_t plain_value_bytes(const unsigned char *p, size_t len)
{
    size_t i = 0;
#ifdef __SSE2__
    /* 16 at a time: x <= 0x1f exactly when max(x, 0x1f) == 0x1f (unsigned) */
    const __m128i low = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);
    for (; len - i >= 16; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(p + i));
        __m128i bad = _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(x, low), low), _mm_cmpeq_epi8(x, del));
        if (_mm_movemask_epi8(bad) != 0)
            return i;
    }
#endif
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    for (; len - i >= 8; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        /* the high bit of a byte is set in (x - 0x20) & ~x when that byte is below 0x20 (exact for the lowest such byte,
         * which is all that matters: any hit stops the run), and the same test on x ^ 0x7f finds a DEL */
        uint64_t d = x ^ (0x7f * ones);
        if ((((x - 0x20 * ones) & ~x) | ((d - ones) & ~d)) & highs)
            break;
    }
    return i;
}

/* How many of the len bytes at p are field-value bytes (RFC 9110 5.5: HTAB, SP, VCHAR, obs-text): the run a value's
 * next CR (or a byte to refuse) ends. In bulk first, then a byte at a time from where the bulk check stopped. */
static size_t value_bytes(const unsigned char *p, size_t len)
{
    size_t i = plain_value_bytes(p, len);
    while (i < len && ((p[i] >= 0x20 && p[i] != 0x7f) || p[i] == '\t'))
        ++i;
    return i;
}

static size_t fast_field_line(cf_h1guard_t *g, const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len && cf_http_tchar[p[i]])
        ++i;
    if (i == 0 || i >= len || p[i] != ':' || g->num_fields >= CF_H1G_MAX_FIELDS)
        return 0;
    int host = i == 4 && (p[0] | 0x20) == 'h' && (p[1] | 0x20) == 'o' && (p[2] | 0x20) == 's' && (p[3] | 0x20) == 't';
    if (host && (g->flags & (F_HOST | F_TRAILER)) != 0)
        return 0;
    if (!host && ((i == 14 && (p[0] | 0x20) == 'c') || (i == 17 && (p[0] | 0x20) == 't') || (i == 6 && (p[0] | 0x20) == 'e')))
        return 0; /* maybe Content-Length, Transfer-Encoding or Expect: the slow way reads their values */
    ++i;
    while (i < len && (p[i] == ' ' || p[i] == '\t'))
        ++i;
    if (host) {
        while (i < len && host_chars[p[i]])
            ++i;
        while (i < len && (p[i] == ' ' || p[i] == '\t'))
            ++i;
    } else {
        i += value_bytes(p + i, len - i);
    }
    if (len - i < 2 || p[i] != '\r' || p[i + 1] != '\n')
        return 0;
    i += 2;
    if (g->head_len + i > CF_H1G_MAX_HEAD)
        return 0;
    if (host)
        g->flags |= F_HOST;
    g->num_fields++;
    g->head_len += (uint32_t)i;
    return i;
}

cf_h1guard_result_t cf_h1guard_feed(cf_h1guard_t *restrict g, const char *restrict bytes, size_t len, size_t *consumed)
{
    const unsigned char *restrict p = (const unsigned char *)bytes;
    cf_h1guard_result_t r = CF_H1G_MORE;
    size_t i = 0;

    if (g->state == S_ERROR) {
        *consumed = 0;
        return (cf_h1guard_result_t)g->remaining;
    }
    while (i < len) {
        unsigned char c = p[i];

        /* whole lines at once where they are plain (see fast_request_line) */
        if (g->state == S_FIELD_START && (g->flags & F_TRAILER) == 0) {
            size_t n = fast_field_line(g, p + i, len - i);
            if (n != 0) {
                i += n;
                continue;
            }
        } else if (g->state == S_START && (g->flags & F_SKIPPED_CRLF) == 0 && c != '\r') {
            size_t n = fast_request_line(g, p + i, len - i);
            if (n != 0) {
                i += n;
                continue;
            }
        }

        /* bodies: skip in bulk */
        if (g->state == S_BODY || g->state == S_CHUNK_DATA) {
            size_t n = len - i < g->remaining ? len - i : (size_t)g->remaining;
            i += n;
            g->remaining -= n;
            if (g->remaining == 0)
                g->state = g->state == S_BODY ? S_START : S_CHUNK_DATA_CR;
            continue;
        }
        /* the bulk of a head: the rest of a target, and the names and values of fields that do not frame the
         * request, checked in tight loops (a byte at a time through the switch costs ten times as much) */
        uint8_t state = g->state;
        if (state == S_TARGET || state == S_METHOD || ((state == S_NAME || state == S_VALUE) && g->field == FIELD_OTHER) ||
            (state == S_VALUE && g->field == FIELD_HOST && (g->value_flags & V_SPACE) == 0)) {
            size_t j = i;
            if (state == S_TARGET)
                while (j < len && p[j] > 0x20 && p[j] != 0x7f)
                    ++j;
            else if (state == S_NAME)
                while (j < len && cf_http_tchar[p[j]])
                    ++j;
            else if (state == S_METHOD) /* up to the longest method; the byte past it is refused below */
                while (j < len && cf_http_tchar[p[j]] && g->match + (j - i) < MAX_METHOD)
                    ++j;
            else if (g->field == FIELD_HOST)
                while (j < len && host_chars[p[j]])
                    ++j;
            else
                j += value_bytes(p + j, len - j);
            if (state == S_METHOD)
                g->match += (uint8_t)(j - i);
            if (j != i) {
                if ((g->head_len += (uint32_t)(j - i)) > CF_H1G_MAX_HEAD) {
                    r = CF_H1G_ERR_HEAD_TOO_LARGE;
                    goto Error;
                }
                i = j;
                continue;
            }
        }
        if (g->state <= S_HEAD_END_LF && g->state >= S_METHOD && ++g->head_len > CF_H1G_MAX_HEAD) {
            r = CF_H1G_ERR_HEAD_TOO_LARGE;
            goto Error;
        }

        switch (g->state) {
        case S_START:
            if (c == '\r' && (g->flags & F_SKIPPED_CRLF) == 0) {
                g->state = S_START_LF;
                break;
            }
            if (c == '\n') {
                r = CF_H1G_ERR_BARE_LF;
                goto Error;
            }
            if (!cf_http_tchar[c]) {
                r = c == '\r' ? CF_H1G_ERR_REQUEST_LINE : CF_H1G_ERR_METHOD;
                goto Error;
            }
            /* a new request */
            g->flags = 0;
            g->num_fields = 0;
            g->head_len = 1;
            g->match = 1;
            g->state = S_METHOD;
            break;
        case S_START_LF:
            if (c != '\n') {
                r = CF_H1G_ERR_BARE_CR;
                goto Error;
            }
            g->flags |= F_SKIPPED_CRLF;
            g->state = S_START;
            break;
        case S_METHOD:
            if (c == ' ') {
                g->state = S_TARGET_FIRST;
            } else if (!cf_http_tchar[c] || ++g->match > MAX_METHOD) {
                r = CF_H1G_ERR_METHOD;
                goto Error;
            }
            break;
        case S_TARGET_FIRST:
        case S_TARGET:
            /* origin-form, absolute-form, authority-form or "*": no space, no control byte (RFC 9112 §3.2). Raw
             * bytes above 0x7f are not ASCII, but clients send UTF-8 paths unencoded and nginx takes them: so do we
             * (they never reach an upstream unencoded) */
            if (c == ' ' && g->state == S_TARGET) {
                g->state = S_VERSION;
                g->match = 0;
            } else if (c > 0x20 && c != 0x7f) {
                g->state = S_TARGET;
            } else {
                r = c == '\r' || c == '\n' ? CF_H1G_ERR_REQUEST_LINE : CF_H1G_ERR_TARGET;
                goto Error;
            }
            break;
        case S_VERSION:
            /* "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3); 1.0 and 1.1 only */
            if (g->match < 5) {
                if (c != (unsigned char)"HTTP/"[g->match]) {
                    r = CF_H1G_ERR_REQUEST_LINE;
                    goto Error;
                }
            } else if (g->match == 5) {
                if (c == '2') {
                    r = CF_H1G_ERR_HTTP2_PREFACE; /* "PRI * HTTP/2.0": prior knowledge of h2 */
                    goto Error;
                }
                if (c != '1') {
                    r = c >= '0' && c <= '9' ? CF_H1G_ERR_VERSION : CF_H1G_ERR_REQUEST_LINE;
                    goto Error;
                }
            } else if (g->match == 6) {
                if (c != '.') {
                    r = CF_H1G_ERR_REQUEST_LINE;
                    goto Error;
                }
            } else if (g->match == 7) {
                if (c == '0') {
                    g->flags |= F_HTTP10;
                } else if (c != '1') {
                    r = c >= '0' && c <= '9' ? CF_H1G_ERR_VERSION : CF_H1G_ERR_REQUEST_LINE;
                    goto Error;
                }
            } else if (c == '\r') {
                g->state = S_LINE_LF;
            } else {
                r = c == '\n' ? CF_H1G_ERR_BARE_LF : CF_H1G_ERR_REQUEST_LINE;
                goto Error;
            }
            ++g->match;
            break;
        case S_LINE_LF:
        case S_FIELD_LF:
            if (c != '\n') {
                r = CF_H1G_ERR_BARE_CR;
                goto Error;
            }
            g->state = (g->flags & F_TRAILER) != 0 ? S_TRAILER_START : S_FIELD_START;
            break;
        case S_FIELD_START:
            if ((r = line_start(g, c, S_HEAD_END_LF)) != CF_H1G_MORE)
                goto Error;
            break;
        case S_TRAILER_START:
            if ((r = line_start(g, c, S_TRAILER_END_LF)) != CF_H1G_MORE)
                goto Error;
            break;
        case S_NAME:
            if (c == ':') {
                if ((r = name_end(g)) != CF_H1G_MORE)
                    goto Error;
                g->state = S_OWS;
            } else if (c == ' ' || c == '\t') {
                r = CF_H1G_ERR_SPACE_BEFORE_COLON; /* RFC 9112 §5.1: must be refused */
                goto Error;
            } else if (cf_http_tchar[c]) {
                name_byte(g, c);
            } else {
                r = CF_H1G_ERR_FIELD_NAME;
                goto Error;
            }
            break;
        case S_OWS:
            if (c == ' ' || c == '\t')
                break;
            g->state = S_VALUE;
            /* fall through */
        case S_VALUE:
            if (c == '\r') {
                if ((r = value_end(g)) != CF_H1G_MORE)
                    goto Error;
                g->state = S_FIELD_LF;
            } else if (c == '\n') {
                r = CF_H1G_ERR_BARE_LF;
                goto Error;
            } else if ((c < 0x20 && c != '\t') || c == 0x7f) {
                r = CF_H1G_ERR_FIELD_VALUE; /* NUL, a lone CR's kin, DEL (RFC 9110 §5.5) */
                goto Error;
            } else if ((r = value_byte(g, c)) != CF_H1G_MORE) {
                goto Error;
            }
            break;
        case S_HEAD_END_LF:
            if (c != '\n') {
                r = CF_H1G_ERR_BARE_CR;
                goto Error;
            }
            r = head_end(g);
            if (r == CF_H1G_EXPECT_CONTINUE) {
                *consumed = i + 1;
                return r;
            }
            if (r != CF_H1G_MORE)
                goto Error;
            break;
        case S_CHUNK_SIZE: {
            int v = cf_hexval(c);
            if (v >= 0) {
                if (++g->hex_digits > 16) { /* libh2o's decoder stops at 16 digits too */
                    r = CF_H1G_ERR_CHUNK_SIZE;
                    goto Error;
                }
                g->remaining = (g->remaining << 4) | (uint64_t)v;
            } else if (g->hex_digits == 0 || c == '\n') {
                r = c == '\n' ? CF_H1G_ERR_BARE_LF : CF_H1G_ERR_CHUNK_SIZE;
                goto Error;
            } else if (c == '\r') {
                g->state = S_CHUNK_SIZE_LF;
            } else if (c == ';') {
                g->state = S_CHUNK_EXT;
            } else if (c == ' ' || c == '\t') {
                g->state = S_CHUNK_BWS;
            } else {
                r = CF_H1G_ERR_CHUNK_SIZE; /* "0x10", "1 0", "-1" */
                goto Error;
            }
            break;
        }
        case S_CHUNK_BWS:
            if (c == ';') {
                g->state = S_CHUNK_EXT;
            } else if (c != ' ' && c != '\t') {
                r = CF_H1G_ERR_CHUNK_SIZE;
                goto Error;
            }
            break;
        case S_CHUNK_EXT:
            if (c == '\r') {
                g->state = S_CHUNK_SIZE_LF;
            } else if (c == '\n') {
                r = CF_H1G_ERR_BARE_LF;
                goto Error;
            } else if ((c < 0x20 && c != '\t') || c == 0x7f || ++g->ext_len > CF_H1G_MAX_CHUNK_EXT) {
                r = CF_H1G_ERR_CHUNK_EXT;
                goto Error;
            }
            break;
        case S_CHUNK_SIZE_LF:
            if (c != '\n') {
                r = CF_H1G_ERR_BARE_CR;
                goto Error;
            }
            if (g->remaining != 0) {
                /* a chunk size is at most 16 hex digits, and the sum stops at the first one over the bound */
                if (g->remaining > g->max_body || (g->chunked += g->remaining) > g->max_body) {
                    r = CF_H1G_ERR_BODY_TOO_LARGE;
                    goto Error;
                }
                g->state = S_CHUNK_DATA;
            } else {
                g->state = S_TRAILER_START;
                g->flags |= F_TRAILER;
            }
            break;
        case S_CHUNK_DATA_CR:
            if (c != '\r') {
                r = c == '\n' ? CF_H1G_ERR_BARE_LF : CF_H1G_ERR_CHUNK_END;
                goto Error;
            }
            g->state = S_CHUNK_DATA_LF;
            break;
        case S_CHUNK_DATA_LF:
            if (c != '\n') {
                r = CF_H1G_ERR_CHUNK_END;
                goto Error;
            }
            g->state = S_CHUNK_SIZE;
            g->hex_digits = 0;
            g->remaining = 0;
            break;
        case S_TRAILER_END_LF:
            if (c != '\n') {
                r = CF_H1G_ERR_BARE_CR;
                goto Error;
            }
            g->state = S_START;
            g->flags = 0;
            break;
        }
        ++i;
    }
    *consumed = i;
    return CF_H1G_MORE;

Error:
    *consumed = i;
    return fail(g, r);
}
