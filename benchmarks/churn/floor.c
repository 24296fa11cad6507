/*
 * floor.c - the floor of the churn benchmark: container networks made and
 * removed with raw rtnetlink and nothing else (no library, no allocation per
 * message beyond one buffer), the in-place path only.
 *
 * Compiled by run.py at run time (gcc -O2); never committed as a binary.
 *
 *   floor BRIDGE MTU GROUP LISTFILE BATCH TIMEOUT_S
 *
 * LISTFILE has one container per line: "HOST_IFNAME NETNS_PATH IPV4 [IPV6]"
 * (IPV6 under --dual-stack).  The program runs in the host namespace (the one
 * it was started in).
 *
 * Setup, timed with CLOCK_MONOTONIC from before the first namespace is opened:
 *   1. every namespace path is opened once (O_RDONLY);
 *   2. per container one RTM_NEWLINK veth: host end IFLA_IFNAME, IFLA_MTU,
 *      IFLA_MASTER (BRIDGE's ifindex), IFLA_GROUP = GROUP, ifi_flags and
 *      ifi_change IFF_UP; the peer in IFLA_LINKINFO/IFLA_INFO_DATA/
 *      VETH_INFO_PEER with its own ifinfomsg, IFLA_IFNAME "eth0", IFLA_MTU and
 *      IFLA_NET_NS_FD - pipelined: BATCH messages per sendmsg(), then one
 *      ACK per message read back and checked;
 *   3. per container: a socket made inside its namespace (setns(target),
 *      socket(), setns(back)), then, in two sendmsg() calls,
 *        RTM_SETLINK lo up by name, RTM_SETLINK eth0 up by name,
 *        RTM_GETLINK eth0 by name (its ifindex)
 *      and RTM_NEWADDR IPV4/24 (local, address, broadcast),
 *        RTM_NEWROUTE default via 192.0.2.1 out of eth0,
 *        and with an IPV6: RTM_NEWADDR IPV6/64 (local, address, no flags:
 *        the kernel runs DAD), RTM_NEWROUTE ::/0 via 2001:db8::1 out of eth0.
 * Then it prints {"phase": "setup", ...} on stdout and waits for a line on
 * stdin (the caller verifies the containers in the meantime; EOF ends the
 * program without a teardown).
 * Teardown, timed: ONE RTM_DELLINK with ifi_index 0, no name, IFLA_GROUP =
 * GROUP: every host end at once (their peers go with them).  Then it prints
 * {"phase": "teardown", ...}.
 *
 * Every request is acked and every ACK is checked: any error (with the
 * kernel's extended-ack text) exits 1.  alarm(TIMEOUT_S) bounds the whole run.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/veth.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

#define MAX_CONTAINERS 100000
#define REPLY_WAIT_MS 10000      /* longest wait for any one reply */
#define GATEWAY "192.0.2.1"
#define GATEWAY6 "2001:db8::1"

struct container {
    char host[IFNAMSIZ];
    char *path;
    struct in_addr ip;
    struct in6_addr ip6;
    int has_ip6;
    int nsfd;
};

struct buf {
    unsigned char *data;
    size_t len, cap;
};

static void die(const char *what)
{
    fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "floor: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

/* -- message building ------------------------------------------------------ */

static void *put(struct buf *b, const void *data, size_t len)
{
    size_t aligned = NLMSG_ALIGN(len);
    if (b->len + aligned > b->cap) {
        errno = EMSGSIZE;
        die("message buffer");
    }
    unsigned char *p = b->data + b->len;
    memset(p, 0, aligned);
    if (data)
        memcpy(p, data, len);
    b->len += aligned;
    return p;
}

static size_t msg_start(struct buf *b, uint16_t type, uint16_t flags, uint32_t seq,
                        const void *fixed, size_t fixed_len)
{
    size_t start = b->len;
    struct nlmsghdr h = { .nlmsg_len = 0, .nlmsg_type = type, .nlmsg_flags = flags,
                          .nlmsg_seq = seq, .nlmsg_pid = 0 };
    put(b, &h, sizeof h);
    put(b, fixed, fixed_len);
    return start;
}

static void msg_end(struct buf *b, size_t start)
{
    ((struct nlmsghdr *)(b->data + start))->nlmsg_len = (uint32_t)(b->len - start);
}

static void attr(struct buf *b, uint16_t type, const void *data, size_t len)
{
    struct rtattr *a = put(b, NULL, RTA_LENGTH(len));      /* zeroed, padded */
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    a->rta_type = type;
    if (len)
        memcpy(RTA_DATA(a), data, len);
}

static void attr_u32(struct buf *b, uint16_t type, uint32_t v) { attr(b, type, &v, sizeof v); }
static void attr_str(struct buf *b, uint16_t type, const char *s) { attr(b, type, s, strlen(s) + 1); }

static size_t nest_start(struct buf *b, uint16_t type)
{
    size_t start = b->len;
    struct rtattr a = { .rta_len = 0, .rta_type = type };
    put(b, &a, sizeof a);
    return start;
}

static void nest_end(struct buf *b, size_t start)
{
    ((struct rtattr *)(b->data + start))->rta_len = (unsigned short)(b->len - start);
}

/* -- the socket ------------------------------------------------------------ */

static int nl_socket(int bufsize)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        die("socket");
    int one = 1;
    if (setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one) < 0)
        die("NETLINK_EXT_ACK");
    if (setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one) < 0)
        die("NETLINK_CAP_ACK");
    if (bufsize) {
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof bufsize) < 0)
            die("SO_RCVBUFFORCE");
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsize, sizeof bufsize) < 0)
            die("SO_SNDBUFFORCE");
    }
    return fd;
}

