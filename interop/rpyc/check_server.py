#!/usr/bin/env python3
"""Stock-client conformance check of a server that serves the interop service
(contract interop-1; see interop/rpyc/README.md).

Usage: python check_server.py HOST:PORT [--timeout S] [--ssl-ca FILE]

Part 1 drives the server with stock rpyc 6.0.2 (default config except sync_request_timeout)
through every member of contract §2 so that every one of the 20 HANDLE_* kinds is emitted;
the handlers are counted on the wire (the client connection's channel is wrapped and every
outgoing payload is decoded). Part 2 runs the robustness cases of contract §4 on raw sockets.
Every check is named and prints PASS/FAIL with a reason; the last line is
"N passed, N failed". Exit status 0 only if nothing failed.

With --ssl-ca FILE every connection (stock clients and raw sockets alike) is TLS: stock clients
connect with rpyc.ssl_connect(host, port, ca_certs=FILE), which verifies the server's chain
against FILE (rpyc turns the host name check off when ca_certs is given).
"""

import argparse
import collections
import gc
import math
import os
import pickle
import random
import socket
import ssl
import sys
import threading
import time
import traceback

import rpyc
from rpyc.core import brine, vinegar

import wirelib as W

SYNC_TIMEOUT = 5.0      # stock client's sync_request_timeout for every request
RAW_BOUND = 3.0         # contract §4: each raw case is bounded by 3 s
PART1_BUDGET = 50.0     # s; checks not started within a part's budget fail as "not run",
PART2_BUDGET = 35.0     # so a hanging server still ends the run well under 2 minutes
SSL_CA = None           # --ssl-ca: the CA file every connection verifies the server against


# -- wire instrumentation ------------------------------------------------------------------------

class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.c2s = collections.Counter()       # client -> server requests, by handler name
        self.s2c = collections.Counter()       # server -> client requests, by handler name
        self.dels = []                         # (id_pack, count) of every client DEL sent
        self.big_payloads = 0                  # client payloads > 3000 B (sent compressed)
        self.undecodable_in = []               # server frames that did not decode as RPyC 6

    def snapshot(self):
        with self.lock:
            return collections.Counter(self.c2s)


COUNTS = Counts()


class CountingChannel:
    """Wraps the stock client's Channel: decodes every payload it sends and receives."""

    def __init__(self, channel):
        self._channel = channel

    def send(self, data):
        self._channel.send(data)  # count only what actually went out
        try:
            msg, _seq, args = W.decode_payload(bytes(data))
        except W.FrameError:
            return
        with COUNTS.lock:
            if len(data) > 3000:
                COUNTS.big_payloads += 1
            if msg == W.MSG_REQUEST:
                name = W.HANDLERS.get(args[0], f"#{args[0]}")
                COUNTS.c2s[name] += 1
                if args[0] == W.H["DEL"]:
                    boxed = args[1]
                    if boxed[0] == W.LABEL_TUPLE and len(boxed[1]) == 2:
                        COUNTS.dels.append((boxed[1][0][1], boxed[1][1][1]))

    def recv(self):
        data = self._channel.recv()
        if data:
            try:
                msg, _seq, args = W.decode_payload(bytes(data))
                if msg == W.MSG_REQUEST:
                    with COUNTS.lock:
                        COUNTS.s2c[W.HANDLERS.get(args[0], f"#{args[0]}")] += 1
            except W.FrameError as exc:
                COUNTS.undecodable_in.append(str(exc))
        return data

    def __getattr__(self, name):
        return getattr(self._channel, name)


class CountingService(rpyc.VoidService):
    """The client's local service: stock VoidService whose connection's channel is counted."""

    def on_connect(self, conn):
        conn._channel = CountingChannel(conn._channel)


def stock_connect(host, port, **kwargs):
    """A stock client connection: rpyc.connect, or rpyc.ssl_connect with --ssl-ca."""
    if SSL_CA is None:
        return rpyc.connect(host, port, **kwargs)
    return rpyc.ssl_connect(host, port, ca_certs=SSL_CA, **kwargs)


def connect(host, port):
    return stock_connect(host, port, service=CountingService,
                         config={"sync_request_timeout": SYNC_TIMEOUT})


# -- check bookkeeping ---------------------------------------------------------------------------

class CheckFailed(Exception):
    pass


class Runner:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.failures = []
        self.start = time.monotonic()
        self.part_deadline = None
        self.part_budget = 0.0

    def begin_part(self, budget):
        self.part_budget = budget
        self.part_deadline = time.monotonic() + budget

    def run(self, name, fn, *args):
        if self.part_deadline is not None and time.monotonic() > self.part_deadline:
            self._fail(name, f"not run: this part's budget of {self.part_budget:.0f} s is exhausted")
            return
        t0 = time.monotonic()
        try:
            note = fn(*args)
        except CheckFailed as exc:
            self._fail(name, str(exc))
        except Exception as exc:
            tb = traceback.extract_tb(exc.__traceback__)
            where = f" (line {tb[-1].lineno})" if tb else ""
            text = str(exc).split("\n\n=====")[0]  # drop rpyc's remote traceback from the line
            self._fail(name, f"{type(exc).__name__}: {text}{where}")
        else:
            dt = time.monotonic() - t0
            self.passed += 1
            extra = f" - {note}" if note else ""
            print(f"PASS {name}{extra} [{dt:.2f}s]", flush=True)

    def group(self, name, fn):
        """Run a group of checks; a group that cannot even start (e.g. no root) is one FAIL."""
        if self.part_deadline is not None and time.monotonic() > self.part_deadline:
            self._fail(f"group {name}", f"not run: this part's budget of {self.part_budget:.0f} s is exhausted")
            return
        try:
            fn()
        except Exception as exc:
            text = str(exc).split("\n\n=====")[0]
            self._fail(f"group {name}", f"could not start: {type(exc).__name__}: {text}")

    def _fail(self, name, reason):
        self.failed += 1
        self.failures.append(name)
        print(f"FAIL {name}: {reason}", flush=True)


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def expect_eq(got, want, what=""):
    if not same(got, want):
        raise CheckFailed(f"{what + ': ' if what else ''}got {short(got)}, want {short(want)}")


