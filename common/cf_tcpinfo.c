/* How far a TCP peer has read: the kernel's count of bytes it acknowledged (RFC 4898), for timeouts that watch progress. */
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h> /* IPPROTO_TCP */
#include <sys/socket.h>
#include <linux/tcp.h> /* glibc's <netinet/tcp.h> has a struct tcp_info without tcpi_bytes_acked; they cannot both be used */
#include "cf_tcpinfo.h"

uint64_t cf_tcp_bytes_acked(int fd)
{
    struct tcp_info info;
    socklen_t len = sizeof(info);
    if (fd < 0 || getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(info.tcpi_bytes_acked))
        return UINT64_MAX;
    return info.tcpi_bytes_acked;
}
