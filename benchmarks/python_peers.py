#!/usr/bin/env python3
"""benchmarks/python_peers.py — Python's multiprocessing measured as the C++ benchmarks measure ipc.

Same cases, sizes and shapes as bench_messages, bench_shared_state, bench_process_start and bench_pool:
each side in its own process (fork, as ipc's benchmarks use), the timing running from the first
message sent until the receiver has consumed the last one, the count grown until a run lasts at
least --min-time (as Google Benchmark does). Writes Google Benchmark's JSON shape, so that
bench_report reads both alike. Needs only the standard library.
"""
import argparse
import ctypes
import errno
import fcntl
import json
import multiprocessing as mp
import os
import platform
import signal
import socket
import sys
import threading
import time
from multiprocessing import shared_memory
from multiprocessing.managers import BaseManager

SIZES = [8, 64, 1 << 10, 64 << 10, 1 << 20]
CHANNEL_BUFFER = 1 << 20  # the SharedMemory hand-off gets as many slots as fill this, as in C++
TASKS_PER_MAP = 1000      # as benchmarks/pool.cpp
DONE_TIMEOUT = 120        # seconds; a peer that takes longer is reported as an error, not waited for

fork = mp.get_context("fork")


def size_name(size):
    if size >= 1 << 20 and size % (1 << 20) == 0:
        return f"{size >> 20}Mi"
    if size >= 1 << 10 and size % (1 << 10) == 0:
        return f"{size >> 10}Ki"
    return str(size)


class Peers:
    """Children that each send one byte on a shared pipe when their side is done."""

    def __init__(self):
        self.done_reader, self.done_writer = fork.Pipe(duplex=False)
        self.children = []

    def start(self, target, *args):
        child = fork.Process(target=_run_peer, args=(target, self.done_writer) + args, daemon=True)
        child.start()
        self.children.append(child)

    def wait_done(self):
        for _ in self.children:
            if not self.done_reader.poll(DONE_TIMEOUT):
                raise RuntimeError("a peer did not finish in time")
            self.done_reader.recv_bytes()

    def close(self):
        for child in self.children:
            child.join(10)
            if child.is_alive():
                child.kill()
                child.join()
        self.done_reader.close()
        self.done_writer.close()


def _die_with_parent():
    """A peer blocked in a receive would outlive a killed benchmark: ask Linux to kill it too."""
    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _run_peer(target, done_writer, *args):
    _die_with_parent()
    target(*args)
    done_writer.send_bytes(b"")


def measure(body):
    """Runs body(peers) once with fresh peers; body returns (seconds, extra counters)."""
    peers = Peers()
    try:
        return body(peers)
    finally:
        peers.close()


# --- the 1 MiB buffer every channel gets, as in C++; what was obtained goes into the JSON ---

SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)  # Linux's values, where Python lacks them
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def enlarge(conn):
    """Gives the descriptor behind a Connection CHANNEL_BUFFER bytes of buffer: F_SETPIPE_SZ for a
    pipe (a one-way Pipe, and a Queue's), the FORCE socket options for a socketpair (a duplex Pipe).
    Returns the counters bench_report shows: the buffer obtained, and the errno of a refusal."""
    fd = conn.fileno()
    error = 0
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, CHANNEL_BUFFER)
        return {"buffer_bytes": fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ), "buffer_errno": 0}
    except OSError as failure:
        if failure.errno != errno.EBADF:  # EBADF: not a pipe, but a socket
            return {"buffer_bytes": fcntl.fcntl(fd, fcntl.F_GETPIPE_SZ), "buffer_errno": failure.errno}
    sock = socket.socket(fileno=os.dup(fd))
    try:
        for forced, plain in [(SO_SNDBUFFORCE, socket.SO_SNDBUF), (SO_RCVBUFFORCE, socket.SO_RCVBUF)]:
            try:
                sock.setsockopt(socket.SOL_SOCKET, forced, CHANNEL_BUFFER)
            except OSError as failure:
                error = failure.errno
                sock.setsockopt(socket.SOL_SOCKET, plain, CHANNEL_BUFFER)
        return {"buffer_bytes": sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) // 2, "buffer_errno": error}
    finally:
        sock.close()


def enlarge_queue(queue):
    """A Queue's or SimpleQueue's pipe: its writing end is a Connection too."""
    return enlarge(queue._writer)


# --- message passing: every sender in the parent, every receiver in a child ---

def recv_bytes_into_n(conn, n, size):
    buffer = bytearray(size)
    for _ in range(n):
        conn.recv_bytes_into(buffer)


def recv_n(conn, n, size):
    for _ in range(n):
        conn.recv()


def get_n(queue, n):
    for _ in range(n):
        queue.get()


def get_until_none(queue):
    while queue.get() is not None:
        pass


