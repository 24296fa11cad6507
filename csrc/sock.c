/*
 * sock.c - the rtnetlink socket: open it (optionally inside another network
 * namespace), send a run of requests, read and match every ACK.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <time.h>
#include <sys/socket.h>

#include "pn_internal.h"

/* poll() is given at most this many ms at a time (its timeout is an int);
 * the deadline, which bounds the whole wait, is looked at after each. */
#define PN_POLL_SLICE_MS 60000

/* drain() reads at most this many datagrams: a bound on the loop far above
 * what any receive buffer holds (1 MiB, RCVBUF in _core.py, is some 30000
 * of the smallest ACKs). */
#define PN_DRAIN_MAX (1 << 20)

static int setopt(int fd, int level, int name, const void *v, socklen_t n)
{
    return setsockopt(fd, level, name, v, n) ? -errno : 0;
}

/* Extended ACKs, capped ACKs, buffer size, bind; returns the port id. */
static int configure(int fd, int rcvbuf, uint32_t *portid)
{
    struct sockaddr_nl sa;
    socklen_t salen = sizeof(sa);
    int one = 1, err;

    if ((err = setopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one))) ||
        (err = setopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one))))
        return err;
    if (rcvbuf > 0 && setopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) &&
        (err = setopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf))))
        return err;
    memset(&sa, 0, sizeof(sa));
    sa.nl_family = AF_NETLINK;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
        getsockname(fd, (struct sockaddr *)&sa, &salen))
        return -errno;
    *portid = sa.nl_pid;
    return 0;
}

/*
 * Open an rtnetlink socket; with netns_fd >= 0, inside that namespace.
 * A socket stays in the namespace it was made in, so the calling thread
 * enters the target just long enough to call socket() and comes back: no
 * fork, no process-wide switch.  It comes back to home_fd, the namespace the
 * thread is in now (a caller opening many sockets opens it once), or, with
 * home_fd -1, to /proc/thread-self/ns/net opened here.  -ENOTRECOVERABLE
 * means the thread could not return (it should not happen: we could leave it).
 */
int pn_socket_open(int netns_fd, int home_fd, int rcvbuf, uint32_t *portid)
{
    int home = -1, fd, err = 0;

    if (netns_fd >= 0 && (err = pn_netns_enter(netns_fd, home_fd, &home)))
        return err;
    fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        err = -errno;
    if (netns_fd >= 0 && pn_netns_leave(home, home_fd))
        err = -ENOTRECOVERABLE;
    if (!err)
        err = configure(fd, rcvbuf, portid);
    if (err && fd >= 0)
        close(fd);
    return err ? err : fd;
}

int pn_socket_join(int fd, uint32_t group)
{
    return setopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group));
}

/* A signal interrupting recvfrom() is retried at most this often. */
#define PN_EINTR_MAX 100

/*
 * One queued datagram, without waiting: a monitor's caller polls the fd
 * (with others) and reads what is there.  MSG_TRUNC: the datagram's whole
 * length comes back even when it was cut to cap.
 */
int pn_recv(int fd, unsigned char *buf, uint32_t cap, uint32_t *from_kernel)
{
    struct sockaddr_nl from;
    socklen_t fromlen;
    ssize_t n;
    int tries = 0;

    if (cap > PN_MAX_BUF)
        return -EINVAL;
    do {
        fromlen = sizeof(from);
        n = recvfrom(fd, buf, cap, MSG_TRUNC | MSG_DONTWAIT, (struct sockaddr *)&from, &fromlen);
    } while (n < 0 && errno == EINTR && ++tries < PN_EINTR_MAX);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if (n > PN_MAX_BUF)
        return -EMSGSIZE;
    *from_kernel = fromlen >= sizeof(from) && from.nl_family == AF_NETLINK && from.nl_pid == 0;
    return (int)n;
}

int pn_socket_close(int fd)
{
    return close(fd) ? -errno : 0;
}

/* Bytes of the next `want` messages at b->data + off, checking that their
 * sequence numbers run on from seq; sets *n to the number of messages. */
static int run_length(const struct pn_buf *b, uint32_t off, uint32_t seq,
                      uint32_t want, uint32_t *n)
{
    uint32_t start = off;

    for (*n = 0; *n < want; ++*n) {
        struct nlmsghdr h;

        if (b->len - off < NLMSG_HDRLEN)
            return -EINVAL;
        memcpy(&h, b->data + off, sizeof(h));
        if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > b->len - off ||
            h.nlmsg_seq != seq + *n)
            return -EINVAL;
        off += NLMSG_ALIGN(h.nlmsg_len);
        if (off > b->len)
            off = b->len;
    }
    return (int)(off - start);
}

