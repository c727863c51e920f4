"""RPyC interop benchmark: netref's RPyC dialect against stock rpyc 6, side by side in one run.

Started by `benches/rpyc/interop.sh`, which builds the Rust examples and the virtualenv. Serves
the interop service (contract §2) twice, from `rpyc_interop_server` (netref) and from
`interop/rpyc/interop_service.py` (stock ThreadedServer), and keeps three clients connected:

  py->netref     the stock Python client (this process) against the netref server
  py->stock      the stock Python client against the stock server
  netref->stock  `rpyc_bench_client` (netref's RPyC client, its own process) against the stock server

Figures, each timed on all three clients in turn, in short blocks (--block seconds, --blocks
per client and figure in each run, the order rotating from block to block), so that a busy
machine's noise hits every side alike:

  cached     `f = root.add` once, then `f(1, 2)`: one CALL round trip per call, calls/s
  add        `root.add(1, 2)` as a Python user writes it: GETATTR + CALL + an async DEL, calls/s
             (the netref client's slot: `root.call_method("add", (1, 2))`, one CALLATTR)
  echo_1mib  1 MiB of random bytes echoed (payload counted once), MiB/s, default configs

A run's figure for a client is its operations over its blocks' time; for each, the CPU time
(all threads, user + kernel, /proc/PID/task/*/schedstat) the server and the client spent per
operation. Ratios are taken run by run, then their median. The last ratios are derived: the
rate ratio each pair's CPU time per operation (client + server) allows, a round trip's wall time
on one otherwise idle vCPU; on a busy machine, where measured rates mostly show the scheduler,
they show what each side's code costs. Loopback only; every result is checked.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

import rpyc

CONFIGS = ("py->netref", "py->stock", "netref->stock")
# Figure slots: what each client runs in the slot (the netref client has no written-out add).
SLOTS = {
    "cached": {"py->netref": "cached", "py->stock": "cached", "netref->stock": "cached"},
    "add": {"py->netref": "add", "py->stock": "add", "netref->stock": "callattr"},
    "echo_1mib": {"py->netref": "echo_1mib", "py->stock": "echo_1mib", "netref->stock": "echo_1mib"},
}
UNITS = {"cached": "calls/s", "add": "calls/s", "callattr": "calls/s", "echo_1mib": "MiB/s"}
WARMUP_CALLS = 200
WARMUP_ECHOES = 2
MIB = 1 << 20


def cpu_ns(pid):
    """On-CPU time of every live thread of `pid`, in ns (schedstat; else utime + stime)."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            # No schedstat in this kernel: clock ticks, coarser but complete.
            try:
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) * 10**9 // os.sysconf("SC_CLK_TCK")
            except (OSError, ValueError, IndexError):
                pass  # the thread exited
    return total


def cpus_allowed(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("Cpus_allowed_list"))
    except (OSError, StopIteration):
        return "?"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def start_server(argv):
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("listening on "):
        proc.kill()
        proc.wait()
        raise SystemExit(f"{argv[0]} printed {line!r} instead of 'listening on HOST:PORT'")
    host, port = line[len("listening on "):].rsplit(":", 1)
    return proc, host.strip("[]"), int(port)


class Tally:
    """One figure of one client in one run: its blocks added up."""

    def __init__(self, figure):
        self.figure = figure
        self.ops = self.seconds = self.server_ns = self.client_ns = 0

    def add(self, ops, seconds, server_ns, client_ns):
        self.ops += ops
        self.seconds += seconds
        self.server_ns += server_ns
        self.client_ns += client_ns

    @property
    def rate(self):
        """Operations per second: calls/s, or MiB/s for the echo of 1 MiB."""
        return self.ops / self.seconds

    @property
    def server_us(self):
        return self.server_ns / self.ops / 1e3

    @property
    def client_us(self):
        return self.client_ns / self.ops / 1e3


