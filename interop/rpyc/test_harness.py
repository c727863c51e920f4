#!/usr/bin/env python3
"""Self-tests of the interop harness itself (no pytest needed): python test_harness.py

* wirelib framing/payload against the byte vectors of rpyc-reference.md §2.3/§8.2;
* wire_check.py reports success for the stock client (stock_client_run.py) and detects
  violations by small fake clients (stray reply, unanswered server request, reused seq,
  over-release, wrong held count, undecodable frame, ignored PING, no CLOSE);
* check_server.py ends quickly and fails against a silent server;
* the stock client against bad peers (contract §4): an rpyc-5 peer gives
  "invalid message type: 18" at once, a silent peer gives TimeoutError.

Starts its own interop_service.py; prints one PASS/FAIL line per test and
"N passed, N failed"; exit 0 only if all passed.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zlib

import rpyc

import wirelib as W

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable
TMP = tempfile.mkdtemp(prefix="netref-interop-")
RESULTS = {"passed": 0, "failed": 0}
TESTS = []


def test(fn):
    TESTS.append(fn)
    return fn


def run_test(fn):
    name = fn.__name__[5:].replace("_", " ")
    t0 = time.monotonic()
    try:
        note = fn()
    except Exception as exc:
        RESULTS["failed"] += 1
        tb = traceback.extract_tb(exc.__traceback__)
        print(f"FAIL {name}: {type(exc).__name__}: {exc} (line {tb[-1].lineno})", flush=True)
    else:
        RESULTS["passed"] += 1
        print(f"PASS {name}{' - ' + note if note else ''} [{time.monotonic() - t0:.2f}s]", flush=True)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# -- processes -----------------------------------------------------------------------------------

def start(args, name):
    """Start a helper script; return (proc, 'HOST:PORT' from its 'listening on' line)."""
    proc = subprocess.Popen([PY, os.path.join(HERE, args[0])] + args[1:], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=HERE)
    line = proc.stdout.readline()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"{name} did not announce its address: {line!r} {proc.stderr.read()[:300]}")
    return proc, line.split()[2]


def hostport(addr):
    host, _, port = addr.rpartition(":")
    return host, int(port)


SERVER = None   # (proc, addr) of our interop_service.py


def relay(*extra):
    """Start wire_check.py in front of SERVER; returns (proc, addr, report_path)."""
    report = os.path.join(TMP, f"report-{time.monotonic_ns()}.json")
    proc, addr = start(["wire_check.py", "--upstream", SERVER[1], "--report", report,
                        "--timeout", "20", *extra], "wire_check")
    return proc, addr, report


def finish(proc, report, timeout=15):
    out, err = proc.communicate(timeout=timeout)
    with open(report) as f:
        rep = json.load(f)
    return proc.returncode, rep, out


def failed_checks(rep):
    return sorted(c["name"] for c in rep["checks"] if not c["ok"])


# -- a minimal fake client on raw frames ------------------------------------------------------------

class Fake:
    """Speaks raw frames to the relay; answers server requests unless told otherwise."""

    def __init__(self, addr, answer=True):
        self.rc = W.RawConn(*hostport(addr))
        self.seq = 0
        self.answer = answer
        self.served = []

    def serve(self, fr):
        msg, seq, args = fr
        if msg != W.MSG_REQUEST:
            return
        self.served.append(W.HANDLERS.get(args[0]))
        if not self.answer:
            return
        if args[0] == W.H["PING"]:  # args[1] is the boxed argument tuple (VALUE, (data,))
            self.rc.send(W.encode_frame(W.encode_payload(W.MSG_REPLY, seq, W.value(args[1][1][0]))))
        else:
            self.rc.send(W.encode_frame(W.encode_payload(W.MSG_REPLY, seq, W.value(None))))

    def call(self, handler, *boxed, seq=None):
        if seq is None:
            seq, self.seq = self.seq, self.seq + 1
        self.rc.send(W.request(seq, handler, *boxed))
        return self.rc.reply_to(seq, 5.0, serve=self.serve)

    def root(self):
        fr = self.call(W.H["GETROOT"])
        return fr[2][1]

    def close(self, send_close=True):
        if send_close:
            self.rc.send(W.request(self.seq, W.H["CLOSE"]))
            self.seq += 1
            try:  # the server closes; serve whatever arrives until then
                while True:
                    fr = self.rc.next_frame(3.0)
                    if fr is None:
                        break
                    self.serve(fr)
            except (TimeoutError, W.FrameError):
                pass
        self.rc.close()


# -- tests ----------------------------------------------------------------------------------------

@test
def test_wirelib_vectors():
    # rpyc-reference.md §2.4/§8.2: GETROOT in 6.x layout, seq 0
    check(W.request(0, W.H["GETROOT"]) == bytes.fromhex("0000000800011150115311510" "20a"), "GETROOT bytes")
    # PING reply (VALUE, 42) seq 5: 02 11 55 11 51 7a
    check(W.decode_payload(bytes.fromhex("02115511517a")) == (2, 5, (1, 42)), "REPLY decode")
    check(W.decode_payload(bytes.fromhex("03115c51")) == (3, 12, 1), "EXC_STOP_ITERATION decode")
    try:
        W.decode_payload(bytes.fromhex("1251501153115102"))
        raise AssertionError("rpyc-5 payload accepted")
    except W.FrameError as exc:
        check("0x12" in str(exc), str(exc))
    # byte-at-a-time feed, a compressed frame, and a bad trailer
    data = W.request(3, W.H["PING"], W.value("x" * 5000))
    comp = W.encode_frame(W.encode_payload(1, 4, (1, (1, ("y" * 5000,)))), compress=True)
    r = W.FrameReader()
    frames = []
    for b in data + comp:
        r.feed(bytes([b]))
        frames += r.frames()
    check(len(frames) == 2 and frames[1][1] == 1 and frames[1][4] is None, "frames")
    check(W.decode_payload(frames[1][0])[2][1][1][0] == "y" * 5000, "inflated payload")
    check(frames[1][0] == zlib.decompress(comp[5:-1]), "zlib")
    bad = W.FrameReader()
    bad.feed(b"\x00\x00\x00\x02\x01zz\n")
    check(bad.frames()[0][4] is not None, "bad zlib not reported")


@test
def test_relay_accepts_stock_client():
    proc, addr, report = relay("--expect-held", "1")
    client = subprocess.run([PY, os.path.join(HERE, "stock_client_run.py"), addr],
                            capture_output=True, text=True, timeout=60)
    rc, rep, out = finish(proc, report)
    check(client.returncode == 0, f"stock client failed: {client.stdout[-400:]} {client.stderr[-400:]}")
    check(rc == 0 and rep["ok"], f"relay rejected the stock client: {failed_checks(rep)} "
                                 f"{[c['detail'] for c in rep['checks'] if not c['ok']]}")
    s2c = rep["handlers"]["s2c"]
    check(s2c.get("CALL", 0) >= 2 and s2c.get("DEL", 0) >= 1, f"server requests seen: {s2c}")
    return f"{rep['frames']['c2s']} client frames, held {rep['held']['objects']}, server requests {s2c}"


@test
def test_relay_accepts_well_behaved_fake():
    proc, addr, report = relay("--expect-held", "1")
    f = Fake(addr)
    f.root()
    f.call(W.H["PING"], W.value("hi"))
    f.close()
    rc, rep, _ = finish(proc, report)
    check(rc == 0 and rep["ok"], f"failed: {failed_checks(rep)}")
    check("PING" in f.served, "the injected PING did not reach the client")


@test
def test_relay_detects_stray_reply():
    proc, addr, report = relay("--expect-held", "1", "--no-inject-ping")
    f = Fake(addr)
    f.root()
    f.rc.send(W.encode_frame(W.encode_payload(W.MSG_REPLY, 999, W.value(None))))
    f.call(W.H["PING"], W.value("after"))
    f.close()
    rc, rep, _ = finish(proc, report)
    check(rc == 1 and failed_checks(rep) == ["no-stray-replies"], f"failed checks {failed_checks(rep)}")


@test
def test_relay_detects_unanswered_server_request():
    proc, addr, report = relay("--expect-held", "1", "--no-inject-ping")
    f = Fake(addr, answer=False)
    root = f.root()
    meth = f.call(W.H["GETATTR"], W.local_ref(root), W.value("call_me"))[2][1]
    cb = (W.LABEL_REMOTE_REF, ("builtins.function", 11, 22))
    seq = f.seq
    f.seq += 1
    f.rc.send(W.request(seq, W.H["CALL"], W.local_ref(meth), (W.LABEL_TUPLE, (cb,)), W.value(())))
    deadline = time.monotonic() + 3
    while "CALL" not in f.served and time.monotonic() < deadline:
        fr = f.rc.next_frame(3.0)
        if fr is not None:
            f.serve(fr)
    f.close(send_close=False)  # gives up without answering and without CLOSE
    rc, rep, _ = finish(proc, report)
    fc = failed_checks(rep)
    check(rc == 1 and "answers-server" in fc and "clean-close" in fc, f"failed checks {fc}")
    return f"failed as expected: {fc}"


@test
def test_relay_detects_reused_seq():
    proc, addr, report = relay("--expect-held", "2", "--no-inject-ping")
    f = Fake(addr)
    root = f.root()
    slow = W.local_ref(f.call(W.H["GETATTR"], W.local_ref(root), W.value("slow"))[2][1])
    # the server takes 0.3 s on the first, so the second surely reuses an outstanding seq
    f.rc.send(W.request(7, W.H["CALL"], slow, W.value((0.3,)), W.value(())))
    time.sleep(0.05)
    f.rc.send(W.request(7, W.H["CALL"], slow, W.value((0.1,)), W.value(())))
    f.rc.reply_to(7, 3.0)
    f.rc.reply_to(7, 3.0)
    f.seq = 8
    f.close()
    rc, rep, _ = finish(proc, report)
    check(rc == 1 and failed_checks(rep) == ["unique-seqs"], f"failed checks {failed_checks(rep)}")


@test
def test_relay_detects_over_release():
    proc, addr, report = relay("--expect-held", "0", "--no-inject-ping")
    f = Fake(addr)
    root = f.root()
    f.call(W.H["DEL"], W.local_ref(root), W.value(1))
    f.call(W.H["DEL"], W.local_ref(root), W.value(1))   # once more than received
    f.close()
    rc, rep, _ = finish(proc, report)
    check(rc == 1 and failed_checks(rep) == ["no-over-release"], f"failed checks {failed_checks(rep)}")


@test
def test_relay_detects_wrong_held_count():
    proc, addr, report = relay("--expect-held", "0", "--no-inject-ping")
    f = Fake(addr)
    root = f.root()
    f.call(W.H["CALL"], W.local_ref(f.call(W.H["GETATTR"], W.local_ref(root), W.value("make_token"))[2][1]),
           W.value((3,)), W.value(()))
    f.close()   # keeps root, the method and the token
    rc, rep, _ = finish(proc, report)
    check(rc == 1 and failed_checks(rep) == ["held-at-end"] and rep["held"]["objects"] == 3,
          f"failed checks {failed_checks(rep)}, held {rep['held']}")


@test
def test_relay_detects_undecodable_client_frame():
    proc, addr, report = relay("--expect-held", "0", "--no-inject-ping")
    f = Fake(addr)
    f.rc.send(bytes.fromhex("0000000800125150115311510" "20a"))   # an rpyc-5 GETROOT
    try:
        f.rc.wait_reaction(3.0)
    except TimeoutError:
        pass
    f.rc.close()
    rc, rep, _ = finish(proc, report)
    fc = failed_checks(rep)
    check(rc == 1 and "frames-decode" in fc, f"failed checks {fc}")
    return f"failed as expected: {fc}"


@test
def test_relay_detects_ignored_ping():
    proc, addr, report = relay("--expect-held", "1")
    f = Fake(addr, answer=False)
    f.root()
    f.close()
    rc, rep, _ = finish(proc, report)
    check(rc == 1 and failed_checks(rep) == ["answers-ping"], f"failed checks {failed_checks(rep)}")


def silent_server():
    """A listener that accepts and never answers; returns (addr, stop)."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(16)
    lst.settimeout(0.2)
    stop = threading.Event()
    held = []

    def loop():
        while not stop.is_set():
            try:
                s, _ = lst.accept()
                held.append(s)
            except socket.timeout:
                continue
        for s in held + [lst]:
            s.close()
    threading.Thread(target=loop, daemon=True).start()
    return "%s:%d" % lst.getsockname(), stop


