#!/usr/bin/env python3
"""Memcheck the C core: no leaks, no invalid accesses.

Run as ``python3 tests/valgrind_check.py`` (root, real kernel).  The script
runs itself again (``--child``) under::

    valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite

with ``PYTHONMALLOC=malloc`` (so every Python allocation goes through
valgrind's malloc, and pymalloc's arenas neither hide nor fake anything),
then reads valgrind's log.  The child's workload, all inside anonymous
scratch namespaces (``pn.netns.scratch()``; the host side entered with
``pn.netns.entered``), so nothing of it outlives the process:

- ``--cycles`` (default 200) create/configure/delete cycles: a veth whose
  peer is born as eth0 in a container namespace, on a bridge, MTU, up,
  address, default route, read back, deleted; through the module-level
  functions, a ``Handle`` by fd and a batch; with error paths (EEXIST,
  ENODEV, a refused MTU with the kernel's extended-ack text) and a few
  ``pn.bulk.setup``/``teardown`` rounds;
- the C encoders and decoders fed random specs, random buffer sizes and
  random or mutated netlink messages (seeded: ``--seed``), each input in
  storage of exactly its size, so that any access past it is caught.

It fails (exit 1) if valgrind reports a *definitely lost* block allocated
with a frame of the core on its stack (``_pynetlink_cffi`` or a ``pn_*``
function of csrc/), or any memcheck error (invalid read/write/free, use of
uninitialised memory, ...) whose stack contains such a frame.  Python's own
findings are counted in the summary but are not ours to fail on.  Exit 2:
it could not run (no valgrind, or the workload itself failed).  The log is
kept (``--log``; by default a temporary file whose path is printed).

One exception, counted apart as "import-time": blocks allocated while the
compiled module is imported (``PyInit__pynetlink_cffi`` on the stack).  That
is cffi's own one-off set-up of the module object and its ``ffi`` (about
300 bytes, the same for 1 cycle or 10,000), which CPython never frees at
exit since extension modules are not unloaded.  It does not grow with use,
and csrc/ is not involved.

``--self-test`` checks the checker: the child then also makes the core read
past the end of a buffer (a length that lies), and the run must be caught
(exit 0 if it was, 1 if not).
"""
from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
IMPORT_FRAME = re.compile(r"\bPyInit__pynetlink_cffi\b")
OUR_FRAME = re.compile(r"_pynetlink_cffi|\bpn_\w+ \(|\((?:nlmsg|rtnl|reply|sock)\.c:\d+\)")
VALGRIND_TIMEOUT = 600          # seconds: the whole run, far above its usual time


# ==============================================================================
# The parent: run the child under valgrind, judge the log.
# ==============================================================================

def parent(args: argparse.Namespace) -> int:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind_check: valgrind is not installed (Debian: apt-get install valgrind)")
        return 2
    if args.log:
        log = os.path.abspath(args.log)
    else:
        fd, log = tempfile.mkstemp(prefix="pynetlink-valgrind-", suffix=".log")
        os.close(fd)
    cmd = [valgrind, "--tool=memcheck", "--leak-check=full",
           "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
           "--num-callers=50", f"--log-file={log}",
           sys.executable, os.path.abspath(__file__), "--child",
           "--cycles", str(args.cycles), "--seed", str(args.seed)]
    if args.self_test:
        cmd.append("--inject")
    env = dict(os.environ, PYTHONMALLOC="malloc")
    started = time.monotonic()
    try:
        child = subprocess.run(cmd, env=env, timeout=VALGRIND_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"valgrind_check: the run took more than {VALGRIND_TIMEOUT} s; log: {log}")
        return 2
    seconds = time.monotonic() - started
    with open(log, errors="replace") as f:
        report = judge(f.read())
    if child.returncode != 0:
        print(f"valgrind_check: the workload failed under valgrind (exit {child.returncode}); "
              f"log: {log}")
        return 2
    if not report["complete"]:
        print(f"valgrind_check: valgrind's log has no leak summary; log: {log}")
        return 2
    ours = report["ours"]
    if args.self_test:
        caught = report["our_error_kinds"].get("Invalid read", 0)
        print(f"valgrind_check --self-test: {'ok' if caught else 'FAIL'}: the injected read past "
              f"a buffer was {'caught' if caught else 'NOT caught'} ({caught} invalid reads in "
              f"our core); log: {log}")
        return 0 if caught else 1
    kinds = ", ".join(f"{n} x {k}" for k, n in sorted(report["our_error_kinds"].items()))
    verdict = "FAIL" if ours else "ok"
    print(f"valgrind_check: {verdict}: definitely lost {report['lost_bytes']} bytes in "
          f"{report['lost_blocks']} blocks in total, {report['our_lost_bytes']} bytes in "
          f"{report['our_lost_blocks']} blocks in our core (+{report['import_lost_bytes']} bytes "
          f"import-time, once per process); memcheck errors {report['errors']} "
          f"in total, {report['our_errors']} in our core{' (' + kinds + ')' if kinds else ''}; "
          f"{args.cycles} cycles in {seconds:.0f} s; log: {log}")
    for record in ours[:5]:
        print("\n".join("    " + line for line in record))
    return 1 if ours else 0


