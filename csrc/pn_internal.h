/* pn_internal.h - what every C source of the core includes. */
#ifndef PN_INTERNAL_H
#define PN_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>

#include "pn.h"

/* The smallest link message of a dump: a datagram of n bytes holds at most
 * n / PN_DUMP_LINK_MIN + 1 of them. */
#define PN_DUMP_LINK_MIN NLMSG_LENGTH(sizeof(struct ifinfomsg))

/* The bytes an attribute (or message) of payload length n occupies. */
#define PN_ALIGN(n) (((n) + 3u) & ~3u)

#endif
