#!/usr/bin/env python3
"""A checking TCP relay for the reverse direction of the interop contract (§5): one client
under test <-> this relay <-> a stock rpyc server serving the interop service.

Usage:
  python wire_check.py --listen 127.0.0.1:0 --upstream HOST:PORT [--expect-held N]
                       [--report FILE] [--no-inject-ping] [--timeout S]

It prints "listening on HOST:PORT" first, accepts ONE client, connects upstream, forwards
frames both ways and decodes every frame (own framing decoder, zlib inflate; brine through
rpyc.core.brine, never unpickling). When the client disconnects (or on SIGTERM, or after
--timeout) it prints one PASS/FAIL line per check, writes a JSON report (to --report FILE,
else to stdout) and exits 0 if every check passed, 1 otherwise.

Checks on the CLIENT's behaviour:
  frames-decode      every client frame decodes as RPyC 6 (server frames are reported too)
  answers-server     every server->client request got exactly one REPLY/EXCEPTION, same seq
  no-stray-replies   the client sent no reply without a matching outstanding request
  unique-seqs        the client's request seqs are unique while outstanding
  no-over-release    no client DEL was answered with an exception by the server, and no
                     server object was DELed more times than it was received
  held-at-end        server objects still held at the end (REMOTE_REF receipts - DEL counts,
                     counted per id_pack) == --expect-held (reported only if not given)
  answers-ping       (unless --no-inject-ping) the client answered a PING the relay injected
                     as a server request while the client was waiting for its first reply
  clean-close        the client sent CLOSE, sent no request after it, and the connection
                     ended (by either side) with no partial frame left over
"""

import argparse
import json
import signal
import socket
import sys
import threading
import time
from collections import Counter

import wirelib as W

INJECT_SEQ = 2 ** 40 + 17       # far beyond any seq the upstream server will use
INJECT_DATA = "wire_check ping"