def expect_raises(exc_type, fn, *args, **kwargs):
    try:
        res = fn(*args, **kwargs)
    except exc_type as exc:
        return exc
    except Exception as exc:
        raise CheckFailed(f"raised {type(exc).__name__} ({str(exc).splitlines()[0] if str(exc) else ''}), "
                          f"want {exc_type.__name__}") from None
    raise CheckFailed(f"returned {short(res)}, want {exc_type.__name__}")


def short(v, n=90):
    try:
        r = repr(v)
    except Exception as exc:
        r = f"<unrepresentable {type(exc).__name__}>"
    return r if len(r) <= n else r[:n] + "..."


def same(a, b):
    """Exact structural equality: same types everywhere, -0.0 != 0.0, nan == nan."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if type(a) is complex:
        return same(a.real, b.real) and same(a.imag, b.imag)
    if type(a) is tuple:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is slice:
        return same(a.start, b.start) and same(a.stop, b.stop) and same(a.step, b.step)
    return a == b


def poll_until(conn, pred, timeout=3.0):
    """Serve the connection until pred() is true (server DELs arrive as requests)."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() > deadline:
            return False
        conn.poll_all(0.05)


class Multiplier:
    """A callable client object: its id_pack name is __main__.Multiplier, so a stock server
    INSPECTs it before calling it (contract §3)."""

    def __init__(self, k):
        self.k = k

    def __call__(self, x):
        return self.k * x


# -- part 1: the service through a stock client -----------------------------------------------------

ECHO_VALUES = [
    ("None", None), ("True", True), ("False", False), ("0", 0), ("1", 1), ("-1", -1),
    ("-48", -48), ("159", 159), ("-49", -49), ("160", 160), ("2**64", 2 ** 64),
    ("-2**200", -(2 ** 200)), ("846 digits", 10 ** 845 + 7), ("-300 digits", -(10 ** 299 + 3)),
    ("1.5", 1.5), ("-0.0", -0.0), ("0.0", 0.0), ("nan", float("nan")), ("inf", float("inf")),
    ("-inf", float("-inf")), ("1e308", 1e308), ("complex", 2 + 3j), ("complex -0.0", complex(-0.0, 1.0)),
    ("b''", b""), ("b'a'", b"a"), ("b'ab'", b"ab"), ("b'abc'", b"abc"), ("b'abcd'", b"abcd"),
    ("b'abcde'", b"abcde"), ("bytes 255", b"z" * 255), ("bytes 256", b"q" * 256),
    ("bytes 0..255", bytes(range(256))),
    ("''", ""), ("'a'", "a"), ("'hé'", "hé"), ("unicode", "\u2603 \U0001F600 \x00"),
    ("str 5000", "x" * 5000),
    ("()", ()), ("(1,)", (1,)), ("(1,2)", (1, 2)), ("(1,2,3)", (1, 2, 3)), ("(1,2,3,4)", (1, 2, 3, 4)),
    ("tuple 5", (1, 2, 3, 4, 5)), ("tuple 255", tuple(range(255))), ("tuple 300", (0,) * 300),
    ("nested", ((1,), ("x", b"y"), ((), (None, True)))),
    ("frozenset()", frozenset()), ("frozenset({7})", frozenset({7})),
    ("frozenset multi", frozenset({1, "a", b"b", (2, 3)})),
    ("slice", slice(1, None, 2)), ("slice ints", slice(-5, 10**30, None)),
    ("Ellipsis", Ellipsis), ("NotImplemented", NotImplemented),
    ("mixed", (True, 1, 1.0, "1", b"1", None, frozenset(), slice(None), Ellipsis)),
]