LOST = re.compile(r"^([\d,]+) (?:\(([\d,]+) direct, [\d,]+ indirect\) )?bytes in ([\d,]+) blocks? "
                  r"are definitely lost")
PREFIX = re.compile(r"^==\d+== ?")
STACK = re.compile(r"^\s+(?:at|by) 0x[0-9A-Fa-f]+: ")


def records(text: str) -> list:
    """valgrind's log as records: lists of lines (prefix removed), one per
    message, split at the blank lines valgrind puts between them."""
    out, current = [], []
    for raw in text.splitlines():
        if not PREFIX.match(raw):
            continue
        line = PREFIX.sub("", raw, count=1)
        if line.strip():
            current.append(line)
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def first_stack(record: list) -> list:
    """The frames of the first stack of a record: where the error happened
    (later stacks say where the memory involved was allocated or freed)."""
    frames = []
    for line in record[1:]:
        if STACK.match(line):
            frames.append(line)
        elif frames:
            break
    return frames


def is_error(head: str) -> bool:
    return bool(re.match(r"(Invalid (read|write|free|realloc)|Mismatched free|Conditional jump|"
                         r"Use of uninitialised|Syscall param|Source and destination overlap|"
                         r"Argument '.*' of function|Jump to the invalid address|"
                         r"Process terminating)", head))


def judge(text: str) -> dict:
    report = {"lost_bytes": 0, "lost_blocks": 0, "our_lost_bytes": 0, "our_lost_blocks": 0,
              "import_lost_bytes": 0,
              "errors": 0, "our_errors": 0, "our_error_kinds": {}, "ours": [],
              "complete": "LEAK SUMMARY" in text or "All heap blocks were freed" in text}
    for record in records(text):
        head = record[0]
        lost = LOST.match(head)
        if lost:
            nbytes = int(lost.group(1).replace(",", ""))
            blocks = int(lost.group(3).replace(",", ""))
            report["lost_bytes"] += nbytes
            report["lost_blocks"] += blocks
            stack = [line for line in record[1:] if STACK.match(line)]
            if any(IMPORT_FRAME.search(line) for line in stack):
                report["import_lost_bytes"] += nbytes
            elif any(OUR_FRAME.search(line) for line in stack):
                report["our_lost_bytes"] += nbytes
                report["our_lost_blocks"] += blocks
                report["ours"].append(record)
        elif is_error(head):
            report["errors"] += 1
            if any(OUR_FRAME.search(line) for line in first_stack(record)):
                report["our_errors"] += 1
                kind = re.sub(r" of size \d+| \(.*", "", head)
                report["our_error_kinds"][kind] = report["our_error_kinds"].get(kind, 0) + 1
                report["ours"].append(record)
    return report


# ==============================================================================
# The child: the workload, run under valgrind.
# ==============================================================================

def child(args: argparse.Namespace) -> int:
    if HERE not in sys.path:
        sys.path.append(HERE)
    sys.path.append(os.path.dirname(HERE))      # fallback only: an installed package wins
    import pynetlink as pn

    rng = random.Random(args.seed)
    with pn.netns.scratch() as host, pn.netns.scratch() as c0, pn.netns.scratch() as c1:
        ip = ["nsenter", f"--net=/proc/{os.getpid()}/fd/{host}", "ip"]
        for cmd in (["link", "add", "br0", "type", "bridge"],
                    ["addr", "add", "192.0.2.1/24", "dev", "br0"],
                    ["link", "set", "br0", "up"]):
            subprocess.run(ip + cmd, check=True, timeout=60)
        with pn.netns.entered(host):
            cycles(pn, args.cycles, [c0, c1], host)
    garbage(rng, 3000)
    if args.inject:
        inject_overread()
    print(f"valgrind_check child: {args.cycles} cycles and 3000 garbage rounds done", flush=True)
    return 0


def inject_overread() -> None:
    """For --self-test: a message whose length claims 64 bytes, in a buffer
    of 20, handed to the decoder with the lying length."""
    import struct
    from pynetlink._core import ffi, lib
    data = struct.pack("=IHHII", 64, 16, 0, 1, 0) + b"\0" * 4
    buf = ffi.new("unsigned char[]", data)
    lib.pn_parse_link(buf, 64, ffi.new("struct pn_link_info *"))


