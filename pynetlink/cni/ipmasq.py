"""ipMasq: the NAT rules that masquerade a container's traffic leaving its
subnet, made, removed and checked as the reference bridge plugin does
(``pkg/ip/ipmasq_*_linux.go`` of containernetworking/plugins), by running
the same programs — so the rules are the reference's own, and either
plugin's DEL removes the other's.

Two backends, chosen by ``ipMasqBackend``; without it ``iptables`` when the
``iptables`` program works here (``iptables -t filter -S INPUT 1``), else
``nftables`` when ``nft`` is in PATH — the reference's choice:

- ``iptables`` (Debian package ``iptables``; ``ip6tables`` for IPv6), table
  ``nat``, every command with ``--wait`` (the xtables lock is waited for):
  a chain per container, ``CNI-`` + the first 24 hex digits of
  SHA-512(network name + container id), holding ``-d ADDR/PREFIX -j
  ACCEPT`` (the subnet is left alone) then ``! -d 224.0.0.0/4`` (IPv6:
  ``ff00::/8``) ``-j MASQUERADE`` (multicast is not masqueraded), and in
  POSTROUTING ``-s ADDR -j CHAIN``; each rule commented ``name: "NET" id:
  "CID"``.
- ``nftables`` (package ``nftables``): table ``inet cni_plugins_masquerade``
  with a base chain ``postrouting`` (nat hook, priority srcnat = 100) that
  returns for multicast and jumps to ``masq_checks``, where each container
  address has a rule ``ip saddr ADDR ip daddr != SUBNET masquerade``
  commented with a hash of network, ifname and container id (found and
  deleted by that prefix).

Teardown is idempotent: rules already gone are no error, and it cleans up
after both backends (the pod may have been made with the other one), a
backend whose program is absent or cannot work being skipped, as the
reference does.  Where the reference runs four iptables commands per
address on DEL (each a kernel commit, each waiting for an RCU grace
period), one ``iptables-restore --noflush`` transaction per family deletes
the same rules when they are all there.  Programs run with the command's
PATH and the C locale; a missing one is error 100 naming it and its
package.
"""
from __future__ import annotations

import errno
import ipaddress
import json
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence

from .kernel import open_container
from .result import IPInterface, parse_result
from .spec import E_KERNEL, E_TRY_AGAIN, CNIError, Env, warn

CHAIN_PREFIX = "CNI-"
CHAIN_LENGTH = 28                           # iptables chain names: at most 28 characters
MULTICAST = {4: "224.0.0.0/4", 6: "ff00::/8"}
IPTABLES = {4: "iptables", 6: "ip6tables"}
RESTORE = {4: "iptables-restore", 6: "ip6tables-restore"}
PACKAGE = {"iptables": "iptables", "ip6tables": "iptables", "nft": "nftables"}
NFT_TABLE = "cni_plugins_masquerade"
NFT_CHAIN = "masq_checks"
NFT_COMMENT_MAX = 128                       # nftables' limit on a comment's length
NFT_TABLE_COMMENT = "Masquerading for plugins from github.com/containernetworking/plugins"
NFT_CHAIN_COMMENT = "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet"
NFT_SNAT_PRIORITY = 100                     # "srcnat", as the reference writes it
TOOL_TIMEOUT = 120.0                        # seconds one iptables/nft run may take (lock waits included)
BROADCAST = ipaddress.ip_address("255.255.255.255")
NOT_FOUND = ("No chain/target/match by that name", "does a matching rule exist in that chain?",
             "No such file or directory", "does not exist")


# -- the reference's names -------------------------------------------------------------------

def sha512_hex(text: str, length: int) -> str:
    import hashlib                      # here: OpenSSL's load is felt by every exec-mode call
    return hashlib.sha512(text.encode()).hexdigest()[:length]


def chain_name(network: str, container_id: str) -> str:
    """The iptables chain: ``CNI-`` + 24 hex digits of SHA-512(network + id)."""
    return CHAIN_PREFIX + sha512_hex(network + container_id, CHAIN_LENGTH - len(CHAIN_PREFIX))


