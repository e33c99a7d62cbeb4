/* How far a TCP peer has read (TCP_INFO). */
#ifndef CF_TCPINFO_H
#define CF_TCPINFO_H

#include <stdint.h>

/**
 * The bytes of the stream on socket `fd` that the peer has acknowledged so far (it only grows), or UINT64_MAX when the
 * kernel cannot tell (not a TCP socket, or a kernel before Linux 4.1).
 */
uint64_t cf_tcp_bytes_acked(int fd);

#endif
