#!/usr/bin/env python3
"""What a stock rpyc 6 client sees when it reaches the wrong kind of listener.

Usage: python wrong_listener.py HOST:PORT --expect EXCEPTION [--what TEXT]

Connects with plain rpyc.connect (as a user who forgot TLS, or who dialled a native netref
listener, would), asks for conn.root, and reports the exception the stock client raised. Exit 0
if it raised EXCEPTION (a class name, e.g. EOFError) within the bound, 1 if it raised another,
or succeeded, or hung. The first output line is "stock client saw: TYPE: MESSAGE".
"""

import argparse
import sys
import threading

import rpyc

BOUND = 10.0  # s: the whole attempt, connect included


def attempt(host, port, outcome):
    try:
        conn = rpyc.connect(host, port, config={"sync_request_timeout": BOUND / 2})
        try:
            outcome["root"] = repr(conn.root)
        finally:
            try:
                conn.close()
            except Exception:
                pass
    except Exception as exc:  # the point: report whatever the stock client raises
        outcome["exc"] = exc


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("address")
    ap.add_argument("--expect", required=True, help="the exception class name the client must raise")
    ap.add_argument("--what", default="the listener", help="what is being reached, for the output")
    args = ap.parse_args(argv)
    host, _, port = args.address.rpartition(":")
    outcome = {}
    worker = threading.Thread(target=attempt, args=(host, int(port), outcome), daemon=True)
    worker.start()
    worker.join(BOUND)
    if worker.is_alive():
        print(f"stock client saw: nothing within {BOUND:.0f} s (it hangs)")
        print(f"FAIL {args.what}: expected {args.expect}")
        return 1
    if "root" in outcome:
        print(f"stock client saw: a root, {outcome['root']}")
        print(f"FAIL {args.what}: expected {args.expect}")
        return 1
    exc = outcome["exc"]
    print(f"stock client saw: {type(exc).__name__}: {exc}")
    if type(exc).__name__ != args.expect:
        print(f"FAIL {args.what}: expected {args.expect}")
        return 1
    print(f"PASS {args.what}: the stock client fails at once with {args.expect}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
