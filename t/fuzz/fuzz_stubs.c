/* libFuzzer harness for conflux-mock's stub loader: YAML documents and one-line stubs, and matching what they define. */
/*
 * Input: byte 0 picks the form: even, the rest is a YAML/JSON document for cf_mock_load_runtime (what POST
 * /__mock/stubs takes); odd, the rest up to a NUL is a one-line stub for cf_mock_load_cli (--stub). Checks:
 * - a refusal says why and publishes nothing; a refused document, on one line of printable text;
 * - every published stub is well-formed: key "METHOD PATH" (then " @LISTENER" for a stub of one listener), a token
 *   or "*" method, a path of segments that starts with '/', at most CF_MOCK_MAX_PARAMS captures with a {rest*} only
 *   last, a status 200-599, header names that are tokens and values without CR or LF, a fault rate in [0, 1], a
 *   sequence of valid steps;
 * - its body template is a cut of its body: the text pieces and the {param} / {query.name} references, put back
 *   together, are the body byte for byte;
 * - a request for a path built from its pattern (each {param} a value, {rest*} two segments) matches it, with those
 *   values as captures, or matches a stub at least as specific.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../mocks/match.c"
#include "../../mocks/stubs.c"
#include "../../mocks/timing.c"

static void bug(const char *what, const cf_mock_stub_t *stub)
{
    fprintf(stderr, "fuzz_stubs: %s%s%s\n", what, stub != NULL ? ": " : "", stub != NULL ? stub->key : "");
    abort();
}

static void check_body_template(const cf_mock_stub_t *stub)
{
    cf_buf_t b = CF_BUF_INIT;
    for (size_t i = 0; i != stub->n_pieces; ++i) {
        const cf_mock_piece_t *piece = stub->pieces + i;
        switch (piece->kind) {
        case CF_MOCK_PIECE_TEXT:
            if (piece->text.base < stub->body || piece->text.base + piece->text.len > stub->body + stub->body_len)
                bug("a text piece outside the body", stub);
            cf_buf_append(&b, piece->text.base, piece->text.len);
            break;
        case CF_MOCK_PIECE_QUERY:
            cf_buf_appendf(&b, "{query.%.*s}", (int)piece->text.len, piece->text.base);
            break;
        case CF_MOCK_PIECE_PARAM: {
            size_t k = 0, i_seg = 0;
            for (; i_seg != stub->n_segs; ++i_seg)
                if (stub->segs[i_seg].kind != CF_MOCK_SEG_LITERAL && k++ == piece->param)
                    break;
            if (i_seg == stub->n_segs)
                bug("a {param} piece for no capture", stub);
            cf_buf_appendf(&b, "{%.*s}", (int)stub->segs[i_seg].text.len, stub->segs[i_seg].text.base);
        } break;
        }
    }
    if (b.len != stub->body_len || (b.len != 0 && memcmp(b.base, stub->body, b.len) != 0))
        bug("the body template does not put the body back together", stub);
    cf_buf_free(&b);
}

static void check_match(const cf_mock_stub_t *stub)
{
    cf_buf_t path = CF_BUF_INIT;
    char values[CF_MOCK_MAX_PARAMS][16];
    size_t n = 0;
    for (size_t i = 0; i != stub->n_segs; ++i) {
        const cf_mock_seg_t *seg = stub->segs + i;
        cf_buf_appendc(&path, '/');
        if (seg->kind == CF_MOCK_SEG_LITERAL) {
            cf_buf_append(&path, seg->text.base, seg->text.len);
        } else {
            snprintf(values[n], sizeof(values[n]), seg->kind == CF_MOCK_SEG_REST ? "r%zu/s" : "v%zu", n);
            cf_buf_appends(&path, values[n]);
            ++n;
        }
    }
    h2o_iovec_t method =
        strcmp(stub->method, "*") == 0 ? h2o_iovec_init(H2O_STRLIT("GET")) : h2o_iovec_init(stub->method, strlen(stub->method));
    h2o_iovec_t caps[CF_MOCK_MAX_PARAMS];
    cf_mock_request_t r = {method, h2o_iovec_init(path.base, path.len)};
    cf_mock_stub_t *got = cf_mock_stubs_match(&r, caps);
    cf_mock_request_dispose(&r);
    if (got == NULL)
        bug("a path built from a stub's pattern matches nothing", stub);
    if (got == stub) {
        for (size_t i = 0; i != n; ++i)
            if (!h2o_memis(caps[i].base, caps[i].len, values[i], strlen(values[i])))
                bug("a capture is not the value in the path", stub);
    } else if (got->priority > stub->priority || (got->priority == stub->priority && compare_specificity(got, stub) < 0)) {
        bug("a path built from a stub's pattern matches a stub of a higher priority or less specific", stub);
    }
    cf_mock_stub_release(got);
    cf_buf_free(&path);
}

static void check_stub(const cf_mock_stub_t *stub)
{
    char key[8192];
    snprintf(key, sizeof(key), "%s %s%s%s", stub->method, stub->path, stub->listener != NULL ? " @" : "",
             stub->listener != NULL ? stub->listener : "");
    if (stub->name != NULL ? strcmp(stub->name, stub->key) != 0
                           : strncmp(key, stub->key, strlen(key)) != 0 ||
                                 (stub->key[strlen(key)] != '\0' && (stub->match.n == 0 && stub->scenario == NULL)))
        bug("a key that is not its name, or METHOD PATH [@LISTENER] [conditions]", stub);
    if (check_method(stub->method, key, sizeof(key)) != 0 || stub->path[0] != '/' || stub->n_segs == 0)
        bug("a bad method or path", stub);
    size_t params = 0;
    for (size_t i = 0; i != stub->n_segs; ++i) {
        if (stub->segs[i].kind == CF_MOCK_SEG_LITERAL)
            continue;
        if (++params > CF_MOCK_MAX_PARAMS || (stub->segs[i].kind == CF_MOCK_SEG_REST && i + 1 != stub->n_segs))
            bug("too many captures, or a {rest*} before the end", stub);
    }
    if (stub->status < 200 || stub->status > 599 || !(stub->fault_rate >= 0 && stub->fault_rate <= 1) || stub->fault < 0 ||
        stub->fault > CF_MOCK_FAULT_TRICKLE || stub->body == NULL || stub->body[stub->body_len] != '\0')
        bug("status, fault or body", stub);
    for (size_t i = 0; i != stub->n_headers; ++i)
        if (!cf_http_is_token(stub->header_names[i].base, stub->header_names[i].len) ||
            strpbrk(stub->header_values[i].base, "\r\n") != NULL)
            bug("a header that would break the response", stub);
    for (size_t i = 0; i != stub->n_sequence; ++i) {
        const cf_mock_step_t *s = stub->sequence + i;
        if (s->fault == CF_MOCK_FAULT_NONE ? s->status < 200 || s->status > 599 : s->fault > CF_MOCK_FAULT_TRICKLE)
            bug("a sequence step that is neither a status nor a fault", stub);
    }
    check_body_template(stub);
    /* a bare request for its path may not meet its conditions or scenario state */
    if (stub->match.n == 0 && stub->state == NULL)
        check_match(stub);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    size_t n = 0, replaced = 0;
    int ret;
    if (size == 0)
        return 0;
    err[0] = '\0';
    if ((data[0] & 1) == 0) {
        ret = cf_mock_load_runtime((const char *)data + 1, size - 1, &replaced, err, sizeof(err));
    } else {
        char *line = h2o_strdup(NULL, (const char *)data + 1, size - 1).base;
        ret = cf_mock_load_cli(line, err, sizeof(err));
        free(line);
        if (ret == 0)
            ret = 1;
    }
    cf_mock_stub_t **stubs = cf_mock_stubs_list(&n);
    if (ret < 0) {
        if (err[0] == '\0' || n != 0)
            bug(err[0] == '\0' ? "a refusal without a reason" : "a refused load published stubs", NULL);
        for (const char *p = err; (data[0] & 1) == 0 && *p != '\0'; ++p)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                bug("a control byte in an error message", NULL);
    } else {
        if ((size_t)ret != n || replaced != 0)
            bug("the count of published stubs", NULL);
        for (size_t i = 0; i != n; ++i)
            check_stub(stubs[i]);
    }
    cf_mock_stubs_dispose();
    return 0;
}