def parse_hostport(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


class Relay:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.client_send_lock = threading.Lock()
        self.t0 = time.monotonic()
        # wire state
        self.frames = {"c2s": 0, "s2c": 0}
        self.handlers = {"c2s": Counter(), "s2c": Counter()}
        self.bad_frames = {"c2s": [], "s2c": []}
        self.passthrough = {"c2s": False, "s2c": False}
        self.partial_at_eof = {"c2s": 0, "s2c": 0}
        self.srv_pending = {}        # server request seq -> (handler, after_client_close)
        self.srv_answered = set()
        self.cli_pending = {}        # client request seq -> handler
        self.cli_del = {}            # client DEL seq -> (id_pack, count)
        self.violations = []
        self.stray_replies = []
        self.dup_seqs = []
        self.del_exceptions = []
        self.double_answers = []
        self.held = Counter()        # id_pack -> receipts - DEL counts
        self.received_ids = set()
        self.client_close_at = None
        self.requests_after_close = []
        self.inject = not args.no_inject_ping
        self.injected = False
        self.ping_answer = None
        self.end_reason = []
        self.eof = {"c2s": False, "s2c": False}
        self.done = threading.Event()

    # -- logging ------------------------------------------------------------------------------
    def note(self, what):
        self.violations.append(f"{time.monotonic() - self.t0:7.3f}s {what}")

    # -- frame processing (under self.lock) --------------------------------------------------------
    def on_client_frame(self, payload, flag, trailer_ok, error):
        self.frames["c2s"] += 1
        if error:
            self.bad_frames["c2s"].append(error)
            return
        try:
            msg, seq, args = W.decode_payload(payload)
        except W.FrameError as exc:
            self.bad_frames["c2s"].append(str(exc))
            return
        if msg == W.MSG_REQUEST:
            handler = args[0]
            name = W.HANDLERS.get(handler, f"#{handler}")
            self.handlers["c2s"][name] += 1
            if self.client_close_at is not None:
                self.requests_after_close.append(f"{name} seq={seq}")
            if seq in self.cli_pending:
                self.dup_seqs.append(seq)
                self.note(f"client request seq {seq} ({name}) reused while seq {seq} "
                          f"({W.HANDLERS.get(self.cli_pending[seq])}) is outstanding")
            self.cli_pending[seq] = handler
            if handler == W.H["DEL"]:
                boxed = args[1]
                try:
                    if boxed[0] == W.LABEL_TUPLE:
                        target, count_box = boxed[1][0], boxed[1][1]
                    else:  # (VALUE, (x, count)) cannot carry a reference: malformed DEL
                        raise ValueError("DEL without a reference")
                    if target[0] != W.LABEL_LOCAL_REF or count_box[0] != W.LABEL_VALUE:
                        raise ValueError("DEL target is not a LOCAL_REF")
                    idp, count = target[1], count_box[1]
                    if type(count) is not int or count < 1:
                        raise ValueError(f"DEL count {count!r}")
                except (ValueError, IndexError, TypeError) as exc:
                    self.note(f"malformed client DEL seq={seq}: {exc}")
                else:
                    self.cli_del[seq] = (idp, count)
                    self.held[idp] -= count
                    if self.held[idp] < 0:
                        self.note(f"client DELed {idp} more times than it received it "
                                  f"(net {self.held[idp]})")
            elif handler == W.H["CLOSE"]:
                if self.client_close_at is None:
                    self.client_close_at = time.monotonic()
        else:
            if seq == INJECT_SEQ and self.injected and self.ping_answer is None:
                self.ping_answer = (msg, args)
                return "swallow"
            if seq in self.srv_pending:
                self.srv_pending.pop(seq)
                self.srv_answered.add(seq)
            elif seq in self.srv_answered:
                self.double_answers.append(seq)
                self.note(f"client answered server seq {seq} twice")
            else:
                self.stray_replies.append(seq)
                self.note(f"client sent {W.MSG_NAMES[msg]} seq={seq} without a matching server request")
        return None

    def on_server_frame(self, payload, flag, trailer_ok, error):
        self.frames["s2c"] += 1
        if error:
            self.bad_frames["s2c"].append(error)
            return
        try:
            msg, seq, args = W.decode_payload(payload)
        except W.FrameError as exc:
            self.bad_frames["s2c"].append(str(exc))
            return
        if msg == W.MSG_REQUEST:
            handler = args[0]
            self.handlers["s2c"][W.HANDLERS.get(handler, f"#{handler}")] += 1
            self.srv_pending[seq] = (handler, self.client_close_at is not None)
            self.srv_answered.discard(seq)
            for idp in W.iter_refs(args[1], W.LABEL_REMOTE_REF):
                self.held[idp] += 1
                self.received_ids.add(idp)
        else:
            handler = self.cli_pending.pop(seq, None)
            if handler is None:
                self.note(f"server sent {W.MSG_NAMES[msg]} seq={seq} for no outstanding client request")
            if msg == W.MSG_REPLY:
                for idp in W.iter_refs(args, W.LABEL_REMOTE_REF):
                    self.held[idp] += 1
                    self.received_ids.add(idp)
            elif handler == W.H["DEL"]:
                idp = self.cli_del.get(seq, ("?",))[0]
                kind = args[0] if W.is_vinegar(args) else args
                self.del_exceptions.append(f"seq={seq} {idp} -> {kind}")
                self.note(f"server answered client DEL seq={seq} of {idp} with an exception {kind}")
            self.cli_del.pop(seq, None)

    # -- pumps -----------------------------------------------------------------------------------
    def send_client(self, data):
        with self.client_send_lock:
            self.client.sendall(data)

    def pump(self, direction, src, dst):
        reader = W.FrameReader()
        try:
            while True:
                try:
                    data = src.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    break
                if self.passthrough[direction]:
                    self._forward(direction, dst, data)
                    continue
                reader.feed(data)
                try:
                    frames = reader.frames()
                except W.FrameError as exc:
                    with self.lock:
                        self.bad_frames[direction].append(str(exc))
                        self.passthrough[direction] = True
                    self._forward(direction, dst, bytes(reader.buf))
                    reader.buf.clear()
                    continue
                for payload, flag, trailer_ok, raw, error in frames:
                    inject = False
                    with self.lock:
                        if direction == "c2s":
                            verdict = self.on_client_frame(payload, flag, trailer_ok, error)
                            if (self.inject and not self.injected
                                    and self.handlers["c2s"] and verdict is None):
                                self.injected = inject = True
                        else:
                            verdict = self.on_server_frame(payload, flag, trailer_ok, error)
                    if inject:
                        # the client now waits for its first reply: it must serve this request,
                        # which reaches it before that reply does
                        ping = W.request(INJECT_SEQ, W.H["PING"], W.value(INJECT_DATA))
                        try:
                            self.send_client(ping)
                        except OSError:
                            pass
                    if verdict != "swallow":
                        self._forward(direction, dst, raw)
        finally:
            with self.lock:
                self.eof[direction] = True
                self.partial_at_eof[direction] = reader.pending()
                self.end_reason.append(f"{'client' if direction == 'c2s' else 'server'} closed "
                                       f"at {time.monotonic() - self.t0:.3f}s")
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if direction == "c2s":
                self.done.set()

    def _forward(self, direction, dst, data):
        if not data:
            return
        try:
            if direction == "s2c":
                self.send_client(data)
            else:
                dst.sendall(data)
        except OSError:
            pass  # the peer is gone; its EOF ends the other pump

    # -- the run -------------------------------------------------------------------------------------
    def serve(self, listener):
        listener.settimeout(0.2)
        deadline = self.t0 + self.args.timeout
        while True:
            if STOP.is_set():
                self.end_reason.append("SIGTERM before any client connected")
                return False
            if time.monotonic() > deadline:
                self.end_reason.append("timeout before any client connected")
                return False
            try:
                self.client, _ = listener.accept()
                break
            except socket.timeout:
                continue
        self.client.settimeout(None)
        self.upstream = socket.create_connection(self.args.upstream, timeout=5)
        self.upstream.settimeout(None)
        for s in (self.client, self.upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threads = [
            threading.Thread(target=self.pump, args=("c2s", self.client, self.upstream), daemon=True),
            threading.Thread(target=self.pump, args=("s2c", self.upstream, self.client), daemon=True),
        ]
        for t in threads:
            t.start()
        while not self.done.wait(0.1):
            if STOP.is_set():
                self.end_reason.append("SIGTERM")
                break
            if time.monotonic() > deadline:
                self.end_reason.append(f"timeout after {self.args.timeout:.0f}s")
                break
        # the client is gone: give the server a moment to close its side (CLOSE semantics)
        grace = time.monotonic() + 3.0
        while not self.eof["s2c"] and time.monotonic() < grace and not STOP.is_set():
            time.sleep(0.05)
        for s in (self.client, self.upstream):
            try:
                s.close()
            except OSError:
                pass
        return True

    def report(self, accepted):
        with self.lock:
            checks = []

            def check(name, ok, detail):
                checks.append({"name": name, "ok": bool(ok), "detail": detail})

            check("client-connected", accepted, "; ".join(self.end_reason) or "ok")
            check("frames-decode", not self.bad_frames["c2s"],
                  f"{self.frames['c2s']} client frames, {len(self.bad_frames['c2s'])} bad"
                  + (f": {self.bad_frames['c2s'][:3]}" if self.bad_frames["c2s"] else "")
                  + f"; server frames {self.frames['s2c']}, bad {len(self.bad_frames['s2c'])}"
                  + (f": {self.bad_frames['s2c'][:3]}" if self.bad_frames["s2c"] else ""))
            unanswered = {s: W.HANDLERS.get(h, h) for s, (h, late) in self.srv_pending.items() if not late}
            exempt = {s: W.HANDLERS.get(h, h) for s, (h, late) in self.srv_pending.items() if late}
            n_srv = sum(self.handlers["s2c"].values())
            check("answers-server", not unanswered and not self.double_answers,
                  f"{n_srv} server requests; unanswered {unanswered}; answered twice "
                  f"{self.double_answers}" + (f"; sent after the client's CLOSE and left "
                                               f"unanswered (not counted): {exempt}" if exempt else ""))
            check("no-stray-replies", not self.stray_replies,
                  f"replies without a request: {self.stray_replies}")
            check("unique-seqs", not self.dup_seqs, f"seqs reused while outstanding: {self.dup_seqs}")
            negative = {str(k): v for k, v in self.held.items() if v < 0}
            check("no-over-release", not self.del_exceptions and not negative,
                  f"{self.handlers['c2s']['DEL']} client DELs; answered with an exception: "
                  f"{self.del_exceptions}; net negative: {negative}")
            held_ids = sorted((k for k, v in self.held.items() if v > 0), key=str)
            held_units = sum(v for v in self.held.values() if v > 0)
            expect = self.args.expect_held
            check("held-at-end", expect is None or len(held_ids) == expect,
                  f"{len(held_ids)} server objects held ({held_units} receipts not DELed) of "
                  f"{len(self.received_ids)} received; expected "
                  f"{'(not checked)' if expect is None else expect}; held: "
                  + ", ".join(f"{k[0]}x{self.held[k]}" for k in held_ids[:10]))
            if self.inject:
                ok = (self.ping_answer is not None and self.ping_answer[0] == W.MSG_REPLY
                      and self.ping_answer[1] == (W.LABEL_VALUE, INJECT_DATA))
                check("answers-ping", ok, "injected server PING " +
                      ("not sent (no client request)" if not self.injected else
                       f"answered {self.ping_answer!r:.80}" if self.ping_answer else "never answered"))
            clean = (self.client_close_at is not None and not self.requests_after_close
                     and self.eof["c2s"] and not self.partial_at_eof["c2s"])
            if self.client_close_at is not None:
                detail = (f"CLOSE sent at {self.client_close_at - self.t0:.3f}s; requests after it: "
                          f"{self.requests_after_close}; partial bytes at EOF: {self.partial_at_eof['c2s']}; "
                          f"server closed: {self.eof['s2c']}")
            else:
                detail = "the client never sent CLOSE"
            check("clean-close", clean, detail + "; " + "; ".join(self.end_reason))
            rep = {
                "ok": all(c["ok"] for c in checks),
                "checks": checks,
                "frames": dict(self.frames),
                "handlers": {d: dict(sorted(c.items())) for d, c in self.handlers.items()},
                "held": {"objects": len(held_ids), "units": held_units,
                         "expected": expect, "ids": [list(k) for k in held_ids]},
                "violations": self.violations,
                "duration_s": round(time.monotonic() - self.t0, 3),
            }
        return rep


STOP = threading.Event()


def main(argv=None):
    ap = argparse.ArgumentParser(description="checking relay: client under test <-> stock server")
    ap.add_argument("--listen", type=parse_hostport, default=("127.0.0.1", 0))
    ap.add_argument("--upstream", type=parse_hostport, required=True)
    ap.add_argument("--expect-held", type=int, default=None,
                    help="server objects the client still holds at the end (e.g. 1: the root)")
    ap.add_argument("--report", help="write the JSON report here (default: stdout)")
    ap.add_argument("--no-inject-ping", action="store_true",
                    help="do not inject a server PING while the client waits for its first reply")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="give up (and fail) after this many seconds (default %(default)s)")
    args = ap.parse_args(argv)

    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(args.listen)
    listener.listen(1)
    host, port = listener.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)

    relay = Relay(args)
    try:
        accepted = relay.serve(listener)
    finally:
        listener.close()
    rep = relay.report(accepted)
    for c in rep["checks"]:
        print(f"{'PASS' if c['ok'] else 'FAIL'} {c['name']}: {c['detail']}")
    print(f"client -> server handlers: {rep['handlers']['c2s']}")
    print(f"server -> client handlers: {rep['handlers']['s2c']}")
    text = json.dumps(rep, indent=2, sort_keys=True)
    if args.report:
        with open(args.report, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    print("wire check " + ("OK" if rep["ok"] else "FAILED"), flush=True)
    return 0 if rep["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
