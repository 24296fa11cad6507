/*
 * reply.c - decoding what the kernel sends back.  Pure functions over a
 * received datagram: every length is checked against the bytes actually
 * there before it is used, so arbitrary input yields a result or -EBADMSG,
 * never an out-of-bounds read.
 *
 *   ACK / error (NETLINK_CAP_ACK on, NETLINK_EXT_ACK on):
 *   +----------+------------------------------+---------------------------+
 *   | nlmsghdr | nlmsgerr {error, orig hdr}   | [payload] [TLVs if flags  |
 *   | NLMSG_ERR|                              |  has NLM_F_ACK_TLVS]      |
 *   +----------+------------------------------+---------------------------+
 *   The original payload is present only without NLM_F_CAPPED.
 */
#include <errno.h>
#include <string.h>
#include <linux/if_link.h>

#include "pn_internal.h"

/* Call fn for each well-formed attribute in [p, p+len); -EBADMSG on a bad
 * length.  Trailing bytes shorter than an attribute header are ignored, as
 * the kernel's own nla_parse does. */
typedef void (*attr_fn)(uint16_t type, const unsigned char *data, uint32_t len, void *ctx);

static int walk_attrs(const unsigned char *p, uint32_t len, attr_fn fn, void *ctx)
{
    while (len >= RTA_LENGTH(0)) {
        struct rtattr a;
        uint32_t size;

        memcpy(&a, p, sizeof(a));
        if (a.rta_len < RTA_LENGTH(0) || a.rta_len > len)
            return -EBADMSG;
        fn((uint16_t)(a.rta_type & NLA_TYPE_MASK), p + RTA_LENGTH(0),
           (uint32_t)(a.rta_len - RTA_LENGTH(0)), ctx);
        size = PN_ALIGN(a.rta_len);
        if (size >= len)
            break;
        p += size;
        len -= size;
    }
    return 0;
}

static void get_u32(uint32_t *out, const unsigned char *data, uint32_t len)
{
    if (len >= sizeof(*out))
        memcpy(out, data, sizeof(*out));
}

/* Copy a string attribute into dst[size], always NUL-terminated. */
static void get_str(char *dst, size_t size, const unsigned char *data, uint32_t len)
{
    size_t n = strnlen((const char *)data, len);

    if (n >= size)
        n = size - 1;
    memcpy(dst, data, n);
    dst[n] = '\0';
}

/* IFLA_INFO_SLAVE_DATA of a bridge port: IFLA_BRPORT_MODE is hairpin. */
static void brport_attr(uint16_t type, const unsigned char *data, uint32_t len, void *ctx)
{
    if (type == IFLA_BRPORT_MODE && len >= 1)
        ((struct pn_link_info *)ctx)->hairpin = data[0] ? 1 : 0;
}

struct linkinfo { int bridge_port; const unsigned char *slave_data; uint32_t slave_len; };

static void linkinfo_attr(uint16_t type, const unsigned char *data, uint32_t len, void *ctx)
{
    struct linkinfo *li = ctx;

    if (type == IFLA_INFO_SLAVE_KIND)
        li->bridge_port = len >= 7 && !memcmp(data, "bridge", 7);
    else if (type == IFLA_INFO_SLAVE_DATA) {
        li->slave_data = data;
        li->slave_len = len;
    }
}

static void link_attr(uint16_t type, const unsigned char *data, uint32_t len, void *ctx)
{
    struct pn_link_info *out = ctx;
    struct rtnl_link_stats64 st;
    struct linkinfo li = { 0, NULL, 0 };

    switch (type) {
    case IFLA_ADDRESS:
        if (len <= sizeof(out->address)) {
            memcpy(out->address, data, len);
            out->address_len = len;
        }
        break;
    case IFLA_LINKINFO:
        /* malformed nests are ignored: the link itself is still described */
        if (walk_attrs(data, len, linkinfo_attr, &li) == 0 && li.bridge_port && li.slave_data)
            walk_attrs(li.slave_data, li.slave_len, brport_attr, out);
        break;
    case IFLA_IFNAME:
        get_str(out->name, sizeof(out->name), data, len);
        break;
    case IFLA_MTU:
        get_u32(&out->mtu, data, len);
        break;
    case IFLA_MASTER:
        get_u32(&out->master, data, len);
        break;
    case IFLA_GROUP:
        get_u32(&out->group, data, len);
        break;
    case IFLA_TXQLEN:
        get_u32(&out->txqlen, data, len);
        break;
    case IFLA_STATS64:
        if (len < offsetof(struct rtnl_link_stats64, tx_dropped) + sizeof(st.tx_dropped))
            break;
        memset(&st, 0, sizeof(st));
        memcpy(&st, data, len < sizeof(st) ? len : sizeof(st));
        out->rx_packets = st.rx_packets;
        out->tx_packets = st.tx_packets;
        out->rx_bytes = st.rx_bytes;
        out->tx_bytes = st.tx_bytes;
        out->rx_errors = st.rx_errors;
        out->tx_errors = st.tx_errors;
        out->rx_dropped = st.rx_dropped;
        out->tx_dropped = st.tx_dropped;
        out->has_stats = 1;
        break;
    }
}

