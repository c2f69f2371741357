"""Gossip benchmark: N `percolab node` processes on loopback in a random mesh, one publisher
at a steady rate. Prints the delivery ratio, propagation latency p50/p99 (publish -> stored
on each other node, via the control socket's push stream), and loopback bytes per delivered
payload byte (from /proc/net/dev). Targets: 100% delivered, p99 <= 500 ms, wire <= 6x.

    .venv/bin/python bench/gossip.py                       # 10 nodes, 5 msg/s, 60 s
    .venv/bin/python bench/gossip.py --nodes 50 --rate 1
    .venv/bin/python bench/gossip.py --quick --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.cli.backend import LocalBackend, RpcBackend
from protocols import rpc

PERCOLAB = str(Path(sys.executable).with_name("percolab"))
TARGET_P99_MS = 500.0
TARGET_WIRE_RATIO = 6.0
PAYLOAD_PAD = 900  # body characters: objects of ~1 KiB
DRAIN_S = 10.0  # after the last publish, how long deliveries may still arrive
# A published object is ~1 KiB (PAYLOAD_PAD): anything far smaller means the bench measured
# the wrong bytes (it once read an export page's key names: "messages of ~5.5 B").
MIN_PAYLOAD_BYTES = PAYLOAD_PAD


def lo_bytes() -> int:
    for line in Path("/proc/net/dev").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            return int(rest.split()[0])  # received bytes on lo == bytes sent over loopback
    raise RuntimeError("no loopback interface in /proc/net/dev")


class Listener(threading.Thread):
    """Subscribes to one node's pushes; records when each object id arrived."""

    def __init__(self, sock_path: Path) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(str(sock_path))
        self.sock.sendall(rpc.encode(rpc.Request(1, "subscribe", {})))
        self.arrived: dict[str, float] = {}

    def run(self) -> None:
        dec = rpc.FrameDecoder()
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            now = time.monotonic()
            for msg in dec.feed(data):
                if isinstance(msg, rpc.Push) and msg.kind == "object":
                    self.arrived.setdefault(msg.data["id"], now)


