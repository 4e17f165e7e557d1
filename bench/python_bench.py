#!/usr/bin/env python3
"""Speed of the quantsim Python package against x.clone() of the same tensor (issue 12).

    PYTHONPATH=build/python /usr/bin/python3 bench/python_bench.py [--repetitions 5] [--threads 1]

Each row is the median time of the op over ``--repetitions`` runs of ``--iterations`` calls, and
its ratio ``clone time / op time`` measured in the same process on the same 16M-float tensor
(clone reads and writes it once: the memory-bandwidth limit of a one-input one-output op). The
allocations are warmed up first (this machine's page faults are slow, docs/benchmarks.md).
"""
import argparse
import ctypes
import statistics
import time

import torch

import quantsim  # noqa: F401
from quantsim.quantization import affine


def keep_large_blocks():
    """glibc returns freed blocks above M_MMAP_THRESHOLD to the system, and every call would
    then page-fault its 64 MiB output afresh; keep blocks up to 1 GiB (as bench/bench_main.h)."""
    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 1 << 30)
    libc.mallopt(m_trim_threshold, 1 << 30)


def timed(fn, iterations, repetitions):
    for _ in range(2):  # warm up the allocator's blocks
        fn()
    runs = []
    for _ in range(repetitions):
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        runs.append((time.perf_counter() - start) / iterations)
    return statistics.median(runs), min(runs), max(runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=16 * 1024 * 1024)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    keep_large_blocks()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(4096, args.numel // 4096)

    qdq = affine.QuantizeDequantize((), 8, False)
    qdq.set_range(-2.0, 2.0)
    learnable = affine.QuantizeDequantize((), 8, False)
    learnable.set_range(-2.0, 2.0)
    x_grad = x.clone().requires_grad_()
    grad_output = torch.ones_like(x)

    def forward():
        with torch.no_grad():
            qdq(x)

    def forward_backward():
        learnable.zero_grad(set_to_none=True)
        x_grad.grad = None
        learnable(x_grad).backward(grad_output)

    rows = [("x.clone()", lambda: x.clone()),
            ("QuantizeDequantize forward, per-tensor", forward),
            ("QuantizeDequantize forward+backward, learnable min/max", forward_backward)]
    print(f"python_bench: {x.numel()} float32, {args.threads} thread(s), "
          f"{args.repetitions} x {args.iterations} calls, torch {torch.__version__}; "
          "glibc mallopt keeps large blocks (M_MMAP_THRESHOLD=M_TRIM_THRESHOLD=1 GiB)")
    baseline = None
    for name, fn in rows:
        median, low, high = timed(fn, args.iterations, args.repetitions)
        baseline = baseline or median
        print(f"{name:58s} {median * 1e3:8.2f} ms  (min {low * 1e3:.2f}, max {high * 1e3:.2f})"
              f"  ratio {baseline / median:.2f}")


if __name__ == "__main__":
    main()