def put_n_after_gate(queue, gate, message, n):
    gate.wait()
    for _ in range(n):
        queue.put(message)


def put_n_after_gate_then_none(queue, gate, message, n):
    put_n_after_gate(queue, gate, message, n)
    queue.put(None)


def pipe_case(send_method, recv_target):
    def run(size, n):
        def body(peers):
            reader, writer = fork.Pipe(duplex=False)
            buffer = enlarge(writer)
            peers.start(recv_target, reader, n, size)
            reader.close()
            message = bytes(size)
            send = getattr(writer, send_method)
            start = time.perf_counter()
            for _ in range(n):
                send(message)
            peers.wait_done()
            elapsed = time.perf_counter() - start
            writer.close()
            return elapsed, buffer
        return measure(body)
    return run


def queue_one_to_one(make_queue):
    def run(size, n):
        def body(peers):
            queue = make_queue()
            buffer = enlarge_queue(queue)
            peers.start(get_n, queue, n)
            message = bytes(size)
            start = time.perf_counter()
            for _ in range(n):
                queue.put(message)
            peers.wait_done()
            return time.perf_counter() - start, buffer
        return measure(body)
    return run


def queue_two_to_one(size, n):
    def body(peers):
        queue, gate = fork.Queue(), fork.Event()
        buffer = enlarge_queue(queue)
        peers.start(get_n, queue, 2 * n)
        message = bytes(size)
        peers.start(put_n_after_gate, queue, gate, message, n)
        start = time.perf_counter()
        gate.set()
        for _ in range(n):
            queue.put(message)
        peers.wait_done()
        return time.perf_counter() - start, {"messages": 2 * n, **buffer}
    return measure(body)


def queue_one_to_two(size, n):
    def body(peers):
        queue = fork.Queue()
        buffer = enlarge_queue(queue)
        for _ in range(2):
            peers.start(get_until_none, queue)
        message = bytes(size)
        start = time.perf_counter()
        for _ in range(n):
            queue.put(message)
        queue.put(None)
        queue.put(None)
        peers.wait_done()
        return time.perf_counter() - start, buffer
    return measure(body)


def queue_four_to_four(size, n):
    """4 senders (this process and 3 children) and 4 receivers; each sender ends with None, each
    receiver stops at its first."""
    def body(peers):
        queue, gate = fork.Queue(), fork.Event()
        buffer = enlarge_queue(queue)
        for _ in range(4):
            peers.start(get_until_none, queue)
        message = bytes(size)
        for _ in range(3):
            peers.start(put_n_after_gate_then_none, queue, gate, message, n)
        start = time.perf_counter()
        gate.set()
        for _ in range(n):
            queue.put(message)
        queue.put(None)
        peers.wait_done()
        return time.perf_counter() - start, {"messages": 4 * n, **buffer}
    return measure(body)


def read_slots(shm, full, empty, size, slots, n):
    buf = shm.buf
    for i in range(n):
        full.acquire()
        offset = (i % slots) * size
        bytes(buf[offset:offset + size])
        empty.release()
    del buf


