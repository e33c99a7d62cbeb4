/* picohttpparser as bundled in libh2o 2.2.5: the library exports these functions, but Debian's libh2o-dev does not
 * install their header. One declaration of what conflux and conflux-mock use (layouts as in h2o v2.2.5's
 * deps/picohttpparser/picohttpparser.h). */
#ifndef CF_PICOHTTP_H
#define CF_PICOHTTP_H

#include <stddef.h>
#include <sys/types.h>

/** One header field: name and value point into the parsed bytes. */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/** The state of phr_decode_chunked; zero it before the first call. */
struct phr_chunked_decoder {
    size_t bytes_left_in_chunk;
    char consume_trailer;
    char _hex_count;
    char _state;
};

int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path, size_t *path_len,
                      int *minor_version, struct phr_header *headers, size_t *num_headers, size_t last_len);
int phr_parse_response(const char *buf, size_t len, int *minor_version, int *status, const char **msg, size_t *msg_len,
                       struct phr_header *headers, size_t *num_headers, size_t last_len);
ssize_t phr_decode_chunked(struct phr_chunked_decoder *decoder, char *buf, size_t *bufsz);

#endif
