"""host-local IPAM in-process: the reference ``host-local`` plugin's job
(containernetworking-plugins v1.1.1, Debian's ``containernetworking-plugins``
1.1.1+ds1) done without executing it, on the same on-disk store
(hostlocal_store.py) and with the same configuration (hostlocal_ranges.py),
results and errors, so a node can run both on one network.

- ADD: one address from each range set (round-robin after
  ``last_reserved_ip.N``, the gateway skipped), or the address requested
  for that set (CNI_ARGS ``IP=``, ``args.cni.ips``, ``runtimeConfig.ips``);
  a set with no free address, or a requested address left over, undoes the
  ADD and fails with code 999 and the reference's text.  The result:
  ``ips`` (address and gateway, no interface index), the configured
  ``routes``, ``dns`` from ``resolvConf``.
- DEL: releases the addresses of (CNI_CONTAINERID, CNI_IFNAME) — or,
  failing those, files of the older id-only form (with two range sets or
  more, those too: the reference releases once per set).  Never an error
  once the store opens.
- CHECK: succeeds if some file holds (container id, ifname), as the
  reference's (which looks at nothing else).
- GC (spec 1.1.0; the reference has none): releases every address whose
  (container id, ifname) is not in ``cni.dev/valid-attachments``.
- STATUS (1.1.0): the configuration is valid.

Used by the plugin through ``delegate.ipam_plugin`` (``HostLocal``, the
``Delegate`` interface); ``run(environ, stdin)`` is the whole plugin as
the reference's executable behaves (its output bytes, its exit code);
``python3 -m pynetlink.cni.hostlocal`` runs it as an executable.

Where it differs from the reference v1.1.1: it speaks cniVersion 1.1.0
(GC, STATUS) and not 0.1.0/0.2.0; an ADD or DEL holds the store's lock
once and reads the store once (the reference locks and reads per range
set: the same outcome, ~1 ms instead of ~5-10 ms with 200 addresses held);
a route needs its ``dst``; Go's JSON type errors are worded alike, not
byte for byte.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, Mapping, Optional, Union

from .hostlocal_ranges import Address, HostLocalConf, HostLocalError, Range, RangeSet, load_config
from .._groupcommit import group_for
from .hostlocal_store import GO_SPACE, Store, go_error, remove
from .spec import E_INVALID_CONFIG, CNIError

KIND = "host-local"
# Versions whose results this module renders: 0.3.x/0.4.0 (each IP with
# "version") and 1.x.  The reference also speaks 0.1.0 and 0.2.0, and not 1.1.0.
VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
MAX_RESOLV_CONF = 1 << 20


# -- allocation ------------------------------------------------------------------------------------

def candidates(ranges: RangeSet, last: Optional[Address]):
    """The addresses to try, in the reference's RangeIter order: from the
    one after ``last`` (if it is in the set), else from the first
    ``rangeStart``, through every range of the set once, wrapping; each
    range's gateway skipped.  Yields (address, range)."""
    if last is not None and ranges.contains(last):
        idx = next(i for i, r in enumerate(ranges) if r.contains(last))
        cur, start = last, None
    else:
        idx, cur, start = 0, None, ranges[0].start
    for _ in range(sum(int(r.end) - int(r.start) + 1 for r in ranges) + 2):   # bounded: each address once
        r = ranges[idx]
        if cur is None:
            cur = start = r.start
        else:
            if cur == r.end:
                idx = (idx + 1) % len(ranges)
                r = ranges[idx]
                cur = r.start
            else:
                cur = cur + 1
            if start is None:
                start = cur
            elif cur == start:
                return
        if cur != r.gateway:
            yield cur, r


def allocate(store: Store, ranges: RangeSet, range_id: int, container_id: str, ifname: str,
             requested: Optional[Address], held: list) -> dict:
    """One address from the set, the lock held: ``requested`` if given, else
    the next free one (none if ``held``, the container's addresses, has one
    of the set).  The result's ``ips`` entry."""
    if requested is not None:
        r = ranges.range_for(requested)
        if requested == r.gateway:
            raise HostLocalError(f"requested ip {requested} is subnet's gateway")
        if not store.reserve(container_id, ifname, requested, range_id):
            raise HostLocalError(f"requested IP address {requested} is not available "
                                 f"in range set {ranges}")
        return ip_entry(requested, r)
    for address in held:
        if ranges.contains(address):
            raise HostLocalError(f"{address} has been allocated to {container_id}, "
                                 "duplicate allocation is not allowed")
    for address, r in candidates(ranges, store.last_reserved(range_id)):
        if store.reserve(container_id, ifname, address, range_id):
            return ip_entry(address, r)
    raise HostLocalError(f"no IP addresses available in range set: {ranges}")


def ip_entry(address: Address, r: Range) -> dict:
    return {"address": f"{address}/{r.subnet.prefixlen}", "gateway": str(r.gateway)}


