#!/usr/bin/env python3
"""benchmarks/mpi4py_peer.py — mpi4py's MPIPoolExecutor measured as bench_mpi_pool measures ipc::mpi::Pool.

Run under mpirun with mpi4py.futures, so that rank 0 runs this and the other ranks are the workers:
    mpirun --oversubscribe -np 3 python3 -m mpi4py.futures benchmarks/mpi4py_peer.py --out FILE
Same cases as benchmarks/mpi_pool.cpp: a trivial function over 1000 inputs (chunksize 1, and 125,
which is ipc's automatic rule for two workers), and a map over 16 arguments of 1 MiB. Writes
Google Benchmark's JSON shape through python_peers.py's helpers.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from python_peers import calibrate_and_run, entry, write_document  # noqa: E402

from mpi4py.futures import MPIPoolExecutor  # noqa: E402

TASKS_PER_MAP = 1000
BIG_ARGUMENT = 1 << 20
BIG_ARGUMENTS_PER_MAP = 16


def identity(x):
    return x


def size_of(argument):
    return len(argument)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds each case runs at least")
    parser.add_argument("--out", help="JSON file to write (default: standard output)")
    args = parser.parse_args()
    results = []
    with MPIPoolExecutor() as executor:
        # mpi4py 3 has no num_workers; under `-m mpi4py.futures` the workers are every other rank.
        from mpi4py import MPI
        workers = MPI.COMM_WORLD.Get_size() - 1
        inputs = list(range(TASKS_PER_MAP))
        big = [bytes(BIG_ARGUMENT) for _ in range(BIG_ARGUMENTS_PER_MAP)]
        automatic = -(-TASKS_PER_MAP // (4 * workers))

        def trivial(chunksize):
            def run(n):
                start = time.perf_counter()
                for _ in range(n):
                    list(executor.map(identity, inputs, chunksize=chunksize))
                return time.perf_counter() - start, {"messages": n * TASKS_PER_MAP}
            return run

        def big_map(n):
            start = time.perf_counter()
            for _ in range(n):
                list(executor.map(size_of, big, chunksize=1))
            return time.perf_counter() - start, {"messages": n * BIG_ARGUMENTS_PER_MAP}

        cases = [("mpi4py.MPIPoolExecutor.map/chunksize:1", trivial(1), None),
                 ("mpi4py.MPIPoolExecutor.map/chunksize:auto", trivial(automatic), None),
                 ("mpi4py.MPIPoolExecutor.map/1Mi", big_map, BIG_ARGUMENT)]
        for name, run, size in cases:
            try:
                n, elapsed, extra = calibrate_and_run(run, args.min_time, 1)
                result = entry(name, n, elapsed, extra, size, "us")
                print(f"{name:<42} {result['items_per_second']:>14,.0f} /s", file=sys.stderr, flush=True)
            except Exception as error:  # reported in the JSON, as Google Benchmark reports a failed case
                result = {"name": name, "run_name": name, "run_type": "iteration", "error_occurred": True,
                          "error_message": f"{type(error).__name__}: {error}"}
                print(f"{name:<42} ERROR {result['error_message']}", file=sys.stderr, flush=True)
            results.append(result)
    write_document(results, args.out, __file__, {"workers": workers, "min_time": args.min_time})

if __name__ == "__main__":
    main()