class PythonClient:
    """The stock client in this process, one connection."""

    def __init__(self, host, port, payload):
        self.conn = rpyc.connect(host, port)
        self.pid = os.getpid()
        root = self.conn.root
        add, echo = root.add, root.echo

        def cached():
            assert add(1, 2) == 3

        def written():
            assert root.add(1, 2) == 3

        def echoed():
            assert echo(payload) == payload

        self.loops = {"cached": cached, "add": written, "echo_1mib": echoed}
        for _ in range(WARMUP_CALLS):
            cached()
            written()
        for _ in range(WARMUP_ECHOES):
            echoed()

    def block(self, figure, seconds):
        once = self.loops[figure]
        t0 = time.perf_counter()
        end = t0 + seconds
        n = 0
        while True:
            once()
            n += 1
            if time.perf_counter() >= end:
                return n, time.perf_counter() - t0

    def close(self):
        self.loops.clear()
        self.conn.close()

    def abort(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - already failing; the servers must still stop
            pass


class NetrefClient:
    """`rpyc_bench_client` in its own process, one connection, blocks asked for on its stdin."""

    def __init__(self, binary, host, port):
        self.proc = subprocess.Popen([binary, f"{host}:{port}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.pid = self.proc.pid
        if self._line() != "ready":
            raise SystemExit(f"{binary} did not connect")

    def _line(self):
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"rpyc_bench_client exited with status {self.proc.wait()}")
        return line.strip()

    def block(self, figure, seconds):
        self.proc.stdin.write(f"{figure} {seconds}\n")
        self.proc.stdin.flush()
        words = self._line().split()
        if words[:2] != ["done", figure]:
            raise SystemExit(f"rpyc_bench_client answered {' '.join(words)!r} to `{figure} {seconds}`")
        return int(words[2]), float(words[3])

    def close(self):
        self.proc.stdin.close()
        if self.proc.wait(timeout=10) != 0:
            raise SystemExit(f"rpyc_bench_client exited with status {self.proc.returncode}")

    def abort(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def measure_run(run, clients, server_pids, args):
    """One run: every figure slot, `args.blocks` blocks per client, the order rotating."""
    tallies = {c: {} for c in CONFIGS}
    turn = run
    for slot, figures in SLOTS.items():
        for c in CONFIGS:
            tallies[c][slot] = Tally(figures[c])
        for _ in range(args.blocks):
            order = CONFIGS[turn % len(CONFIGS):] + CONFIGS[:turn % len(CONFIGS)]
            turn += 1
            for c in order:
                client, server = clients[c], server_pids[c]
                s0, c0 = cpu_ns(server), cpu_ns(client.pid)
                n, seconds = client.block(figures[c], args.block)
                tallies[c][slot].add(n, seconds, cpu_ns(server) - s0, cpu_ns(client.pid) - c0)
    return tallies


def num(x):
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def spread(values, fmt=num):
    return f"{fmt(statistics.median(values))} [{fmt(min(values))}–{fmt(max(values))}]"


def ratio(x):
    return f"{x:.2f}×"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--netref-server", required=True, help="the rpyc_interop_server binary")
    ap.add_argument("--netref-client", required=True, help="the rpyc_bench_client binary")
    ap.add_argument("--stock-server", required=True, help="interop_service.py")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--block", type=float, default=0.2, help="seconds per block (default 0.2)")
    ap.add_argument("--blocks", type=int, default=5, help="blocks per client and figure in a run (default 5)")
    ap.add_argument("--mode", default="unpinned", help="label for the output (pinned/unpinned)")
    args = ap.parse_args()
    if args.runs < 1 or args.blocks < 1 or not 0 < args.block <= 60:
        raise SystemExit("--runs and --blocks must be ≥ 1, --block in (0, 60]")
    # A SIGTERM (the script's timeout) unwinds through the `finally` below, which stops the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))

    began = time.perf_counter()
    print(f"# mode {args.mode}; runs {args.runs}, each {args.blocks} blocks of {args.block:g} s per client and "
          f"figure, interleaved; rpyc {rpyc.__version__}, "
          f"CPython {sys.version.split()[0]}; client cpus {cpus_allowed(os.getpid())}; "
          f"load average at start {loadavg()}", flush=True)
    servers, clients = [], {}
    try:
        netref = start_server([args.netref_server, "127.0.0.1:0"])
        servers.append(netref[0])
        stock = start_server([sys.executable, args.stock_server, "127.0.0.1:0"])
        servers.append(stock[0])
        print(f"# netref server pid {netref[0].pid} cpus {cpus_allowed(netref[0].pid)}; "
              f"stock server pid {stock[0].pid} cpus {cpus_allowed(stock[0].pid)}", flush=True)
        payload = os.urandom(MIB)
        clients["py->netref"] = PythonClient(netref[1], netref[2], payload)
        clients["py->stock"] = PythonClient(stock[1], stock[2], payload)
        clients["netref->stock"] = NetrefClient(args.netref_client, stock[1], stock[2])
        server_pids = {"py->netref": netref[0].pid, "py->stock": stock[0].pid, "netref->stock": stock[0].pid}
        results = {c: [] for c in CONFIGS}
        for run in range(args.runs):
            t = time.perf_counter()
            tallies = measure_run(run, clients, server_pids, args)
            for c in CONFIGS:
                results[c].append(tallies[c])
            line = "; ".join(f"{c} " + " ".join(f"{t.figure} {num(t.rate)}" for t in tallies[c].values())
                             for c in CONFIGS)
            print(f"# run {run + 1}/{args.runs} ({time.perf_counter() - t:.1f} s, load {loadavg()}): {line}",
                  file=sys.stderr, flush=True)
        for c in CONFIGS:
            clients[c].close()
            del clients[c]
    finally:
        for client in clients.values():
            client.abort()
        for proc in servers:
            proc.kill()
            proc.wait()
    report(results, args)
    print(f"# load average at end {loadavg()}; total {time.perf_counter() - began:.0f} s")


def report(results, args):
    print()
    print(f"| {args.mode} | figure | rate, median [min–max] | server CPU µs/op | client CPU µs/op |")
    print("|---|---|---|---|---|")
    for config in CONFIGS:
        for slot in results[config][0]:
            samples = [r[slot] for r in results[config]]
            figure = samples[0].figure
            print(f"| {config} | {figure} | {spread([s.rate for s in samples])} {UNITS[figure]} "
                  f"| {spread([s.server_us for s in samples])} | {spread([s.client_us for s in samples])} |")

    def per_run(config_a, config_b, figure, attr="rate"):
        return [getattr(a[figure], attr) / getattr(b[figure], attr)
                for a, b in zip(results[config_a], results[config_b])]

    def per_run_cpu(config_a, config_b, figure):
        """The rate ratio the two pairs' CPU time per operation (client + server) allows: a
        round trip's wall time on one otherwise idle vCPU."""
        return [(b[figure].client_us + b[figure].server_us) / (a[figure].client_us + a[figure].server_us)
                for a, b in zip(results[config_a], results[config_b])]

    pinned = args.mode == "pinned"
    rows = [
        ("stock client: cached call, netref server / stock server", per_run("py->netref", "py->stock", "cached"),
         1.5 if pinned else 1.25, "≥"),
        ("stock client: root.add(1, 2), netref server / stock server", per_run("py->netref", "py->stock", "add"),
         1.5 if pinned else 1.25, "≥"),
        ("stock client: 1 MiB echo, netref server / stock server", per_run("py->netref", "py->stock", "echo_1mib"),
         2.0, "≥"),
        ("server CPU per cached call, netref / stock",
         per_run("py->netref", "py->stock", "cached", "server_us"), 0.25, "≤"),
        ("server CPU per root.add(1, 2), netref / stock",
         per_run("py->netref", "py->stock", "add", "server_us"), 0.25, "≤"),
        ("server CPU per 1 MiB echo, netref / stock",
         per_run("py->netref", "py->stock", "echo_1mib", "server_us"), 0.25, "≤"),
        ("stock server: cached call, netref client / stock client",
         per_run("netref->stock", "py->stock", "cached"), 1.5 if pinned else None, "≥"),
        ("from CPU time per op (client + server): cached call, netref server / stock server",
         per_run_cpu("py->netref", "py->stock", "cached"), None, "≥"),
        ("from CPU time per op: root.add(1, 2), netref server / stock server",
         per_run_cpu("py->netref", "py->stock", "add"), None, "≥"),
        ("from CPU time per op: 1 MiB echo, netref server / stock server",
         per_run_cpu("py->netref", "py->stock", "echo_1mib"), None, "≥"),
        ("from CPU time per op: stock server, cached call, netref client / stock client",
         per_run_cpu("netref->stock", "py->stock", "cached"), None, "≥"),
    ]
    print()
    print(f"| {args.mode}: ratio (per run, then median) | median [min–max] | target | |")
    print("|---|---|---|---|")
    for name, values, target, sense in rows:
        med = statistics.median(values)
        if target is None:
            verdict, shown = "", "—"
        else:
            met = med >= target if sense == "≥" else med <= target
            verdict, shown = ("met" if met else "**not met**"), f"{sense} {target:g}"
        print(f"| {name} | {spread(values, ratio)} | {shown} | {verdict} |")


if __name__ == "__main__":
    main()