def shared_memory_handoff(size, n):
    def body(peers):
        slots = max(2, CHANNEL_BUFFER // size)
        shm = shared_memory.SharedMemory(create=True, size=slots * size)
        try:
            full, empty = fork.Semaphore(0), fork.Semaphore(slots)
            peers.start(read_slots, shm, full, empty, size, slots, n)
            message = bytes(size)
            buf = shm.buf
            start = time.perf_counter()
            for i in range(n):
                empty.acquire()
                offset = (i % slots) * size
                buf[offset:offset + size] = message
                full.release()
            peers.wait_done()
            elapsed = time.perf_counter() - start
            del buf
            return elapsed, {}
        finally:
            shm.close()
            shm.unlink()
    return measure(body)


# --- shared state, round trip, pool, process start ---

def add_under_lock(value, gate, n):
    gate.wait()
    for _ in range(n):
        with value.get_lock():
            value.value += 1


def value_under_lock(n):
    def body(peers):
        value, gate = fork.Value("l", 0), fork.Event()
        peers.start(add_under_lock, value, gate, n)
        start = time.perf_counter()
        gate.set()
        for _ in range(n):
            with value.get_lock():
                value.value += 1
        peers.wait_done()
        elapsed = time.perf_counter() - start
        if value.value != 2 * n:
            raise RuntimeError("updates were lost")
        return elapsed, {"messages": 2 * n}
    return measure(body)


def dict_set_get(d, gate, prefix, n):
    keys = [prefix + str(i) for i in range(100)]
    gate.wait()
    for i in range(n):
        key = keys[i % 100]
        d[key] = i
        if d[key] != i:
            raise RuntimeError("a dict get returned another value than was set")


def manager_dict_set_get(n):
    """Both processes set a key of a Manager().dict() and get it back; calls (a set or a get) per second."""
    def body(peers):
        with fork.Manager() as manager:
            d, gate = manager.dict(), fork.Event()
            peers.start(dict_set_get, d, gate, "b", n)
            start = time.perf_counter()
            gate.set()
            keys = ["a" + str(i) for i in range(100)]
            for i in range(n):
                key = keys[i % 100]
                d[key] = i
                if d[key] != i:
                    raise RuntimeError("a dict get returned another value than was set")
            peers.wait_done()
            return time.perf_counter() - start, {"messages": 4 * n}
    return measure(body)


def list_append(items, gate, n):
    gate.wait()
    for i in range(n):
        items.append(i)


def manager_list_append(n):
    """Both processes append to one Manager().list(); appends per second."""
    def body(peers):
        with fork.Manager() as manager:
            items, gate = manager.list(), fork.Event()
            peers.start(list_append, items, gate, n)
            start = time.perf_counter()
            gate.set()
            for i in range(n):
                items.append(i)
            peers.wait_done()
            elapsed = time.perf_counter() - start
            if len(items) != 2 * n:
                raise RuntimeError("appends were lost")
            return elapsed, {"messages": 2 * n}
    return measure(body)


class Counter:
    """What the BaseManager peer serves: one counter both processes add to."""
    def __init__(self):
        self.value = 0

    def add(self, amount):
        self.value += amount
        return self.value

    def get(self):
        return self.value


class CounterManager(BaseManager):
    pass


CounterManager.register("Counter", Counter)


def add_n(counter, gate, n):
    gate.wait()
    for _ in range(n):
        counter.add(1)


def base_manager_call(n):
    """Both processes call a registered object's method, run in the manager process; calls per second."""
    def body(peers):
        with CounterManager(ctx=fork) as manager:
            counter, gate = manager.Counter(), fork.Event()
            peers.start(add_n, counter, gate, n)
            start = time.perf_counter()
            gate.set()
            for _ in range(n):
                counter.add(1)
            peers.wait_done()
            elapsed = time.perf_counter() - start
            if counter.get() != 2 * n:
                raise RuntimeError("calls were lost")
            return elapsed, {"messages": 2 * n}
    return measure(body)


def echo(conn, n):
    buffer = bytearray(8)
    for _ in range(n):
        conn.recv_bytes_into(buffer)
        conn.send_bytes(buffer)


def pipe_round_trip(n):
    def body(peers):
        mine, theirs = fork.Pipe()
        buffer = enlarge(mine)
        enlarge(theirs)
        peers.start(echo, theirs, n)
        message = bytearray(8)
        laps = []
        clock = time.perf_counter_ns
        last = start = clock()
        for _ in range(n):
            mine.send_bytes(message)
            mine.recv_bytes_into(message)
            now = clock()
            laps.append(now - last)
            last = now
        elapsed = (last - start) / 1e9
        peers.wait_done()
        laps.sort()
        return elapsed, {"median_us": laps[len(laps) // 2] / 1e3,
                         "p99_us": laps[int(0.99 * (len(laps) - 1))] / 1e3, **buffer}
    return measure(body)


def identity(x):
    return x


def pool_map(chunksize):
    pool = None

    def run(n):
        nonlocal pool
        if pool is None:  # as in C++, the pool is started once, outside the timing
            pool = fork.Pool(2)
        inputs = range(TASKS_PER_MAP)
        start = time.perf_counter()
        for _ in range(n):
            pool.map(identity, inputs, chunksize)
        return time.perf_counter() - start, {"messages": n * TASKS_PER_MAP}

    def close():
        # close() and join(), not terminate(): terminate() SIGTERMs workers while the pool's handler
        # thread still starts new ones, and a worker killed holding the task queue's lock leaves a
        # new one blocked on it, which terminate() then joins forever (seen here under load, 1 run
        # in 20). Bounded all the same: a pool that does not end is killed, and the run goes on.
        if pool is None:
            return
        workers = list(pool._pool)
        closer = threading.Thread(target=lambda: (pool.close(), pool.join()), daemon=True)
        closer.start()
        closer.join(30)
        if closer.is_alive():
            for worker in workers:
                worker.kill()
    return run, close


def noop():
    pass


def process_start(method):
    context = mp.get_context(method)

    def run(n):
        start = time.perf_counter()
        for _ in range(n):
            child = context.Process(target=noop)
            child.start()
            child.join()
        return time.perf_counter() - start, {}
    return run


# --- the driver ---

def calibrate_and_run(run, min_time, repetitions):
    """Grows the count as Google Benchmark does, then repeats at that count; the median run wins."""
    n = 1
    while True:
        elapsed, extra = run(n)
        if elapsed >= min_time or n >= 10**9:
            break
        multiplier = min_time * 1.4 / max(elapsed, 1e-9)
        if elapsed / min_time <= 0.1:
            multiplier = min(multiplier, 10.0)
        n = max(int(n * multiplier), n + 1)
    runs = [(elapsed, extra)] + [run(n) for _ in range(repetitions - 1)]
    runs.sort(key=lambda r: r[0])
    elapsed, extra = runs[len(runs) // 2]
    return n, elapsed, extra


def entry(name, n, elapsed, extra, size=None, unit="ns"):
    messages = extra.pop("messages", n)
    scale = {"ns": 1e9, "us": 1e6, "ms": 1e3}[unit]
    result = {"name": name, "run_name": name, "run_type": "iteration", "repetitions": 1, "repetition_index": 0,
              "threads": 1, "iterations": n, "real_time": elapsed / n * scale, "cpu_time": elapsed / n * scale,
              "time_unit": unit, "items_per_second": messages / elapsed}
    if size is not None:
        result["bytes_per_second"] = messages * size / elapsed
    result.update(extra)
    return result


def cases(sizes):
    """(name, run(n) -> (seconds, extra), size, time unit, cleanup) in the order of the C++ run."""
    for size in sizes:
        at = "/" + size_name(size)
        for name, make in [("python.Pipe.send_bytes", pipe_case("send_bytes", recv_bytes_into_n)),
                           ("python.Pipe.send", pipe_case("send", recv_n)),
                           ("python.Queue", queue_one_to_one(fork.Queue)),
                           ("python.Queue.2to1", queue_two_to_one),
                           ("python.Queue.1to2", queue_one_to_two),
                           ("python.Queue.4to4", queue_four_to_four),
                           ("python.SimpleQueue", queue_one_to_one(fork.SimpleQueue)),
                           ("python.SharedMemory.handoff", shared_memory_handoff)]:
            yield name + at, (lambda make, size: lambda n: make(size, n))(make, size), size, "ns", None
    yield "python.Pipe.round_trip", pipe_round_trip, None, "us", None
    yield "python.Value.lock", value_under_lock, None, "ns", None
    yield "python.Manager.dict.set_get", manager_dict_set_get, None, "ns", None
    yield "python.Manager.list.append", manager_list_append, None, "ns", None
    yield "python.BaseManager.call", base_manager_call, None, "ns", None
    for label, chunksize in [("1", 1), ("auto", None)]:
        run, close = pool_map(chunksize)
        yield f"python.Pool.map/chunksize:{label}", run, None, "us", close
    for method in ["fork", "spawn", "forkserver"]:
        yield f"python.Process.start/{method}", process_start(method), None, "us", None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds each case runs at least")
    parser.add_argument("--repetitions", type=int, default=1, help="runs per case; the median is reported")
    parser.add_argument("--sizes", type=lambda text: [int(s) for s in text.split(",")], default=SIZES,
                        help="message sizes in bytes, comma separated")
    parser.add_argument("--filter", default="", help="only cases whose name contains this")
    parser.add_argument("--out", help="JSON file to write (default: standard output)")
    args = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so that shared memory is unlinked and peers are stopped; but only
    # here. Forked children inherit the handler, and a Pool worker that Pool.terminate() stops with
    # SIGTERM must die at once: one that unwound instead sat in a futex wait for good, and so did
    # Pool.join() (seen once in a full run).
    main_pid = os.getpid()

    def on_sigterm(signum, frame):
        if os.getpid() != main_pid:
            os._exit(128 + signum)
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_sigterm)

    results = []
    for name, run, size, unit, cleanup in cases(args.sizes):
        if args.filter not in name:
            continue
        try:
            n, elapsed, extra = calibrate_and_run(run, args.min_time, args.repetitions)
            result = entry(name, n, elapsed, extra, size, unit)
            print(f"{name:<36} {result['items_per_second']:>14,.0f} /s", file=sys.stderr, flush=True)
        except Exception as error:  # reported in the JSON, as Google Benchmark reports a failed case
            result = {"name": name, "run_name": name, "run_type": "iteration", "error_occurred": True,
                      "error_message": f"{type(error).__name__}: {error}"}
            print(f"{name:<36} ERROR {result['error_message']}", file=sys.stderr, flush=True)
        finally:
            if cleanup:
                cleanup()
        results.append(result)

    write_document(results, args.out, __file__, {"min_time": args.min_time, "repetitions": args.repetitions})


def write_document(results, out_path, executable, context):
    """Google Benchmark's JSON document of `results`, to `out_path` (standard output when empty)."""
    document = {"context": {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "host_name": platform.node(),
                            "executable": os.path.abspath(executable), "num_cpus": os.cpu_count(),
                            "python_version": platform.python_version(), **context},
                "benchmarks": results}
    text = json.dumps(document, indent=2)
    if out_path:
        with open(out_path, "w") as out:
            out.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
