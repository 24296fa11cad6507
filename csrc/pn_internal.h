/* pn_internal.h - what every C source of the core includes. */
#ifndef PN_INTERNAL_H
#define PN_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "pn.h"

/* The bytes an attribute (or message) of payload length n occupies. */
#define PN_ALIGN(n) (((n) + 3u) & ~3u)

#endif
