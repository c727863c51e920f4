#!/usr/bin/env python3
"""Forwarding across dialects, checked with the stock rpyc 6.0.2 client.

Usage: python forward_check.py HOST:PORT

HOST:PORT is `examples/rpyc_forward_hop` (a netref front speaking RPyC, holding a native netref
connection to a backend). The stock client reaches the backend's `hop.Backend` object through
the front and checks: calls and attributes through the hop, a Python callback the backend calls
back, exception types kept, identity (one proxy per object; the object going home is the
backend's own), a release observed at the backend, expiry, and PICKLE refused.

Prints `PASS/FAIL name` per check and `N passed, N failed`; exit 0 only if every check passed.
Every request has a timeout (sync_request_timeout), so a hanging server fails the check.
"""

import gc
import pickle
import sys
import time

import rpyc

SYNC_TIMEOUT = 10.0


class CheckFailed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def expect_eq(got, want, what):
    if type(got) is not type(want) or got != want:
        raise CheckFailed(f"{what}: got {got!r}, want {want!r}")


def expect_raises(exc_type, fn, *args):
    try:
        res = fn(*args)
    except exc_type as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - reported as the failure
        raise CheckFailed(f"raised {type(exc).__name__} ({exc}), want {exc_type.__name__}") from None
    raise CheckFailed(f"returned {res!r}, want {exc_type.__name__}")


def wait_for(conn, pred, what, timeout=5.0):
    """Serve the connection until pred() holds (the front's DELs and replies arrive meanwhile)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise CheckFailed(f"timed out after {timeout}s waiting for {what}")
        conn.poll_all(0.05)


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, fn):
        try:
            note = fn()
        except Exception as exc:  # noqa: BLE001 - any failure is this check's
            self.failed += 1
            print(f"FAIL {name}: {type(exc).__name__}: {exc}", flush=True)
            return
        self.passed += 1
        print(f"PASS {name}" + (f" ({note})" if note else ""), flush=True)


def main(argv):
    if len(argv) != 2 or ":" not in argv[1]:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = argv[1].rsplit(":", 1)
    conn = rpyc.connect(host, int(port), config={"sync_request_timeout": SYNC_TIMEOUT})
    gw = conn.root
    R = Results()
    backend = gw.backend()

    def forwarded_type():
        id_pack = object.__getattribute__(backend, "____id_pack__")
        expect_eq(id_pack[0], "hop.Backend", "the forwarded object's class name")
        expect(set(["add", "apply", "open_counter"]) <= set(dir(backend)), f"dir: {dir(backend)}")
        return f"id_pack {id_pack[0]!r}"
    R.run("the backend's object arrives with its class name (INSPECT answered through the hop)", forwarded_type)

    def calls():
        expect_eq(backend.add(1, 2), 3, "backend.add(1, 2)")
        expect_eq(backend.answer, 42, "backend.answer")
        add = backend.add
        expect_eq(add(20, 22), 42, "a bound method read through the hop")
    R.run("calls and attributes through the native hop", calls)

    def callback():
        seen = []

        def times_ten(x):
            seen.append(x)
            return x * 10
        expect_eq(backend.apply(times_ten, 4), 41, "backend.apply(times_ten, 4)")
        expect_eq(backend.apply(lambda x: x - 1, 10), 10, "backend.apply(lambda, 10)")
        expect_eq(seen, [4], "the backend called the Python function")
    R.run("a Python callback reaches the backend and back (both hops)", callback)

    def exceptions():
        e = expect_raises(ZeroDivisionError, backend.div, 1, 0)
        expect("division by zero" in str(e), f"message {str(e)[:60]!r}")
        expect_raises(KeyError, backend.lookup, "missing")
        expect_raises(AttributeError, getattr, backend, "nothing_here")
        expect_eq(backend.add(2, 2), 4, "a call after the exceptions")
    R.run("the backend's exceptions keep their types (ZeroDivisionError, KeyError, AttributeError)", exceptions)

    def identity():
        again = gw.backend()
        expect(again is backend, "the same backend object handed out twice is one proxy")
        expect(backend.is_home(backend) is True, "the proxy sent back arrives at the backend as its own object")
    R.run("identity: one proxy per object; going home it is the backend's own object", identity)

    def release():
        # What the earlier checks left (the bound method `add`) is released first: the DELs of
        # proxies Python dropped reach the backend too.
        gc.collect()
        wait_for(conn, lambda: gw.backend_exports() == 0, "the backend to free the earlier checks' objects")
        base = 0
        counter = backend.open_counter(5)
        expect_eq(counter.incr(), 6, "counter.incr()")
        expect_eq(gw.backend_exports(), base + 1, "the backend exports the counter while Python holds it")
        expect_eq(backend.live_counters(), 1, "live counters at the backend")
        del counter
        gc.collect()
        wait_for(conn, lambda: gw.backend_exports() == base and backend.live_counters() == 0,
                 "the backend to free the counter")
        return f"backend exports {base + 1} -> {base}"
    R.run("a dropped proxy's DEL frees the backend's export (observed at the backend)", release)

    def expiry():
        res = rpyc.async_(backend.slow)(1.0)
        res.set_expiry(0.3)
        t0 = time.monotonic()
        expect_raises(TimeoutError, res.wait)
        dt = time.monotonic() - t0
        expect(res.expired, "not expired")
        expect(dt < 1.0, f"expired after {dt:.2f}s")
        expect_eq(backend.add(1, 1), 2, "a call after the expired request")
        return f"expired after {dt:.2f}s"
    R.run("expiry through the hop: the result expires, the connection stays usable", expiry)

    def pickle_refused():
        e = expect_raises(ValueError, pickle.dumps, backend)
        expect("pickling is disabled" in str(e), f"message {str(e)[:60]!r}")
    R.run("PICKLE of a forwarded object refused with ValueError", pickle_refused)

    # Held when the connection closes: the close must free it at the backend.
    held = backend.open_counter(0)
    held.incr()
    conn.close()

    def released_on_close():
        conn2 = rpyc.connect(host, int(port), config={"sync_request_timeout": SYNC_TIMEOUT})
        try:
            gw2 = conn2.root
            backend2 = gw2.backend()
            wait_for(conn2, lambda: gw2.backend_exports() == 0 and backend2.live_counters() == 0,
                     "the backend to free what the closed connection held")
        finally:
            conn2.close()
    R.run("closing the Python connection frees what it held at the backend", released_on_close)

    print(f"{R.passed} passed, {R.failed} failed", flush=True)
    return 0 if R.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