@test
def test_check_server_fails_fast_on_silent_server():
    addr, stop = silent_server()
    try:
        t0 = time.monotonic()
        p = subprocess.run([PY, os.path.join(HERE, "check_server.py"), addr, "--timeout", "0.5",
                            "--budget", "3", "4"], capture_output=True, text=True, timeout=60)
        dt = time.monotonic() - t0
    finally:
        stop.set()
    last = p.stdout.strip().splitlines()[-1]
    check(p.returncode == 1, f"exit {p.returncode}")
    check(last.endswith("failed") and " passed, " in last and not last.endswith(" 0 failed"), last)
    check(dt < 40, f"took {dt:.1f}s")
    return f"{last} in {dt:.1f}s"


@test
def test_stock_client_vs_rpyc5_peer():
    """contract §4: an rpyc-5 peer makes the stock client fail at once."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)

    def peer():
        s, _ = lst.accept()
        s.recv(100)
        # the 5.3.1 GETROOT reply layout: brine((msg, seq, args)) without the msg byte
        s.sendall(W.encode_frame(bytes.fromhex("1252501154") + b"\x12\x08\x0a\x78\x51\x52"))
        time.sleep(1)
        s.close()
    threading.Thread(target=peer, daemon=True).start()
    conn = rpyc.connect(*lst.getsockname(), config={"sync_request_timeout": 5})
    t0 = time.monotonic()
    try:
        conn.root
        raise AssertionError("no error")
    except ValueError as exc:
        check("invalid message type: 18" in str(exc), str(exc))
    finally:
        lst.close()
    dt = time.monotonic() - t0
    check(dt < 1.0, f"took {dt:.2f}s")
    return f"ValueError after {dt:.3f}s"


@test
def test_stock_client_vs_silent_peer():
    """contract §4: a silent peer makes the stock client wait sync_request_timeout."""
    addr, stop = silent_server()
    try:
        conn = rpyc.connect(*hostport(addr), config={"sync_request_timeout": 1})
        t0 = time.monotonic()
        try:
            conn.root
            raise AssertionError("no error")
        except TimeoutError as exc:
            check("result expired" in str(exc), str(exc))
        dt = time.monotonic() - t0
        check(0.9 < dt < 2.0, f"took {dt:.2f}s")
    finally:
        stop.set()
    return f"TimeoutError after {dt:.2f}s"


def main():
    global SERVER
    t0 = time.monotonic()
    SERVER = start(["interop_service.py", "127.0.0.1:0"], "interop_service")
    try:
        for fn in TESTS:
            run_test(fn)
    finally:
        SERVER[0].kill()
        SERVER[0].wait()
    print(f"test_harness: {time.monotonic() - t0:.1f}s")
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed", flush=True)
    return 0 if RESULTS["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