static int send_bytes(int fd, const unsigned char *p, uint32_t len)
{
    struct sockaddr_nl kernel;
    ssize_t n;

    memset(&kernel, 0, sizeof(kernel));
    kernel.nl_family = AF_NETLINK;
    do
        n = sendto(fd, p, len, 0, (struct sockaddr *)&kernel, sizeof(kernel));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return (uint32_t)n == len ? 0 : -EIO;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * recvfrom() without blocking, polling when nothing is queued, until
 * `deadline` (CLOCK_MONOTONIC, ms): the datagram's whole length (even when
 * more than len: MSG_TRUNC), or -errno (-ETIMEDOUT when the deadline passes
 * with nothing queued, -ENOBUFS when the socket overflowed and the kernel
 * dropped messages).  Signals (EINTR) do not extend the deadline.  The
 * kernel answers a request while handling its send, so the answer is
 * usually queued already: read first — a datagram queued is taken even if
 * the deadline has passed (the time went by inside the kernel, not waiting
 * for it) — and poll only when nothing is.
 */
static int recv_until(int fd, void *buf, uint32_t len, int flags, int64_t deadline,
                      int *from_kernel)
{
    struct sockaddr_nl from;
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    socklen_t fromlen;
    ssize_t n;

    for (;;) {
        fromlen = sizeof(from);
        n = recvfrom(fd, buf, len, flags | MSG_TRUNC | MSG_DONTWAIT,
                     (struct sockaddr *)&from, &fromlen);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int64_t left = deadline - now_ms();

            if (left <= 0)
                return -ETIMEDOUT;
            if (poll(&pfd, 1, (int)(left < PN_POLL_SLICE_MS ? left : PN_POLL_SLICE_MS)) < 0 && errno != EINTR)
                return -errno;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n > PN_MAX_BUF)
            return -EMSGSIZE;
        *from_kernel = fromlen >= sizeof(from) && from.nl_family == AF_NETLINK && from.nl_pid == 0;
        return (int)n;
    }
}

/* One datagram from the kernel (anyone else's are dropped): as recv_until(). */
static int recv_one(int fd, unsigned char *rbuf, uint32_t rcap, int64_t deadline)
{
    for (;;) {
        int from_kernel = 0, n = recv_until(fd, rbuf, rcap, 0, deadline, &from_kernel);

        if (n < 0 || from_kernel)
            return n;
    }
}

/* The header of a datagram that did not fit in rbuf (len > rcap): is it
 * for portid, with a sequence number in [first_seq, first_seq + count)?
 * Sets *seq. */
static int cut_is_ours(const unsigned char *rbuf, uint32_t rcap, uint32_t portid,
                       uint32_t first_seq, uint32_t count, uint32_t *seq)
{
    struct nlmsghdr h;

    if (rcap < sizeof(h))
        return 0;
    memcpy(&h, rbuf, sizeof(h));
    *seq = h.nlmsg_seq;
    return h.nlmsg_pid == portid && h.nlmsg_seq - first_seq < count;
}

/* Match one received datagram of `len` bytes to results[]: a datagram that
 * did not fit marks its request truncated (the caller asks again with a
 * bigger buffer); if it was the request's ACK, its error code (which comes
 * first) still completes the request.  Returns how many requests it
 * completed, or -errno. */
static int take_replies(const unsigned char *rbuf, uint32_t rcap, int len, uint32_t portid,
                        uint32_t first_seq, uint32_t count, struct pn_result *results)
{
    struct nlmsghdr h;
    struct nlmsgerr e;
    struct pn_result *r;
    uint32_t seq;

    if ((uint32_t)len <= rcap)
        return pn_parse_replies(rbuf, (uint32_t)len, portid, first_seq, count, results);
    if (!cut_is_ours(rbuf, rcap, portid, first_seq, count, &seq))
        return 0;
    r = &results[seq - first_seq];
    r->truncated = (uint32_t)len;
    memcpy(&h, rbuf, sizeof(h));
    if (h.nlmsg_type != NLMSG_ERROR || rcap < NLMSG_HDRLEN + sizeof(e) || r->error != PN_PENDING)
        return 0;
    memcpy(&e, rbuf + NLMSG_HDRLEN, sizeof(e));
    r->error = e.error <= 0 ? e.error : -EPROTO;
    return 1;
}

/* The length of the next datagram, left queued, and whether the kernel
 * sent it: as recv_until(). */
static int peek_len(int fd, int64_t deadline, int *from_kernel)
{
    return recv_until(fd, NULL, 0, MSG_PEEK, deadline, from_kernel);
}

/* After an overflow: read what the kernel did queue (it answered every
 * request sent while handling its send), without waiting.  Returns how
 * many more requests that completed. */
static uint32_t drain(int fd, unsigned char *rbuf, uint32_t rcap, uint32_t portid,
                      uint32_t first_seq, uint32_t count, struct pn_result *results)
{
    uint32_t done = 0;
    int guard;

    for (guard = 0; guard < PN_DRAIN_MAX; guard++) {
        struct sockaddr_nl from;
        socklen_t fromlen = sizeof(from);
        ssize_t n = recvfrom(fd, rbuf, rcap, MSG_TRUNC | MSG_DONTWAIT,
                             (struct sockaddr *)&from, &fromlen);
        int got;

        if (n < 0 && (errno == EINTR || errno == ENOBUFS))
            continue;                       /* ENOBUFS: reported already */
        if (n < 0 || n > PN_MAX_BUF)
            break;                          /* EAGAIN: nothing more queued */
        if (fromlen < sizeof(from) || from.nl_family != AF_NETLINK || from.nl_pid != 0)
            continue;
        got = take_replies(rbuf, rcap, (int)n, portid, first_seq, count, results);
        if (got > 0)
            done += (uint32_t)got;
    }
    return done;
}

