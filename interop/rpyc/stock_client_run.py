#!/usr/bin/env python3
"""A stock rpyc 6.0.2 client session over the interop service, as contract §5 describes for
a netref client: add/echo, get_list, call_me with callbacks, fail, slow with an AsyncResult
expiry and callbacks, the context manager, Token operations, tracked/tracked_again/released,
PICKLE refused. It then drops every proxy but the root and closes.

Usage: python stock_client_run.py HOST:PORT

Run it through wire_check.py (against interop_service.py) to validate the relay: the stock
client is the reference behaviour, so the relay must report success for it
(--expect-held 1: the stock client never DELs its cached root proxy, it just closes).
Prints one line per step and exits non-zero if any result is wrong.
"""

import gc
import pickle
import sys
import time

import rpyc

failures = []


def step(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} {name}{' - ' + detail if detail else ''}", flush=True)
    if not ok:
        failures.append(name)


def raises(exc_type, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc_type as e:
        return e
    except Exception as e:  # wrong type
        return None
    return None


def session(conn):
    root = conn.root
    step("add", root.add(1, 2) == 3 and root.add(a=2 ** 70, b=1) == 2 ** 70 + 1)
    vals = (None, True, 0, -1, 2 ** 100, 1.5, -0.0, "hé", b"\x00\xff", (1, (2, 3)), frozenset({4}),
            slice(1, 2, 3), Ellipsis, NotImplemented, "y" * 4000)
    step("echo values", all(type(root.echo(v)) is type(v) and root.echo(v) == v for v in vals))
    L = root.get_list()
    step("get_list", len(L) == 3 and L[1] == 20 and list(L) == [10, 20, 30])
    del L
    step("call_me", root.call_me(lambda a, b: a - b, 10, 3) == 7)
    step("call_me nested", root.call_me(lambda x: root.add(x, x), 21) == 42)

    def boom():
        raise ValueError("callback boom")
    e = raises(ValueError, root.call_me, boom)
    step("call_me raising callback", e is not None and e.args == ("callback boom",))
    e = raises(ValueError, root.fail, "value")
    step("fail", e is not None and e.args == ("boom", 7))
    del e

    got = []
    res = rpyc.async_(root.slow)(0.1)
    res.add_callback(lambda r: got.append(r.value))
    step("slow async + callback", res.value == 0.1 and got == [0.1])
    res = rpyc.async_(root.slow)(0.8)
    res.set_expiry(0.2)
    step("slow expiry", raises(TimeoutError, res.wait) is not None and res.expired)
    step("connection usable after expiry", root.add(2, 3) == 5)
    del res, got

    with root.context(4) as v:
        step("context enter", v == 21)
    step("context_log", root.context_log() == ("enter 4", "exit ok"))

    t = root.make_token(7)
    step("token repr/str/hash", repr(t) == "Token(7)" and str(t) == "token #7" and hash(t) == 7)
    step("token cmp", t == 7 and t < root.make_token(8) and t >= 7 and isinstance(t, root.Token))
    step("pickle refused", raises(ValueError, pickle.dumps, t) is not None)
    del t

    a = root.tracked("s1")
    b = root.tracked_again("s1")
    step("tracked alias", a is b and a.name == "s1")
    del a, b
    conn._last_traceback = None  # contract §8.2: a failed request pins the calling frames
    gc.collect()
    conn.ping()
    rel = ()
    deadline = time.monotonic() + 3
    while "s1" not in rel and time.monotonic() < deadline:
        rel = root.released()
    step("released", "s1" in rel, repr(rel))
    conn.ping()


def main():
    host, _, port = sys.argv[1].rpartition(":")
    conn = rpyc.connect(host, int(port), config={"sync_request_timeout": 10})
    try:
        session(conn)
    finally:
        conn._last_traceback = None
        gc.collect()
        conn.ping()  # serves the server's pending DELs and flushes our last DELs
        conn.close()
    print(f"stock client: {'FAILED ' + ', '.join(failures) if failures else 'all steps ok'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
