"""TUI benchmark: the real PercolabApp (headless) on a real node holding 100k projects.

Builds a store of N signed projects across 10 labs (ingested through `node.ingest.Ingest`
before the node starts), starts `percolab node`, then measures:

- node-side RPC latency (a blocking client in this process): lab_list, projects pages,
  search for every prefix typed;
- in a separate child process (so its RSS is the TUI's alone, not the generator's): launch to
  the first painted project list, page change (n), keystroke to painted search results, and
  the RPC time the TUI saw for each, so render time = total - RPC;
- RSS of the TUI process and of the node.

    .venv/bin/python bench/tui.py              # 100k projects (~1 min to build the store)
    .venv/bin/python bench/tui.py --quick      # 10k projects, under a minute
    .venv/bin/python bench/tui.py --json       # figures as one JSON object on the last line
    .venv/bin/python bench/tui.py --dir /tmp/store100k   # keep/reuse the generated store
"""

from __future__ import annotations

import time

T_START = time.perf_counter()  # first thing: the child measures launch from here

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PERCOLAB = str(Path(sys.executable).with_name("percolab"))
LABS = 10
AUTHORS = 32
SIZE = (120, 40)
PAGES = 15
TYPED = "solar kiln garden bike map"  # 26 keystrokes, each a new query
TARGETS = {  # figure -> (target, unit); lower is better for all
    "launch_s": (1.5, "s"),
    "page_change_p50_ms": (100.0, "ms"),
    "search_keystroke_p95_ms": (50.0, "ms"),
    "tui_rss_mb": (120.0, "MB"),
    "node_rss_mb": (150.0, "MB"),
}
WORDS = (
    "solar", "dryer", "repair", "cafe", "sensor", "network", "garden", "seed", "library",
    "bike", "trailer", "kiln", "shade", "sail", "rainwater", "barrel", "noise", "map",
    "fridge", "textile", "workshop", "community", "loom", "oven", "pump", "compost",
)  # fmt: skip
STAGES = ("idea", "prototype", "running", "paused")
MB = 1024 * 1024


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