class Part1:
    def __init__(self, host, port, runner):
        self.host, self.port, self.R = host, port, runner
        self.conn = None

    @property
    def root(self):
        return self.conn.root

    def run(self):
        R = self.R
        R.run("connect: stock client connects, GETROOT gives interop.InteropService", self.c_connect)
        if self.conn is None:
            return
        for name in ["values", "add", "echo", "refs", "list", "dict", "seq", "counter_iter",
                     "call_me", "fail", "slow", "token", "context", "tracked", "misc"]:
            R.group(name, getattr(self, "g_" + name))
        R.run("per-connection state: a second connection has its own context_log/counter",
              self.c_per_connection)
        R.run("client DEL requests were all answered (no pending DEL callbacks)", self.c_dels_answered)
        R.run("server released every client object it received (after the §8.2 flush)",
              self.c_server_released_client_objects)
        R.run("CLOSE: conn.close() returns promptly, the server closes", self.c_close)
        R.run("every one of the 20 HANDLE_* kinds was emitted client -> server", self.c_all_handlers)

    # connection -------------------------------------------------------------------------------
    def c_connect(self):
        self.conn = connect(self.host, self.port)
        idp = self.conn.root.____id_pack__
        expect(W.is_id_pack(idp), f"root id_pack {idp!r}")
        expect_eq(idp[0], "interop.InteropService", "root name")
        expect(idp[2] != 0, "root instance id is 0")
        return f"root id_pack name {idp[0]}"

    # values -----------------------------------------------------------------------------------
    def g_values(self):
        R, root = self.R, self.root

        def contract():
            expect_eq(root.contract, "interop-1")
            expect_eq(root.exposed_contract, "interop-1")
        R.run("contract == 'interop-1' (plain and exposed_)", contract)

        def answer():
            expect_eq(root.answer, 42)
            expect_eq(root.exposed_answer, 42)
        R.run("answer == 42 (plain and exposed_)", answer)

        def answer_set():
            expect_raises(AttributeError, setattr, root, "answer", 43)
            expect_eq(root.answer, 42, "answer after refused write")
        R.run("SETATTR answer refused with AttributeError", answer_set)

        def answer_del():
            expect_raises(AttributeError, delattr, root, "answer")
            expect_eq(root.answer, 42, "answer after refused delete")
        R.run("DELATTR answer refused with AttributeError", answer_del)

        def counter():
            vals = [root.counter, root.counter, root.exposed_counter]
            expect(all(type(v) is int for v in vals), f"counter values {vals}")
            expect(vals[0] < vals[1] < vals[2], f"not strictly increasing: {vals}")
            return f"values {vals}"
        R.run("counter re-evaluated on every read, strictly increasing", counter)

        def unknown():
            for name in ("nonexistent", "_private", "exposed_nonexistent", "__dict__"):
                expect_raises(AttributeError, getattr, root, name)
        R.run("unknown/private names raise AttributeError", unknown)

    def g_add(self):
        R, root = self.R, self.root

        def ints():
            expect_eq(root.add(1, 2), 3)
            expect_eq(root.add(-100, 30), -70)
            big = 10 ** 300 + 12345
            expect_eq(root.add(big, big), 2 * big, "bigint add")
            expect_eq(root.add(2 ** 63 - 1, 1), 2 ** 63, "no i64 wrap")
        R.run("add ints exactly (small, negative, bigint, past i64)", ints)

        def floats():
            expect_eq(root.add(1.5, 2.25), 3.75)
            expect_eq(root.add(1, 0.5), 1.5, "int + float")
            expect_eq(root.add("ab", "cd"), "abcd", "str")
            expect_raises(OverflowError, root.add, 10 ** 400, 1.0)
        R.run("add float, int+float, str; int too large for float -> OverflowError", floats)

        def kwargs():
            expect_eq(root.add(a=5, b=6), 11)
            expect_eq(root.add(5, b=7), 12)
            expect_eq(root.exposed_add(2, 3), 5, "exposed_add")
        R.run("add with kwargs (pairs) and as exposed_add", kwargs)

        def type_error():
            e = expect_raises(TypeError, root.add, 1, "a")
            expect("TypeError" in getattr(e, "_remote_tb", ""), "remote traceback lacks TypeError")
        R.run("add(1, 'a') raises TypeError", type_error)

        def method_ref():
            m = root.add
            expect_eq(m.____id_pack__[0], "builtins.method", "bound method name")
            expect_eq(m(20, 22), 42)
        R.run("root.add is a builtins.method reference, callable", method_ref)

    def g_echo(self):
        R, root = self.R, self.root
        bad = []
        for label, v in ECHO_VALUES:
            got = root.echo(v)
            if not same(got, v):
                bad.append(f"{label}: got {short(got, 40)} ({type(got).__name__})")

        def echo_all():
            expect(not bad, "; ".join(bad))
            return f"{len(ECHO_VALUES)} values, exact types"
        R.run("echo every brine type with its exact type (bool/int, -0.0, nan, bigints, "
              "str/bytes, all tuple tags, frozenset, slice, Ellipsis, NotImplemented)", echo_all)

        def echo_bytes_big():
            data = random.Random(7).randbytes(70000)
            expect_eq(root.echo(data), data, "70 KB of random bytes")
            return "compressed frames both ways"
        R.run("echo 70 KB random bytes (zlib-compressed frames)", echo_bytes_big)

        def int_digits():
            v = -(10 ** 845) - 1  # 847 chars incl. sign -> INT_L4
            expect_eq(root.echo(v), v)
            expect_eq(root.add(v, 1), v + 1)
        R.run("ints beyond 256 decimal chars (INT_L4) echo and add", int_digits)

    def g_refs(self):
        R, root = self.R, self.root

        def identity():
            t = root.make_token(11)
            expect(root.echo(t) is t, "echo(server ref) is not the same proxy")
            expect_eq(root.echo(t).____id_pack__, t.____id_pack__, "id_pack")
        R.run("identity: root.echo(t) is t (same id_pack)", identity)

        def client_ref():
            mine = [1, 2, 3]
            expect(root.echo(mine) is mine, "client list did not come back as itself")
            m = Multiplier(2)
            expect(root.echo(m) is m, "client object did not come back as itself")
        R.run("client refs come back as LOCAL_REF (the client's own object)", client_ref)

        def mixed():
            mine = {"k": 1}
            t = root.make_token(12)
            got = root.echo((mine, t, 5, ("x", mine)))
            expect(type(got) is tuple and len(got) == 4, f"got {short(got)}")
            expect(got[0] is mine and got[1] is t and got[2] == 5 and got[3][1] is mine,
                   "tuple parts lost identity")
        R.run("echo a tuple mixing client refs, server refs and values", mixed)

    def g_list(self):
        R, root = self.R, self.root

        def basics():
            L = root.get_list()
            expect_eq(L.____id_pack__[0], "builtins.list", "name")
            expect_eq(len(L), 3, "len")
            expect_eq(L[0], 10)
            expect_eq(L[-1], 30, "negative index")
            expect(20 in L and 99 not in L, "__contains__")
            expect(isinstance(L, list), "isinstance(remote list, list)")
            expect_raises(IndexError, L.__getitem__, 3)
        R.run("get_list: builtins.list ref, len, [i], [-1], in, IndexError", basics)

        def slicing():
            L = root.get_list()
            s = L[0:2]
            expect(hasattr(s, "____id_pack__"), f"slice came back by value: {short(s)}")
            expect_eq(s.____id_pack__[0], "builtins.list", "slice name")
            expect_eq(list(s), [10, 20])
        R.run("get_list slice -> a new list ref", slicing)

        def setitem():
            L = root.get_list()
            L[1] = 99
            expect_eq(L[1], 99)
            expect_eq(list(L), [10, 99, 30], "list(L) after __setitem__")
            expect_eq(root.get_list()[1], 20, "get_list returns a new list each time")
        R.run("get_list __setitem__ and iteration (__iter__/__next__)", setitem)

        def iterator():
            it = iter(root.get_list())
            expect_eq(it.____id_pack__[0], "builtins.list_iterator", "iterator name")
            got = [next(it), next(it), next(it)]
            expect_eq(got, [10, 20, 30])
            expect_raises(StopIteration, next, it)
        R.run("list iterator: __next__ then StopIteration (EXC_STOP_ITERATION)", iterator)

        def buff():
            expect_eq(list(rpyc.buffiter(root.get_list())), [10, 20, 30])
        R.run("rpyc.buffiter over a remote list (BUFFITER)", buff)

    def g_dict(self):
        R, root = self.R, self.root

        def basics():
            D = root.get_dict()
            expect_eq(D.____id_pack__[0], "builtins.dict", "name")
            expect_eq(D["a"], 1)
            expect_eq(len(D), 2)
            expect("b" in D and "zz" not in D, "__contains__")
            expect_eq(sorted(iter(D)), ["a", "b"], "keys via __iter__")
        R.run("get_dict: [k], len, in, key iteration", basics)

        def missing():
            e = expect_raises(KeyError, root.get_dict().__getitem__, "zz")
            expect_eq(e.args, ("zz",), "KeyError args")
        R.run("get_dict missing key -> KeyError('zz',)", missing)

    def g_seq(self):
        R, root = self.R, self.root

        def basics():
            s = root.get_seq(5)
            expect_eq(s.____id_pack__[0], "interop.Seq", "name")
            for dunder in ("__len__", "__getitem__", "__iter__", "__contains__", "__getslice__"):
                expect(dunder in type(s).__dict__, f"INSPECT did not list {dunder}")
            expect_eq(len(s), 5)
            expect_eq(s[2], 20)
            expect_eq(s[-1], 40, "negative index")
            expect(30 in s and 31 not in s, "__contains__")
            expect_eq(list(s), [0, 10, 20, 30, 40], "iteration")
        R.run("get_seq: interop.Seq, INSPECT lists its dunders, len/[i]/in/iter", basics)

        def slices():
            s = root.get_seq(5)
            expect_eq(s[1:3], (10, 20), "s[1:3] by value")
            expect_eq(s[::2], (0, 20, 40), "extended slice")
            expect_raises(IndexError, s.__getitem__, 5)
        R.run("get_seq: [a:b] is a tuple by value, out of range -> IndexError", slices)

        def oldslicing():
            s = root.get_seq(4)
            expect_eq(type(s).__getslice__(s, 1, 3), (10, 20))
        R.run("OLDSLICING via type(p).__getslice__(p, 1, 3) -> (10, 20)", oldslicing)

    def g_counter_iter(self):
        R, root = self.R, self.root

        def same_ref():
            c = root.count_to(3)
            expect_eq(c.____id_pack__[0], "interop.Counter", "name")
            for dunder in ("__iter__", "__next__"):
                expect(dunder in type(c).__dict__, f"INSPECT did not list {dunder}")
            expect(iter(c) is c, "__iter__ did not return the same reference")
            expect_eq([next(c), next(c), next(c)], [0, 1, 2])
            expect_raises(StopIteration, next, c)
        R.run("count_to: __iter__ returns itself, __next__, StopIteration", same_ref)

        def buff():
            expect_eq(list(rpyc.buffiter(root.count_to(25), chunk=4)), list(range(25)))
            expect_eq(list(rpyc.buffiter(root.count_to(0))), [], "empty")
        R.run("count_to via rpyc.buffiter (BUFFITER, () when exhausted)", buff)

        def list_of():
            expect_eq(list(root.count_to(5)), [0, 1, 2, 3, 4])
        R.run("list(count_to(5))", list_of)

    def g_call_me(self):
        R, root = self.R, self.root

        def simple():
            expect_eq(root.call_me(lambda a, b: a * b, 6, 7), 42)
            expect_eq(root.call_me(lambda: "no args"), "no args")
        R.run("call_me with a Python callback", simple)

        def callable_obj():
            expect_eq(root.call_me(Multiplier(3), 5), 15)
        R.run("call_me with a callable object (__main__.Multiplier, server INSPECTs it)", callable_obj)

        def nested():
            expect_eq(root.call_me(lambda x: root.add(x, 1), 4), 5)
        R.run("call_me: the callback calls the server (nested request)", nested)

        def deep():
            def level1(x):
                return root.call_me(level2, x + 1)

            def level2(x):
                return root.call_me(level3, x + 1)

            def level3(x):
                return root.add(x, 100)
            expect_eq(root.call_me(level1, 0), 102)
        R.run("call_me nested 3 levels deep", deep)

        def ref_back():
            mine = [7]
            expect(root.call_me(lambda: mine) is mine, "a client ref returned by the callback "
                                                      "did not come back as LOCAL_REF")
        R.run("call_me: a client ref returned by the callback comes back as itself", ref_back)

        def raises():
            def bad(x):
                raise ValueError("cb boom", x)
            e = expect_raises(ValueError, root.call_me, bad, 3)
            expect_eq(e.args, ("cb boom", 3), "args")

            def bad_key():
                raise KeyError("cbk")
            e = expect_raises(KeyError, root.call_me, bad_key)
            expect_eq(e.args, ("cbk",), "args")
        R.run("call_me: the callback's exception propagates (same type and args)", raises)

    def g_fail(self):
        R, root = self.R, self.root

        def value():
            e = expect_raises(ValueError, root.fail)
            expect_eq(e.args, ("boom", 7), "default kind args")
            e = expect_raises(ValueError, root.fail, "value")
            expect_eq(e.args, ("boom", 7), "args")
            tb = getattr(e, "_remote_tb", None)
            expect(isinstance(tb, str) and tb, "no _remote_tb")
            expect("ValueError" in tb and "boom" in tb, f"_remote_tb lacks type/message: {tb[-80:]!r}")
            expect("WARNING: Remote is on RPyC" not in str(e), "version WARNING in the exception text")
        R.run("fail('value') -> ValueError('boom', 7) with remote traceback, no version WARNING", value)

        def key():
            e = expect_raises(KeyError, root.fail, "key")
            expect_eq(e.args, ("missing",), "args")
        R.run("fail('key') -> KeyError('missing')", key)

        def custom():
            e = expect_raises(vinegar.GenericException, root.fail, "custom")
            names = [c.__name__ for c in type(e).__mro__]
            expect("interop.InteropError" in names, f"class names {names}")
            expect_eq(e.args, ("custom boom",), "args")
        R.run("fail('custom') -> GenericException subclass interop.InteropError", custom)

        def other():
            expect_raises(TypeError, root.fail, "whatever")
        R.run("fail(other) -> TypeError", other)

    def g_slow(self):
        R, root = self.R, self.root

        def async_ok():
            res = rpyc.async_(root.slow)(0.2)
            got = []
            res.add_callback(lambda r: got.append(r.value))
            res.wait()
            expect(res.ready and not res.error, f"state {res!r}")
            expect_eq(res.value, 0.2)
            expect_eq(got, [0.2], "add_callback")
        R.run("slow via rpyc.async_: ready/value/add_callback", async_ok)

        def async_error():
            res = rpyc.async_(root.fail)("key")
            res.wait()
            expect(res.error, "error flag")
            expect_raises(KeyError, lambda: res.value)
        R.run("async exception: error flag, value raises", async_error)

        def expiry():
            fn = rpyc.async_(root.slow)
            res = fn(1.2)
            res.set_expiry(0.3)
            t0 = time.monotonic()
            expect_raises(TimeoutError, res.wait)
            dt = time.monotonic() - t0
            expect(res.expired, "not expired")
            expect(0.2 < dt < 1.0, f"expired after {dt:.2f}s")
            # the late reply must be dropped and the connection stay usable
            expect_eq(root.add(1, 2), 3, "call after the expired request")
            self.conn.ping()
            expect(res.expired and not res.ready, "the late reply revived the expired result")
            return f"expired after {dt:.2f}s"
        R.run("slow with set_expiry: expires, late reply dropped, connection usable", expiry)

        def other_connections():
            c2 = connect(self.host, self.port)
            try:
                res = rpyc.async_(c2.root.slow)(1.0)
                time.sleep(0.05)
                t0 = time.monotonic()
                expect_eq(root.add(2, 2), 4)
                dt = time.monotonic() - t0
                expect(dt < 0.6, f"another connection's slow() blocked this one for {dt:.2f}s")
                expect_eq(res.value, 1.0, "slow result on the other connection")
            finally:
                c2.close()
        R.run("slow does not block other connections", other_connections)

    def g_token(self):
        R, root = self.R, self.root

        def basics():
            t = root.make_token(5)
            expect_eq(t.____id_pack__[0], "interop.Token", "name")
            expect_eq(repr(t), "Token(5)", "repr")
            expect_eq(str(t), "token #5", "str")
            expect_eq(hash(t), 5, "hash")
            expect_eq(t.value, 5, "value")
            expect_eq(t.exposed_value, 5, "exposed_value")
        R.run("Token: repr/str/hash/value", basics)

        def cmp():
            t5, t6 = root.make_token(5), root.make_token(6)
            expect(t5 == 5 and t5 != 6 and t5 < 6 and t5 <= 5 and t5 > 4 and t5 >= 5, "vs int")
            expect(t5 < t6 and t6 > t5 and t5 != t6 and t5 <= t6 and t6 >= t5, "vs token")
            expect(t5 == root.make_token(5), "equal tokens")
            expect(not (t5 == "x"), "vs str should be NotImplemented -> False")
            toks = [root.make_token(n) for n in (3, 1, 2)]
            expect_eq([x.value for x in sorted(toks)], [1, 2, 3], "sorted()")
        R.run("Token CMP (== != < <= > >=) vs Token and int, sorted()", cmp)

        def hash_key():
            t = root.make_token(8)
            d = {t: "eight"}
            expect_eq(d[t], "eight", "dict lookup")
        R.run("Token as a dict key (HASH)", hash_key)

        def attrs():
            t = root.make_token(9)
            expect_raises(AttributeError, setattr, t, "value", 1)
            expect_raises(AttributeError, delattr, t, "value")
            expect_raises(AttributeError, getattr, t, "_n")
            expect_eq(t.value, 9, "value unchanged")
        R.run("Token: value write/delete and _n read refused (AttributeError)", attrs)

        def pickle_refused():
            t = root.make_token(1)
            e = expect_raises(ValueError, pickle.dumps, t)
            expect("pickling is disabled" in str(e), f"message {str(e)[:60]!r}")
        R.run("PICKLE refused with ValueError('pickling is disabled')", pickle_refused)

        def cls():
            C = root.Token
            t = root.make_token(3)
            expect_eq(C.____id_pack__[0], "interop.Token", "class name")
            expect_eq(C.____id_pack__[2], 0, "class instance id")
            expect_eq(C.____id_pack__[1], t.____id_pack__[1], "class id of class vs instance")
            expect(root.exposed_Token.____id_pack__ == C.____id_pack__, "exposed_Token")
            u = C(4)
            expect_eq(u.value, 4, "Token(4).value")
            expect_eq(u.____id_pack__[1], C.____id_pack__[1], "class id of Token(4)")
        R.run("Token class: ('interop.Token', cid, 0), CALL constructs an instance", cls)

        def isinst():
            C = root.Token
            t = root.make_token(3)
            expect(isinstance(t, C), "isinstance(token, Token)")
            expect(not isinstance(root.get_list(), C), "isinstance(list, Token)")
            expect_raises(TypeError, isinstance, root.get_list(), t)
            expect(root.is_token(t) is True, "is_token(token)")
            expect(root.is_token(5) is False, "is_token(5)")
        R.run("isinstance with the Token class (local + INSTANCECHECK), is_token", isinst)

    def g_context(self):
        R, root = self.R, self.root

        def ok():
            root.context_log()
            cm = root.context(3)
            expect_eq(cm.____id_pack__[0], "interop.Context", "name")
            expect("__enter__" in type(cm).__dict__, "INSPECT did not list __enter__")
            with cm as v:
                expect_eq(v, 20, "__enter__ value")
            expect_eq(root.context_log(), ("enter 3", "exit ok"), "log")
            expect_eq(root.context_log(), (), "log after it was read")
        R.run("context: __enter__ -> 17+y, CTXEXIT(None) logs 'exit ok', log clears", ok)

        def exc():
            try:
                with root.context(1):
                    raise KeyError("k")
            except KeyError as e:
                expect_eq(e.args, ("k",), "the client's own exception")
            else:
                raise CheckFailed("exception was suppressed")
            expect_eq(root.context_log(), ("enter 1", "exit exc"), "log")
        R.run("context: exception through with -> CTXEXIT(exc class), not suppressed", exc)

        def suppress():
            with root.context(2, suppress=True) as v:
                expect_eq(v, 19)
                raise KeyError("swallowed")
            expect_eq(root.context_log(), ("enter 2", "exit exc"), "log")
        R.run("context(suppress=True) suppresses the exception", suppress)

    def g_tracked(self):
        R, root, conn = self.R, self.root, self.conn

        def flush():
            # contract §8.2: drop what failed requests pin (client side), then barrier
            conn._last_traceback = None
            gc.collect()
            conn.ping()

        def released_has(name, want, timeout=3.0):
            deadline = time.monotonic() + timeout
            while True:
                rel = root.released()
                if (name in rel) == want or time.monotonic() > deadline:
                    return rel
                time.sleep(0.05)

        def d1():
            flush()
            x = root.tracked("d1")
            expect_eq(x.____id_pack__[0], "interop.Tracked", "name")
            expect_eq(x.name, "d1", "name attribute")
            expect("d1" not in root.released(), "released while the proxy is alive")
            del x
            flush()
            rel = released_has("d1", True)
            expect("d1" in rel, f"not released after the last proxy died: {rel}")
        R.run("tracked: released exactly when its proxy dies", d1)

        def alias():
            flush()
            a = root.tracked("d2")
            b = root.tracked_again("d2")
            expect(a is b, "tracked_again did not return the same reference")
            expect_eq(a.____refcount__, 2, "client refcount")
            idp = a.____id_pack__
            before = len(COUNTS.dels)
            del b
            flush()
            expect("d2" not in root.released(), "released while an alias is alive")
            del a
            flush()
            rel = released_has("d2", True)
            expect("d2" in rel, f"not released: {rel}")
            mine = [c for (p, c) in COUNTS.dels[before:] if p == idp]
            expect_eq(mine, [2], "DEL counts sent for the aliased proxy")
            expect_raises(KeyError, root.tracked_again, "d2")
        R.run("tracked_again: same id_pack, one DEL with count 2, then KeyError", alias)

        def local_alias():
            flush()
            x = root.tracked("d3")
            y = x
            del x
            flush()
            expect("d3" not in root.released(), "released while a local alias is alive")
            expect_eq(y.name, "d3")
            del y
            flush()
            rel = released_has("d3", True)
            expect("d3" in rel, f"not released: {rel}")
        R.run("tracked: a local alias keeps it alive until the last reference", local_alias)

        def many():
            flush()
            objs = [root.tracked(f"m{i}") for i in range(4)]
            expect_eq([o.name for o in objs], [f"m{i}" for i in range(4)])
            del objs
            flush()
            rel = released_has("m3", True)
            expect(all(f"m{i}" in rel for i in range(4)), f"released {rel}")
            return f"released() = {rel}"
        R.run("tracked: several probes released together", many)

    def g_misc(self):
        R, root, conn = self.R, self.root, self.conn

        def ping():
            conn.ping()
            conn.ping(data="hi there")
        R.run("PING (default payload and a custom one)", ping)

        def dir_root():
            names = set(dir(root))
            members = ["contract", "answer", "counter", "add", "echo", "get_list", "get_dict",
                       "get_seq", "count_to", "call_me", "fail", "slow", "make_token", "Token",
                       "is_token", "context", "context_log", "tracked", "tracked_again", "released"]
            missing = [m for m in members if m not in names and "exposed_" + m not in names]
            expect(not missing, f"dir(root) lacks {missing}")
            expect(all(type(n) is str for n in names), "non-str names")
        R.run("DIR(root) lists every contract member (plain or exposed_)", dir_root)

        def klass():
            expect_raises(AttributeError, getattr, root, "__class__")
            expect_raises(AttributeError, getattr, root.make_token(1), "__class__")
        R.run("getattr(x, '__class__') refused with AttributeError", klass)

    # after the service -------------------------------------------------------------------------
    def c_per_connection(self):
        c2 = connect(self.host, self.port)
        try:
            r1, r2 = self.root, c2.root
            r1.context_log()
            with r1.context(5):
                pass
            expect_eq(c2.root.context_log(), (), "other connection's log")
            expect_eq(r1.context_log(), ("enter 5", "exit ok"), "own log")
            x = r2.tracked("pc")
            expect("pc" not in r1.released(), "released names leaked across connections")
            del x
            r1_counter = r1.counter
            r2_counter = r2.counter
            expect(r2_counter < r1_counter, f"counter not per connection ({r2_counter} vs {r1_counter})")
        finally:
            c2.close()

    def c_dels_answered(self):
        conn = self.conn
        gc.collect()
        conn.ping()
        ok = poll_until(conn, lambda: not conn._request_callbacks, 3.0)
        expect(ok, f"{len(conn._request_callbacks)} requests still unanswered")
        return f"{sum(1 for _ in COUNTS.dels)} DELs sent so far"

    def c_server_released_client_objects(self):
        conn, root = self.conn, self.root
        # contract §8.2: failed requests pin their arguments on the server until the next
        # failure and a cyclic GC. Flush: one failing GETATTR, released() (gc.collect()).
        expect_raises(AttributeError, getattr, root, "flush_last_traceback")
        root.released()
        conn._last_traceback = None
        ok = poll_until(conn, lambda: not conn._local_objects._dict, 3.0)
        left = [k[0] for k in conn._local_objects._dict]
        expect(ok, f"client objects still held by the server: {left}")
        return f"server -> client: {dict(sorted(COUNTS.s2c.items()))}"

    def c_close(self):
        conn = self.conn
        sock = conn._channel.stream.sock
        t0 = time.monotonic()
        conn.close()
        dt = time.monotonic() - t0
        expect(dt < 3.0, f"close took {dt:.2f}s")
        expect(conn.closed, "connection not closed")
        self.conn = None
        return f"{dt:.3f}s"

    def c_all_handlers(self):
        missing = [n for n in W.HANDLERS.values() if COUNTS.c2s[n] == 0]
        expect(not missing, f"never emitted: {missing}")