/* Decode one RTM_NEWLINK message (header included) of `len` bytes. */
int pn_parse_link(const unsigned char *msg, uint32_t len, struct pn_link_info *out)
{
    struct nlmsghdr h;
    struct ifinfomsg ifi;
    uint32_t fixed = NLMSG_LENGTH(sizeof(ifi));

    memset(out, 0, sizeof(*out));
    out->hairpin = -1;
    if (len < fixed || len > PN_MAX_BUF)
        return -EBADMSG;
    memcpy(&h, msg, sizeof(h));
    if (h.nlmsg_type != RTM_NEWLINK || h.nlmsg_len < fixed || h.nlmsg_len > len)
        return -EBADMSG;
    memcpy(&ifi, msg + NLMSG_HDRLEN, sizeof(ifi));
    out->index = ifi.ifi_index;
    out->flags = ifi.ifi_flags;
    if (h.nlmsg_len <= NLMSG_ALIGN(fixed))
        return 0;
    return walk_attrs(msg + NLMSG_ALIGN(fixed), h.nlmsg_len - NLMSG_ALIGN(fixed),
                      link_attr, out);
}

static void ext_ack_attr(uint16_t type, const unsigned char *data, uint32_t len, void *ctx)
{
    if (type == NLMSGERR_ATTR_MSG)
        get_str(ctx, sizeof(((struct pn_result *)0)->ext_msg), data, len);
}

/* Decode an NLMSG_ERROR message (header included) into r; r is written only
 * when the whole message is well formed.  NLMSG_DONE, which ends a dump
 * instead of an ACK, has the same leading int and no TLVs we need. */
static int parse_ack(const unsigned char *msg, uint32_t len, struct pn_result *r)
{
    struct nlmsghdr h;
    struct nlmsgerr e;
    uint32_t tlvs = NLMSG_HDRLEN + sizeof(e);
    char text[sizeof(r->ext_msg)] = "";
    int err = 0;

    memcpy(&h, msg, sizeof(h));
    if (h.nlmsg_type == NLMSG_DONE) {
        if (len < NLMSG_HDRLEN + sizeof(e.error))
            return -EBADMSG;
        memcpy(&e.error, msg + NLMSG_HDRLEN, sizeof(e.error));
        r->error = e.error <= 0 ? e.error : -EPROTO;
        return 0;
    }
    if (len < tlvs)
        return -EBADMSG;
    memcpy(&e, msg + NLMSG_HDRLEN, sizeof(e));
    if (h.nlmsg_flags & NLM_F_ACK_TLVS) {
        if (!(h.nlmsg_flags & NLM_F_CAPPED)) {
            if (e.msg.nlmsg_len < NLMSG_HDRLEN || e.msg.nlmsg_len > len)
                return -EBADMSG;
            tlvs += NLMSG_ALIGN(e.msg.nlmsg_len) - NLMSG_HDRLEN;
        }
        if (tlvs > len)
            return -EBADMSG;
        err = walk_attrs(msg + tlvs, len - tlvs, ext_ack_attr, text);
        if (err)
            return err;
    }
    r->error = e.error <= 0 ? e.error : -EPROTO;
    memcpy(r->ext_msg, text, sizeof(text));
    return 0;
}

/* Call fn for each message of a datagram, its header checked against the
 * bytes actually there first; fn returns 0 to go on, 1 to stop, or -errno.
 * Returns 0 or the first -errno (-EBADMSG for a bad header). */
typedef int (*msg_fn)(const unsigned char *msg, const struct nlmsghdr *h, void *ctx);

