"""Compile time of mnnkit's entry points: cold cache, warm cache and a second call, each in a fresh process.

Usage::

    python benchmarks/bench_compile.py                        # every entry point on both shipped data sets
    python benchmarks/bench_compile.py --entries correct      # one entry point
    python benchmarks/bench_compile.py --datasets simulated --kernels 10

numba compiles each kernel the first time it is called with new argument types and, since every
mnnkit kernel is declared with ``cache=True``, writes the machine code to an on-disk cache
(``__pycache__`` next to the module, or ``NUMBA_CACHE_DIR``). For each entry point and data set this
script starts two subprocesses sharing one new, empty ``NUMBA_CACHE_DIR``:

* **cold**: the cache is empty; the first call compiles every kernel it reaches, then a second call
  runs on the compiled code (the "second" column: the correction itself);
* **warm**: a new process on the cache the cold one filled; its first call loads the kernels from disk.

Times are wall seconds of the call alone; ``import`` (warm run) is ``import mnnkit`` plus the lazy
import of the entry point's subpackage, timed apart, and loading the data is not timed. ``(CPU)`` is
the process's CPU time during the cold first call: on a shared machine it is steadier than wall time.
The per-kernel table lists numba's compile events of the cold runs (``numba.core.event``), in CPU
seconds of the compiling thread: ``total`` is the compile of a kernel including the functions it calls
that were compiled with it, ``self`` excludes them; a kernel compiled for several argument types is
listed once per signature. The first compile of a process also pays numba's one-time setup (about
0.5 s), which lands on whichever kernel comes first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._process import run_worker  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

ENTRIES = ("correct", "fast_mnn", "cluster_mnn")
DATASETS = ("simulated", "pancreas")


# --------------------------------------------------------------------------------------- worker
def _worker(entry: str, dataset: str) -> dict:
    started = time.perf_counter()
    import mnnkit

    entry_point = getattr(mnnkit, entry)  # the lazy import of the subpackage that holds it
    import_s = time.perf_counter() - started
    from numba.core import event

    events: list[dict] = []
    stack: list[dict] = []

    class _Listener(event.Listener):
        def on_start(self, ev):
            func = ev.data["dispatcher"].py_func
            stack.append(
                {
                    "kernel": f"{func.__module__}.{func.__qualname__}",
                    "args": str(ev.data["args"]),
                    "depth": len(stack),
                    "start": time.thread_time(),
                    "children": 0.0,
                }
            )

        def on_end(self, ev):
            rec = stack.pop()
            rec["total"] = time.thread_time() - rec.pop("start")
            rec["self"] = rec["total"] - rec.pop("children")
            if stack:
                stack[-1]["children"] += rec["total"]
            events.append(rec)

    event.register("numba:compile", _Listener())
    adata = getattr(mnnkit.datasets, dataset)()

    def call(data):
        if entry == "cluster_mnn":
            entry_point(data, "batch", clusters="cell_type")
        else:
            entry_point(data, "batch")

    times = []
    cpu = []
    for _ in range(2):
        data = adata.copy()
        started, cpu_started = time.perf_counter(), time.process_time()
        call(data)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
    return {"import": import_s, "first": times[0], "second": times[1], "cpu": cpu, "events": events}


# --------------------------------------------------------------------------------------- driver
def _run(entry: str, dataset: str, cache_dir: str, timeout: float) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", entry, dataset]
    return run_worker(cmd, timeout, env)


def main(argv: list[str] | None = None) -> None:
    """Run the table (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", nargs="+", choices=ENTRIES, default=list(ENTRIES))
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--kernels", type=int, default=15, help="kernels listed per run (slowest first)")
    parser.add_argument("--min-seconds", type=float, default=0.05, help="hide kernels compiled faster")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--worker", nargs=2, metavar=("ENTRY", "DATASET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(*args.worker)))
        return

    rows = []
    kernel_tables = []
    for dataset in args.datasets:
        for entry in args.entries:
            with tempfile.TemporaryDirectory(prefix="mnnkit-numba-cache-") as cache_dir:
                cold = _run(entry, dataset, cache_dir, args.timeout)
                warm = _run(entry, dataset, cache_dir, args.timeout)
            rows.append((entry, dataset, cold, warm))
            if "events" in cold:
                kernel_tables.append((entry, dataset, cold["events"]))

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end of the run")
    head = f"{'entry point':<12} {'data':<10} {'import':>7} {'cold 1st':>9} {'(CPU)':>7} {'warm 1st':>9} {'2nd':>7}"
    print(f"{head} {'warm/2nd':>9}")
    for entry, dataset, cold, warm in rows:
        if "error" in cold or "error" in warm:
            print(f"{entry:<12} {dataset:<10} {cold.get('error') or warm.get('error')}")
            continue
        ratio = warm["first"] / max(warm["second"], 1e-9)
        print(
            f"{entry:<12} {dataset:<10} {warm['import']:7.2f} {cold['first']:9.2f} {cold['cpu'][0]:7.2f} "
            f"{warm['first']:9.2f} {warm['second']:7.2f} {ratio:9.1f}"
        )
    for entry, dataset, events in kernel_tables:
        compiled = sum(e["total"] for e in events if e["depth"] == 0)
        print(f"\n{entry} on {dataset}: {compiled:.2f} s compiling ({len(events)} compiles); slowest:")
        print(f"  {'total':>6} {'self':>6}  kernel (argument types)")
        shown = sorted(events, key=lambda e: e["total"], reverse=True)
        for e in [e for e in shown if e["total"] >= args.min_seconds][: args.kernels]:
            name = e["kernel"].removeprefix("mnnkit.")
            print(f"  {e['total']:6.2f} {e['self']:6.2f}  {'  ' * e['depth']}{name} {e['args'][:70]}")


if __name__ == "__main__":
    main()
