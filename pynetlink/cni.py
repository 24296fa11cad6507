"""pynetlink-cni: a CNI plugin (spec 1.0.0 and 1.1.0; 0.4.0 configs accepted)
doing the reference ``bridge`` plugin's job — or, with ``"loopback": true``,
the reference ``loopback`` plugin's — over pynetlink.

The runtime executes the plugin once per container and command, with
``CNI_COMMAND``, ``CNI_CONTAINERID``, ``CNI_NETNS``, ``CNI_IFNAME``,
``CNI_ARGS`` and ``CNI_PATH`` in the environment and the network
configuration as JSON on stdin; it reads a result (ADD), nothing (DEL,
CHECK, STATUS, GC) or an error (``{"cniVersion", "code", "msg",
"details"}``, non-zero exit) on stdout.

Bridge mode (the default), per ADD, in the host's namespace (where the
plugin runs) and the container's (``CNI_NETNS``):

- the bridge (``bridge``, default ``cni0``) is created if missing, with
  ``mtu``, ``promiscMode``, IPv6 router advertisements ignored, and up;
- a veth pair: ``CNI_IFNAME`` is born inside the container with ``mtu``,
  its host end (``veth`` + 8 hex digits) on the bridge with ``mtu``, up,
  ``hairpinMode`` — one RTM_NEWLINK, no namespace move;
- IPAM by delegation: ``<CNI_PATH>/<ipam.type>`` runs with the same stdin
  and environment (while the links are being made); its addresses and
  routes go on ``CNI_IFNAME`` (up; DAD off, ``arp_notify`` on, as the
  reference does), ``isGateway`` puts each gateway on the bridge (forwarding
  on), ``isDefaultGateway`` adds a default route per family;
- if any step fails, what this ADD made is removed (the veth, the IPAM
  allocation by the IPAM plugin's DEL) before the error is reported.  The
  bridge and the gateway addresses on it are shared by every container and
  stay, as with the reference plugin (which never deletes them).

Options of the reference plugin that are not implemented (``ipMasq``,
``vlan``, ``vlanTrunk``, ``macspoofchk``, ``enabledad``, ``forceAddress``,
...) are refused with error 2 whenever they ask for something other than
their default; unknown keys are ignored, as the reference does.

Error codes: the spec's well-known ones — 1 incompatible version,
2 unsupported field, 3 container unknown, 4 invalid environment variables,
5 I/O failure, 6 decoding failure, 7 invalid network configuration,
11 try again later, 50 not available (STATUS) — an IPAM plugin's own error
passed on unchanged, and this plugin's: 100 the kernel refused an operation,
101 a delegated plugin failed without a CNI error, 102 CHECK found the
kernel different from ``prevResult``, 999 an unexpected internal error.

CHECK reads the container's addresses and routes with iproute2 (``ip -j``,
run inside the namespace): the core has no address or route dump yet.

This module imports only the standard library at start, and the parts of
pynetlink a command uses when it runs (``pynetlink/__init__`` imports the
rest of the library lazily, on first use).  Install the
executable with ``python3 -m pynetlink.cni --install /opt/cni/bin``: it
starts the interpreter without ``site`` (see ``LAUNCHER``).
"""
from __future__ import annotations

import errno
import json
import os
import sys

SUPPORTED_VERSIONS = ("0.4.0", "1.0.0", "1.1.0")
LATEST = "1.1.0"
PLUGIN = "pynetlink-cni"

# The spec's well-known error codes, and this plugin's own (100+).
E_INCOMPATIBLE_VERSION = 1
E_UNSUPPORTED_FIELD = 2
E_UNKNOWN_CONTAINER = 3
E_INVALID_ENV = 4
E_IO = 5
E_DECODE = 6
E_INVALID_CONFIG = 7
E_TRY_AGAIN = 11
E_NOT_AVAILABLE = 50
E_KERNEL = 100
E_DELEGATE = 101
E_CHECK = 102
E_INTERNAL = 999

DELEGATE_TIMEOUT = 60.0         # seconds an IPAM plugin may take per command
MAX_STDIN = 16 << 20            # bytes of configuration read at most
VETH_ATTEMPTS = 3               # fresh host-end names tried on a name clash
VETH_TXQLEN = 0                 # both veth ends, as the reference plugin leaves them

ENV_REQUIRED = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "STATUS": ("CNI_PATH",),
    "GC": ("CNI_PATH",),
}

# Reference bridge options this plugin does not implement, with the value
# that means "off" (accepted: it asks for nothing).
UNSUPPORTED = {
    "ipMasq": False, "ipMasqBackend": "", "forceAddress": False, "vlan": 0, "vlanTrunk": [],
    "preserveDefaultVlan": True, "macspoofchk": False, "enabledad": False,
    "disableContainerInterface": False, "portIsolation": False,
}
BRIDGE_KEYS = ("bridge", "isGateway", "isDefaultGateway", "mtu", "hairpinMode", "promiscMode",
               "ipam", *UNSUPPORTED)
ROUTE_EXTRAS = ("mtu", "advmss", "priority", "table", "scope")   # spec 1.1.0 route fields


class CNIError(Exception):
    """An error as the spec reports it: a code, a short message, details."""

    def __init__(self, code: int, msg: str, details: str = ""):
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details

    def to_dict(self, version: str) -> dict:
        doc = {"cniVersion": version, "code": self.code, "msg": self.msg}
        if self.details:
            doc["details"] = self.details
        return doc


# -- environment ---------------------------------------------------------------------------

