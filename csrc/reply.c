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

#include "pn_internal.h"

/* The NLMSGERR_ATTR_MSG of an ACK's TLVs into text[size] ("" if none). */
static int ext_ack_text(const unsigned char *tlvs, uint32_t len, char *text, size_t size)
{
    struct pn_attr tb[NLMSGERR_ATTR_MAX + 1];
    int err = pn_attr_parse(tlvs, len, NULL, NLMSGERR_ATTR_MAX, tb);

    if (!err && tb[NLMSGERR_ATTR_MSG].data)
        pn_get_str(text, size, &tb[NLMSGERR_ATTR_MSG]);
    return err;
}

/* Decode an NLMSG_ERROR message (header included) into r; r is written only
 * when the whole message is well formed.  NLMSG_DONE, which ends a dump
 * instead of an ACK, has the same leading int and no TLVs we need. */
static int parse_ack(const unsigned char *msg, uint32_t len, struct pn_result *r)
{
    struct nlmsghdr h;
    struct nlmsgerr e;
    uint32_t tlvs;
    char text[sizeof(r->ext_msg)] = "";
    int err = 0;

    memcpy(&h, msg, sizeof(h));
    if (h.nlmsg_type == NLMSG_DONE) {               /* the error int, then TLVs */
        tlvs = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(e.error));
        if (len < NLMSG_HDRLEN + sizeof(e.error))
            return -EBADMSG;
        memcpy(&e.error, msg + NLMSG_HDRLEN, sizeof(e.error));
    } else {                                        /* nlmsgerr, the quoted request, TLVs */
        tlvs = NLMSG_HDRLEN + sizeof(e);
        if (len < tlvs)
            return -EBADMSG;
        memcpy(&e, msg + NLMSG_HDRLEN, sizeof(e));
        if (!(h.nlmsg_flags & NLM_F_CAPPED) && (len > tlvs || h.nlmsg_flags & NLM_F_ACK_TLVS)) {
            if (e.msg.nlmsg_len < NLMSG_HDRLEN ||
                NLMSG_ALIGN(e.msg.nlmsg_len) - NLMSG_HDRLEN > len - tlvs)
                return -EBADMSG;                    /* quotes less than it says */
            tlvs += NLMSG_ALIGN(e.msg.nlmsg_len) - NLMSG_HDRLEN;
        }
    }
    if (h.nlmsg_flags & NLM_F_ACK_TLVS) {
        if (tlvs > len)
            return -EBADMSG;
        err = ext_ack_text(msg + tlvs, len - tlvs, text, sizeof(text));
        if (err)
            return err;
    }
    r->error = e.error <= 0 ? e.error : -EPROTO;
    memcpy(r->ext_msg, text, sizeof(text));
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
    int err = pn_walk_msgs(data, len, reply_msg, &rs);

    return err ? err : rs.done;
}

struct dump_walk {
    uint32_t portid, seq;
    struct pn_dump *dump;
};

/* The kind of part a dump collects (0 is RTM_NEWLINK, as before kinds). */
static uint32_t dump_type(const struct pn_dump *dump)
{
    return dump->type ? dump->type : RTM_NEWLINK;
}

/* Is the array for this dump's kind there? */
static int dump_kind_ok(const struct pn_dump *dump)
{
    switch (dump_type(dump)) {
    case RTM_NEWLINK:
        return dump->links != NULL;
    case RTM_NEWADDR:
        return dump->addrs != NULL;
    case RTM_NEWROUTE:
        return dump->routes != NULL;
    case RTM_NEWNEIGH:                  /* -- neighbours (issue 16) -- */
        return dump->neighs != NULL;
    }
    return 0;
}

/* Decode one part (of the dump's kind) into the next entry of its array. */
static int dump_part(const unsigned char *msg, uint32_t len, struct pn_dump *dump)
{
    int err;

    if (dump->n == dump->cap)
        return -ENOSPC;
    switch (dump_type(dump)) {
    case RTM_NEWADDR:
        err = pn_parse_addr(msg, len, &dump->addrs[dump->n]);
        break;
    case RTM_NEWROUTE:
        err = pn_parse_route(msg, len, &dump->routes[dump->n]);
        break;
    case RTM_NEWNEIGH:                  /* -- neighbours (issue 16) -- */
        err = pn_parse_neigh(msg, len, &dump->neighs[dump->n]);
        break;
    default:
        err = pn_parse_link(msg, len, &dump->links[dump->n]);
    }
    if (!err)
        dump->n++;
    return err;
}

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
            memcpy(dump->ext_msg, r.ext_msg, sizeof(dump->ext_msg));
        }
    } else if (h->nlmsg_type == dump_type(dump)) {
        err = dump_part(msg, h->nlmsg_len, dump);
    }
    if (err)
        return err;
    if (h->nlmsg_flags & NLM_F_DUMP_INTR)
        dump->interrupted = 1;
    return dump->done ? 1 : 0;                      /* stop at the dump's end */
}

/*
 * Collect the parts of one datagram of the dump `seq` that are of the
 * dump's kind (dump->type) into its array (links, addrs, routes or neighs).
 * Returns the number of entries added, -ENOSPC if the array is full
 * (nothing of this datagram is kept then), -EBADMSG, or -EINVAL for a
 * dump whose kind is unknown or whose array is NULL.  The end of the dump
 * (NLMSG_DONE, or NLMSG_ERROR if the kernel refused it) sets dump->done
 * and dump->error (and dump->ext_msg: the kernel's text, if it sent one).
 */
int pn_parse_dump(const unsigned char *data, uint32_t len, uint32_t portid, uint32_t seq,
                  struct pn_dump *dump)
{
    uint32_t first = dump->n, was_interrupted = dump->interrupted;
    struct dump_walk w = { portid, seq, dump };
    int err;

    if (len > PN_MAX_BUF || dump->n > dump->cap)
        return -EBADMSG;
    if (!dump_kind_ok(dump))
        return -EINVAL;
    if (dump->done)
        return 0;
    err = pn_walk_msgs(data, len, dump_msg, &w);
    if (err) {                                      /* keep nothing of this datagram */
        dump->n = first;
        dump->done = 0;
        dump->ext_msg[0] = '\0';
        dump->interrupted = was_interrupted;
        return err;
    }
    return (int)(dump->n - first);
}
