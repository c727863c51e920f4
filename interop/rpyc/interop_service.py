#!/usr/bin/env python3
"""The interop service of the netref <-> RPyC 6 contract (contract version "interop-1"),
implemented with stock rpyc (rpyc.Service + rpyc.utils.server.ThreadedServer).

Usage: python interop_service.py [HOST:PORT] [--log-wire FILE]

HOST:PORT defaults to 127.0.0.1:0. The first line on stdout is "listening on HOST:PORT"
(flushed); the server then serves until it is killed.

Every class below sets __module__ = "interop" so that the id_pack names stock rpyc computes
(f"{type.__module__}.{type.__name__}") are exactly the contract's: interop.InteropService,
interop.Token, interop.Seq, interop.Counter, interop.Context, interop.Tracked and
interop.InteropError. The state (counter, context_log, released) is per connection: the
ThreadedServer is given the service *class*, so it builds one instance per connection.
"""

import argparse
import gc
import sys
import threading
import time
import weakref

import rpyc
from rpyc.utils.server import ThreadedServer

CONTRACT = "interop-1"
SLOW_CAP = 10.0


class InteropError(Exception):
    """The service's own exception type: the client sees module "interop"."""

    __module__ = "interop"


class Token:
    """A value-like object: repr "Token(n)", str "token #n", hash n, comparable with
    another Token or an int; its only readable attribute is `value`."""

    __module__ = "interop"
    __slots__ = ("_n",)

    def __init__(self, n):
        object.__setattr__(self, "_n", n)

    @property
    def exposed_value(self):
        return self._n

    def __repr__(self):
        return f"Token({self._n})"

    def __str__(self):
        return f"token #{self._n}"

    def __hash__(self):
        return hash(self._n)

    def _other(self, other):
        if isinstance(other, Token):
            return other._n
        if type(other) is int:
            return other
        return NotImplemented

    def __eq__(self, other):
        o = self._other(other)
        return o if o is NotImplemented else self._n == o

    def __ne__(self, other):
        o = self._other(other)
        return o if o is NotImplemented else self._n != o

    def __lt__(self, other):
        o = self._other(other)
        return o if o is NotImplemented else self._n < o

    def __le__(self, other):
        o = self._other(other)
        return o if o is NotImplemented else self._n <= o

    def __gt__(self, other):
        o = self._other(other)
        return o if o is NotImplemented else self._n > o

    def __ge__(self, other):
        o = self._other(other)
        return o if o is NotImplemented else self._n >= o


class Seq:
    """The sequence (0, 10, ..., 10(n-1)); s[i] is an int, s[a:b] a tuple (by value)."""

    __module__ = "interop"

    def __init__(self, n):
        self._items = tuple(10 * i for i in range(n))

    def __len__(self):
        return len(self._items)

    def __getitem__(self, index):
        # int -> int (IndexError when out of range), slice -> tuple (brine-able: by value)
        return self._items[index]

    def __iter__(self):
        return iter(self._items)  # a builtins.tuple_iterator

    def __contains__(self, x):
        return x in self._items

    def __getslice__(self, start, stop):
        # Python 2 protocol; OLDSLICING tries __getitem__(slice) first, this is the fallback.
        return self._items[start:stop]


class Counter:
    """An iterator over range(n); __iter__ returns itself (the same reference)."""

    __module__ = "interop"

    def __init__(self, n):
        self._it = iter(range(n))

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._it)


class Context:
    """A context manager: __enter__ returns 17 + y; __exit__ logs and returns `suppress`."""

    __module__ = "interop"

    def __init__(self, y, suppress, log):
        self._y = y
        self._suppress = suppress
        self._log = log

    def __enter__(self):
        self._log.append(f"enter {self._y}")
        return 17 + self._y

    def __exit__(self, typ, val, tb):
        self._log.append("exit ok" if typ is None else "exit exc")
        return self._suppress


class Tracked:
    """An export-lifetime probe: the service only holds a weak reference to it, so it dies
    when the connection's export table drops it (i.e. after the client's DELs)."""

    __module__ = "interop"

    def __init__(self, name):
        self._name = name

    @property
    def exposed_name(self):
        return self._name