# -- store ------------------------------------------------------------------------------------


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def build_store(data_dir: Path, projects: int, seed: int = 7) -> dict[str, float]:
    """Labs, author profiles, then `projects` projects spread over the labs, 1 s apart."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from node.config import STORE_DIR
    from node.ingest.pipeline import Ingest
    from node.store.store import Store
    from protocols import kinds, objects

    rng = random.Random(seed)
    keys = [Ed25519PrivateKey.generate() for _ in range(AUTHORS)]
    now = time.time_ns() // 1_000_000
    ts = now - (projects + 1000) * 1000
    t0 = time.perf_counter()
    raws: list[bytes] = []
    for i, key in enumerate(keys):
        raws.append(kinds.create(key, "profile", {"name": f"Member {i}", "about": ""}, ts).raw)
    labs: list[bytes] = []
    for i in range(LABS):
        lab_body = {"name": f"lab-{i:02d}", "description": f"Bench lab {i}", "place": "Lyon",
                "theme": ""}  # fmt: skip
        lab = kinds.create(keys[i % AUTHORS], "lab", lab_body, ts)
        labs.append(lab.id)
        raws.append(lab.raw)
    for _ in range(projects):
        ts += 1000
        body: dict[str, Any] = {
            "lab": labs[rng.randrange(LABS)],
            "title": _text(rng, 4).title(),
            "summary": _text(rng, 20),
            "body": _text(rng, 60),
            "stage": rng.choice(STAGES),
            "needs": [],
        }
        raws.append(objects.sign(keys[rng.randrange(AUTHORS)], "project", ts, body).raw)
    gen_s = time.perf_counter() - t0
    store = Store(data_dir / STORE_DIR)
    ingest = Ingest(store)
    try:
        t1 = time.perf_counter()
        result = ingest.ingest(raws, now=now + 60_000)
        ingest_s = time.perf_counter() - t1
        assert not result.rejected, result.rejected[:3]
    finally:
        ingest.close()
        store.close()
    return {"generate_s": gen_s, "ingest_s": ingest_s, "objects": float(len(raws))}


# -- node -------------------------------------------------------------------------------------


def start_node(data_dir: Path) -> subprocess.Popen[bytes]:
    cmd = [PERCOLAB, "--data-dir", str(data_dir), "node", "--listen", "/ip4/127.0.0.1/tcp/0",
           "--no-mdns", "--no-http"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from node.cli.process import wait_for_socket

    wait_for_socket(data_dir / "node.sock", proc, 60.0)
    return proc


def stop_node(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def node_rpc(sock: Path) -> dict[str, Any]:
    """Node-side latency of what the TUI asks, from a blocking client (ms)."""
    from node.cli.backend import RpcBackend

    rpc = RpcBackend(sock, timeout=60)
    try:
        labs = rpc.call("lab_list")
        lab = str(labs[0]["id"])
        fig: dict[str, Any] = {"lab_projects": int(labs[0]["projects"])}
        fig["lab_list_ms"] = statistics.median(timed(lambda: rpc.call("lab_list"), 20))
        fig["whoami_ms"] = statistics.median(timed(lambda: rpc.call("whoami"), 20))
        first = timed(lambda: rpc.call("projects", lab=lab, order="newest", limit=20), 20)
        fig["projects_page1_ms"] = statistics.median(first)
        cursor = None
        pages: list[float] = []
        for _ in range(PAGES):
            t = time.perf_counter()
            res = rpc.call("projects", lab=lab, order="newest", limit=20, cursor=cursor)
            pages.append((time.perf_counter() - t) * 1000)
            cursor = res["next"]
        fig["projects_next_page_p50_ms"] = statistics.median(pages)
        fig["projects_next_page_p95_ms"] = pct(pages, 95)
        active = timed(lambda: rpc.call("projects", lab=lab, order="active", limit=20), 10)
        fig["projects_active_p50_ms"] = statistics.median(active)
        queries = [TYPED[:i].strip() for i in range(1, len(TYPED) + 1)]
        per_query: dict[str, float] = {}
        all_times: list[float] = []
        for q in queries:
            ts = timed(lambda q=q: rpc.call("search", query=q, limit=50), 5)  # type: ignore[misc]
            per_query[q] = statistics.median(ts)
            all_times += ts
        fig["search_p50_ms"] = statistics.median(all_times)
        fig["search_p95_ms"] = pct(all_times, 95)
        slow = max(per_query, key=lambda q: per_query[q])
        hits = len(rpc.call("search", query=slow, limit=50))
        fig["search_slowest"] = {"query": slow, "ms": round(per_query[slow], 1), "results": hits}
        return fig
    finally:
        rpc.close()


def rss_mb(pid: int) -> dict[str, float]:
    import psutil  # type: ignore[import-untyped]

    proc = psutil.Process(pid)
    info = proc.memory_full_info()
    peak = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    anon = file = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            anon = int(line.split()[1]) / 1024
        elif line.startswith("RssFile:"):
            file = int(line.split()[1]) / 1024
    return {"rss": info.rss / MB, "uss": info.uss / MB, "peak": peak, "anon": anon,
            "file": file}  # fmt: skip


# -- the TUI (child process) ------------------------------------------------------------------


async def _tui_measure(sock: Path) -> dict[str, Any]:
    from textual import events

    from tui.app import PercolabApp
    from tui.screens.labs import LabsScreen
    from tui.screens.projects import ProjectsScreen
    from tui.screens.search import SearchScreen
    from tui.widgets.project_table import ProjectTable

    imported = time.perf_counter()
    rpc_ms: dict[str, list[float]] = {}
    rpc_spans: list[tuple[str, float, float]] = []  # (method, start, end)
    fig: dict[str, Any] = {"import_s": imported - T_START}

    app = PercolabApp(sock)
    real_call = app.client.call

    async def timed_call(method: str, **params: Any) -> Any:
        t = time.perf_counter()
        try:
            return await real_call(method, **params)
        finally:
            end = time.perf_counter()
            rpc_ms.setdefault(method, []).append((end - t) * 1000)
            rpc_spans.append((method, t, end))

    app.client.call = timed_call  # type: ignore[method-assign]

    # "Painted" = the compositor update after the change was handed to App._display (in a
    # headless run Textual composes the update but skips writing ANSI to a terminal). The
    # condition painted() waits for is checked at each paint, on the state that paint was
    # composed from: polling it (every 1 ms) missed a paint that came before the next poll,
    # and then waited for another paint that never came (nothing left to paint).
    displays: list[float] = []
    awaited: list[Callable[[], object]] = []  # painted()'s condition
    hits: list[float] = []  # the first paint at which it held
    real_display = app._display

    def holds(pred: Callable[[], object]) -> bool:
        try:
            return bool(pred())
        except Exception:  # not mounted yet
            return False

    def display(screen: Any, renderable: Any) -> None:
        real_display(screen, renderable)
        if renderable is not None:
            displays.append(time.perf_counter())
            if awaited and not hits and holds(awaited[0]):
                hits.append(displays[-1])

    app._display = display  # type: ignore[method-assign]

    async def painted(pred: Callable[[], object], what: str) -> float:
        """Wait for the first paint of a state where pred() holds; returns that paint's time."""
        deadline = time.perf_counter() + 60
        awaited[:] = [pred]
        hits.clear()
        try:
            while not hits:
                if time.perf_counter() > deadline:
                    raise TimeoutError(what)
                await asyncio.sleep(0.001)
            return hits[0]
        finally:
            awaited.clear()

    def press(key: str) -> float:
        """Send a key the way the driver does, without Pilot's idle waits; its send time."""
        char = " " if key == "space" else (key if len(key) == 1 else None)
        event = events.Key(key, char)
        event.set_sender(app)
        t = time.perf_counter()
        assert app._driver is not None
        app._driver.send_message(event)
        return t

    shown: list[float] = []
    fill_ms: list[float] = []  # ProjectTable.show_page itself (clear + add_row per project)

    def count_pages(table: ProjectTable) -> None:
        real = table.show_page

        def wrapper(items: Any, new_ids: set[str]) -> None:
            t = time.perf_counter()
            real(items, new_ids)
            shown.append(time.perf_counter())
            fill_ms.append((shown[-1] - t) * 1000)

        table.show_page = wrapper  # type: ignore[method-assign]

    async with app.run_test(size=SIZE) as pilot:
        t = await painted(lambda: isinstance(app.screen, LabsScreen)
                          and app.screen.table.row_count >= LABS, "labs")  # fmt: skip
        fig["launch_to_labs_s"] = t - T_START
        press("enter")
        t = await painted(lambda: isinstance(app.screen, ProjectsScreen)
                          and app.screen.table.row_count > 0, "projects")  # fmt: skip
        fig["launch_s"] = t - T_START
        fig["launch_in_app_s"] = t - imported
        screen = app.screen
        assert isinstance(screen, ProjectsScreen)
        count_pages(screen.table)
        await pilot.pause()
        rpc_ms.clear()
        pages: list[float] = []
        for key in ["n"] * PAGES + ["p"] * 5:
            before = len(shown)
            t0 = press(key)
            t = await painted(lambda b=before: len(shown) > b, f"page {key}")  # type: ignore[misc]
            pages.append((t - t0) * 1000)
            await pilot.pause()  # settle before the next key
        fig["page_change_p50_ms"] = statistics.median(pages)
        fig["page_change_p95_ms"] = pct(pages, 95)
        fig["page_rpc_p50_ms"] = statistics.median(rpc_ms.get("projects", [0.0]))

        press("3")
        await painted(lambda: isinstance(app.screen, SearchScreen), "search screen")
        await pilot.pause()
        search = app.screen
        assert isinstance(search, SearchScreen)
        count_pages(search.query_one(ProjectTable))

        before_rpc: list[float] = []  # keystroke -> search RPC sent (Input, worker)
        after_rpc: list[float] = []  # search answer -> table filled and painted

        async def type_keys(text: str) -> list[float]:
            out = []
            for ch in text:
                before = len(shown)
                t0 = press("space" if ch == " " else ch)
                t = await painted(lambda b=before: len(shown) > b, f"results after {ch!r}")  # type: ignore[misc]
                out.append((t - t0) * 1000)
                span = next((x for x in rpc_spans if x[0] == "search" and x[1] >= t0), None)
                if span is not None:
                    before_rpc.append((span[1] - t0) * 1000)
                    after_rpc.append((t - span[2]) * 1000)
                await pilot.pause()
            return out

        rpc_ms.clear()
        fill_ms.clear()
        keys = await type_keys(TYPED)
        fig["search_fill_table_p50_ms"] = statistics.median(fill_ms)
        fig["search_keystrokes"] = len(keys)
        fig["search_keystroke_p50_ms"] = statistics.median(keys)
        fig["search_keystroke_p95_ms"] = pct(keys, 95)
        fig["search_keystroke_max_ms"] = max(keys)
        fig["search_rpc_p50_ms"] = statistics.median(rpc_ms.get("search", [0.0]))
        fig["search_rpc_p95_ms"] = pct(rpc_ms.get("search", []), 95)
        fig["search_key_to_rpc_p50_ms"] = statistics.median(before_rpc or [0.0])
        fig["search_answer_to_paint_p50_ms"] = statistics.median(after_rpc or [0.0])
        fig["search_answer_to_paint_p95_ms"] = pct(after_rpc, 95)
    return fig