static int walk_msgs(const unsigned char *data, uint32_t len, msg_fn fn, void *ctx)
{
    if (len > PN_MAX_BUF)
        return -EBADMSG;
    while (len >= NLMSG_HDRLEN) {
        struct nlmsghdr h;
        uint32_t size;
        int rc;

        memcpy(&h, data, sizeof(h));
        if (h.nlmsg_len < NLMSG_HDRLEN || h.nlmsg_len > len)
            return -EBADMSG;
        rc = fn(data, &h, ctx);
        if (rc)
            return rc < 0 ? rc : 0;
        size = NLMSG_ALIGN(h.nlmsg_len);
        if (size >= len)
            break;
        data += size;
        len -= size;
    }
    return 0;
}

struct replies {
    uint32_t portid, first_seq, count;
    struct pn_result *results;
    int done;
};

static int reply_msg(const unsigned char *msg, const struct nlmsghdr *h, void *ctx)
{
    struct replies *rs = ctx;
    uint32_t i = h->nlmsg_seq - rs->first_seq;
    struct pn_result *r;
    int err = 0;

    if (h->nlmsg_pid != rs->portid || i >= rs->count)
        return 0;                                   /* not ours: skip */
    r = &rs->results[i];
    if (r->error != PN_PENDING)
        return 0;                                   /* answered already */
    if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) {
        err = parse_ack(msg, h->nlmsg_len, r);
        if (!err)
            rs->done++;
    } else if (h->nlmsg_type == RTM_NEWLINK) {
        err = pn_parse_link(msg, h->nlmsg_len, &r->link);
        r->has_link = err == 0;
    }
    return err;
}

/*
 * Match the messages of one datagram to the requests [first_seq, first_seq +
 * count) sent from `portid`.  Messages for other sequence numbers or ports
 * are ignored.  Returns how many requests this datagram completed (an ACK,
 * or the NLMSG_DONE that ends a dump, completes a request; a reply only
 * fills in its data), or -EBADMSG.
 */
int pn_parse_replies(const unsigned char *data, uint32_t len, uint32_t portid,
                     uint32_t first_seq, uint32_t count, struct pn_result *results)
{
    struct replies rs = { portid, first_seq, count, results, 0 };
    int err = walk_msgs(data, len, reply_msg, &rs);

    return err ? err : rs.done;
}

struct dump_walk {
    uint32_t portid, seq;
    struct pn_dump *dump;
};

static int dump_msg(const unsigned char *msg, const struct nlmsghdr *h, void *ctx)
{
    struct dump_walk *w = ctx;
    struct pn_dump *dump = w->dump;
    int err = 0;

    if (h->nlmsg_pid != w->portid || h->nlmsg_seq != w->seq)
        return 0;                                   /* not ours: skip */
    if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
        struct pn_result r;

        err = parse_ack(msg, h->nlmsg_len, &r);
        if (!err) {
            dump->done = 1;
            dump->error = r.error;
        }
    } else if (h->nlmsg_type == RTM_NEWLINK) {
        err = dump->n == dump->cap ? -ENOSPC
                                   : pn_parse_link(msg, h->nlmsg_len, &dump->links[dump->n]);
        if (!err)
            dump->n++;
    }
    if (err)
        return err;
    if (h->nlmsg_flags & NLM_F_DUMP_INTR)
        dump->interrupted = 1;
    return dump->done ? 1 : 0;                      /* stop at the dump's end */
}

/*
 * Collect the RTM_NEWLINK parts of one datagram of the dump `seq` into
 * dump->links.  Returns the number of links added, -ENOSPC if links[] is
 * full (nothing of this datagram is kept then), or -EBADMSG.  The end of
 * the dump (NLMSG_DONE, or NLMSG_ERROR if the kernel refused it) sets
 * dump->done and dump->error.
 */
int pn_parse_dump(const unsigned char *data, uint32_t len, uint32_t portid, uint32_t seq,
                  struct pn_dump *dump)
{
    uint32_t first = dump->n, was_interrupted = dump->interrupted;
    struct dump_walk w = { portid, seq, dump };
    int err;

    if (len > PN_MAX_BUF || dump->n > dump->cap)
        return -EBADMSG;
    if (dump->done)
        return 0;
    err = walk_msgs(data, len, dump_msg, &w);
    if (err) {                                      /* keep nothing of this datagram */
        dump->n = first;
        dump->done = 0;
        dump->interrupted = was_interrupted;
        return err;
    }
    return (int)(dump->n - first);
}