class InteropService(rpyc.Service):
    """The root object. Members are reachable as `x` and `exposed_x` (stock _check_attr);
    any other name is refused with AttributeError by stock rpyc."""

    __module__ = "interop"

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()
        self._counter = 0
        self._context_log = []
        self._tracked = {}  # name -> weakref.ref(Tracked)
        self._released = []

    # -- values -------------------------------------------------------------------------
    exposed_contract = CONTRACT
    exposed_answer = 42

    @property
    def exposed_counter(self):
        # Stock _check_attr evaluates the property in hasattr() and then getattr(): steps by 2.
        with self._lock:
            self._counter += 1
            return self._counter

    # -- plain calls --------------------------------------------------------------------
    def exposed_add(self, a, b):
        return a + b

    def exposed_echo(self, x):
        return x

    def exposed_get_list(self):
        return [10, 20, 30]

    def exposed_get_dict(self):
        return {"a": 1, "b": 2}

    def exposed_get_seq(self, n):
        return Seq(n)

    def exposed_count_to(self, n):
        return Counter(n)

    def exposed_call_me(self, cb, *args):
        return cb(*args)

    def exposed_fail(self, kind="value"):
        if kind == "value":
            raise ValueError("boom", 7)
        if kind == "key":
            raise KeyError("missing")
        if kind == "custom":
            raise InteropError("custom boom")
        raise TypeError(f"unknown fail kind {kind!r}")

    def exposed_slow(self, s):
        time.sleep(max(0.0, min(float(s), SLOW_CAP)))
        return s

    # -- Token ----------------------------------------------------------------------------
    exposed_Token = Token

    def exposed_make_token(self, n):
        return Token(n)

    def exposed_is_token(self, x):
        return isinstance(x, Token)

    # -- context manager --------------------------------------------------------------------
    def exposed_context(self, y, suppress=False):
        return Context(y, suppress, self._context_log)

    def exposed_context_log(self):
        with self._lock:
            log = tuple(self._context_log)
            del self._context_log[:]
        return log

    # -- optional wire log -------------------------------------------------------------------
    _wire_log = None  # (path, lock) when --log-wire is given

    def on_connect(self, conn):
        if self._wire_log is not None:
            conn._channel = WireLogChannel(conn._channel, *self._wire_log)

    # -- export lifetime ----------------------------------------------------------------------
    def _on_release(self, name):
        # weakref callback: runs in whatever thread dropped the last reference
        self._released.append(name)

    def exposed_tracked(self, name):
        obj = Tracked(name)
        self._tracked[name] = weakref.ref(obj, lambda _ref, n=name: self._on_release(n))
        return obj

    def exposed_tracked_again(self, name):
        ref = self._tracked.get(name)
        obj = ref() if ref is not None else None
        if obj is None:
            raise KeyError(name)
        return obj

    def exposed_released(self):
        gc.collect()
        return tuple(sorted(self._released))


class WireLogChannel:
    """Wraps an rpyc Channel and appends one line per frame ("C->S"/"S->C", hex payload)."""

    def __init__(self, channel, path, lock):
        self._channel = channel
        self._path = path
        self._lock = lock

    def _log(self, direction, data):
        with self._lock, open(self._path, "a") as f:
            f.write(f"{direction} {data.hex()}\n")

    def recv(self):
        data = self._channel.recv()
        self._log("C->S", data)
        return data

    def send(self, data):
        self._log("S->C", data)
        return self._channel.send(data)

    def __getattr__(self, name):
        return getattr(self._channel, name)


def parse_hostport(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("address", nargs="?", default="127.0.0.1:0", type=parse_hostport,
                    help="HOST:PORT to listen on (default 127.0.0.1:0)")
    ap.add_argument("--log-wire", metavar="FILE",
                    help="append every decoded-frame payload (hex, per direction) to FILE")
    args = ap.parse_args(argv)
    host, port = args.address

    if args.log_wire:
        InteropService._wire_log = (args.log_wire, threading.Lock())

    server = ThreadedServer(InteropService, hostname=host, port=port)
    server._listen()  # bind + listen before announcing the port (start() skips it then)
    print(f"listening on {server.host}:{server.port}", flush=True)
    server.start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