static long sendmsg_calls;

static void send_all(int fd, const struct buf *b)
{
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    struct iovec iov = { .iov_base = b->data, .iov_len = b->len };
    struct msghdr m = { .msg_name = &kernel, .msg_namelen = sizeof kernel,
                        .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n = sendmsg(fd, &m, 0);
    if (n < 0)
        die("sendmsg");
    if ((size_t)n != b->len)
        fail("%s", "short sendmsg");
    sendmsg_calls++;
}

static const char *ext_ack_text(const struct nlmsghdr *h)
{
    if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
        return "";
    const struct nlmsgerr *e = NLMSG_DATA(h);
    size_t off = NLMSG_HDRLEN + sizeof *e;
    if (!(h->nlmsg_flags & NLM_F_CAPPED))
        off += NLMSG_ALIGN(e->msg.nlmsg_len) - NLMSG_HDRLEN;
    while (off + sizeof(struct nlattr) <= h->nlmsg_len) {
        const struct nlattr *a = (const void *)((const unsigned char *)h + off);
        if (a->nla_len < sizeof *a || off + a->nla_len > h->nlmsg_len)
            break;
        if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG)
            return (const char *)(a + 1);
        off += NLA_ALIGN(a->nla_len);
    }
    return "";
}

/*
 * Read replies until every message seq in [first, first + count) has its
 * answer: an ACK (error 0) or, for seq == want_link, an RTM_NEWLINK whose
 * ifindex goes to *ifindex.  Any error, unknown seq or timeout exits.
 */
static unsigned char rbuf[1 << 17];

static void read_replies(int fd, uint32_t first, uint32_t count, uint32_t want_link,
                         int *ifindex, const char *what)
{
    uint32_t done = 0;
    while (done < count) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int r = poll(&p, 1, REPLY_WAIT_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            die("poll");
        if (r == 0)
            fail("no reply from the kernel within 10 s (%s)", what);
        ssize_t n = recv(fd, rbuf, sizeof rbuf, MSG_TRUNC);
        if (n < 0)
            die("recv");
        if ((size_t)n > sizeof rbuf)
            fail("%s", "reply truncated");
        int left = (int)n;
        for (struct nlmsghdr *h = (void *)rbuf; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_seq < first || h->nlmsg_seq >= first + count)
                fail("reply with an unexpected sequence number (%s)", what);
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                if (e->error) {
                    fprintf(stderr, "floor: %s (seq %u): %s%s%s\n", what, h->nlmsg_seq,
                            strerror(-e->error), *ext_ack_text(h) ? ": " : "",
                            ext_ack_text(h));
                    exit(1);
                }
                if (h->nlmsg_seq == want_link)
                    fail("RTM_GETLINK answered by a bare ACK (%s)", what);
                done++;
            } else if (h->nlmsg_type == RTM_NEWLINK && h->nlmsg_seq == want_link) {
                const struct ifinfomsg *ifi = NLMSG_DATA(h);
                *ifindex = ifi->ifi_index;
                done++;
            } else {
                fail("unexpected reply type (%s)", what);
            }
        }
    }
}

/* -- timing ---------------------------------------------------------------- */

struct mark {
    double wall, user, sys;
};

static struct mark now(void)
{
    struct timespec ts;
    struct rusage ru;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    getrusage(RUSAGE_SELF, &ru);
    struct mark m = {
        .wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9,
        .user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
        .sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6,
    };
    return m;
}

static void report(const char *phase, size_t n, struct mark a, struct mark b, long messages)
{
    printf("{\"phase\": \"%s\", \"n\": %zu, \"seconds\": %.9f, \"user_s\": %.6f, "
           "\"sys_s\": %.6f, \"messages\": %ld, \"sendmsg\": %ld}\n",
           phase, n, b.wall - a.wall, b.user - a.user, b.sys - a.sys, messages, sendmsg_calls);
    fflush(stdout);
}

/* -- main ------------------------------------------------------------------ */

