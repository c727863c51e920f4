"""Small RPyC 6 wire helpers shared by check_server.py, wire_check.py and test_harness.py.

Framing (rpyc-reference.md §2.2) is implemented here from scratch:
    u32 BE len | u8 compressed | payload (zlib stream when compressed=1) | 0x0A
Payload (§2.4): u8 msg (1 REQUEST, 2 REPLY, 3 EXCEPTION) + brine((seq, args)).
Brine values are encoded/decoded with rpyc.core.brine, the reference codec (it never
unpickles anything).
"""

import socket
import ssl
import struct
import time
import zlib

from rpyc.core import brine

MSG_REQUEST, MSG_REPLY, MSG_EXCEPTION = 1, 2, 3
MSG_NAMES = {1: "REQUEST", 2: "REPLY", 3: "EXCEPTION"}
LABEL_VALUE, LABEL_TUPLE, LABEL_LOCAL_REF, LABEL_REMOTE_REF = 1, 2, 3, 4

HANDLERS = {
    1: "PING", 2: "CLOSE", 3: "GETROOT", 4: "GETATTR", 5: "DELATTR", 6: "SETATTR",
    7: "CALL", 8: "CALLATTR", 9: "REPR", 10: "STR", 11: "CMP", 12: "HASH", 13: "DIR",
    14: "PICKLE", 15: "DEL", 16: "INSPECT", 17: "BUFFITER", 18: "OLDSLICING",
    19: "CTXEXIT", 20: "INSTANCECHECK",
}
H = {name: num for num, name in HANDLERS.items()}

HEADER = struct.Struct("!LB")
TRAILER = b"\n"


class FrameError(Exception):
    """A byte stream that is not RPyC 6 framing / payload."""


# -- framing ---------------------------------------------------------------------------------

def encode_frame(payload, compress=False):
    if compress:
        payload = zlib.compress(payload, 1)
    return HEADER.pack(len(payload), 1 if compress else 0) + payload + TRAILER


class FrameReader:
    """Incremental frame parser: feed() bytes, then pop complete frames.

    Each frame is returned as (payload, compressed_flag, trailer_ok, raw_frame_bytes, error):
    payload is inflated when the flag is set; error is None or why the frame is bad.
    max_len bounds the accepted length field (a header claiming more raises FrameError).
    """

    def __init__(self, max_len=1 << 31):
        self.buf = bytearray()
        self.max_len = max_len

    def feed(self, data):
        self.buf += data

    def pending(self):
        return len(self.buf)

    def frames(self):
        out = []
        while len(self.buf) >= HEADER.size:
            length, flag = HEADER.unpack_from(self.buf, 0)
            if length > self.max_len:
                raise FrameError(f"frame length {length} exceeds limit {self.max_len}")
            total = HEADER.size + length + 1
            if len(self.buf) < total:
                break
            raw = bytes(self.buf[:total])
            body = raw[HEADER.size:HEADER.size + length]
            trailer_ok = raw[-1] == 0x0A
            del self.buf[:total]
            error = None
            if flag not in (0, 1):
                error = f"compressed flag {flag} is neither 0 nor 1"
            if flag:
                try:
                    body = zlib.decompress(body)
                except zlib.error as exc:
                    error = f"bad zlib stream: {exc}"
                    body = None
            out.append((body, flag, trailer_ok, raw, error))
        return out


# -- payload -----------------------------------------------------------------------------------

def encode_payload(msg, seq, args):
    return bytes([msg]) + brine.dump((seq, args))


def decode_payload(payload):
    """-> (msg, seq, args). Raises FrameError for anything that is not an RPyC 6 message."""
    if not payload:
        raise FrameError("empty payload")
    msg = payload[0]
    if msg == 0x12:
        raise FrameError("payload starts with 0x12: an rpyc <= 5.x peer (old layout)")
    if msg not in MSG_NAMES:
        raise FrameError(f"invalid message type {msg}")
    try:
        value = brine.load(payload[1:])
    except Exception as exc:  # brine raises assorted errors on garbage
        raise FrameError(f"brine decode failed: {type(exc).__name__}: {exc}") from None
    if type(value) is not tuple or len(value) != 2:
        raise FrameError(f"payload is not a brine (seq, args) pair: {value!r:.80}")
    seq, args = value
    if type(seq) is not int or seq < 0:
        raise FrameError(f"seq is not a non-negative int: {seq!r:.40}")
    if msg == MSG_REQUEST:
        if type(args) is not tuple or len(args) != 2 or type(args[0]) is not int:
            raise FrameError(f"request args are not (handler, boxed): {args!r:.80}")
        check_boxed(args[1])
    elif msg == MSG_REPLY:
        check_boxed(args)
    else:
        if not (args == 1 and type(args) is int) and not is_vinegar(args) and type(args) is not str:
            raise FrameError(f"exception payload is not vinegar: {args!r:.80}")
    return msg, seq, args