class Env:
    """The CNI_* variables of one invocation, checked for its command."""

    def __init__(self, command: str, environ=os.environ):
        self.command = command
        for name in ENV_REQUIRED[command]:
            if not environ.get(name):
                raise CNIError(E_INVALID_ENV, f"{name} is required for {command}")
        self.container_id = environ.get("CNI_CONTAINERID", "")
        self.netns = environ.get("CNI_NETNS", "")
        self.ifname = environ.get("CNI_IFNAME", "")
        self.args = parse_cni_args(environ.get("CNI_ARGS", ""))
        self.path = [p for p in environ.get("CNI_PATH", "").split(":") if p]
        if self.container_id:
            check_container_id(self.container_id)
        if self.ifname:
            check_ifname(self.ifname)


def check_container_id(value: str) -> None:
    """The spec's container ID: an alphanumeric, then alphanumerics, '_', '.', '-'."""
    ok = value[0].isascii() and value[0].isalnum() and all(
        c.isascii() and (c.isalnum() or c in "_.-") for c in value)
    if not ok:
        raise CNIError(E_INVALID_ENV, f"CNI_CONTAINERID {value!r} is not a valid container ID",
                       "must start with a letter or digit, then letters, digits, '_', '.', '-'")


def check_ifname(value: str) -> None:
    """CNI_IFNAME as the kernel's dev_valid_name() accepts it."""
    from . import _validate
    try:
        _validate.ifname(value, "CNI_IFNAME")
    except ValueError as e:
        raise CNIError(E_INVALID_ENV, f"CNI_IFNAME {value!r} is not a valid interface name",
                       str(e)) from None