static long parse_long(const char *s, long lo, long hi, const char *what)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi)
        fail("bad %s", what);
    return v;
}

static size_t read_list(const char *file, struct container **out)
{
    FILE *f = fopen(file, "r");
    if (!f)
        die(file);
    size_t n = 0, cap = 64;
    struct container *c = calloc(cap, sizeof *c);
    char line[4096], host[64], path[4000], ip[64], ip6[64];
    while (fgets(line, sizeof line, f)) {
        int fields = sscanf(line, "%63s %3999s %63s %63s", host, path, ip, ip6);
        if (fields != 3 && fields != 4)
            fail("bad line in %s", file);
        if (n == MAX_CONTAINERS)
            fail("%s", "too many containers");
        if (n == cap) {
            cap *= 2;
            c = realloc(c, cap * sizeof *c);
            if (!c)
                die("realloc");
        }
        if (strlen(host) >= IFNAMSIZ)
            fail("interface name too long: %s", host);
        memset(&c[n], 0, sizeof c[n]);
        strcpy(c[n].host, host);
        c[n].path = strdup(path);
        if (inet_pton(AF_INET, ip, &c[n].ip) != 1)
            fail("bad address %s", ip);
        c[n].has_ip6 = fields == 4;
        if (c[n].has_ip6 && inet_pton(AF_INET6, ip6, &c[n].ip6) != 1)
            fail("bad address %s", ip6);
        c[n].nsfd = -1;
        n++;
    }
    fclose(f);
    *out = c;
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: floor BRIDGE MTU GROUP LISTFILE BATCH TIMEOUT_S\n");
        return 2;
    }
    const char *bridge = argv[1];
    uint32_t mtu = (uint32_t)parse_long(argv[2], 68, 65535, "MTU");
    uint32_t group = (uint32_t)parse_long(argv[3], 1, 0x7fffffff, "GROUP");
    uint32_t batch = (uint32_t)parse_long(argv[5], 1, 4096, "BATCH");
    alarm((unsigned)parse_long(argv[6], 1, 86400, "TIMEOUT_S"));
    struct container *c;
    size_t n = read_list(argv[4], &c);
    if (n == 0)
        fail("%s", "no containers");

    struct rlimit nofile;                      /* one fd per namespace, held to the end */
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < n + 64) {
        nofile.rlim_cur = nofile.rlim_max;
        if (nofile.rlim_cur < n + 64 || setrlimit(RLIMIT_NOFILE, &nofile) < 0)
            fail("%s", "RLIMIT_NOFILE too low for this many namespaces");
    }
    int br = (int)if_nametoindex(bridge);      /* an ioctl, once: not an rtnetlink message */
    if (!br)
        die(bridge);
    struct in_addr gw;
    inet_pton(AF_INET, GATEWAY, &gw);
    struct in6_addr gw6;
    inet_pton(AF_INET6, GATEWAY6, &gw6);
    static unsigned char storage[1 << 20] __attribute__((aligned(8)));
    struct buf b = { .data = storage, .cap = sizeof storage };
    const uint16_t create = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    long messages = 0;
    uint32_t seq = 1;

    /* ---- setup ---- */
    struct mark t0 = now();
    int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0)
        die("/proc/thread-self/ns/net");
    for (size_t i = 0; i < n; i++) {
        c[i].nsfd = open(c[i].path, O_RDONLY | O_CLOEXEC);
        if (c[i].nsfd < 0)
            die(c[i].path);
    }
    int host = nl_socket(8 << 20);
    for (size_t i = 0; i < n; i += batch) {
        size_t end = i + batch < n ? i + batch : n;
        uint32_t first = seq;
        b.len = 0;
        for (size_t k = i; k < end; k++) {
            struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP,
                                     .ifi_change = IFF_UP };
            size_t m = msg_start(&b, RTM_NEWLINK, create, seq++, &ifi, sizeof ifi);
            attr_str(&b, IFLA_IFNAME, c[k].host);
            attr_u32(&b, IFLA_MTU, mtu);
            attr_u32(&b, IFLA_MASTER, (uint32_t)br);
            attr_u32(&b, IFLA_GROUP, group);
            size_t li = nest_start(&b, IFLA_LINKINFO);
            attr_str(&b, IFLA_INFO_KIND, "veth");
            size_t data = nest_start(&b, IFLA_INFO_DATA);
            size_t peer = nest_start(&b, VETH_INFO_PEER);
            struct ifinfomsg pifi = { .ifi_family = AF_UNSPEC };
            put(&b, &pifi, sizeof pifi);
            attr_str(&b, IFLA_IFNAME, "eth0");
            attr_u32(&b, IFLA_MTU, mtu);
            attr_u32(&b, IFLA_NET_NS_FD, (uint32_t)c[k].nsfd);
            nest_end(&b, peer);
            nest_end(&b, data);
            nest_end(&b, li);
            msg_end(&b, m);
            messages++;
        }
        send_all(host, &b);
        read_replies(host, first, (uint32_t)(end - i), 0, NULL, "RTM_NEWLINK veth");
    }
    for (size_t i = 0; i < n; i++) {
        if (setns(c[i].nsfd, CLONE_NEWNET) < 0)
            die("setns (container)");
        int s = nl_socket(0);
        if (setns(home, CLONE_NEWNET) < 0)
            die("setns (back)");
        uint32_t first = seq;
        b.len = 0;
        struct ifinfomsg up = { .ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP,
                                .ifi_change = IFF_UP };
        size_t m = msg_start(&b, RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, seq++, &up, sizeof up);
        attr_str(&b, IFLA_IFNAME, "lo");
        msg_end(&b, m);
        m = msg_start(&b, RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, seq++, &up, sizeof up);
        attr_str(&b, IFLA_IFNAME, "eth0");
        msg_end(&b, m);
        struct ifinfomsg get = { .ifi_family = AF_UNSPEC };
        uint32_t getseq = seq;
        m = msg_start(&b, RTM_GETLINK, NLM_F_REQUEST, seq++, &get, sizeof get);
        attr_str(&b, IFLA_IFNAME, "eth0");
        attr_u32(&b, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        msg_end(&b, m);
        send_all(s, &b);
        int eth0 = 0;
        read_replies(s, first, 3, getseq, &eth0, "lo up, eth0 up, RTM_GETLINK eth0");
        if (eth0 <= 0)
            fail("%s", "no ifindex for eth0");

        first = seq;
        b.len = 0;
        struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_prefixlen = 24,
                                 .ifa_scope = RT_SCOPE_UNIVERSE, .ifa_index = (uint32_t)eth0 };
        m = msg_start(&b, RTM_NEWADDR, create, seq++, &ifa, sizeof ifa);
        struct in_addr brd = { .s_addr = c[i].ip.s_addr | htonl(0xff) };
        attr(&b, IFA_LOCAL, &c[i].ip, 4);
        attr(&b, IFA_ADDRESS, &c[i].ip, 4);
        attr(&b, IFA_BROADCAST, &brd, 4);
        msg_end(&b, m);
        struct rtmsg rt = { .rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN,
                            .rtm_protocol = RTPROT_BOOT, .rtm_scope = RT_SCOPE_UNIVERSE,
                            .rtm_type = RTN_UNICAST };
        m = msg_start(&b, RTM_NEWROUTE, create, seq++, &rt, sizeof rt);
        attr(&b, RTA_GATEWAY, &gw, 4);
        attr_u32(&b, RTA_OIF, (uint32_t)eth0);
        msg_end(&b, m);
        if (c[i].has_ip6) {
            struct ifaddrmsg ifa6 = { .ifa_family = AF_INET6, .ifa_prefixlen = 64,
                                      .ifa_scope = RT_SCOPE_UNIVERSE,
                                      .ifa_index = (uint32_t)eth0 };
            m = msg_start(&b, RTM_NEWADDR, create, seq++, &ifa6, sizeof ifa6);
            attr(&b, IFA_LOCAL, &c[i].ip6, 16);
            attr(&b, IFA_ADDRESS, &c[i].ip6, 16);
            msg_end(&b, m);
            struct rtmsg rt6 = rt;
            rt6.rtm_family = AF_INET6;
            m = msg_start(&b, RTM_NEWROUTE, create, seq++, &rt6, sizeof rt6);
            attr(&b, RTA_GATEWAY, &gw6, 16);
            attr_u32(&b, RTA_OIF, (uint32_t)eth0);
            msg_end(&b, m);
        }
        uint32_t sent = c[i].has_ip6 ? 4 : 2;
        send_all(s, &b);
        read_replies(s, first, sent, 0, NULL, "RTM_NEWADDR, RTM_NEWROUTE");
        close(s);
        messages += 3 + sent;
    }
    struct mark t1 = now();
    report("setup", n, t0, t1, messages);

    /* ---- wait for the caller's verification ---- */
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return 3;                              /* the caller is gone: no teardown */

    /* ---- teardown: one group delete ---- */
    sendmsg_calls = 0;
    struct mark t2 = now();
    b.len = 0;
    struct ifinfomsg del = { .ifi_family = AF_UNSPEC, .ifi_index = 0 };
    uint32_t first = seq;
    size_t m = msg_start(&b, RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, seq++, &del, sizeof del);
    attr_u32(&b, IFLA_GROUP, group);
    msg_end(&b, m);
    send_all(host, &b);
    read_replies(host, first, 1, 0, NULL, "RTM_DELLINK group");
    struct mark t3 = now();
    report("teardown", n, t2, t3, 1);
    close(host);
    return 0;
}