def child_main(sock: Path) -> None:
    import psutil

    fig = asyncio.run(_tui_measure(sock))
    fig["tui_rss_mb"] = psutil.Process().memory_info().rss / MB
    fig["tui_peak_rss_mb"] = rss_mb(os.getpid())["peak"]  # VmHWM (ru_maxrss survives exec)
    print(json.dumps(fig))


def run_child(sock: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", str(sock)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"TUI child failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- main -------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--projects", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="10k projects (under a minute)")
    ap.add_argument("--json", action="store_true", help="figures as JSON on the last line")
    ap.add_argument("--dir", type=Path, help="data directory to build (or reuse) and keep")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_main(args.child)
        return
    n = 10_000 if args.quick else args.projects
    tmp = args.dir or Path(tempfile.mkdtemp(prefix="percolab-bench-tui-"))
    data = tmp / "data"
    fig: dict[str, Any] = {"projects": n, "labs": LABS, "cpus": os.cpu_count()}
    try:
        marker = data / f".bench-{n}"
        if not marker.exists():
            shutil.rmtree(data, ignore_errors=True)
            data.mkdir(parents=True)
            fig |= build_store(data, n)
            subprocess.run([PERCOLAB, "--data-dir", str(data), "init", "--unencrypted-key",
                            "--name", "Bench"],
                           check=True, capture_output=True, timeout=120)  # fmt: skip
            marker.touch()
        proc = start_node(data)
        try:
            node_before = rss_mb(proc.pid)
            fig["node"] = node_rpc(data / "node.sock")
            fig["tui"] = run_child(data / "node.sock")
            node_after = rss_mb(proc.pid)
        finally:
            stop_node(proc)
        fig["node_rss_idle_mb"] = node_before["rss"]
        fig["node_rss_mb"] = node_after["rss"]
        fig["node_uss_mb"] = node_after["uss"]
        fig["node_anon_mb"] = node_after["anon"]
        fig["node_file_mb"] = node_after["file"]
        fig["node_peak_rss_mb"] = node_after["peak"]
    finally:
        if args.dir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    tui = fig["tui"]
    flat = {"launch_s": tui["launch_s"], "page_change_p50_ms": tui["page_change_p50_ms"],
            "search_keystroke_p95_ms": tui["search_keystroke_p95_ms"],
            "tui_rss_mb": tui["tui_rss_mb"], "node_rss_mb": fig["node_rss_mb"]}  # fmt: skip
    fig["ratios"] = {k: round(flat[k] / TARGETS[k][0], 3) for k in TARGETS}
    report(fig, flat)
    if args.json:
        print(json.dumps(fig, default=float))


def report(fig: dict[str, Any], flat: dict[str, float]) -> None:
    tui, node = fig["tui"], fig["node"]
    if "generate_s" in fig:
        print(
            f"store: {fig['objects']:.0f} objects ({fig['projects']} projects, {LABS} labs) "
            f"generated in {fig['generate_s']:.1f} s, ingested in {fig['ingest_s']:.1f} s"
        )
    print(f"{'figure':<28}{'value':>10}  {'target':>8}  ratio")
    for key, (target, unit) in TARGETS.items():
        ok = "ok" if flat[key] <= target else "MISSED"
        print(f"{key:<28}{flat[key]:>10.3f}  {target:>6} {unit:<2} {flat[key] / target:5.2f}  {ok}")
    print(
        f"TUI: imports {tui['import_s']:.2f} s, labs painted at "
        f"{tui['launch_to_labs_s']:.2f} s, in-app launch {tui['launch_in_app_s']:.2f} s; "
        f"page p95 {tui['page_change_p95_ms']:.1f} ms "
        f"(projects RPC p50 {tui['page_rpc_p50_ms']:.1f} ms)"
    )
    print(
        f"TUI search ({tui['search_keystrokes']} keystrokes, as shipped): "
        f"p50 {tui['search_keystroke_p50_ms']:.1f} / p95 {tui['search_keystroke_p95_ms']:.1f} / "
        f"max {tui['search_keystroke_max_ms']:.1f} ms; search RPC p50 "
        f"{tui['search_rpc_p50_ms']:.1f} / p95 {tui['search_rpc_p95_ms']:.1f} ms"
    )
    print(f"TUI RSS {tui['tui_rss_mb']:.1f} MB (peak {tui['tui_peak_rss_mb']:.1f} MB)")
    print(
        f"node RPC: lab_list {node['lab_list_ms']:.1f} ms, projects page 1 "
        f"{node['projects_page1_ms']:.1f} ms, next page p50 "
        f"{node['projects_next_page_p50_ms']:.1f} / p95 {node['projects_next_page_p95_ms']:.1f}"
        f" ms, active {node['projects_active_p50_ms']:.1f} ms, search p50 "
        f"{node['search_p50_ms']:.1f} / p95 {node['search_p95_ms']:.1f} ms "
        f"(slowest {node['search_slowest']})"
    )
    print(
        f"TUI search breakdown: keystroke -> RPC sent p50 {tui['search_key_to_rpc_p50_ms']:.1f}"
        f" ms; answer -> painted p50 {tui['search_answer_to_paint_p50_ms']:.1f} / p95 "
        f"{tui['search_answer_to_paint_p95_ms']:.1f} ms, of which filling the table "
        f"(show_page) p50 {tui['search_fill_table_p50_ms']:.1f} ms"
    )
    print(
        f"node RSS {fig['node_rss_mb']:.1f} MB after the run (idle {fig['node_rss_idle_mb']:.1f};"
        f" anonymous {fig['node_anon_mb']:.1f}, file-backed (LMDB mmap) "
        f"{fig['node_file_mb']:.1f}; USS {fig['node_uss_mb']:.1f}; peak "
        f"{fig['node_peak_rss_mb']:.1f})"
    )


if __name__ == "__main__":
    main()
