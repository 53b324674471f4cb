"""Hosts of their own on this machine: Linux network namespaces joined by a bridge, so that
cutting one off the network is a real cut (its packets go nowhere; connections hang, as they do
when a switch port dies), not a stopped process. Needs root and iproute2's ``ip``.

Each host gets a namespace with its loopback up and one end of a veth pair as ``eth0``, with an
address on a /24 of its own; the other end is a port of a bridge that holds the subnet's
``.254``, so this machine's own processes reach every host and the hosts reach each other.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass, field


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is missing"
    probe = f"lrprobe{random.randrange(1 << 16):04x}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` refused: {made.stderr.strip()} (root is needed)"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass
class Network:
    """A bridge and the namespaces on it; ``remove`` takes them all away."""

    tag: str = field(default_factory=lambda: f"{random.randrange(1 << 16):04x}")
    subnet: str = field(default_factory=lambda: f"10.231.{random.randrange(1, 250)}")
    hosts: dict[str, str] = field(default_factory=dict)  # host name → its address

    @property
    def bridge(self) -> str:
        return f"lr{self.tag}br"

    @property
    def gateway(self) -> str:
        """This machine's own address on the network."""
        return f"{self.subnet}.254"

    def create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def namespace(self, host: str) -> str:
        return f"lr{self.tag}-{host}"

    def _port(self, host: str) -> str:
        return f"lr{self.tag}p{list(self.hosts).index(host)}"

    def add_host(self, host: str) -> str:
        """A new host on the network; returns its address."""
        address = f"{self.subnet}.{len(self.hosts) + 1}"
        self.hosts[host] = address
        ns, port, inner = self.namespace(host), self._port(host), f"lr{self.tag}i"
        _ip("netns", "add", ns)
        _ip("link", "add", port, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", ns)
        _ip("link", "set", port, "master", self.bridge)
        _ip("link", "set", port, "up")
        for args in (
            ("link", "set", "lo", "up"),
            ("link", "set", inner, "name", "eth0"),
            ("addr", "add", f"{address}/24", "dev", "eth0"),
            ("link", "set", "eth0", "up"),
        ):
            _ip("netns", "exec", ns, "ip", *args)
        return address

    def run_in(self, host: str) -> list[str]:
        """The command prefix that runs a program on ``host``."""
        return ["ip", "netns", "exec", self.namespace(host)]

    def cut(self, host: str) -> None:
        """Take ``host`` off the network: its bridge port goes down."""
        _ip("link", "set", self._port(host), "down")

    def restore(self, host: str) -> None:
        _ip("link", "set", self._port(host), "up")

    def remove(self) -> None:
        for host in self.hosts:
            subprocess.run(["ip", "netns", "del", self.namespace(host)], capture_output=True)
            subprocess.run(["ip", "link", "del", self._port(host)], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
