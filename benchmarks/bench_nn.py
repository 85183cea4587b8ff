"""Forward + backward time of mnnkit.nn convolutions against PyTorch (CPU), side by side in one run.

Usage::

    python benchmarks/bench_nn.py            # cell-image shapes: batch 64, 64x64 pixels
    python benchmarks/bench_nn.py --quick    # small smoke run (batch 4, 16x16)

Each case is timed for every mnnkit engine (``im2col`` + BLAS, ``direct`` numba loops, and ``auto``,
the one mnnkit picks) and for torch, alternating the contenders round by round so that load from
other processes hits all of them alike; the table reports the best round of each. Both sides use
all cores (torch's intra-op threads, numba's threads and BLAS's threads). The CPU-time columns
(summed over threads) show the work done, which stays meaningful when other processes share the
cores. Needs ``torch``.
"""

from __future__ import annotations

import argparse
import os
import time


def _cases(batch: int, size: int) -> list[dict]:
    half = size // 2
    return [
        {
            "name": f"conv2d 3->32 {size}x{size} k3 p1",
            "x": (batch, 3, size, size),
            "w": (32, 3, 3, 3),
            "kw": {"padding": 1},
            "transposed": False,
        },
        {
            "name": f"depthwise 32 {size}x{size} k3 p1",
            "x": (batch, 32, size, size),
            "w": (32, 1, 3, 3),
            "kw": {"padding": 1, "groups": 32},
            "transposed": False,
        },
        {
            "name": f"pointwise 32->32 {size}x{size} k1",
            "x": (batch, 32, size, size),
            "w": (32, 32, 1, 1),
            "kw": {},
            "transposed": False,
        },
        {
            "name": f"conv2d 32->32 {half}x{half} k3 s2 d2",
            "x": (batch, 32, size, size),
            "w": (32, 32, 3, 3),
            "kw": {"padding": 2, "stride": 2, "dilation": 2},
            "transposed": False,
        },
        {
            "name": f"transposed 32->16 {half}->{size} k3 s2",
            "x": (batch, 32, half, half),
            "w": (32, 16, 3, 3),
            "kw": {"padding": 1, "stride": 2, "output_padding": 1},
            "transposed": True,
        },
    ]


def _best(times: list) -> float:
    return min(times) * 1e3


def run(batch: int, size: int, rounds: int, dtype: str) -> list[tuple]:
    import numpy as np
    import torch

    import mnnkit.nn as mnn
    from mnnkit.nn._conv import _check_method

    rng = np.random.default_rng(0)
    rows = []
    for case in _cases(batch, size):
        x = rng.standard_normal(case["x"]).astype(dtype)
        w = (rng.standard_normal(case["w"]) * 0.1).astype(dtype)
        b = rng.standard_normal(w.shape[1] * case["kw"].get("groups", 1) if case["transposed"] else w.shape[0])
        b = b.astype(dtype)
        fwd = mnn.conv_transpose2d if case["transposed"] else mnn.conv2d
        bwd = mnn.conv_transpose2d_backward if case["transposed"] else mnn.conv2d_backward
        tfwd = torch.nn.functional.conv_transpose2d if case["transposed"] else torch.nn.functional.conv2d
        kw = case["kw"]
        gy = np.ones_like(fwd(x, w, b, **kw))

        def ours(method, x=x, w=w, b=b, gy=gy, fwd=fwd, bwd=bwd, kw=kw):
            fwd(x, w, b, method=method, **kw)
            bwd(gy, x, w, method=method, **kw)

        tx = torch.tensor(x, requires_grad=True)
        tw = torch.tensor(w, requires_grad=True)
        tb = torch.tensor(b, requires_grad=True)
        tgy = torch.tensor(gy)

        def theirs(tx=tx, tw=tw, tb=tb, tgy=tgy, tfwd=tfwd, kw=kw):
            tx.grad = tw.grad = tb.grad = None
            tfwd(tx, tw, tb, **kw).backward(tgy)

        contenders = {
            "im2col": lambda: ours("im2col"),
            "direct": lambda: ours("direct"),
            "auto": lambda: ours("auto"),
            "torch": theirs,
        }
        for f in contenders.values():  # warm up (numba compilation, torch's first-call set-up)
            f()
        times = {k: [] for k in contenders}
        cpu = {k: [] for k in contenders}
        for _ in range(rounds):
            for k, f in contenders.items():
                c0, t0 = time.process_time(), time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
                cpu[k].append(time.process_time() - c0)
        best = {k: _best(v) for k, v in times.items()}
        best_cpu = {k: _best(v) for k, v in cpu.items()}
        picked = _check_method("auto", w.shape[1], kw.get("groups", 1))
        rows.append(
            (
                case["name"],
                best["im2col"],
                best["direct"],
                best["auto"],
                picked,
                best["torch"],
                best_cpu["auto"],
                best_cpu["torch"],
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run (batch 4, 16x16, 2 rounds)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64, help="image height and width")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument(
        "--threads", type=int, default=None, help="threads for torch, numba and BLAS alike (default: all cores)"
    )
    args = parser.parse_args()
    if args.quick:
        args.batch, args.size, args.rounds = 4, 16, 2
    if args.threads is not None:  # before numpy, numba and torch start their thread pools
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)

    print(
        f"mnnkit.nn vs torch {torch.__version__} (threads {torch.get_num_threads()}), {args.dtype}, "
        f"batch {args.batch}, best of {args.rounds} rounds; times in ms for forward + backward (all gradients)"
    )
    header = (
        f"{'case':<36} {'im2col':>8} {'direct':>8} {'auto':>8} {'picks':>7} {'torch':>8} {'auto/torch':>11}"
        f" {'cpu auto':>9} {'cpu torch':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, t_im2col, t_direct, t_auto, picked, t_torch, c_auto, c_torch in run(
        args.batch, args.size, args.rounds, args.dtype
    ):
        print(
            f"{name:<36} {t_im2col:8.1f} {t_direct:8.1f} {t_auto:8.1f} {picked:>7} {t_torch:8.1f} "
            f"{t_auto / t_torch:10.2f}x {c_auto:9.1f} {c_torch:9.1f}"
        )
    print("wall-clock ms (best round); 'cpu' columns: process CPU ms summed over threads (best round)")


if __name__ == "__main__":
    main()
