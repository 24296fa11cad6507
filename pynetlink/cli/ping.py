"""One ICMP echo from a raw socket made inside a network namespace: the
demo's ping, with no ``ping`` program run."""
from __future__ import annotations

import select
import socket
import struct
import time
from typing import Optional

from .. import netns

ECHO_REQUEST, ECHO_REPLY = 8, 0         # ICMP types (RFC 792)
HEADER = struct.Struct("!BBHHH")        # type, code, checksum, identifier, sequence
PAYLOAD = b"pynetlink demo"


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): ones' complement of the ones'
    complement sum of the 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int = 1) -> bytes:
    """An echo request with its checksum filled in."""
    unsummed = HEADER.pack(ECHO_REQUEST, 0, 0, ident, seq) + PAYLOAD
    return HEADER.pack(ECHO_REQUEST, 0, checksum(unsummed), ident, seq) + PAYLOAD


def is_reply(datagram: bytes, ident: int, seq: int = 1) -> bool:
    """Whether an IPv4 datagram read from the raw socket is the reply to
    our request (past the IP header, whose length is in its first byte)."""
    icmp = datagram[(datagram[0] & 0x0F) * 4:]
    if len(icmp) < HEADER.size:
        return False
    kind, _, _, reply_ident, reply_seq = HEADER.unpack_from(icmp)
    return (kind, reply_ident, reply_seq) == (ECHO_REPLY, ident, seq)


def ping(netns_fd: int, address: str, *, ident: int, timeout: float = 2.0) -> Optional[float]:
    """Send one ICMP echo request to ``address`` from inside the namespace
    behind ``netns_fd``; the round-trip time in seconds, or None if no reply
    came within ``timeout``.  Like ``ip netns exec NS ping -c 1 -W 2 ADDRESS``."""
    with netns.entered(netns_fd):                   # the socket stays in that namespace
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    with sock:
        ident &= 0xFFFF
        start = time.monotonic()
        sock.sendto(echo_request(ident), (address, 0))
        while True:
            left = start + timeout - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                return None
            data, (source, _) = sock.recvfrom(2048)
            if source == address and is_reply(data, ident):
                return time.monotonic() - start
