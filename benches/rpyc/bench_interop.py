"""RPyC interop benchmark: netref's RPyC dialect against stock rpyc 6, side by side in one run.

Started by `benches/rpyc/interop.sh`, which builds the Rust examples and the virtualenv. Serves
the interop service (contract §2) twice, from `rpyc_interop_server` (netref) and from
`interop/rpyc/interop_service.py` (stock ThreadedServer), and measures, run after run with the
order of the configurations rotating so that noise hits every side alike:

  py->netref     the stock Python client (this process) against the netref server
  py->stock      the stock Python client against the stock server
  netref->stock  `rpyc_bench_client` (netref's RPyC client) against the stock server

Figures (each timed for --seconds after a warm-up, on a fresh connection per configuration):

  cached     `f = root.add` once, then `f(1, 2)`: one CALL round trip per call, calls/s
  add        `root.add(1, 2)` as a Python user writes it: GETATTR + CALL + an async DEL, calls/s
  callattr   netref client only: `root.call_method("add", (1, 2))`, one CALLATTR, calls/s
  echo_1mib  1 MiB of random bytes echoed (payload counted once), MiB/s, default configs

and for each, the CPU time (all threads, user + kernel, from /proc/PID/task/*/schedstat) the
server and the client spent per operation. Loopback only; every result is checked.
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
PY_FIGURES = ("cached", "add", "echo_1mib")
RUST_FIGURES = ("cached", "callattr", "echo_1mib")
UNITS = {"cached": "calls/s", "add": "calls/s", "callattr": "calls/s", "echo_1mib": "MiB/s"}
WARMUP_CALLS = 200
WARMUP_ECHOES = 2


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


class Sample:
    """One figure of one configuration in one run."""

    def __init__(self, ops, seconds, server_ns, client_ns, per_op_bytes=0):
        self.rate = (ops * per_op_bytes / (1 << 20) if per_op_bytes else ops) / seconds
        self.server_us = server_ns / ops / 1e3
        self.client_us = client_ns / ops / 1e3


def timed_py(server_pid, seconds, once, warmup, per_op_bytes=0):
    for _ in range(warmup):
        once()
    me = os.getpid()
    s0, c0 = cpu_ns(server_pid), cpu_ns(me)
    t0 = time.perf_counter()
    end = t0 + seconds
    n = 0
    while True:
        once()
        n += 1
        if time.perf_counter() >= end:
            break
    elapsed = time.perf_counter() - t0
    return Sample(n, elapsed, cpu_ns(server_pid) - s0, cpu_ns(me) - c0, per_op_bytes)


def python_client(host, port, server_pid, seconds, payload):
    out = {}
    c = rpyc.connect(host, port)
    try:
        add = c.root.add

        def cached():
            assert add(1, 2) == 3

        out["cached"] = timed_py(server_pid, seconds, cached, WARMUP_CALLS)
        root = c.root

        def written():
            assert root.add(1, 2) == 3

        out["add"] = timed_py(server_pid, seconds, written, WARMUP_CALLS)
        echo = c.root.echo

        def echoed():
            assert echo(payload) == payload

        out["echo_1mib"] = timed_py(server_pid, seconds, echoed, WARMUP_ECHOES, len(payload))
        del add, root, echo
    finally:
        c.close()
    return out


def netref_client(binary, host, port, server_pid, seconds):
    proc = subprocess.Popen([binary, f"{host}:{port}", "--seconds", str(seconds)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, text=True)
    out = {}
    try:
        started = {}
        for line in proc.stdout:
            words = line.split()
            if words[:1] == ["start"]:
                started[words[1]] = (cpu_ns(server_pid), cpu_ns(proc.pid))
            elif words[:1] == ["done"]:
                name, count, elapsed = words[1], int(words[2]), float(words[3])
                s0, c0 = started.pop(name)
                out[name] = Sample(count, elapsed, cpu_ns(server_pid) - s0, cpu_ns(proc.pid) - c0,
                                   (1 << 20) if name == "echo_1mib" else 0)
        if proc.wait(timeout=30) != 0:
            raise SystemExit(f"{binary} exited with status {proc.returncode}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    missing = set(RUST_FIGURES) - set(out)
    if missing:
        raise SystemExit(f"{binary} printed no figure for {sorted(missing)}")
    return out


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
    ap.add_argument("--seconds", type=float, default=1.0, help="timed seconds per figure")
    ap.add_argument("--mode", default="unpinned", help="label for the output (pinned/unpinned)")
    args = ap.parse_args()
    if args.runs < 1 or not 0 < args.seconds <= 60:
        raise SystemExit("--runs must be ≥ 1 and --seconds in (0, 60]")
    # A SIGTERM (the script's timeout) unwinds through the `finally` below, which stops the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))

    began = time.perf_counter()
    print(f"# mode {args.mode}; runs {args.runs}, {args.seconds:g} s per figure; rpyc {rpyc.__version__}, "
          f"CPython {sys.version.split()[0]}; client cpus {cpus_allowed(os.getpid())}; "
          f"load average at start {loadavg()}", flush=True)
    servers = []
    try:
        netref = start_server([args.netref_server, "127.0.0.1:0"])
        servers.append(netref[0])
        stock = start_server([sys.executable, args.stock_server, "127.0.0.1:0"])
        servers.append(stock[0])
        print(f"# netref server pid {netref[0].pid} cpus {cpus_allowed(netref[0].pid)}; "
              f"stock server pid {stock[0].pid} cpus {cpus_allowed(stock[0].pid)}", flush=True)
        payload = os.urandom(1 << 20)
        results = {c: [] for c in CONFIGS}
        for run in range(args.runs):
            order = CONFIGS[run % len(CONFIGS):] + CONFIGS[:run % len(CONFIGS)]
            t = time.perf_counter()
            for config in order:
                if config == "py->netref":
                    proc, host, port = netref
                    results[config].append(python_client(host, port, proc.pid, args.seconds, payload))
                elif config == "py->stock":
                    proc, host, port = stock
                    results[config].append(python_client(host, port, proc.pid, args.seconds, payload))
                else:
                    proc, host, port = stock
                    results[config].append(netref_client(args.netref_client, host, port, proc.pid, args.seconds))
            line = "; ".join(f"{c} " + " ".join(f"{f} {num(s.rate)}" for f, s in results[c][-1].items()) for c in order)
            print(f"# run {run + 1}/{args.runs} ({time.perf_counter() - t:.1f} s, load {loadavg()}): {line}",
                  file=sys.stderr, flush=True)
    finally:
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
        for figure in results[config][0]:
            samples = [r[figure] for r in results[config]]
            print(f"| {config} | {figure} | {spread([s.rate for s in samples])} {UNITS[figure]} "
                  f"| {spread([s.server_us for s in samples])} | {spread([s.client_us for s in samples])} |")

    def per_run(config_a, config_b, figure, attr="rate"):
        return [getattr(a[figure], attr) / getattr(b[figure], attr)
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
    ]
    print()
    print(f"| {args.mode}: ratio (per run, then median) | median [min–max] | target | |")
    print("|---|---|---|---|")
    for name, values, target, sense in rows:
        med = statistics.median(values)
        if target is None:
            verdict, shown = "(no target unpinned)", "—"
        else:
            met = med >= target if sense == "≥" else med <= target
            verdict, shown = ("met" if met else "**not met**"), f"{sense} {target:g}"
        print(f"| {name} | {spread(values, ratio)} | {shown} | {verdict} |")


if __name__ == "__main__":
    main()
