"""RPyC 6 side of the netref comparison: the same operations as `cargo run -p netref-compare`.

Client (this process) and an RPyC ThreadedServer (this script with --server, in its own
process) talk over loopback TCP with RPyC's default configuration. Prints one line per figure:
`rpyc.<metric> median unit [min X max Y, n=N]`.

Figures:
  sync          cached bound method `add = c.root.add; add(1, 2)` (1 CALL per call), calls/s
  sync_p50/p99  its latency, us
  sync_written  `c.root.add(1, 2)` written out (GETATTR + CALL + async DEL), calls/s
  pipelined     `rpyc.async_(add)` with 1000 in flight, calls/s
  echo_1mib     1 MiB of os.urandom echoed, defaults (zlib level 1 on, Nagle on), MiB/s
                (payload counted once)
  echo_1mib_tuned  the same with TCP_NODELAY and compression off on both ends, MiB/s
  connect       rpyc.connect + root.add(1, 2) + close, conn/s
"""

import argparse
import collections
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

import rpyc
from rpyc.utils.server import ThreadedServer


def tune(conn):
    """TCP_NODELAY and no compression on this end of `conn`."""
    conn._channel.compress = False
    conn._channel.stream.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class BenchService(rpyc.Service):
    def on_connect(self, conn):
        self._conn = conn

    def exposed_add(self, a, b):
        return a + b

    def exposed_echo(self, data):
        return data

    def exposed_tune(self):
        tune(self._conn)


def serve():
    # Exit when the parent closes our stdin (or dies).
    def watchdog():
        while sys.stdin.buffer.read(64):
            pass
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True).start()
    server = ThreadedServer(BenchService, hostname="127.0.0.1", port=0)
    server._listen()  # listen before announcing the port (start() would do it later)
    print(f"listening on 127.0.0.1:{server.port}", flush=True)
    server.start()


PLANS = {
    #          warmup sync  written pipelined window echoes tuned_echoes connects time_cap
    "full": dict(warmup=300, sync=5000, written=3000, pipelined=20000, window=1000,
                 echoes=30, tuned_echoes=100, connects=200, time_cap=6.0),
    "quick": dict(warmup=50, sync=500, written=300, pipelined=2000, window=1000,
                  echoes=5, tuned_echoes=10, connects=20, time_cap=2.0),
}


def measure(port, plan):
    out = []
    c = rpyc.connect("127.0.0.1", port)
    add = c.root.add
    for _ in range(plan["warmup"]):
        add(1, 2)

    # sync, cached bound method
    lat = []
    end = time.perf_counter() + plan["time_cap"]
    start = time.perf_counter()
    for i in range(plan["sync"]):
        if i % 64 == 0 and time.perf_counter() > end:
            break
        t = time.perf_counter_ns()
        r = add(1, 2)
        lat.append(time.perf_counter_ns() - t)
        assert r == 3
    out.append(("sync", "calls/s", len(lat) / (time.perf_counter() - start)))
    lat.sort()
    out.append(("sync_p50", "us", lat[min(len(lat) - 1, int(len(lat) * 0.50))] / 1e3))
    out.append(("sync_p99", "us", lat[min(len(lat) - 1, int(len(lat) * 0.99))] / 1e3))

    # sync, written out each time
    root = c.root
    end = time.perf_counter() + plan["time_cap"]
    start = time.perf_counter()
    n = 0
    while n < plan["written"] and time.perf_counter() < end:
        assert root.add(1, 2) == 3
        n += 1
    out.append(("sync_written", "calls/s", n / (time.perf_counter() - start)))

    # async_, window of `window` in flight (oldest waited first)
    aadd = rpyc.async_(add)
    pending = collections.deque()
    end = time.perf_counter() + plan["time_cap"]
    start = time.perf_counter()
    sent = done = 0
    while sent < plan["pipelined"] and time.perf_counter() < end:
        if len(pending) >= plan["window"]:
            i, res = pending.popleft()
            assert res.value == i + 1
            done += 1
        pending.append((sent, aadd(sent, 1)))
        sent += 1
    while pending:
        i, res = pending.popleft()
        assert res.value == i + 1
        done += 1
    out.append(("pipelined", "calls/s", done / (time.perf_counter() - start)))

    # 1 MiB echo, defaults, then tuned
    payload = os.urandom(1 << 20)
    echo = c.root.echo
    for metric, count in (("echo_1mib", plan["echoes"]), ("echo_1mib_tuned", plan["tuned_echoes"])):
        if metric == "echo_1mib_tuned":
            c.root.tune()
            tune(c)
        assert echo(payload) == payload  # warm-up
        end = time.perf_counter() + plan["time_cap"]
        start = time.perf_counter()
        n = 0
        while n < count and time.perf_counter() < end:
            back = echo(payload)
            n += 1
        assert back == payload
        out.append((metric, "MiB/s", n / (time.perf_counter() - start)))
    del add, aadd, root, echo
    c.close()

    # connect + first call + close
    end = time.perf_counter() + plan["time_cap"]
    start = time.perf_counter()
    n = 0
    while n < plan["connects"] and time.perf_counter() < end:
        cc = rpyc.connect("127.0.0.1", port)
        assert cc.root.add(1, 2) == 3
        cc.close()
        n += 1
    out.append(("connect", "conn/s", n / (time.perf_counter() - start)))
    return out


def num(x):
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.server:
        return serve()
    plan = PLANS["quick" if args.quick else "full"]

    cpus = "?"
    try:
        with open("/proc/self/status") as f:
            cpus = next(l.split(":", 1)[1].strip() for l in f if l.startswith("Cpus_allowed_list"))
    except (OSError, StopIteration):
        pass
    print(f"# rpyc {rpyc.__version__}, CPython {sys.version.split()[0]}, ThreadedServer, default config;"
          f" runs {args.runs}, {'quick' if args.quick else 'full'}; client cpus {cpus}")
    server = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--server"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    started = time.perf_counter()
    sys.stdout.flush()
    try:
        line = server.stdout.readline().decode().strip()
        if not line.startswith("listening on "):
            raise SystemExit(f"the RPyC server printed {line!r}")
        port = int(line.rsplit(":", 1)[1])
        figures = collections.OrderedDict()
        units = {}
        for i in range(args.runs):
            t = time.perf_counter()
            for metric, unit, value in measure(port, plan):
                figures.setdefault(metric, []).append(value)
                units[metric] = unit
            print(f"# run {i + 1}/{args.runs} done in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    finally:
        server.kill()
        server.wait()
    for metric, values in figures.items():
        print(f"rpyc.{metric} {num(statistics.median(values))} {units[metric]} "
              f"[min {num(min(values))} max {num(max(values))}, n={len(values)}]")
    print(f"# total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