def add(conf: HostLocalConf, container_id: str, ifname: str) -> dict:
    """ADD: an address from each range set, routes and DNS; the result in
    ``conf.version``'s format.  Nothing stays held if it fails.

    The reference takes the lock once per range set and reads every file of
    the store once per set; here the lock is held for the whole ADD and the
    store read once (the addresses a set reserves can never be another
    set's, as sets do not overlap): the same outcome, one serialization of it."""
    dns = parse_resolv_conf(conf.resolv_conf) if conf.resolv_conf else {}
    with Store(conf.name, conf.data_dir) as store, store.lock():
        held = store.get_by_id(container_id, ifname)
        requested = {str(ip): ip for ip in conf.requested}
        ips: list = []
        for idx, ranges in enumerate(conf.ranges):
            wanted = next((k for k, ip in requested.items() if ranges.contains(ip)), None)
            try:
                ips.append(allocate(store, ranges, idx, container_id, ifname,
                                    requested.pop(wanted) if wanted else None, held))
            except HostLocalError as e:
                store.release_by_id(container_id, ifname, passes=len(ips))
                raise HostLocalError(f"failed to allocate for range {idx}: {e.msg}") from None
        if requested:
            store.release_by_id(container_id, ifname, passes=len(ips))
            raise HostLocalError("failed to allocate all requested IPs: " + " ".join(requested))
    return result_doc(conf, ips, dns)


def result_doc(conf: HostLocalConf, ips: list, dns: dict) -> dict:
    """The result as the reference prints it (types/100 converted to the
    configuration's version: 0.3.x/0.4.0 add each IP's ``version``)."""
    if conf.version.startswith("0."):
        ips = [{"version": "6" if ":" in ip["address"] else "4", **ip} for ip in ips]
    doc: dict[str, Any] = {"cniVersion": conf.version}
    if ips:
        doc["ips"] = ips
    if conf.routes:
        doc["routes"] = conf.routes
    doc["dns"] = dns
    return doc


def delete(conf: HostLocalConf, container_id: str, ifname: str) -> None:
    """DEL: the addresses of (container_id, ifname) released (one pass per
    range set, as the reference does).  Concurrent DELs on one store (in
    the daemon) are released together: one lock taken, one read of the
    directory, for all those waiting (pynetlink/_groupcommit.py)."""
    key = (conf.name, conf.data_dir)
    group_for(("host-local release", key), lambda: releaser(*key)).submit(
        (container_id, ifname, len(conf.ranges)))


def releaser(name: str, data_dir: str) -> Callable[[list], None]:
    """Release (container_id, ifname, passes) owners on the store of
    network ``name`` in ``data_dir``, under its lock."""
    def release(owners: list) -> None:
        with Store(name, data_dir) as store, store.lock():
            store.release_many(owners)
    return release


def check(conf: HostLocalConf, container_id: str, ifname: str) -> None:
    """CHECK: some file holds (container_id, ifname)."""
    with Store(conf.name, conf.data_dir) as store, store.lock():
        if not store.find_by_id(container_id, ifname):
            raise HostLocalError(f"host-local: Failed to find address added by container {container_id}")


def gc(conf: HostLocalConf, attachments: list) -> int:
    """GC: every address whose owner is not one of ``attachments``
    ({"containerID", "ifname"} objects) released; an old id-only file stays
    if its container has any valid attachment.  How many were released."""
    valid = {(a["containerID"].strip(GO_SPACE), a["ifname"]) for a in attachments}
    ids = {cid for cid, _ in valid}

    def stale(text: str) -> bool:
        cid, sep, ifname = text.partition("\r\n")
        return (cid, ifname) not in valid if sep else cid not in ids

    with Store(conf.name, conf.data_dir) as store, store.lock():
        return remove([path for path, _, _ in store.allocations(stale)])


def valid_attachments(doc: dict) -> list:
    """``cni.dev/valid-attachments``, checked (error 7 if malformed)."""
    attachments = doc.get("cni.dev/valid-attachments", [])
    if not isinstance(attachments, list) or not all(
            isinstance(a, dict) and isinstance(a.get("containerID"), str)
            and isinstance(a.get("ifname"), str) for a in attachments):
        raise CNIError(E_INVALID_CONFIG, "cni.dev/valid-attachments must be a list of "
                                         "{\"containerID\", \"ifname\"} objects")
    return attachments


def parse_resolv_conf(path: str) -> dict:
    """``resolvConf`` read as the reference does: nameserver, domain, search, options."""
    try:
        with open(path, "rb") as f:
            text = f.read(MAX_RESOLV_CONF).decode("utf-8", "replace")
    except OSError as e:
        raise go_error(e, "open") from None
    dns: dict[str, Any] = {}
    for line in text.split("\n"):
        fields = line.split()
        if len(fields) < 2 or fields[0][0] in "#;":
            continue
        key, values = fields[0], fields[1:]
        if key == "nameserver":
            dns.setdefault("nameservers", []).append(values[0])
        elif key == "domain":
            dns["domain"] = values[0]
        elif key in ("search", "options"):
            dns.setdefault(key, []).extend(values)
    return {k: dns[k] for k in ("nameservers", "domain", "search", "options") if k in dns}


# -- one command -----------------------------------------------------------------------------------

