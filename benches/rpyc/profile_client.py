"""cProfile of the stock Python client's loop in the RPyC interop benchmark, against any server
serving the interop service (`rpyc_interop_server` or `interop/rpyc/interop_service.py`):

  python profile_client.py HOST:PORT {cached,add,echo_1mib} [--seconds S] [--top N]

Prints the client's own CPU time per operation and the functions with the most cumulative and
own time, so a figure's client side can be split into rpyc's layers (boxing, brine, channel,
zlib, the socket). cProfile slows Python down; read the shares, not the absolute times.
"""

import argparse
import cProfile
import os
import pstats
import time

import rpyc


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("address", help="HOST:PORT of a server serving the interop service")
    ap.add_argument("figure", choices=("cached", "add", "echo_1mib"))
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    host, port = args.address.rsplit(":", 1)
    c = rpyc.connect(host, int(port))
    payload = os.urandom(1 << 20)
    root = c.root
    add = root.add
    echo = root.echo
    once = {
        "cached": lambda: add(1, 2),
        "add": lambda: root.add(1, 2),
        "echo_1mib": lambda: echo(payload),
    }[args.figure]
    for _ in range(2 if args.figure == "echo_1mib" else 200):
        once()
    profile = cProfile.Profile(time.process_time)
    n = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    profile.enable()
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        once()
        n += 1
    profile.disable()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    print(f"# {args.figure} against {args.address}: {n} operations, client CPU {cpu / n * 1e6:.1f} µs/op "
          f"(under cProfile), wall {wall / n * 1e6:.1f} µs/op")
    stats = pstats.Stats(profile)
    stats.sort_stats("tottime").print_stats(args.top)
    c.close()


if __name__ == "__main__":
    main()