def parse_cni_args(text: str) -> dict:
    """CNI_ARGS ("K=V;K2=V2"), as the reference reads it: ``MAC`` is used,
    ``IgnoreUnknown=1`` lets any other key pass, else another key is an error."""
    pairs = {}
    for item in filter(None, text.split(";")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CNIError(E_INVALID_ENV, f"CNI_ARGS item {item!r} is not KEY=VALUE")
        pairs[key] = value
    ignore = pairs.pop("IgnoreUnknown", "").lower() in ("1", "true")
    unknown = sorted(set(pairs) - {"MAC"})
    if unknown and not ignore:
        raise CNIError(E_INVALID_ENV, f"CNI_ARGS: unknown keys {', '.join(unknown)}",
                       "add IgnoreUnknown=1 to pass keys this plugin does not use")
    return pairs


# -- configuration -------------------------------------------------------------------------

def stdin_is_terminal() -> bool:
    return sys.stdin is None or sys.stdin.isatty()


def read_stdin() -> bytes:
    data = sys.stdin.buffer.read(MAX_STDIN + 1) if sys.stdin is not None else b""
    if len(data) > MAX_STDIN:
        raise CNIError(E_DECODE, f"the network configuration is larger than {MAX_STDIN} bytes")
    return data


def decode_config(raw: bytes) -> dict:
    """The network configuration object (error 6 if it is not one)."""
    try:
        conf = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise CNIError(E_DECODE, "the network configuration is not valid JSON", str(e)) from None
    if not isinstance(conf, dict):
        raise CNIError(E_DECODE, "the network configuration is not a JSON object")
    return conf


def config_version(conf: dict) -> str:
    """``cniVersion``, one this plugin speaks (error 1 otherwise)."""
    version = conf.get("cniVersion")
    if version not in SUPPORTED_VERSIONS:
        raise CNIError(E_INCOMPATIBLE_VERSION,
                       f"incompatible CNI version {version!r}: this plugin supports "
                       f"{', '.join(SUPPORTED_VERSIONS)}")
    return version


def field(conf: dict, key: str, kind: type, default):
    """conf[key] of JSON type ``kind`` (bool is not an int here), or the default."""
    value = conf.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CNIError(E_INVALID_CONFIG, f"{key} must be a {_json_type(kind)}, not {json.dumps(value)}")
    return value


def _json_type(kind: type) -> str:
    return {bool: "boolean", int: "number", str: "string", dict: "object", list: "list"}[kind]


def check_common(conf: dict) -> None:
    """name and type are required strings."""
    for key in ("name", "type"):
        if not isinstance(conf.get(key), str) or not conf[key]:
            raise CNIError(E_INVALID_CONFIG, f"the network configuration needs a non-empty {key!r}")


def refuse_unsupported(conf: dict) -> None:
    """Reference options asking for something this plugin does not do: error 2."""
    for key, off in UNSUPPORTED.items():
        value = conf.get(key)
        if value is None or value == off or (off == [] and value in ([], None)):
            continue
        raise CNIError(E_UNSUPPORTED_FIELD,
                       f"unsupported field {key}={json.dumps(value)}: {PLUGIN} does not implement {key}",
                       "remove it, or use the reference bridge plugin for this network")


class BridgeConf:
    """The bridge-mode options of a network configuration, validated."""

    def __init__(self, conf: dict, env: Env):
        from . import _validate
        refuse_unsupported(conf)
        self.bridge = field(conf, "bridge", str, "cni0")
        self.is_default_gateway = field(conf, "isDefaultGateway", bool, False)
        self.is_gateway = field(conf, "isGateway", bool, False) or self.is_default_gateway
        self.mtu = field(conf, "mtu", int, 0)
        self.hairpin = field(conf, "hairpinMode", bool, False)
        self.promisc = field(conf, "promiscMode", bool, False)
        ipam = field(conf, "ipam", dict, {})
        self.ipam_type = field(ipam, "type", str, "")
        self.dns = field(conf, "dns", dict, {})
        self.mac = container_mac(conf, env)
        try:
            _validate.ifname(self.bridge, "bridge")
            if self.mac:
                _validate.mac(self.mac)
        except ValueError as e:
            raise CNIError(E_INVALID_CONFIG, str(e)) from None
        if self.mtu and not 68 <= self.mtu <= 65535:
            raise CNIError(E_INVALID_CONFIG,
                           f"mtu {self.mtu} is out of range [68, 65535] (0: the kernel's default)")
        if self.hairpin and self.promisc:
            raise CNIError(E_INVALID_CONFIG, "cannot set hairpin mode and promiscuous mode at the same time")
        if "/" in self.ipam_type or self.ipam_type in (".", ".."):
            raise CNIError(E_INVALID_CONFIG, f"ipam type {self.ipam_type!r} is not a plugin name")


def container_mac(conf: dict, env: Env) -> str:
    """The container end's MAC address, as the reference takes it: CNI_ARGS
    MAC, then args.cni.mac, then runtimeConfig.mac (the last one set wins)."""
    mac = env.args.get("MAC", "")
    args = field(conf, "args", dict, {})
    mac = field(field(args, "cni", dict, {}), "mac", str, "") or mac
    return field(field(conf, "runtimeConfig", dict, {}), "mac", str, "") or mac


def is_loopback(conf: dict) -> bool:
    """``"loopback": true`` selects the loopback job; it takes no bridge options."""
    if not field(conf, "loopback", bool, False):
        return False
    mixed = [k for k in BRIDGE_KEYS if k in conf and k != "ipam"]
    if conf.get("ipam"):
        mixed.append("ipam")
    if mixed:
        raise CNIError(E_INVALID_CONFIG,
                       f"\"loopback\": true takes no bridge options (found: {', '.join(mixed)})")
    return True


# -- delegated plugins (IPAM) ----------------------------------------------------------------

def find_plugin(kind: str, path: list) -> str:
    """The executable ``kind`` in the first CNI_PATH directory that has it."""
    for directory in path:
        candidate = os.path.join(directory, kind)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CNIError(E_INVALID_CONFIG, f"plugin {kind!r} not found in CNI_PATH",
                   f"searched: {':'.join(path) or '(empty)'}")


class Delegate:
    """A delegated plugin run as the spec prescribes: the same stdin and
    environment as ours, CNI_COMMAND set to the command.  ``start`` returns
    at once (the plugin runs while we work); ``wait`` collects its answer."""

    def __init__(self, kind: str, env: Env, stdin: bytes):
        self.kind, self.stdin = kind, stdin
        self.path = find_plugin(kind, env.path)
        self.proc = None
        self.command = ""
        self.outcome = None             # (returncode, stdout, stderr) once finished

    def start(self, command: str) -> "Delegate":
        import subprocess
        environ = dict(os.environ, CNI_COMMAND=command)
        self.command, self.outcome = command, None
        try:
            self.proc = subprocess.Popen([self.path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=environ, close_fds=True)
        except OSError as e:
            raise CNIError(E_DELEGATE, f"cannot run {self.path}: {e.strerror}") from None
        try:
            self.proc.stdin.write(self.stdin)       # small: the pipe holds it
            self.proc.stdin.close()
        except BrokenPipeError:
            pass                                    # it exited early: wait() says how
        self.proc.stdin = None                      # communicate() reads its answer only
        return self

    def finish(self) -> tuple:
        """(returncode, stdout, stderr), waiting at most DELEGATE_TIMEOUT."""
        import subprocess
        if self.outcome is None:
            try:
                out, err = self.proc.communicate(timeout=DELEGATE_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()
                self.outcome = (-9, b"", b"")
                raise CNIError(E_TRY_AGAIN, f"{self.kind} {self.command} did not answer within "
                                            f"{DELEGATE_TIMEOUT:.0f} s") from None
            self.outcome = (self.proc.returncode, out, err)
        return self.outcome

    def wait(self):
        """The decoded answer (None if it printed nothing); its error, if it
        reported one, passed on unchanged."""
        code, out, err = self.finish()
        if code != 0:
            raise self._error(code, out, err)
        if not out.strip():
            return None
        try:
            return json.loads(out)
        except ValueError as e:
            raise CNIError(E_DECODE, f"the answer of {self.kind} {self.command} is not JSON",
                           str(e)) from None

    def run(self, command: str):
        return self.start(command).wait()

    def succeeded(self) -> bool:
        return self.proc is not None and self.finish()[0] == 0

    def _error(self, code: int, out: bytes, err: bytes) -> CNIError:
        try:
            doc = json.loads(out)
            return CNIError(int(doc["code"]), str(doc.get("msg", "")), str(doc.get("details", "")))
        except (ValueError, KeyError, TypeError):
            tail = (err or out).decode("utf-8", "replace").strip()[-2000:]
            return CNIError(E_DELEGATE, f"{self.kind} {self.command} failed (exit status {code})", tail)


def release(ipam: Delegate, env: Env) -> None:
    """Undo an IPAM ADD that succeeded (its DEL), reporting a failure on stderr only."""
    try:
        if ipam.succeeded():
            ipam.run("DEL")
    except Exception as e:                  # noqa: BLE001 - the first error is the one reported
        print(f"{PLUGIN}: releasing the {ipam.kind} allocation failed: {e}", file=sys.stderr)


# -- results -----------------------------------------------------------------------------------

class IPConfig:
    """One entry of a result's ``ips``."""

    def __init__(self, address, gateway=None, interface=None):
        self.address, self.gateway, self.interface = address, gateway, interface


class Route:
    """One entry of a result's ``routes``; ``extra``: the spec 1.1.0 fields."""

    def __init__(self, dst, gw=None, extra=None):
        self.dst, self.gw, self.extra = dst, gw, extra or {}


class Result:
    """A CNI result, in any supported version, decoded."""

    def __init__(self, interfaces=(), ips=(), routes=(), dns=None):
        self.interfaces, self.ips, self.routes = list(interfaces), list(ips), list(routes)
        self.dns = dns or {}


def parse_result(doc, source: str) -> Result:
    """A result (or an IPAM plugin's abbreviated one) from JSON; error 6 if
    it is not one."""
    try:
        return _parse_result(doc)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise CNIError(E_DECODE, f"{source} is not a valid CNI result", f"{type(e).__name__}: {e}") from None


def _parse_result(doc) -> Result:
    import ipaddress
    if not isinstance(doc, dict):
        raise TypeError("not a JSON object")
    interfaces = [dict(i) for i in doc.get("interfaces") or []]
    ips = [IPConfig(ipaddress.ip_interface(i["address"]),
                    ipaddress.ip_address(i["gateway"]) if i.get("gateway") else None,
                    i.get("interface"))
           for i in doc.get("ips") or []]
    routes = [Route(ipaddress.ip_network(r["dst"], strict=False),
                    ipaddress.ip_address(r["gw"]) if r.get("gw") else None,
                    {k: r[k] for k in ROUTE_EXTRAS if r.get(k) is not None})
              for r in doc.get("routes") or []]
    dns = doc.get("dns") or {}
    if not isinstance(dns, dict):
        raise TypeError("dns is not an object")
    return Result(interfaces, ips, routes, dns)


def render_result(result: Result, version: str) -> dict:
    """The result in the format of ``version`` (0.4.0 adds each IP's ``version``)."""
    doc: dict = {"cniVersion": version}
    if result.interfaces:
        doc["interfaces"] = [{k: v for k, v in i.items() if v not in ("", None)}
                             for i in result.interfaces]
    if result.ips:
        doc["ips"] = [_render_ip(ip, version) for ip in result.ips]
    if result.routes:
        doc["routes"] = [_render_route(r) for r in result.routes]
    doc["dns"] = result.dns
    return doc


def _render_ip(ip: IPConfig, version: str) -> dict:
    out: dict = {}
    if version == "0.4.0":
        out["version"] = str(ip.address.version)
    if ip.interface is not None:
        out["interface"] = ip.interface
    out["address"] = str(ip.address)
    if ip.gateway is not None:
        out["gateway"] = str(ip.gateway)
    return out


def _render_route(route: Route) -> dict:
    out = {"dst": str(route.dst)}
    if route.gw is not None:
        out["gw"] = str(route.gw)
    out.update(route.extra)
    return out


# -- kernel helpers ----------------------------------------------------------------------------

TRANSIENT_ERRNOS = frozenset({errno.EAGAIN, errno.EBUSY, errno.ENOBUFS, errno.ETIMEDOUT, errno.EINTR})


def kernel_error(e: OSError, what: str) -> CNIError:
    """A NetlinkError as a CNI error: 11 if trying again may help, else 100;
    the details carry the operation, its arguments and the kernel's text."""
    code = E_TRY_AGAIN if e.errno in TRANSIENT_ERRNOS else E_KERNEL
    return CNIError(code, f"{what}: {getattr(e, 'operation', 'netlink')}: {e.strerror}", str(e))


def open_container(netns_path: str):
    """(fd, Handle) of the container's namespace; error 3 if there is none."""
    from .handle import Handle
    try:
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise CNIError(E_UNKNOWN_CONTAINER,
                       f"cannot open the network namespace {netns_path}: {e.strerror}") from None
    try:
        return fd, Handle(netns=fd)
    except OSError as e:
        os.close(fd)
        raise CNIError(E_UNKNOWN_CONTAINER, f"{netns_path} is not a network namespace", str(e)) from None


def sysctl(name: str, value=None, *, quiet: bool = False):
    """Read (value None) or write /proc/sys/NAME of the calling thread's
    network namespace (the opener's: /proc/sys/net is per namespace).
    ``quiet``: a missing or refused file is no error (None)."""
    path = "/proc/sys/" + name
    try:
        if value is None:
            with open(path) as f:
                return f.read().strip()
        with open(path, "w") as f:
            f.write(value)
        return value
    except OSError as e:
        if quiet:
            return None
        raise CNIError(E_IO, f"sysctl {name.replace('/', '.')}: {e.strerror}") from None


def sysctl_on(name: str) -> None:
    """Set a sysctl to 1 unless it is (as the reference's EnableIP4Forward does)."""
    if sysctl(name) != "1":
        sysctl(name, "1")


def fail_on(results, allowed=lambda i, r: False) -> None:
    """Raise the first failure of a batch's results that ``allowed`` does not excuse."""
    for i, r in enumerate(results):
        if r.ok or (r.errno and allowed(i, r)):
            continue
        raise r.exception() or CNIError(E_KERNEL, f"{r.operation}: {r.status}")


# -- bridge mode: ADD ------------------------------------------------------------------------------

def add_bridge(env: Env, raw: bytes, conf: dict, bc: BridgeConf) -> dict:
    """ADD: bridge, veth, IPAM, addresses and routes; the result.  Anything
    made is removed again if a later step fails."""
    from .handle import Handle
    netns_fd, cont = open_container(env.netns)
    try:
        with cont, Handle() as host:
            undo: list = []
            try:
                result = build_network(host, cont, netns_fd, env, raw, bc, undo)
            except BaseException:
                for step in reversed(undo):
                    step()
                raise
    finally:
        os.close(netns_fd)
    return render_result(result, conf["cniVersion"])


def build_network(host, cont, netns_fd: int, env: Env, raw: bytes, bc: BridgeConf,
                  undo: list) -> Result:
    """The steps of ADD; each thing made puts its removal on ``undo``.  The
    IPAM plugin runs while the links are made."""
    ipam = Delegate(bc.ipam_type, env, raw).start("ADD") if bc.ipam_type else None
    if ipam:
        undo.append(lambda: release(ipam, env))
    host_veth = create_port(host, cont, bc, env.ifname, netns_fd)
    undo.append(lambda: delete_quietly(host, host_veth))
    result = Result()
    if ipam:
        result = parse_result(ipam.wait(), f"the result of {bc.ipam_type}")
        apply_ipam(host, cont, netns_fd, bc, env.ifname, result)
    else:
        cont.set_link(env.ifname, mac_address=bc.mac or None, txqueuelen=VETH_TXQLEN, up=True)
    result.interfaces = interfaces(host, cont, bc.bridge, host_veth, env)
    if bc.dns:
        result.dns = bc.dns
    return result


def delete_quietly(handle, name: str) -> None:
    """Delete a link made by a failed ADD (its peer goes with it)."""
    try:
        handle.delete_link(name)
    except Exception as e:                  # noqa: BLE001 - the first error is the one reported
        print(f"{PLUGIN}: removing {name} failed: {e}", file=sys.stderr)


def create_port(host, cont, bc: BridgeConf, ifname: str, netns_fd: int) -> str:
    """The bridge (made if missing: MTU, promiscuous mode, up) and a veth
    pair whose end ``ifname`` is born inside the container and whose host
    end is on the bridge and up, in one pipelined exchange.  Returns the
    host end's name."""
    for _ in range(VETH_ATTEMPTS):
        name = "veth" + os.urandom(4).hex()
        b = host.batch()
        b.create_bridge(bc.bridge, mtu=bc.mtu or None)
        b.set_link(bc.bridge, up=True, promisc=True if bc.promisc else None)
        b.create_veth_pair(name, ifname, peer_netns=netns_fd, master=bc.bridge, up=True,
                           mtu=bc.mtu or None, peer_mtu=bc.mtu or None, txqueuelen=VETH_TXQLEN)
        results = b.run()
        if results[2].ok and not all(r.ok or (i == 0 and r.errno == errno.EEXIST)
                                     for i, r in enumerate(results[:2])):
            delete_quietly(host, name)                  # the bridge failed: no veth stays
        fail_on(results[:2], lambda i, r: i == 0 and r.errno == errno.EEXIST)
        sysctl(f"net/ipv6/conf/{bc.bridge}/accept_ra", "0", quiet=True)   # we own its routes
        if results[2].errno == errno.EEXIST and not has_link(cont, ifname):
            continue                                    # the random host name was taken
        if results[2].errno == errno.EEXIST:
            raise CNIError(E_KERNEL, f"the container already has an interface named {ifname}")
        fail_on(results[2:])
        if bc.hairpin:
            try:
                host.set_hairpin(name, True)
            except OSError:
                delete_quietly(host, name)
                raise
        return name
    raise CNIError(E_TRY_AGAIN, f"no free host interface name after {VETH_ATTEMPTS} attempts")


def has_link(handle, name: str) -> bool:
    try:
        handle.link_index(name)
        return True
    except OSError as e:
        if e.errno == errno.ENODEV:
            return False
        raise


def apply_ipam(host, cont, netns_fd: int, bc: BridgeConf, ifname: str, result: Result) -> None:
    """The IPAM result on the container end (and the gateways on the bridge)."""
    if not result.ips:
        raise CNIError(E_DECODE, f"the result of {bc.ipam_type} has no IP address")
    extras = sorted({k for r in result.routes for k in r.extra})
    if extras:
        raise CNIError(E_UNSUPPORTED_FIELD, f"route fields {', '.join(extras)} from {bc.ipam_type} "
                                            f"are not supported by {PLUGIN}")
    gateways = calc_gateways(result, bc)
    configure_container(cont, netns_fd, ifname, result, bc.mac)
    if bc.is_gateway:
        configure_gateways(host, bc.bridge, gateways)


def calc_gateways(result: Result, bc: BridgeConf) -> list:
    """What the reference's calcGateways does: every IP is the container
    interface's (index 2); with ``isGateway`` a missing gateway is the
    subnet's first address and each gateway (with the IP's prefix) goes on
    the bridge; with ``isDefaultGateway`` a default route via it is added
    per family unless one with a gateway is there.  Returns the bridge's
    addresses."""
    import ipaddress
    gateways, have_default = [], set()
    for ipc in result.ips:
        ipc.interface = 2
        family = ipc.address.version
        if ipc.gateway is None and bc.is_gateway:
            ipc.gateway = ipc.address.network.network_address + 1
        if bc.is_default_gateway and family not in have_default:
            default = ipaddress.ip_network("0.0.0.0/0" if family == 4 else "::/0")
            if not any(r.gw is not None and r.dst == default for r in result.routes):
                result.routes.append(Route(default, ipc.gateway))
            have_default.add(family)
        if bc.is_gateway:
            gateways.append(ipaddress.ip_interface(f"{ipc.gateway}/{ipc.address.network.prefixlen}"))
    return gateways


def configure_container(cont, netns_fd: int, ifname: str, result: Result, mac: str) -> None:
    """As the reference's ConfigureIface: the link up (with ``mac``), its
    addresses, then the routes — a route without a gateway goes via the
    first gateway of its family; a route already there is skipped.  One
    pipelined exchange."""
    container_sysctls(netns_fd, ifname, ipv6=any(ip.address.version == 6 for ip in result.ips))
    first_gw = {}
    for ipc in result.ips:
        if ipc.gateway is not None:
            first_gw.setdefault(ipc.gateway.version, ipc.gateway)
    b = cont.batch()
    b.set_link(ifname, mac_address=mac or None, txqueuelen=VETH_TXQLEN, up=True)
    for ipc in result.ips:
        b.set_interface_ip(ifname, ipc.address)
    routes_from = len(b)
    for r in result.routes:
        b.add_route(r.dst, ifname, r.gw or first_gw.get(r.dst.version))
    fail_on(b.run(), lambda i, r: i >= routes_from and r.errno == errno.EEXIST)


def container_sysctls(netns_fd: int, ifname: str, ipv6: bool) -> None:
    """Inside the container, as the reference: no DAD on ``ifname`` (its
    address is ours), gratuitous ARP on changes, and IPv6 enabled on lo and
    ``ifname`` when an IPv6 address is coming."""
    from . import netns
    with netns.entered(netns_fd):
        sysctl(f"net/ipv6/conf/{ifname}/accept_dad", "0", quiet=True)
        sysctl(f"net/ipv4/conf/{ifname}/arp_notify", "1", quiet=True)
        if ipv6:
            for dev in ("lo", ifname):
                if sysctl(f"net/ipv6/conf/{dev}/disable_ipv6", quiet=True) not in (None, "0"):
                    sysctl(f"net/ipv6/conf/{dev}/disable_ipv6", "0")


def configure_gateways(host, bridge: str, gateways: list) -> None:
    """The gateways on the bridge (one there already is fine); when one was
    added, the bridge's MAC address is pinned to its current value, so that
    it stops following its ports as they come and go (the reference does
    the same); forwarding on for each family with a gateway."""
    b = host.batch()
    for gw in gateways:
        b.set_interface_ip(bridge, gw)
    results = b.run()
    fail_on(results, lambda i, r: r.errno == errno.EEXIST)
    if any(r.ok for r in results):
        host.set_link(bridge, mac_address=host.get_link(bridge).address)
    families = {gw.version for gw in gateways}
    if 4 in families:
        sysctl_on("net/ipv4/ip_forward")
    if 6 in families:
        sysctl_on("net/ipv6/conf/all/forwarding")


def interfaces(host, cont, bridge: str, host_veth: str, env: Env) -> list:
    """The result's interfaces: bridge, host end, container end (in that
    order: IPs name the container end as index 2), MACs as they are now."""
    return [{"name": bridge, "mac": host.get_link(bridge).address},
            {"name": host_veth, "mac": host.get_link(host_veth).address},
            {"name": env.ifname, "mac": cont.get_link(env.ifname).address, "sandbox": env.netns}]


# -- bridge mode: DEL and CHECK ------------------------------------------------------------------

def del_bridge(env: Env, raw: bytes, conf: dict, bc: BridgeConf) -> None:
    """DEL: the container's end of the veth (its host end goes with it) and
    the IPAM plugin's DEL, which runs meanwhile (the kernel's deletion waits
    for an RCU grace period).  A missing namespace or link is no error."""
    ipam = Delegate(bc.ipam_type, env, raw).start("DEL") if bc.ipam_type else None
    try:
        if env.netns:
            remove_container_link(env.netns, env.ifname)
    except BaseException:
        if ipam:
            ipam.finish()                   # reaped; the link's error is the one reported
        raise
    if ipam:
        ipam.wait()


def remove_container_link(netns_path: str, ifname: str) -> None:
    try:
        fd, cont = open_container(netns_path)
    except CNIError:
        return                                  # no namespace (any more): nothing to remove
    try:
        with cont:
            cont.delete_link(ifname)
    except OSError as e:
        if e.errno != errno.ENODEV:
            raise
    finally:
        os.close(fd)


def check_bridge(env: Env, raw: bytes, conf: dict, bc: BridgeConf) -> None:
    """CHECK: the IPAM plugin's CHECK, then the kernel against prevResult —
    bridge (MAC, promiscuous mode), host end (on the bridge, peer of the
    container end, MAC), container end (a veth, MAC), every address and
    route.  All differences are reported in one error (102)."""
    from .handle import Handle
    prev = conf.get("prevResult")
    if prev is None:
        raise CNIError(E_INVALID_CONFIG, "CHECK needs prevResult")
    result = parse_result(prev, "prevResult")
    netns_fd, cont = open_container(env.netns)
    ipam = Delegate(bc.ipam_type, env, raw).start("CHECK") if bc.ipam_type else None
    try:
        with cont, Handle() as host:
            problems = check_links(host, netns_fd, bc, env, result)
    finally:
        os.close(netns_fd)
    if ipam:
        ipam.wait()
    if problems:
        raise CNIError(E_CHECK, f"CHECK: {problems[0]}", "; ".join(problems))


def check_links(host, netns_fd: int, bc: BridgeConf, env: Env, result: Result) -> list:
    """The differences between the kernel and ``result``, as sentences."""
    problems: list = []
    bridge = expect_interface(result, bc.bridge, None, problems)
    container = expect_interface(result, env.ifname, env.netns, problems)
    view = ContainerView(netns_fd, env.ifname)
    br = host_link(host, bc.bridge, problems)
    if br is not None and bridge is not None:
        compare_mac(bridge, br.address, problems)
        if br.promisc != bc.promisc:
            problems.append(f"bridge {bc.bridge} promiscuous mode is {br.promisc}, configured {bc.promisc}")
    if view.link is None:
        problems.append(f"interface {env.ifname} not found in {env.netns}")
    else:
        if view.kind != "veth":
            problems.append(f"interface {env.ifname} is a {view.kind or 'device'} link, not a veth")
        if container is not None:
            compare_mac(container, view.link.get("address", ""), problems)
        if br is not None:
            check_host_end(host, result, br, view, {bc.bridge, env.ifname}, problems)
    problems += view.missing_addresses(result.ips) + view.missing_routes(result.routes)
    return problems


def expect_interface(result: Result, name: str, sandbox, problems: list):
    for iface in result.interfaces:
        if iface.get("name") == name and (sandbox is None or iface.get("sandbox") == sandbox):
            return iface
    where = f" in sandbox {sandbox}" if sandbox else ""
    problems.append(f"prevResult lists no interface {name}{where}")
    return None


def host_link(host, name: str, problems: list):
    try:
        return host.get_link(name)
    except OSError as e:
        problems.append(f"{name} not found on the host ({e.strerror})")
        return None


def compare_mac(expected: dict, actual: str, problems: list) -> None:
    mac = expected.get("mac")
    if mac and mac.lower() != actual.lower():
        problems.append(f"interface {expected.get('name')} has MAC {actual}, prevResult says {mac}")


def check_host_end(host, result: Result, br, view: "ContainerView", skip: set, problems: list) -> None:
    """Some host interface of prevResult is the container end's peer and on the bridge."""
    for iface in result.interfaces:
        if iface.get("name") in skip or iface.get("sandbox"):
            continue
        try:
            link = host.get_link(iface["name"])
        except OSError:
            continue
        if link.index == view.link.get("link_index") and link.master == br.index:
            compare_mac(iface, link.address, problems)
            return
    problems.append(f"no host veth of prevResult is the peer of {view.ifname} on bridge {br.name}")


class ContainerView:
    """The container end, its addresses and the container's main routing
    table, as iproute2 reports them (``ip -j``, run inside the namespace):
    pynetlink's core reads links but has no address or route dump yet."""

    def __init__(self, netns_fd: int, ifname: str):
        self.ifname = ifname
        addrs, routes4, routes6 = ip_json(netns_fd, ("-d", "addr", "show"),
                                          ("-4", "route", "show", "table", "main"),
                                          ("-6", "route", "show", "table", "main"))
        links = [link for link in addrs if link.get("ifname") == ifname]
        self.link = links[0] if links else None
        self.kind = (self.link or {}).get("linkinfo", {}).get("info_kind", "")
        self.routes = [_route_key(r, 4) for r in routes4] + [_route_key(r, 6) for r in routes6]

    def missing_addresses(self, ips: list) -> list:
        have = {(a.get("local"), a.get("prefixlen")) for a in (self.link or {}).get("addr_info", [])}
        return [f"address {ip.address} not found on {self.ifname}" for ip in ips
                if (str(ip.address.ip), ip.address.network.prefixlen) not in have]

    def missing_routes(self, routes: list) -> list:
        return [f"route to {r.dst}{f' via {r.gw}' if r.gw else ''} not found" for r in routes
                if not any(dst == r.dst and (r.gw is None or gw == r.gw) for dst, gw in self.routes)]


def _route_key(route: dict, family: int) -> tuple:
    """(destination network, gateway or None) of an ``ip -j route`` entry."""
    import ipaddress
    gw = ipaddress.ip_address(route["gateway"]) if route.get("gateway") else None
    dst = route.get("dst", "")
    if dst == "default":
        dst = "0.0.0.0/0" if family == 4 else "::/0"
    try:
        return ipaddress.ip_network(dst, strict=False), gw
    except ValueError:
        return None, gw


def ip_json(netns_fd: int, *commands: tuple) -> list:
    """``ip -j COMMAND`` for each command, run inside the namespace (a
    child inherits the calling thread's namespace); the decoded outputs."""
    import subprocess
    from . import netns
    out = []
    try:
        with netns.entered(netns_fd):
            for args in commands:
                proc = subprocess.run(["ip", "-j", *args], capture_output=True, text=True,
                                      timeout=30, check=True)
                out.append(json.loads(proc.stdout, strict=False) if proc.stdout.strip() else [])
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        raise CNIError(E_IO, "CHECK reads addresses and routes with iproute2 (ip), which failed",
                       str(e)) from None
    return out


# -- loopback mode --------------------------------------------------------------------------------

def add_loopback(env: Env, raw: bytes, conf: dict) -> dict:
    """ADD: ``lo`` up in the container; the result lists lo and the
    loopback addresses the kernel gives it (127.0.0.1/8, and ::1/128 where
    IPv6 is on) — or, in a chain, passes prevResult on unchanged."""
    netns_fd, cont = open_container(env.netns)
    try:
        with cont:
            cont.interface_up("lo")
        ipv6 = loopback_has_ipv6(netns_fd)
    finally:
        os.close(netns_fd)
    if conf.get("prevResult") is not None:
        return render_result(parse_result(conf["prevResult"], "prevResult"), conf["cniVersion"])
    import ipaddress
    ips = [IPConfig(ipaddress.ip_interface("127.0.0.1/8"), interface=0)]
    if ipv6:
        ips.append(IPConfig(ipaddress.ip_interface("::1/128"), interface=0))
    lo = {"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": env.netns}
    return render_result(Result([lo], ips), conf["cniVersion"])


def loopback_has_ipv6(netns_fd: int) -> bool:
    from . import netns
    with netns.entered(netns_fd):
        return sysctl("net/ipv6/conf/lo/disable_ipv6", quiet=True) == "0"


def del_loopback(env: Env, raw: bytes, conf: dict) -> None:
    """DEL: ``lo`` down, as the reference does; no namespace is no error."""
    if not env.netns:
        return
    try:
        netns_fd, cont = open_container(env.netns)
    except CNIError:
        return
    try:
        with cont:
            cont.interface_down("lo")
    finally:
        os.close(netns_fd)


def check_loopback(env: Env, raw: bytes, conf: dict) -> None:
    """CHECK: ``lo`` is up."""
    netns_fd, cont = open_container(env.netns)
    try:
        with cont:
            if not cont.get_link("lo").up:
                raise CNIError(E_CHECK, "CHECK: loopback interface is down")
    finally:
        os.close(netns_fd)


# -- STATUS, GC, VERSION ---------------------------------------------------------------------------

def status(env: Env, raw: bytes, conf: dict, bc) -> None:
    """STATUS (1.1.0): ready if an rtnetlink socket opens here, and the
    IPAM plugin's STATUS says it is ready (its error passed on)."""
    from .handle import Handle
    try:
        Handle().close()
    except OSError as e:
        raise CNIError(E_NOT_AVAILABLE, "cannot open an rtnetlink socket", str(e)) from None
    if bc is not None and bc.ipam_type:
        Delegate(bc.ipam_type, env, raw).run("STATUS")


def gc(env: Env, raw: bytes, conf: dict, bc) -> None:
    """GC (1.1.0): this plugin keeps no state of its own (its links die with
    their namespaces); the IPAM plugin's GC gets the valid attachments."""
    attachments = conf.get("cni.dev/valid-attachments", [])
    if not isinstance(attachments, list):
        raise CNIError(E_INVALID_CONFIG, "cni.dev/valid-attachments must be a list")
    if bc is not None and bc.ipam_type:
        Delegate(bc.ipam_type, env, raw).run("GC")


def version_info(raw: bytes) -> dict:
    """VERSION: the versions spoken; ``cniVersion`` echoes the input's when
    it is one of them."""
    try:
        asked = json.loads(raw).get("cniVersion") if raw.strip() else None
    except (ValueError, AttributeError, UnicodeDecodeError):
        asked = None
    return {"cniVersion": asked if asked in SUPPORTED_VERSIONS else LATEST,
            "supportedVersions": list(SUPPORTED_VERSIONS)}


# -- dispatch ------------------------------------------------------------------------------------

def run_command(command: str, raw: bytes):
    """Run one CNI command on the raw configuration; the document to print, or None."""
    if command == "VERSION":
        return version_info(raw)
    if not command:
        raise CNIError(E_INVALID_ENV, "CNI_COMMAND is required")
    if command not in ENV_REQUIRED:
        raise CNIError(E_INVALID_ENV, f"CNI_COMMAND {command!r} is not one of ADD, DEL, CHECK, "
                                      "STATUS, GC, VERSION")
    env = Env(command)
    conf = decode_config(raw)
    version = config_version(conf)
    check_common(conf)
    if command in ("STATUS", "GC") and version != "1.1.0":
        raise CNIError(E_INCOMPATIBLE_VERSION, f"{command} needs cniVersion 1.1.0, not {version}")
    loopback = is_loopback(conf)
    bc = None if loopback else BridgeConf(conf, env)
    if command == "STATUS":
        return status(env, raw, conf, bc)
    if command == "GC":
        return gc(env, raw, conf, bc)
    handlers = LOOPBACK if loopback else BRIDGE
    args = (env, raw, conf) if loopback else (env, raw, conf, bc)
    return handlers[command](*args)


BRIDGE = {"ADD": add_bridge, "DEL": del_bridge, "CHECK": check_bridge}
LOOPBACK = {"ADD": add_loopback, "DEL": del_loopback, "CHECK": check_loopback}


def error_version(raw: bytes) -> str:
    """The cniVersion an error is reported in: the configuration's, if it says one."""
    try:
        version = json.loads(raw).get("cniVersion")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return LATEST
    return version if isinstance(version, str) and version else LATEST


def as_cni_error(e: BaseException, command: str) -> CNIError:
    """Any failure as a CNI error."""
    from .errors import NetlinkError
    if isinstance(e, CNIError):
        return e
    if isinstance(e, NetlinkError):
        return kernel_error(e, command)
    if isinstance(e, OSError):
        return CNIError(E_IO, f"{command}: {e.strerror or e}", str(e))
    return CNIError(E_INTERNAL, f"{command}: internal error: {type(e).__name__}: {e}")


def main(argv=None) -> int:
    """The plugin: one CNI command from the environment and stdin."""
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        return cli(argv)
    command = os.environ.get("CNI_COMMAND", "")
    raw = b""
    try:
        raw = b"" if command == "VERSION" and stdin_is_terminal() else read_stdin()
        out = run_command(command, raw)
    except Exception as e:
        error = as_cni_error(e, command or "CNI")
        sys.stdout.write(json.dumps(error.to_dict(error_version(raw))) + "\n")
        return 1
    if out is not None:
        sys.stdout.write(json.dumps(out) + "\n")
    return 0


# -- installing the executable ---------------------------------------------------------------------

LAUNCHER = """#!{python} -IS
# {name}: the pynetlink CNI plugin, for this interpreter (written by
# `python3 -m pynetlink.cni --install DIR`).  -S: no site module and no .pth
# files at start-up (tens of milliseconds per pod); the two directories it
# needs, pynetlink's and cffi's, are put on sys.path here.  The answer is on
# stdout once main() returns: the process ends at once, without tearing the
# interpreter down (the kernel closes every fd).
import os
import sys
sys.path[:0] = {paths!r}
from pynetlink.cni import main
code = main()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
"""


def launcher_paths() -> list:
    """The directories that hold this pynetlink and cffi's runtime module."""
    import _cffi_backend
    paths = []
    for module_file in (os.path.dirname(os.path.abspath(__file__)), _cffi_backend.__file__):
        directory = os.path.dirname(os.path.abspath(module_file))
        if directory not in paths:
            paths.append(directory)
    return paths


def install(directory: str, name: str = PLUGIN) -> str:
    """Write the executable a runtime runs, ``DIRECTORY/NAME`` (e.g.
    /opt/cni/bin/pynetlink-cni), bound to this interpreter and this
    pynetlink; replaced atomically.  Returns its path."""
    path = os.path.join(directory, name)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(LAUNCHER.format(python=sys.executable, name=name, paths=launcher_paths()))
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return path


def cli(argv: list) -> int:
    """``--install DIR``: write the plugin executable into a CNI bin directory."""
    if len(argv) == 2 and argv[0] == "--install":
        print(install(argv[1]))
        return 0
    print(f"usage: {PLUGIN} (run by a CNI runtime: CNI_COMMAND=... on stdin's config)\n"
          f"       python3 -m pynetlink.cni --install DIR   # write DIR/{PLUGIN}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