def expect_errno(errno_: int, fn, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except OSError as e:
        if e.errno != errno_:
            raise
    else:
        raise AssertionError(f"{fn.__name__}{args} did not fail with errno {errno_}")


def cycles(pn, n: int, containers: list, host: int) -> None:
    import errno
    deadline = time.monotonic() + VALGRIND_TIMEOUT / 2
    with pn.Handle(netns=host) as h:
        for i in range(n):
            if time.monotonic() > deadline:
                raise TimeoutError(f"workload too slow: cycle {i} of {n}")
            fd = containers[i % len(containers)]
            mtu = 1280 + i % 200
            way = i % 3
            if way == 0:                        # the seed's functions, default handle
                pn.create_veth_pair("vg0", "eth0", peer_netns=fd)
                pn.set_interface_master("vg0", "br0")
                pn.set_mtu("vg0", mtu)
                pn.interface_up("vg0")
            elif way == 1:                      # one message, Handle by fd
                h.create_veth_pair("vg0", "eth0", mtu=mtu, master="br0", up=True,
                                   peer_mtu=mtu, peer_netns=fd)
            else:                               # a batch
                with h.batch() as b:
                    b.create_veth_pair("vg0", "eth0", peer_netns=fd)
                    b.set_link("vg0", mtu=mtu, master="br0", up=True)
            try:
                with pn.Handle(netns=fd) as c:
                    c.set_mtu("eth0", mtu)
                    c.interface_up("eth0")
                    c.set_interface_ip("eth0", f"192.0.2.{10 + i % len(containers)}/24")
                    c.set_interface_ip("eth0", "2001:db8::%x/64" % (16 + i % len(containers)))
                    c.set_default_gateway("192.0.2.1", "eth0")
                    assert c.get_link("eth0").mtu == mtu
                    c.list_links()
                    if i % 10 == 0:             # error paths, with the kernel's text
                        expect_errno(errno.EEXIST, c.set_default_gateway, "192.0.2.1", "eth0")
                        expect_errno(errno.ENODEV, c.interface_up, "nosuch0")
                        expect_errno(errno.EINVAL, c.set_mtu, "eth0", 100000)  # > veth's max
                        with c.batch("rollback") as b:
                            b.set_mtu("eth0", mtu - 1)
                        try:
                            with c.batch("rollback") as b:
                                b.set_mtu("eth0", 1300)
                                b.interface_up("nosuch0")
                        except OSError:
                            pass
                pn.get_link("vg0")
                pn.list_links()
                h.get_link("br0")
            finally:
                h.delete_link("vg0")
            if i % 20 == 19:
                done = pn.bulk.setup([pn.bulk.Container(pn.Network(
                    type="veth", bridge="br0", veth_prefix="vb",
                    address=f"192.0.2.{100 + j}/24", gateway="192.0.2.1", mtu=1400), netns=cfd)
                    for j, cfd in enumerate(containers)], handle=h)
                assert all(r.ok for r in done.results), [r.error for r in done.results]
                pn.bulk.teardown(done, handle=h)
        expect_errno(errno.ENODEV, h.delete_link, "vg0")


def garbage(rng: random.Random, rounds: int) -> None:
    """The C encoders and decoders on random input; only memcheck judges."""
    from pynetlink._core import ffi, lib

    def storage(data: bytes):
        buf = ffi.new("unsigned char[]", len(data) or 1)
        ffi.memmove(buf, data, len(data))
        return buf

    def randbytes(n: int) -> bytes:
        return bytes(rng.getrandbits(8) for _ in range(n))

    def tlvs(budget: int) -> bytes:
        out = b""
        while len(out) < budget:
            payload = randbytes(rng.choice((0, 1, 2, 4, 8, 16, 20, 48, 72, 200)))
            length = rng.choice((4 + len(payload), rng.randrange(0, 0x10000)))
            out += length.to_bytes(2, "little") + rng.randrange(0x10000).to_bytes(2, "little")
            out += payload + b"\0" * (-len(payload) % 4)
        return out

    def message(portid: int, seq: int) -> bytes:
        mtype = rng.choice((2, 3, 16, 16, 17, rng.randrange(0x10000)))
        if mtype == 2:          # NLMSG_ERROR: error, quoted header, maybe TLVs
            body = (rng.choice((0, -1, -19, -22, 5, -(2**31))) & 0xFFFFFFFF).to_bytes(4, "little")
            body += randbytes(16) + (tlvs(rng.randrange(64)) if rng.random() < 0.6 else b"")
        elif mtype == 16:       # RTM_NEWLINK: ifinfomsg and attributes
            body = randbytes(16) + tlvs(rng.randrange(400))
        else:
            body = randbytes(rng.randrange(24))
        flags = rng.choice((0, 0x2, 0x100, 0x200, 0x10, rng.randrange(0x10000)))
        length = 16 + len(body)
        if rng.random() < 0.1:
            length = rng.randrange(0, 2 * length + 20)
        head = (length.to_bytes(4, "little") + mtype.to_bytes(2, "little") +
                flags.to_bytes(2, "little") + seq.to_bytes(4, "little") + portid.to_bytes(4, "little"))
        return head + body + b"\0" * (-len(body) % 4)

    portid, first = 0x5EED, 1000
    for _ in range(rounds):
        # decoders
        count = rng.randrange(1, 9)
        if rng.random() < 0.3:
            data = randbytes(rng.randrange(0, 600))
        else:
            data = b"".join(message(rng.choice((portid, portid, 0, rng.randrange(2**32))),
                                    first + rng.randrange(-1, count + 1))
                            for _ in range(rng.randrange(1, 5)))
            if rng.random() < 0.2:
                data = data[:rng.randrange(len(data) + 1)]
        buf = storage(data)
        results = ffi.new("struct pn_result[]", count)
        for k in range(count):
            results[k].seq, results[k].error = first + k, lib.PN_PENDING
        lib.pn_parse_replies(buf, len(data), portid, first, count, results)
        info = ffi.new("struct pn_link_info *")
        lib.pn_parse_link(buf, len(data), info)
        cap = rng.randrange(1, 5)
        links = ffi.new("struct pn_link_info[]", cap)
        dump = ffi.new("struct pn_dump *", {"links": links, "cap": cap})
        lib.pn_parse_dump(buf, len(data), portid, first, dump)

        # encoders: random specs into buffers of random (exact) size
        cap = rng.choice((0, 4, 16, 20, 32, 64, 100, 256, 1024, 4096))
        data = ffi.new("unsigned char[]", cap or 1)
        b = ffi.new("struct pn_buf *", {"data": data, "cap": cap})
        specs = []
        for ctype in ("struct pn_link_spec *", "struct pn_link_spec *",
                      "struct pn_addr_spec *", "struct pn_route_spec *"):
            spec = ffi.new(ctype)
            ffi.memmove(spec, randbytes(ffi.sizeof(spec[0])), ffi.sizeof(spec[0]))
            specs.append(spec)
        link, peer, addr, route = specs
        if rng.random() < 0.7:
            link.address_len = rng.randrange(0, 40)
            peer.address_len = rng.randrange(0, 40)
        mtype, flags, seq = rng.randrange(0x10000), rng.randrange(0x10000), rng.randrange(2**32)
        for _ in range(4):      # appending until full exercises every "no room" path
            lib.pn_link_msg(b, mtype, flags, seq, link)
            lib.pn_veth_msg(b, flags, seq, link, peer)
            lib.pn_addr_msg(b, mtype, flags, seq, addr)
            lib.pn_route_msg(b, mtype, flags, seq, route)
            lib.pn_brport_msg(b, seq, link, rng.randrange(0x10000), rng.randrange(256))
        # the message builder's pieces, with attribute sizes around the limits
        b.len = 0
        if lib.pn_msg_start(b, mtype, flags, seq, ffi.NULL, 0) >= 0:
            start = 0
            nest = lib.pn_nest_start(b, rng.randrange(0x10000))
            size = rng.choice((0, 1, 3, 4, 65531, 65532, 65535, 70000))
            payload = ffi.new("unsigned char[]", size or 1)
            lib.pn_attr_put(b, rng.randrange(0x10000), payload, size)
            lib.pn_attr_put_u32(b, rng.randrange(0x10000), rng.randrange(2**32))
            lib.pn_attr_put_str(b, rng.randrange(0x10000), ffi.new("char[]", randbytes(
                rng.randrange(40)).replace(b"\0", b"x")))
            if nest >= 0:
                lib.pn_nest_end(b, nest)
            lib.pn_msg_end(b, start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--self-test", action="store_true",
                        help="check that an injected fault in the core is caught")
    parser.add_argument("--inject", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--log", help="where valgrind writes its log (default: a temporary file)")
    args = parser.parse_args()
    if not 1 <= args.cycles <= 100_000:
        parser.error("--cycles must be 1 to 100000")
    return child(args) if args.child else parent(args)


if __name__ == "__main__":
    sys.exit(main())