def go_quote(text: str) -> str:
    """``text`` as Go's ``%q`` writes it (the comments are formatted so)."""
    escapes = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
               "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    out = []
    for c in text:
        if c in escapes:
            out.append(escapes[c])
        elif c.isprintable():
            out.append(c)
        else:
            code = ord(c)
            out.append(f"\\x{code:02x}" if code < 0x80 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def iptables_comment(network: str, container_id: str) -> str:
    """``name: "NET" id: "CID"``."""
    return f"name: {go_quote(network)} id: {go_quote(container_id)}"


def nft_instance(network: str, ifname: str, container_id: str) -> str:
    """The prefix of an nftables rule's comment that identifies its pod."""
    return sha512_hex(network, 16) + "-" + sha512_hex(f"{ifname}:{container_id}", 16)


def nft_comment(network: str, ifname: str, container_id: str) -> str:
    """``HASH, net: NET, if: IFNAME, id: CID`` (quotes dropped), at most 128 characters."""
    parts = (nft_instance(network, ifname, container_id),
             *(s.replace('"', "") for s in (network, ifname, container_id)))
    return "{}, net: {}, if: {}, id: {}".format(*parts)[:NFT_COMMENT_MAX]


# -- running the programs ------------------------------------------------------------------

def missing_program(program: str, path: str) -> CNIError:
    """The error of a program not found in PATH, naming it and its package."""
    return CNIError(E_KERNEL, f"ipMasq needs the {program} program (Debian/Ubuntu package "
                              f"{PACKAGE[program]}): not found in PATH",
                    f"PATH={path}; install {PACKAGE[program]}, or set ipMasq to false")


def run_tool(argv: Sequence[str], path: str, stdin: Optional[str] = None) -> subprocess.CompletedProcess:
    """``argv`` run with PATH and the C locale; its exit status, stdout and stderr."""
    try:
        return subprocess.run(list(argv), input=stdin, capture_output=True, text=True,
                              env={"PATH": path, "LC_ALL": "C"}, timeout=TOOL_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CNIError(E_TRY_AGAIN, f"ipMasq: {os.path.basename(argv[0])} did not finish within "
                                    f"{TOOL_TIMEOUT:.0f} s", shlex.join(argv)) from None


def tool_error(argv: Sequence[str], proc: subprocess.CompletedProcess) -> CNIError:
    first = (proc.stderr.strip() or proc.stdout.strip() or f"exit status {proc.returncode}")
    return CNIError(E_KERNEL, f"ipMasq: {os.path.basename(argv[0])}: {first.splitlines()[0]}",
                    f"{shlex.join(argv)}: exit status {proc.returncode}: {proc.stderr.strip()}")


def restore_quote(text: str) -> str:
    """``text`` quoted for an ``iptables-restore`` line (as ``iptables-save`` writes it)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def not_found(proc: subprocess.CompletedProcess) -> bool:
    """The program failed because the rule, chain or table is not there."""
    return any(text in proc.stderr for text in NOT_FOUND)


@dataclass(frozen=True)
class Masq:
    """One pod's masquerade rules: its network's name, container id and
    interface, and the PATH where the programs are looked up."""
    network: str
    container_id: str
    ifname: str
    path: str

    def find(self, program: str) -> Optional[str]:
        """The program's path, if PATH has it."""
        return shutil.which(program, path=self.path)

    def need(self, program: str) -> str:
        found = self.find(program)
        if found is None:
            raise missing_program(program, self.path)
        return found

    def backend(self, configured: str) -> str:
        """``ipMasqBackend``, or the reference's default: iptables when it
        works here, else nftables when nft is there, else iptables (whose
        absence is then the error)."""
        if configured:
            return configured
        if not self.usable("iptables") and self.find("nft") is not None:
            return "nftables"
        return "iptables"

    def usable(self, program: str) -> bool:
        """The program is there and can read netfilter's state here (as the
        reference asks: ``iptables -t filter -S INPUT 1``; ``nft list tables``)."""
        found = self.find(program)
        if found is None:
            return False
        probe = ["list", "tables"] if program == "nft" else ["-t", "filter", "-S", "INPUT", "1", "--wait"]
        return run_tool([found, *probe], self.path).returncode in ((0,) if program == "nft" else (0, 1))

    # -- the three operations

    def setup(self, addresses: Iterable[IPInterface], backend: str = "") -> None:
        """ADD: masquerade what each address sends outside its subnet."""
        addresses = list(addresses)
        if self.backend(backend) == "nftables":
            NFTables(self).setup(addresses)
        else:
            IPTables(self).setup(addresses)

    def teardown(self, addresses: Optional[Iterable[IPInterface]]) -> None:
        """DEL: this pod's rules gone from both backends (already gone: no
        error; a backend whose program is absent: skipped).  ``addresses``
        None: not known, the POSTROUTING jumps to the pod's chain are found
        by listing."""
        found = None if addresses is None else list(addresses)
        if self.find("iptables") is not None or self.find("ip6tables") is not None:
            self.unless_unusable("iptables", lambda: IPTables(self).teardown(found))
        if self.find("nft") is not None:
            self.unless_unusable("nft", NFTables(self).teardown)

    def unless_unusable(self, program: str, step: Callable[[], None]) -> None:
        """Run ``step``; its error is ignored if ``program`` does not work
        here at all (the reference's teardown ignores such a backend)."""
        try:
            step()
        except CNIError:
            if self.usable(program):
                raise

    def check(self, addresses: Iterable[IPInterface], backend: str = "") -> list:
        """CHECK: the rules ``setup`` makes that are missing, as sentences."""
        addresses = list(addresses)
        if self.backend(backend) == "nftables":
            return NFTables(self).check(addresses)
        return IPTables(self).check(addresses)


def masq_for(env: Env, network: str) -> Masq:
    """The Masq of a command's pod (PATH from the command's environment)."""
    return Masq(network, env.container_id, env.ifname, env.environ.get("PATH") or os.defpath)


def add_rules(env: Env, network: str, backend: str, addresses: list, undo: list) -> None:
    """ADD's step: the rules made, their removal put on ``undo`` first (a
    failure half-way leaves nothing)."""
    masq = masq_for(env, network)
    undo.append(lambda: teardown_quietly(masq, addresses))
    masq.setup(addresses, backend)


def teardown_quietly(masq: Masq, addresses: list) -> None:
    """The undo of a failed ADD: a failure is reported on stderr only."""
    try:
        masq.teardown(addresses)
    except Exception as e:                  # noqa: BLE001 - the first error is the one reported
        warn(f"removing the ipMasq rules failed: {e}")


def masq_teardown(env: Env, conf: dict, bc) -> Optional[Callable[[], None]]:
    """DEL's step, prepared before the link goes: None without ``ipMasq``
    or IPAM (the reference tears down only then), else the teardown for
    prevResult's addresses, or else those the container's interface has now
    (the reference's way), or else unknown ones (found by listing)."""
    if not (bc.ip_masq and bc.ipam_type):
        return None
    masq = masq_for(env, bc.network)
    addresses = previous_addresses(conf) or interface_addresses(env.netns, env.ifname) or None
    return lambda: masq.teardown(addresses)


def previous_addresses(conf: dict) -> list:
    """prevResult's addresses (none if it has none or is not a result)."""
    try:
        return [ip.address for ip in parse_result(conf["prevResult"], "prevResult").ips]
    except (KeyError, CNIError):
        return []


def interface_addresses(netns_path: str, ifname: str) -> list:
    """The global unicast addresses of IFNAME in the namespace (none if
    either is gone), as the reference reads them on DEL."""
    if not netns_path:
        return []
    try:
        fd, cont = open_container(netns_path)
    except CNIError:
        return []
    try:
        with cont:
            found = [a.interface for a in cont.list_addresses(ifname)]
    except OSError as e:
        if e.errno != errno.ENODEV:
            raise
        return []
    finally:
        os.close(fd)
    return [a for a in found if not (a.is_loopback or a.is_link_local or a.is_multicast
                                     or a.is_unspecified or a.ip == BROADCAST)]


# -- iptables --------------------------------------------------------------------------------

class IPTables:
    """The reference's iptables rules for one pod (table nat, ``--wait``)."""

    def __init__(self, masq: Masq):
        self.masq = masq
        self.chain = chain_name(masq.network, masq.container_id)
        self.comment = ["-m", "comment", "--comment", iptables_comment(masq.network, masq.container_id)]

    def run(self, family: int, *args: str, program: Optional[str] = None) -> subprocess.CompletedProcess:
        argv = [program or self.masq.need(IPTABLES[family]), "-t", "nat", *args, "--wait"]
        return run_tool(argv, self.masq.path)

    def must(self, family: int, *args: str, allow: Callable = lambda p: False) -> subprocess.CompletedProcess:
        """Run; an error unless it succeeded or ``allow`` excuses the failure."""
        proc = self.run(family, *args)
        if proc.returncode != 0 and not allow(proc):
            raise tool_error([IPTABLES[family], "-t", "nat", *args, "--wait"], proc)
        return proc

    def rules(self, address: IPInterface) -> list:
        """(chain, rulespec) of the three rules for ``address``, in the reference's order."""
        return [(self.chain, ["-d", str(address), "-j", "ACCEPT", *self.comment]),
                (self.chain, ["!", "-d", MULTICAST[address.version], "-j", "MASQUERADE", *self.comment]),
                ("POSTROUTING", ["-s", str(address.ip), "-j", self.chain, *self.comment])]

    def exists(self, family: int, chain: str, spec: list) -> bool:
        """``-C``: exit status 1, or a missing chain, means absent; any
        other failure is an error."""
        proc = self.must(family, "-C", chain, *spec, allow=lambda p: p.returncode == 1 or not_found(p))
        return proc.returncode == 0

    def setup(self, addresses: list) -> None:
        """Per address: the chain (made if missing), then each rule appended
        unless it is there (a chain just made is known to be empty)."""
        for address in addresses:
            family = address.version
            made = self.must(family, "-N", self.chain,
                             allow=lambda p: "already exists" in p.stderr).returncode == 0
            for chain, spec in self.rules(address):
                if (made and chain == self.chain) or not self.exists(family, chain, spec):
                    self.must(family, "-A", chain, *spec)

    def teardown(self, addresses: Optional[list]) -> None:
        """Per family: the POSTROUTING jumps deleted (by address, also in the
        CIDR form older versions made; or, addresses unknown, all found
        jumping to the chain), then the chain flushed and deleted.  When
        all of it is there, that is one ``iptables-restore`` transaction
        (one wait for the kernel instead of one per command)."""
        families = sorted({a.version for a in addresses}) if addresses is not None else [4, 6]
        for family in families:
            if self.masq.find(IPTABLES[family]) is None:
                continue
            if addresses is not None and self.restore(family, [a for a in addresses if a.version == family]):
                continue
            if addresses is None:
                self.delete_jumps(family)
            for address in addresses or ():
                if address.version == family:
                    for source in (str(address.ip), str(address)):
                        self.must(family, "-D", "POSTROUTING", "-s", source, "-j", self.chain,
                                  *self.comment, allow=not_found)
            self.must(family, "-F", self.chain, allow=not_found)
            self.must(family, "-X", self.chain, allow=not_found)

    def restore(self, family: int, addresses: list) -> bool:
        """The jumps from ``addresses``, the chain's rules and the chain
        deleted in one transaction; False if that failed as a whole (say, a
        rule was gone already) or ``iptables-restore`` is absent."""
        program = self.masq.find(RESTORE[family])
        if program is None:
            return False
        comment = " ".join(self.comment[:-1] + [restore_quote(self.comment[-1])])
        lines = ["*nat", *(f"-D POSTROUTING -s {a.ip} -j {self.chain} {comment}" for a in addresses),
                 f"-F {self.chain}", f"-X {self.chain}", "COMMIT"]
        script = "\n".join(lines) + "\n"
        return run_tool([program, "--wait", "--noflush"], self.masq.path, script).returncode == 0

    def delete_jumps(self, family: int) -> None:
        """Every POSTROUTING rule jumping to the chain deleted (as listed by ``-S``)."""
        listing = self.must(family, "-S", "POSTROUTING").stdout
        for line in listing.splitlines():
            words = shlex.split(line)
            jumps = any(words[i:i + 2] == ["-j", self.chain] for i in range(len(words) - 1))
            if words[:2] == ["-A", "POSTROUTING"] and jumps:
                self.must(family, "-D", *words[1:], allow=not_found)

    def check(self, addresses: list) -> list:
        problems = []
        for address in addresses:
            for chain, spec in self.rules(address):
                if not self.exists(address.version, chain, spec):
                    problems.append(f"ipMasq: {IPTABLES[address.version]} rule "
                                    f"-t nat -A {chain} {shlex.join(spec)} not found")
        return problems


# -- nftables --------------------------------------------------------------------------------

class NFTables:
    """The reference's nftables rules for one pod (table inet cni_plugins_masquerade)."""

    def __init__(self, masq: Masq):
        self.masq = masq
        self.instance = nft_instance(masq.network, masq.ifname, masq.container_id)
        self.comment = nft_comment(masq.network, masq.ifname, masq.container_id)

    def run(self, *args: str, stdin: Optional[str] = None) -> subprocess.CompletedProcess:
        return run_tool([self.masq.need("nft"), *args], self.masq.path, stdin)

    def apply(self, script: str, allow_missing: bool = False) -> None:
        """``nft -f -``: the lines in one transaction."""
        proc = self.run("-f", "-", stdin=script)
        if proc.returncode != 0 and not (allow_missing and not_found(proc)):
            raise tool_error(["nft", "-f", "-"], proc)

    def listing(self, *what: str) -> list:
        """``nft --json list WHAT``: its objects (empty if it is not there)."""
        proc = self.run("--json", "list", *what)
        if proc.returncode != 0:
            if not_found(proc):
                return []
            raise tool_error(["nft", "--json", "list", *what], proc)
        try:
            return json.loads(proc.stdout).get("nftables", [])
        except ValueError as e:
            raise CNIError(E_KERNEL, "ipMasq: nft --json printed no JSON", str(e)) from None

    def own_rules(self, objects: list) -> list:
        """This pod's rules in masq_checks (by their comment's prefix)."""
        rules = [o["rule"] for o in objects if "rule" in o]
        return [r for r in rules if r.get("chain") == NFT_CHAIN
                and str(r.get("comment", "")).startswith(self.instance)]

    def setup(self, addresses: list) -> None:
        """One transaction, as the reference's: table and chains ensured,
        postrouting rewritten, this pod's stale rules replaced by one per address."""
        stale = self.own_rules(self.listing("chain", "inet", NFT_TABLE, NFT_CHAIN))
        at = f"inet {NFT_TABLE}"
        lines = [f"add table {at} {{ comment {go_quote(NFT_TABLE_COMMENT)} ; }}",
                 f"add chain {at} {NFT_CHAIN} {{ comment {go_quote(NFT_CHAIN_COMMENT)} ; }}",
                 f"add chain {at} postrouting {{ type nat hook postrouting priority {NFT_SNAT_PRIORITY} ; }}",
                 f"flush chain {at} postrouting",
                 f"add rule {at} postrouting ip daddr == {MULTICAST[4]}  return",
                 f"add rule {at} postrouting ip6 daddr == {MULTICAST[6]}  return",
                 f"add rule {at} postrouting goto {NFT_CHAIN}"]
        lines += [f"delete rule {at} {NFT_CHAIN} handle {r['handle']}" for r in stale]
        for address in addresses:
            ip = "ip" if address.version == 4 else "ip6"
            lines.append(f"add rule {at} {NFT_CHAIN} {ip} saddr == {address.ip} {ip} daddr != "
                         f"{address.network} masquerade comment {go_quote(self.comment)}")
        self.apply("\n".join(lines) + "\n")

    def teardown(self) -> None:
        """This pod's rules deleted (none there: nothing to do)."""
        rules = self.own_rules(self.listing("chain", "inet", NFT_TABLE, NFT_CHAIN))
        if rules:
            self.apply("".join(f"delete rule inet {NFT_TABLE} {NFT_CHAIN} handle {r['handle']}\n"
                               for r in rules), allow_missing=True)

    def check(self, addresses: list) -> list:
        objects = self.listing("table", "inet", NFT_TABLE)
        problems = []
        if not any(o.get("chain", {}).get("name") == "postrouting" for o in objects):
            problems.append(f"ipMasq: nftables chain inet {NFT_TABLE} postrouting not found")
        sources = {source_address(r) for r in self.own_rules(objects) if r.get("comment") == self.comment}
        problems += [f"ipMasq: nftables rule masquerading {a.ip} (inet {NFT_TABLE} {NFT_CHAIN}) not found"
                     for a in addresses if a.ip not in sources]
        return problems


def source_address(rule: dict):
    """The address a masq_checks rule matches as ``saddr`` (None if none)."""
    for expr in rule.get("expr", []):
        match = expr.get("match", {}) if isinstance(expr, dict) else {}
        payload = match.get("left", {}).get("payload", {}) if isinstance(match.get("left"), dict) else {}
        if payload.get("field") == "saddr" and isinstance(match.get("right"), str):
            return ipaddress.ip_address(match["right"])
    return None