def is_id_pack(v):
    return (type(v) is tuple and len(v) == 3 and type(v[0]) is str
            and type(v[1]) is int and type(v[2]) is int)


def check_boxed(b):
    if type(b) is not tuple or len(b) != 2 or type(b[0]) is not int:
        raise FrameError(f"not a boxed value: {b!r:.80}")
    label, value = b
    if label == LABEL_VALUE:
        return
    if label == LABEL_TUPLE:
        if type(value) is not tuple:
            raise FrameError(f"LABEL_TUPLE without a tuple: {value!r:.80}")
        for item in value:
            check_boxed(item)
        return
    if label in (LABEL_LOCAL_REF, LABEL_REMOTE_REF):
        if not is_id_pack(value):
            raise FrameError(f"reference without an id_pack: {value!r:.80}")
        return
    raise FrameError(f"unknown box label {label}")


def is_vinegar(v):
    return (type(v) is tuple and len(v) == 4 and type(v[0]) is tuple and len(v[0]) == 2
            and type(v[0][0]) is str and type(v[0][1]) is str and type(v[1]) is tuple
            and type(v[2]) is tuple and type(v[3]) is str)


def iter_refs(b, label):
    """Yield the id_packs of every reference with the given label inside a boxed value."""
    if type(b) is not tuple or len(b) != 2:
        return
    if b[0] == label:
        yield b[1]
    elif b[0] == LABEL_TUPLE:
        for item in b[1]:
            yield from iter_refs(item, label)


def unbox_plain(b):
    """Unbox a boxed value whose references are kept as ('ref', label, id_pack) markers."""
    label, value = b
    if label == LABEL_VALUE:
        return value
    if label == LABEL_TUPLE:
        return tuple(unbox_plain(x) for x in value)
    return ("ref", label, value)


# -- requests for raw-socket tests -------------------------------------------------------------

def value(v):
    return (LABEL_VALUE, v)


def local_ref(id_pack):
    return (LABEL_LOCAL_REF, id_pack)


def request(seq, handler, *boxed_args):
    """A REQUEST frame whose argument tuple is boxed item by item (LABEL_TUPLE)."""
    if all(a[0] == LABEL_VALUE for a in boxed_args):
        boxed = value(tuple(a[1] for a in boxed_args))
    else:
        boxed = (LABEL_TUPLE, tuple(boxed_args))
    return encode_frame(encode_payload(MSG_REQUEST, seq, (handler, boxed)))


class RawConn:
    """A raw TCP connection that speaks frames, with deadlines on every read; over TLS when
    given an ssl.SSLContext (the handshake runs here, within `timeout`)."""

    def __init__(self, host, port, timeout=3.0, ssl_context=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is not None:
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname=host)
        self.reader = FrameReader()
        self.queue = []
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def shutdown_write(self):
        # The TCP half-close only: SSLSocket.shutdown would also drop the TLS state that the
        # reads after it still need.
        socket.socket.shutdown(self.sock, socket.SHUT_WR)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no frame within the deadline")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no frame within the deadline") from None
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            # A reset, or a TLS connection that ended without close_notify or with an alert.
            data = b""
        if not data:
            self.eof = True
            return
        self.reader.feed(data)
        self.queue.extend(self.reader.frames())

    def next_frame(self, timeout=3.0):
        """-> (msg, seq, args) or None on EOF. Raises TimeoutError / FrameError."""
        deadline = time.monotonic() + timeout
        while not self.queue:
            if self.eof:
                return None
            self._fill(deadline)
        payload, _flag, _trailer, _raw, error = self.queue.pop(0)
        if error:
            raise FrameError(error)
        return decode_payload(payload)

    def reply_to(self, seq, timeout=3.0, serve=None):
        """Wait for the REPLY/EXCEPTION with this seq; other frames go to serve(frame)."""
        deadline = time.monotonic() + timeout
        while True:
            fr = self.next_frame(max(0.0, deadline - time.monotonic()))
            if fr is None:
                return None
            if fr[0] in (MSG_REPLY, MSG_EXCEPTION) and fr[1] == seq:
                return fr
            if serve is not None:
                serve(fr)

    def wait_reaction(self, timeout=3.0):
        """What the server does after garbage: 'closed', 'exception', 'close-request', or
        raises TimeoutError. Frames that fail to decode count as 'undecodable'."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                fr = self.next_frame(max(0.001, deadline - time.monotonic()))
            except FrameError as exc:
                return f"undecodable reply ({exc})"
            if fr is None:
                return "closed"
            if fr[0] == MSG_EXCEPTION:
                return "exception"
            if fr[0] == MSG_REQUEST and fr[2][0] == H["CLOSE"]:
                return "close-request"

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
