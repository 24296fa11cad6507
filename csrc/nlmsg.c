/*
 * nlmsg.c - building netlink messages in a caller-owned buffer.
 *
 * A message, and an attribute inside it (all lengths 4-byte aligned):
 *
 *   +----------+---------------+------+---------+------+---------+---
 *   | nlmsghdr | family header | rtattr| payload | rtattr| payload | ...
 *   +----------+---------------+------+---------+------+---------+---
 *    16 bytes   e.g. ifinfomsg    4      len-4
 *
 * Positions are kept as offsets into the buffer, never as pointers, so a
 * caller may hold them across appends.  Every function checks the space left
 * before writing and fails with -ENOSPC (buffer full), -EMSGSIZE (an
 * attribute or nest longer than the 16-bit rta_len can say) or -EINVAL (a
 * pn_buf whose len/cap/offsets are inconsistent) without touching the
 * buffer: nothing is ever silently truncated.
 */
#include <errno.h>
#include <string.h>

#include "pn_internal.h"

/* Offsets are returned as int, so a buffer is at most INT32_MAX bytes. */
static int sane(const struct pn_buf *b)
{
    return b->cap <= PN_MAX_BUF && b->len <= b->cap && !(b->len & 3u);
}

static int room(const struct pn_buf *b, uint32_t need)
{
    if (!sane(b))
        return -EINVAL;
    if (need > b->cap - b->len)
        return -ENOSPC;
    return 0;
}

/* Is `start` the offset of something of at least `min` bytes inside b? */
static int inside(const struct pn_buf *b, uint32_t start, uint32_t min)
{
    return sane(b) && !(start & 3u) && start <= b->len && b->len - start >= min;
}

/* Start a message: header plus the family's fixed header; returns its offset.
 * Attributes follow; pn_msg_end() writes the final length.  An encoder that
 * fails half-way drops the message by setting b->len back to that offset. */
int pn_msg_start(struct pn_buf *b, uint16_t type, uint16_t flags, uint32_t seq,
                 const void *fixed, uint32_t fixed_len)
{
    uint32_t start = b->len, size;
    struct nlmsghdr *h;
    int err;

    if (fixed_len > PN_MAX_ATTR)        /* family headers are a few bytes */
        return -EMSGSIZE;
    size = NLMSG_HDRLEN + PN_ALIGN(fixed_len);
    if ((err = room(b, size)))
        return err;
    memset(b->data + start, 0, size);
    h = (struct nlmsghdr *)(b->data + start);
    h->nlmsg_type = type;
    h->nlmsg_flags = flags;
    h->nlmsg_seq = seq;
    if (fixed_len)
        memcpy(b->data + start + NLMSG_HDRLEN, fixed, fixed_len);
    b->len = start + size;
    return (int)start;
}

/* Close the message started at `start`: its length covers what follows. */
int pn_msg_end(struct pn_buf *b, uint32_t start)
{
    if (!inside(b, start, NLMSG_HDRLEN))
        return -EINVAL;
    ((struct nlmsghdr *)(b->data + start))->nlmsg_len = b->len - start;
    return 0;
}

/* Append a bare struct (padded to 4 bytes), e.g. the ifinfomsg that opens a
 * VETH_INFO_PEER nest. */
int pn_put_extra(struct pn_buf *b, const void *data, uint32_t len)
{
    uint32_t size = PN_ALIGN(len);
    int err;

    if (len > PN_MAX_ATTR)
        return -EMSGSIZE;
    if ((err = room(b, size)))
        return err;
    if (len)
        memcpy(b->data + b->len, data, len);
    memset(b->data + b->len + len, 0, size - len);
    b->len += size;
    return 0;
}

int pn_attr_put(struct pn_buf *b, uint16_t type, const void *data, uint32_t len)
{
    struct rtattr *a;
    uint32_t size;
    int err;

    if (len > PN_MAX_ATTR - RTA_LENGTH(0))
        return -EMSGSIZE;
    size = RTA_SPACE(len);
    if ((err = room(b, size)))
        return err;
    a = (struct rtattr *)(b->data + b->len);
    a->rta_type = type;
    a->rta_len = (uint16_t)RTA_LENGTH(len);
    if (len)
        memcpy(RTA_DATA(a), data, len);
    memset(b->data + b->len + RTA_LENGTH(len), 0, size - RTA_LENGTH(len));
    b->len += size;
    return 0;
}

int pn_attr_put_u32(struct pn_buf *b, uint16_t type, uint32_t value)
{
    return pn_attr_put(b, type, &value, sizeof(value));
}

/* A NUL-terminated string attribute, terminator included (as the kernel's
 * NLA_STRING/NLA_NUL_STRING policies expect). */
int pn_attr_put_str(struct pn_buf *b, uint16_t type, const char *s)
{
    size_t n = strlen(s) + 1;

    if (n > PN_MAX_ATTR)
        return -EMSGSIZE;
    return pn_attr_put(b, type, s, (uint32_t)n);
}

/* Open a nest; returns its offset for pn_nest_end(). */
int pn_nest_start(struct pn_buf *b, uint16_t type)
{
    uint32_t start = b->len;
    int err = pn_attr_put(b, type, NULL, 0);

    return err ? err : (int)start;
}

/* Close the nest opened at `start`: -EMSGSIZE if it grew past 65535 bytes,
 * in which case the caller must drop the message (see rtnl.c). */
int pn_nest_end(struct pn_buf *b, uint32_t start)
{
    uint32_t len;

    if (!inside(b, start, RTA_LENGTH(0)))
        return -EINVAL;
    len = b->len - start;
    if (len > PN_MAX_ATTR)
        return -EMSGSIZE;
    ((struct rtattr *)(b->data + start))->rta_len = (uint16_t)len;
    return 0;
}