/*
 * Send the `count` requests in b (sequence numbers first_seq, first_seq+1,
 * ...) at most `window` per send, and read until each has its ACK.
 * timeout_ms (> 0) bounds each wait with nothing to read: it starts when a
 * send returns and again at each datagram of the kernel's, so a kernel
 * that is slow to handle a send (RTNL held by others: the send itself
 * blocks) never trips it; only one that stops answering does.  results[i] gets the outcome of request i; a
 * reply that did not fit in rbuf sets results[i].truncated to its length.
 * Returns 0 when every request was answered (whatever each answer was), or,
 * answered too, how many replies did not fit (results[i].truncated), or
 * -errno when the exchange itself failed; requests still PN_PENDING then
 * have an unknown fate.  After -ENOBUFS (the kernel dropped replies: the
 * receive buffer overflowed), whatever was queued has been read, and no
 * more windows were sent.
 */
int pn_transact(int fd, uint32_t portid, const struct pn_buf *b, uint32_t first_seq,
                uint32_t count, uint32_t window, int timeout_ms,
                struct pn_result *results, unsigned char *rbuf, uint32_t rcap)
{
    uint32_t i, off = 0, sent = 0, done = 0, cut;
    int64_t deadline = now_ms() + timeout_ms;

    if (window == 0 || timeout_ms <= 0 || b->cap > PN_MAX_BUF || b->len > b->cap ||
        rcap > PN_MAX_BUF)
        return -EINVAL;
    for (i = 0; i < count; i++) {
        memset(&results[i], 0, sizeof(results[i]));
        results[i].seq = first_seq + i;
        results[i].error = PN_PENDING;
    }
    while (sent < count) {
        uint32_t n;
        int bytes = run_length(b, off, first_seq + sent,
                               count - sent < window ? count - sent : window, &n);
        int err;

        if (bytes < 0)
            return bytes;
        if ((err = send_bytes(fd, b->data + off, (uint32_t)bytes)))
            return err;
        off += (uint32_t)bytes;
        sent += n;
        deadline = now_ms() + timeout_ms;       /* the send's time in the kernel does not count */
        while (done < sent) {
            int len = recv_one(fd, rbuf, rcap, deadline);

            if (len == -ENOBUFS) {                  /* what was dropped may not be ours */
                done += drain(fd, rbuf, rcap, portid, first_seq, sent, results);
                if (done == sent)
                    continue;
            }
            if (len < 0)
                return len;
            len = take_replies(rbuf, rcap, len, portid, first_seq, sent, results);
            if (len < 0)
                return len;
            done += (uint32_t)len;
            deadline = now_ms() + timeout_ms;   /* the kernel is answering: wait on */
        }
    }
    for (i = 0, cut = 0; i < count; i++)
        cut += results[i].truncated != 0;
    return (int)cut;
}

/* Send the whole of b in one datagram (a dump request, say). */
int pn_send(int fd, const struct pn_buf *b)
{
    if (b->len > b->cap || b->cap > PN_MAX_BUF)
        return -EINVAL;
    return send_bytes(fd, b->data, b->len);
}

/*
 * Receive the dump `seq` into the dump's array until it ends or the array
 * has less room than one more datagram could fill; the caller empties it
 * (dump->n = 0) and calls again while !dump->done.  Returns 0 or -errno;
 * -EMSGSIZE when the next part of the dump would not fit in rbuf: it is
 * left queued and dump->truncated says its length (call again with a
 * bigger buffer).  Each part is peeked at first: a dump is rare enough to
 * afford the extra call.
 */
int pn_dump_recv(int fd, uint32_t portid, uint32_t seq, int timeout_ms,
                 unsigned char *rbuf, uint32_t rcap, struct pn_dump *dump)
{
    uint32_t most = rcap / PN_DUMP_PART_MIN + 1;    /* parts one datagram can hold */
    int64_t deadline = now_ms() + timeout_ms;

    if (timeout_ms <= 0 || rcap > PN_MAX_BUF || dump->n > dump->cap || dump->cap < most)
        return -EINVAL;
    while (!dump->done && dump->cap - dump->n >= most) {
        int from_kernel = 0, len = peek_len(fd, deadline, &from_kernel);

        if (len < 0)
            return len;
        if (from_kernel && (uint32_t)len > rcap) {
            dump->truncated = (uint32_t)len;        /* still queued: read it with more room */
            return -EMSGSIZE;
        }
        len = recv_until(fd, rbuf, rcap, 0, deadline, &from_kernel);    /* the one peeked at */
        if (len < 0)
            return len;
        if (!from_kernel || (uint32_t)len > rcap)
            continue;                               /* not the kernel's: dropped */
        len = pn_parse_dump(rbuf, (uint32_t)len, portid, seq, dump);
        if (len < 0)
            return len;
        deadline = now_ms() + timeout_ms;           /* the kernel is answering: wait on */
    }
    return 0;
}
