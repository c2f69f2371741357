"""`percolab demo`: three lab nodes on loopback with temporary data directories, seeded with
co-design projects, connected to each other, and the TUI opened on the first one. While the
TUI runs, the other two labs keep posting now and then, so ideas visibly arrive.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from node.cli.backend import LocalBackend, RpcBackend
from node.cli.process import NODE_START_TIMEOUT_S, spawn_node, stop_node, wait_for_socket
from node.config import SOCKET_FILE

log = logging.getLogger(__name__)

# Seconds between the other labs' posts while the TUI runs, and how many they make.
TRICKLE_INTERVAL_S = 12.0
TRICKLE_POSTS = 10
# How long to wait for the three nodes to see each other before seeding.
MESH_WAIT_S = 20.0

LABS: list[dict[str, Any]] = [
    {
        "member": "Amara", "name": "Fablab Riverside", "place": "Riverside, Lyon",
        "licence": "CERN-OHL-S-2.0",
        "description": "Laser cutters, a CNC and a repair café every Saturday.",
        "projects": [
            ("Solar fruit dryer", "Drying surplus apples from the community orchard with "
             "sunlight only.", "prototype", ["solar", "food", "low-tech"], ["glass panels"]),
            ("Repair café parts library", "A shared shelf of spare parts salvaged from "
             "broken appliances, indexed by model.", "running", ["repair", "circular"], []),
        ],
    },
    {
        "member": "Bastien", "name": "Hackspace Nord", "place": "Lille",
        "licence": "CC-BY-SA-4.0",
        "description": "Electronics, sensors and open data for the neighbourhood.",
        "projects": [
            ("Air quality sensor network", "Cheap particulate sensors on balconies, data "
             "published openly every minute.", "design", ["sensors", "open-data", "air"],
             ["soldering help", "balconies"]),
            ("Community fridge monitor", "A door sensor and thermometer so volunteers know "
             "when the fridge needs attention.", "idea", ["food", "sensors"], []),
        ],
    },
    {
        "member": "Chiara", "name": "Co-design Circle Sud", "place": "Marseille",
        "licence": "CC-BY-4.0",
        "description": "Residents and designers shaping public space together.",
        "projects": [
            ("Shade sails for the school yard", "Co-designing removable shade with the "
             "pupils, sewn from recycled sails.", "design", ["public-space", "heat", "textile"],
             ["sewing machines"]),
            ("Seed library in the metro", "An honesty box of local seeds at the station, "
             "with planting workshops.", "idea", ["food", "gardening"], []),
        ],
    },
]

TRICKLE = [
    ("Rainwater barrels from olive drums", "Turning food-grade drums into garden barrels.",
     ["water", "gardening", "circular"]),
    ("Bike trailer for the repair café", "A cargo trailer to bring the tools to markets.",
     ["repair", "mobility"]),
    ("Noise map of the market square", "Measuring noise before redesigning the square.",
     ["sensors", "public-space"]),
    ("Solar phone charging bench", "A bench with a panel and USB ports for the park.",
     ["solar", "public-space"]),
    ("Community kiln", "A shared wood-fired kiln for the ceramics group.", ["ceramics"]),
]
COMMENTS = [
    "We tried something similar last spring, happy to share our notes!",
    "Could our lab lend you the tools for this?",
    "Love it. What would a first workshop look like?",
]


def _seed_identity(data_dir: Path, member: str) -> None:
    local = LocalBackend(data_dir)
    try:
        # Throwaway data directories: the explicit unencrypted key (docs/keys.md).
        local.call("init", name=member, about=f"Demo member of {member}'s lab", unencrypted=True)
    finally:
        local.close()


def _wait_mesh(clients: list[RpcBackend]) -> None:
    deadline = time.monotonic() + MESH_WAIT_S
    while time.monotonic() < deadline:
        if all(c.call("status").get("peers", 0) >= 2 for c in clients):
            return
        time.sleep(0.2)
    log.warning("demo nodes did not all connect within %.0f s", MESH_WAIT_S)


def seed(clients: list[RpcBackend]) -> list[str]:
    """Create the labs, make every node follow all of them, post projects, comment across."""
    lab_ids = []
    for client, lab in zip(clients, LABS, strict=True):
        lab_ids.append(client.call("lab_create", name=lab["name"], place=lab["place"],
                                   description=lab["description"]))  # fmt: skip
    for client in clients:
        for lab_id in lab_ids:
            client.call("lab_follow", lab=lab_id)
    time.sleep(2.5)  # two gossip heartbeats: let the new lab topics form their meshes
    project_ids = []
    for client, lab, lab_id in zip(clients, LABS, lab_ids, strict=True):
        for title, summary, stage, tags, needs in lab["projects"]:
            project_ids.append(client.call("post", lab=lab_id, title=title, summary=summary,
                body=f"## {title}\n\n{summary}\n\n- started by {lab['name']}\n- all welcome",
                stage=stage, tags=tags, needs=needs, licence=lab["licence"]))  # fmt: skip
    for i, pid in enumerate(project_ids):
        other = clients[(i // 2 + 1) % len(clients)]
        try:
            other.call("comment", target=pid, body=COMMENTS[i % len(COMMENTS)])
        except Exception as exc:  # the project may not have arrived yet: not fatal in a demo
            log.info("demo comment skipped: %s", exc)
    _living(clients, project_ids, lab_ids)
    return lab_ids


def _living(clients: list[RpcBackend], project_ids: list[str], lab_ids: list[str]) -> None:
    """Living projects (issue 23): pledges across labs on needs, a revision, a fork."""
    steps: list[tuple[RpcBackend, str, dict[str, Any]]] = [
        (clients[1], "pledge", {"id": project_ids[0], "type": "build", "need": "glass panels",
                                "note": "We have old window panes to spare."}),
        (clients[0], "pledge", {"id": project_ids[2], "type": "teach", "need": "soldering help",
                                "note": "Our Saturday volunteers solder."}),
        (clients[0], "edit", {"id": project_ids[0], "stage": "testing",
                              "note": "First batch of apples dried in two days."}),
        (clients[2], "fork", {"id": project_ids[0], "lab": lab_ids[2], "how": "built",
                              "note": "Building your dryer for the school garden."}),
    ]  # fmt: skip
    for client, method, params in steps:
        try:
            client.call(method, **params)
        except Exception as exc:  # the project may not have arrived yet: not fatal
            log.info("demo %s skipped: %s", method, exc)


def _trickle(sockets: list[Path], lab_ids: list[str], stop: threading.Event) -> None:
    for n in range(TRICKLE_POSTS):
        if stop.wait(TRICKLE_INTERVAL_S):
            return
        idx = 1 + n % 2  # the labs the TUI is *not* attached to
        title, summary, tags = TRICKLE[n % len(TRICKLE)]
        try:
            client = RpcBackend(sockets[idx])
            try:
                client.call("post", lab=lab_ids[idx], title=title, summary=summary,
                            body=summary, stage="idea", tags=tags)  # fmt: skip
            finally:
                client.close()
        except Exception as exc:
            log.info("demo trickle stopped: %s", exc)
            return


def run_demo(*, no_tui: bool = False) -> int:
    root = Path(tempfile.mkdtemp(prefix="percolab-demo-"))
    dirs = [root / f"lab{i}" for i in range(len(LABS))]
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    try:
        for d, lab in zip(dirs, LABS, strict=True):
            _seed_identity(d, lab["member"])
            procs.append(spawn_node(d, ["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns",
                                        "--no-http"]))  # fmt: skip
        sockets = [d / SOCKET_FILE for d in dirs]
        for sock, proc in zip(sockets, procs, strict=True):
            wait_for_socket(sock, proc, NODE_START_TIMEOUT_S)
        clients = [RpcBackend(s) for s in sockets]
        addrs = [c.call("status")["addrs"][0] for c in clients]
        clients[1].call("connect", addr=addrs[0])
        clients[2].call("connect", addr=addrs[0])
        clients[2].call("connect", addr=addrs[1])
        _wait_mesh(clients)
        lab_ids = seed(clients)
        for c in clients:
            c.close()
        trickler = threading.Thread(target=_trickle, args=(sockets, lab_ids, stop), daemon=True)
        trickler.start()
        if no_tui:
            print(f"demo running in {root}; data dirs: {', '.join(map(str, dirs))}", flush=True)
            print("press Ctrl+C to stop", flush=True)
            while True:
                time.sleep(3600)
        from tui.app import run_tui

        return run_tui(sockets[0])
    finally:
        stop.set()
        for proc in procs:
            stop_node(proc)
        shutil.rmtree(root, ignore_errors=True)
