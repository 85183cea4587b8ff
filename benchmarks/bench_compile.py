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

Times are wall seconds of the call alone (``import mnnkit`` and loading the data are timed apart). The
per-kernel table lists numba's compile events of the cold runs (``numba.core.event``): ``total`` is
the compile of a kernel including the functions it calls that were compiled with it, ``self`` excludes
them; a kernel compiled for several argument types is listed once per signature.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

ENTRIES = ("correct", "fast_mnn", "cluster_mnn")
DATASETS = ("simulated", "pancreas")


# --------------------------------------------------------------------------------------- worker
def _worker(entry: str, dataset: str) -> dict:
    from numba.core import event

    events: list[dict] = []
    stack: list[dict] = []

    class _Listener(event.Listener):
        def on_start(self, ev):
            disp = ev.data["dispatcher"]
            func = disp.py_func
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

    started = time.perf_counter()
    import mnnkit

    import_s = time.perf_counter() - started
    adata = getattr(mnnkit.datasets, dataset)()

    def call(data):
        if entry == "correct":
            mnnkit.correct(data, "batch")
        elif entry == "fast_mnn":
            mnnkit.fast_mnn(data, "batch")
        else:
            mnnkit.cluster_mnn(data, "batch", clusters="cell_type")

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
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {timeout:.0f} s"}
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"error": f"failed: {last[:150]}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


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

    print(f"{'entry point':<12} {'data':<10} {'import':>7} {'cold 1st':>9} {'warm 1st':>9} {'2nd':>7} {'warm/2nd':>9}")
    for entry, dataset, cold, warm in rows:
        if "error" in cold or "error" in warm:
            print(f"{entry:<12} {dataset:<10} {cold.get('error') or warm.get('error')}")
            continue
        ratio = warm["first"] / max(warm["second"], 1e-9)
        print(
            f"{entry:<12} {dataset:<10} {cold['import']:7.2f} {cold['first']:9.2f} {warm['first']:9.2f} "
            f"{warm['second']:7.2f} {ratio:9.1f}"
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