def start_nodes(root: Path, n: int, seed: int) -> tuple[list[subprocess.Popen[bytes]], list[Path]]:
    rng = random.Random(seed)
    procs, dirs, addrs = [], [], []
    for i in range(n):
        d = root / f"n{i}"
        local = LocalBackend(d)
        local.call("init", name=f"node{i}", unencrypted=True)
        local.close()
        args = [PERCOLAB, "--data-dir", str(d), "node", "--listen", "/ip4/127.0.0.1/tcp/0",
                "--no-mdns", "--no-http"]  # fmt: skip
        for a in rng.sample(addrs, min(3, len(addrs))):  # random mesh: 3 earlier peers
            args += ["--bootstrap", a]
        procs.append(subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        dirs.append(d)
        sock = d / "node.sock"
        deadline = time.monotonic() + 60
        while True:
            try:
                c = RpcBackend(sock, timeout=30)
                addrs.append(c.call("status")["addrs"][0])
                c.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    return procs, dirs


def export_objects(client: RpcBackend, lab: str) -> list[bytes]:
    """Every object of the lab, through the export RPC's pages."""
    out: list[bytes] = []
    after: int | None = 0
    while after is not None:
        page = client.call("export", lab=lab, after=after)
        out += page["objects"]
        after = page["next"]
    return out


def wait_meshes(clients: list[RpcBackend], topic: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(c.call("status").get("mesh", {}).get(topic, 0) >= 1 for c in clients):
            return
        time.sleep(0.5)
    raise RuntimeError("not every node joined the lab's gossip mesh in time")


def run(nodes: int, rate: float, seconds: float, seed: int = 7) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="percolab-gossip-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs, dirs = start_nodes(root, nodes, seed)
        clients = [RpcBackend(d / "node.sock", timeout=60) for d in dirs]
        lab = clients[0].call("lab_create", name="Bench Lab")
        for c in clients[1:]:
            c.call("lab_follow", lab=lab)
        from protocols.topics import lab_topic

        wait_meshes(clients, lab_topic(bytes.fromhex(lab)), 60)
        listeners = [Listener(d / "node.sock") for d in dirs[1:]]
        for li in listeners:
            li.start()
        time.sleep(1.0)  # let subscriptions settle before the clock starts
        count = max(1, int(rate * seconds))
        published: dict[str, float] = {}
        sizes: list[int] = []
        bytes_before = lo_bytes()
        start = time.monotonic()
        for i in range(count):
            due = start + i / rate
            time.sleep(max(0.0, due - time.monotonic()))
            t = time.monotonic()
            pid = clients[0].call("post", lab=lab, title=f"Bench idea {i}",
                                  body="x" * PAYLOAD_PAD)  # fmt: skip
            published[pid] = t
        # The rate actually reached (a slow publish path would fall behind the schedule).
        reached = (len(published) - 1) / (t - start) if len(published) > 1 and t > start else rate
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline:
            if all(all(p in li.arrived for p in published) for li in listeners):
                break
            time.sleep(0.1)
        wire = lo_bytes() - bytes_before
        # The payload is the published objects' own bytes, read back from an export.
        sizes = [len(r) for r in export_objects(clients[0], lab)
                 if hashlib.sha256(r).hexdigest() in published]  # fmt: skip
        if len(sizes) != len(published) or min(sizes) < MIN_PAYLOAD_BYTES:
            raise SystemExit(
                f"bench/gossip.py: read back {len(sizes)} of {len(published)} published "
                f"objects, smallest {min(sizes, default=0)} B: the figures would be wrong"
            )
        payload = statistics.median(sizes)
        lat = [li.arrived[p] - t for li in listeners for p, t in published.items()
               if p in li.arrived]  # fmt: skip
        delivered = len(lat)
        expected = len(published) * len(listeners)
        lat.sort()

        def pct(q: float) -> float:
            return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

        for c in clients:
            c.close()
        return {
            "nodes": nodes, "rate_msg_s": rate, "rate_reached_msg_s": round(reached, 2),
            "messages": len(published),
            "delivered": delivered, "expected": expected,
            "delivery_ratio": delivered / expected if expected else 0.0,
            "p50_ms": round(pct(0.50), 1), "p99_ms": round(pct(0.99), 1),
            "max_ms": round(lat[-1] * 1000, 1) if lat else None,
            "payload_bytes": payload,
            "wire_bytes_per_payload_byte": round(wire / (payload * max(1, delivered)), 2),
        }  # fmt: skip
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(root, ignore_errors=True)


def _can_netns() -> bool:
    return shutil.which("ip") is not None and hasattr(os, "geteuid") and os.geteuid() == 0


def _rerun_in_netns() -> int:
    """Run this benchmark again inside a private network namespace: its loopback carries
    only the benchmark's traffic, so the byte count is exact."""
    ns = f"plbench{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        cmd = ["ip", "netns", "exec", ns, sys.executable, *sys.argv, "--inside"]
        return subprocess.run(cmd).returncode
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--rate", type=float, default=5.0, help="messages per second")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--quick", action="store_true", help="10 nodes, 15 s")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-netns", action="store_true",
                    help="use the host loopback (its byte count includes other traffic)")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.inside and not args.no_netns and _can_netns():
        sys.exit(_rerun_in_netns())
    if args.quick:
        args.seconds = 15.0
    fig = run(args.nodes, args.rate, args.seconds)
    fig["target_p99_ms"] = TARGET_P99_MS
    fig["target_wire_ratio"] = TARGET_WIRE_RATIO
    fig["p99_ratio_to_target"] = round(fig["p99_ms"] / TARGET_P99_MS, 2)
    fig["wire_ratio_to_target"] = round(fig["wire_bytes_per_payload_byte"] / TARGET_WIRE_RATIO, 2)
    print(f"{fig['nodes']} nodes, {fig['rate_msg_s']} msg/s asked, "
          f"{fig['rate_reached_msg_s']} msg/s reached, {fig['messages']} messages "
          f"of ~{fig['payload_bytes']} B")
    print(f"delivered {fig['delivered']}/{fig['expected']} = {fig['delivery_ratio']:.2%}")
    print(f"latency p50 {fig['p50_ms']} ms, p99 {fig['p99_ms']} ms (target <= {TARGET_P99_MS}; "
          f"{fig['p99_ratio_to_target']}x), max {fig['max_ms']} ms")
    print(f"loopback bytes per delivered payload byte: {fig['wire_bytes_per_payload_byte']} "
          f"(target <= {TARGET_WIRE_RATIO}; {fig['wire_ratio_to_target']}x)")
    if args.json:
        print(json.dumps(fig))


if __name__ == "__main__":
    main()