def run_command(command: str, raw: bytes, environ: Mapping[str, str]) -> Optional[dict]:
    """One command on the raw configuration, the CNI_* environment
    already checked; the result document (ADD) or None."""
    conf = load_config(raw, environ.get("CNI_ARGS", ""))
    cid, ifname = environ.get("CNI_CONTAINERID", ""), environ.get("CNI_IFNAME", "")
    if command == "ADD":
        return add(conf, cid, ifname)
    if command == "DEL":
        delete(conf, cid, ifname)
    elif command == "CHECK":
        check(conf, cid, ifname)
    elif command == "GC":
        gc(conf, valid_attachments(json.loads(raw)))
    elif command != "STATUS":
        raise CNIError(4, f"unknown CNI_COMMAND: {command}")
    return None


class HostLocal:
    """host-local as a delegated plugin run in-process, with the
    ``Delegate`` interface: ``start(command)`` does the work (under the
    store's lock) and keeps the outcome; ``wait()`` returns the result (or
    None) or raises its CNIError (code 999, the reference's text);
    ``finish()`` is (exit status, stdout, stderr) as the executable's would be."""

    kind = KIND

    def __init__(self, env, stdin: bytes):
        self.env, self.stdin = env, stdin
        self.command = ""
        self.outcome: Optional[tuple] = None        # (result or None, error or None)

    def start(self, command: str) -> "HostLocal":
        self.command = command
        environ = dict(self.env.environ, CNI_COMMAND=command)
        try:
            self.outcome = (run_command(command, self.stdin, environ), None)
        except Exception as e:                      # noqa: BLE001 - reported by wait(), as a plugin's
            self.outcome = (None, e)
        return self

    def finish(self) -> tuple:
        assert self.outcome is not None, "finish() before start()"
        doc, error = self.outcome
        if error is not None:
            return 1, error_bytes(error), b""
        return 0, b"" if doc is None else dumps(doc), b""

    def wait(self) -> Any:
        assert self.outcome is not None, "wait() before start()"
        doc, error = self.outcome
        if error is not None:
            raise as_cni_error(error)
        return doc

    def run(self, command: str) -> Any:
        return self.start(command).wait()

    def succeeded(self) -> bool:
        return self.outcome is not None and self.outcome[1] is None


def as_cni_error(e: BaseException) -> CNIError:
    """Any failure as the reference reports it: its own code, or 999 and the text."""
    if isinstance(e, CNIError):
        return e
    return HostLocalError(str(e))


def error_bytes(e: BaseException) -> bytes:
    """The error document as the reference prints it (no cniVersion)."""
    error = as_cni_error(e)
    doc: dict[str, Any] = {"code": error.code, "msg": error.msg}
    if error.details:
        doc["details"] = error.details
    return dumps(doc)


GO_ESCAPES: dict[Union[str, int], Union[str, int, None]] = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def dumps(doc: dict) -> bytes:
    """Go's json.MarshalIndent(doc, "", "    ") for these documents: UTF-8
    as is, <, >, &, U+2028 and U+2029 escaped (they only occur in strings)."""
    text = json.dumps(doc, indent=4, ensure_ascii=False)
    return text.translate(str.maketrans(GO_ESCAPES)).encode()


# -- the executable ------------------------------------------------------------------------------

REQUIRED = {"ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
            "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
            "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
            "STATUS": ("CNI_PATH",), "GC": ("CNI_PATH",)}


def run(environ: Mapping[str, str], stdin: bytes) -> tuple:
    """The plugin as the reference executable runs: the CNI environment and
    the configuration in; stdout's bytes and the exit status out."""
    command = environ.get("CNI_COMMAND", "")
    if command == "VERSION":
        return dumps_compact({"cniVersion": "1.0.0", "supportedVersions": list(VERSIONS)}), 0
    missing = [n for n in ("CNI_COMMAND", *REQUIRED.get(command, ())) if not environ.get(n)]
    try:
        if missing:
            raise CNIError(4, f"required env variables [{','.join(missing)}] missing")
        check_version(command, stdin)
        return (b"" if (doc := run_command(command, stdin, environ)) is None else dumps(doc)), 0
    except Exception as e:                          # noqa: BLE001 - every failure is a CNI error
        return error_bytes(e), 1


def dumps_compact(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def check_version(command: str, raw: bytes) -> None:
    """The configuration's cniVersion must be one spoken here (code 1);
    CHECK needs 0.4.0 or later, STATUS and GC 1.1.0."""
    try:
        version = json.loads(raw).get("cniVersion", "")
    except (ValueError, AttributeError, UnicodeDecodeError) as e:
        raise CNIError(6, str(e)) from None
    if version not in VERSIONS:
        raise CNIError(1, "incompatible CNI versions",
                       f"config is \"{version}\", plugin supports {list(VERSIONS)}")
    if command == "CHECK" and version.startswith("0.3"):
        raise CNIError(1, "config version does not allow CHECK")
    if command in ("STATUS", "GC") and version != "1.1.0":
        raise CNIError(1, f"config version does not allow {command}")


def main() -> int:
    out, code = run(os.environ, sys.stdin.buffer.read(16 << 20))
    sys.stdout.buffer.write(out)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