# -- part 2: robustness on raw sockets (contract §4) ---------------------------------------------

def raw_ssl_context():
    """With --ssl-ca, the TLS context of the raw sockets: verifies the chain as ssl_connect does."""
    if SSL_CA is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=SSL_CA)
    context.check_hostname = False
    return context


class Part2:
    def __init__(self, host, port, runner):
        self.host, self.port, self.R = host, port, runner

    def raw(self):
        return W.RawConn(self.host, self.port, timeout=RAW_BOUND, ssl_context=raw_ssl_context())

    def root_of(self, rc, seq=0):
        rc.send(W.request(seq, W.H["GETROOT"]))
        fr = rc.reply_to(seq, RAW_BOUND)
        expect(fr is not None and fr[0] == W.MSG_REPLY, f"GETROOT answer {fr!r:.80}")
        label, idp = fr[2]
        expect(label == W.LABEL_REMOTE_REF and W.is_id_pack(idp), f"GETROOT reply {fr[2]!r:.80}")
        return idp

    def ping_ok(self, rc, seq, data="still alive"):
        rc.send(W.request(seq, W.H["PING"], W.value(data)))
        fr = rc.reply_to(seq, RAW_BOUND)
        expect(fr is not None, "connection closed instead of answering PING")
        expect(fr[0] == W.MSG_REPLY and fr[2] == (W.LABEL_VALUE, data), f"PING answer {fr!r:.80}")

    def reacts(self, data, fin, what):
        rc = self.raw()
        try:
            rc.send(data)
            if fin:
                rc.shutdown_write()
            try:
                how = rc.wait_reaction(RAW_BOUND)
            except TimeoutError:
                raise CheckFailed(f"no reaction within {RAW_BOUND:.0f}s to {what}") from None
            expect(how in ("closed", "exception", "close-request"), f"reaction: {how}")
            return f"server reaction: {how}"
        finally:
            rc.close()

    def run(self):
        R = self.R
        getroot5 = bytes.fromhex("00000008 00 12 51 50 11 53 11 51 02 0a".replace(" ", ""))
        R.run("§4 rpyc-5 layout frame -> server reacts", self.reacts, getroot5, False, "a 5.x frame")
        rnd = random.Random(4096).randbytes(4096)
        R.run("§4 4 KiB random bytes + FIN -> server reacts", self.reacts, rnd, True, "random bytes")
        # Stock hangs on a 4 GiB header *without* FIN (it waits for the payload, contract §4),
        # which is why this case sends FIN, as the contract specifies.
        R.run("§4 header claiming 4 GiB + FIN -> server reacts", self.reacts,
              b"\xff\xff\xff\xff\x00", True, "a 4 GiB header")
        R.run("§4 brine tag 0xff -> server reacts", self.reacts,
              W.encode_frame(b"\x01\xff"), False, "brine tag 0xff")
        R.run("§4 unknown message type 9 -> server reacts", self.reacts,
              W.encode_frame(b"\x09" + brine.dump((0, (1, (1, ("x",)))))), False, "message type 9")
        full = W.request(0, W.H["PING"], W.value("truncated"))
        R.run("§4 truncated frame + FIN -> server reacts", self.reacts, full[:len(full) // 2], True,
              "a truncated frame")
        R.run("§4 unknown handler 99 -> MSG_EXCEPTION same seq, then PING answered", self.c_handler99)
        R.run("§4 stale LOCAL_REF in GETATTR -> reply or exception, connection usable", self.c_stale)
        R.run("§4 DEL of an unknown object -> reply or exception, connection usable", self.c_del_unknown)
        R.run("§4 two pipelined requests in one write -> both answered", self.c_pipelined)
        R.run("§4 byte-at-a-time delivery -> answered", self.c_bytewise)
        R.run("§4 zero-length frame -> ignored (then PING answered) or connection closed", self.c_zero)
        R.run("§2 CLOSE on a raw socket -> server closes within 3 s", self.c_close)
        R.run("§4 compressed (zlib) request frame is inflated", self.c_compressed)
        R.run("§4 a fresh stock client still works afterwards", self.c_fresh)

    def c_handler99(self):
        rc = self.raw()
        try:
            rc.send(W.request(5, 99, W.value("x")))
            fr = rc.reply_to(5, RAW_BOUND)
            expect(fr is not None, "connection closed")
            expect_eq(fr[0], W.MSG_EXCEPTION, "message type of the answer")
            self.ping_ok(rc, 6)
            exc = fr[2]
            return f"exception {exc[0] if W.is_vinegar(exc) else exc!r}"
        finally:
            rc.close()

    def c_stale(self):
        rc = self.raw()
        try:
            root = self.root_of(rc, 0)
            stale = ("interop.Token", root[1] + 1, 12345)
            rc.send(W.request(1, W.H["GETATTR"], W.local_ref(stale), W.value("value")))
            fr = rc.reply_to(1, RAW_BOUND)
            expect(fr is not None, "connection closed")
            expect(fr[0] in (W.MSG_REPLY, W.MSG_EXCEPTION), f"answer {fr!r:.80}")
            self.ping_ok(rc, 2)
            return W.MSG_NAMES[fr[0]]
        finally:
            rc.close()

    def c_del_unknown(self):
        rc = self.raw()
        try:
            self.root_of(rc, 0)
            rc.send(W.request(1, W.H["DEL"], W.local_ref(("interop.Tracked", 1, 2)), W.value(1)))
            fr = rc.reply_to(1, RAW_BOUND)
            expect(fr is not None, "connection closed")
            expect(fr[0] in (W.MSG_REPLY, W.MSG_EXCEPTION), f"answer {fr!r:.80}")
            self.ping_ok(rc, 2)
            return W.MSG_NAMES[fr[0]]
        finally:
            rc.close()

    def c_pipelined(self):
        rc = self.raw()
        try:
            rc.send(W.request(0, W.H["PING"], W.value("one")) + W.request(1, W.H["PING"], W.value("two")))
            got = {}
            deadline = time.monotonic() + RAW_BOUND
            while len(got) < 2:
                fr = rc.next_frame(max(0.001, deadline - time.monotonic()))
                expect(fr is not None, f"closed after {len(got)} answers")
                if fr[0] == W.MSG_REPLY:
                    got[fr[1]] = fr[2]
            expect_eq(got, {0: (1, "one"), 1: (1, "two")}, "answers")
        finally:
            rc.close()

    def c_bytewise(self):
        rc = self.raw()
        try:
            for b in W.request(0, W.H["PING"], W.value("slowly")):
                rc.send(bytes([b]))
                time.sleep(0.002)
            fr = rc.reply_to(0, RAW_BOUND)
            expect(fr is not None and fr[2] == (1, "slowly"), f"answer {fr!r:.80}")
        finally:
            rc.close()

    def c_zero(self):
        rc = self.raw()
        try:
            rc.send(b"\x00\x00\x00\x00\x00\x0a")
            rc.send(W.request(0, W.H["PING"], W.value("after zero")))
            fr = rc.reply_to(0, RAW_BOUND)
            if fr is None:
                return "connection closed"
            expect(fr[0] == W.MSG_REPLY and fr[2] == (1, "after zero"), f"answer {fr!r:.80}")
            return "ignored, PING answered"
        finally:
            rc.close()

    def c_close(self):
        rc = self.raw()
        try:
            self.root_of(rc, 0)
            t0 = time.monotonic()
            rc.send(W.request(1, W.H["CLOSE"]))
            seen = []
            while True:
                try:
                    fr = rc.next_frame(max(0.001, RAW_BOUND - (time.monotonic() - t0)))
                except TimeoutError:
                    raise CheckFailed("socket still open 3 s after CLOSE") from None
                if fr is None:
                    break
                seen.append(fr)
                expect(fr[:2] == (W.MSG_REPLY, 1) and fr[2] == (1, None), f"unexpected {fr!r:.80}")
            return f"closed after {time.monotonic() - t0:.3f}s" + (" (replied None first)" if seen else "")
        finally:
            rc.close()

    def c_compressed(self):
        rc = self.raw()
        try:
            data = "z" * 4000
            payload = W.encode_payload(W.MSG_REQUEST, 0, (W.H["PING"], W.value((data,))))
            rc.send(W.encode_frame(payload, compress=True))
            fr = rc.reply_to(0, RAW_BOUND)
            expect(fr is not None and fr[2] == (1, data), "compressed PING not answered")
        finally:
            rc.close()

    def c_fresh(self):
        conn = stock_connect(self.host, self.port, config={"sync_request_timeout": SYNC_TIMEOUT})
        try:
            expect_eq(conn.root.add(1, 2), 3)
            expect_eq(conn.root.contract, "interop-1")
            conn.ping()
        finally:
            conn.close()


# -- main ------------------------------------------------------------------------------------------

def print_table():
    c2s = COUNTS.snapshot()
    print("\nhandler counts, client -> server (on the wire):")
    print(f"  {'#':>2}  {'handler':<14}{'count':>6}")
    for num, name in W.HANDLERS.items():
        print(f"  {num:>2}  {name:<14}{c2s[name]:>6}")
    print(f"  total requests {sum(c2s.values())}, payloads > 3000 B (compressed): {COUNTS.big_payloads}")
    s2c = dict(sorted(COUNTS.s2c.items()))
    print(f"server -> client requests: {s2c}")


def main(argv=None):
    global SYNC_TIMEOUT, PART1_BUDGET, PART2_BUDGET, SSL_CA
    ap = argparse.ArgumentParser(description="stock-client conformance check of an interop server")
    ap.add_argument("address", help="HOST:PORT of a server serving the interop service")
    ap.add_argument("--timeout", type=float, default=SYNC_TIMEOUT,
                    help="stock client sync_request_timeout per request (default %(default)s s)")
    ap.add_argument("--budget", type=float, nargs=2, metavar=("PART1", "PART2"),
                    default=(PART1_BUDGET, PART2_BUDGET),
                    help="seconds after which a part's remaining checks fail as not run "
                         "(default %(default)s)")
    ap.add_argument("--ssl-ca", metavar="FILE",
                    help="connect over TLS (rpyc.ssl_connect), verifying the server against this "
                         "PEM CA file")
    args = ap.parse_args(argv)
    SYNC_TIMEOUT = args.timeout
    SSL_CA = args.ssl_ca
    PART1_BUDGET, PART2_BUDGET = args.budget
    host, _, port = args.address.rpartition(":")
    port = int(port)

    R = Runner()
    how = f"rpyc.ssl_connect, ca_certs={SSL_CA}" if SSL_CA else "rpyc.connect"
    print(f"== part 1: stock rpyc {rpyc.__version__} client ({how}) against {host}:{port}", flush=True)
    R.begin_part(PART1_BUDGET)
    p1 = Part1(host, port, R)
    try:
        p1.run()
    finally:
        if p1.conn is not None:
            try:
                p1.conn.close()
            except Exception:
                pass
    print("== part 2: robustness (contract §4), raw sockets" + (" over TLS" if SSL_CA else ""), flush=True)
    R.begin_part(PART2_BUDGET)
    Part2(host, port, R).run()
    print_table()
    print(f"total time {time.monotonic() - R.start:.1f}s")
    if R.failures:
        print("failed: " + "; ".join(R.failures))
    print(f"{R.passed} passed, {R.failed} failed", flush=True)
    return 0 if R.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
