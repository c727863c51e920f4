//! The fuzzer's end of a connection: what a peer writes on each wire, a reader that requires
//! every byte the session wrote to decode (netref must never write what its own decoder
//! refuses) and learns from it what a well-behaved peer would (the objects the session
//! exported, the requests it is waiting on), and the drive that runs a session to its end
//! with its invariants checked.
//!
//! Everything here is bounded: a fixed number of turns per step, a fixed number of exports and
//! requests remembered.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use netref::{
    __fuzz::SessionHarness,
    dev::{
        rpyc::{
            decode_message,
            values::{decode_exception, decode_reply, decode_request, encode_exception, encode_reply, encode_request},
            Brine, BrineLimits, MsgType, RpycChannelCodec,
        },
        Frame, FrameCodec, Handle, Hello, Limits, WireRefs, FEATURES,
    },
    Config, IdPack, RefLabel, RemoteError, Value, Wire, WireRef,
};
use tokio_util::codec::Decoder;

use crate::service;

/// At most this many of the session's exports and requests are remembered.
const REMEMBERED: usize = 64;

/// How many turns a step may take before the session must have nothing more to say: each turn
/// either writes something or the step is over, and no input makes a session talk forever.
const TURNS_PER_STEP: usize = 64;

/// Which wire a target speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WireKind {
    Native,
    Rpyc,
}

impl WireKind {
    /// A default configuration on this wire.
    pub(crate) fn config(self) -> Config {
        match self {
            WireKind::Native => Config::default().wire(Wire::Native),
            WireKind::Rpyc => Config::default().wire(Wire::Rpyc),
        }
    }
}

/// One message from the peer.
#[derive(Debug)]
pub(crate) enum PeerMessage {
    Hello,
    Request { seq: u64, handle: Handle, args: Vec<Value<WireRef>>, deadline: Option<Duration>, one_way: bool },
    Reply { seq: u64, value: Value<WireRef> },
    Exception { seq: u64, error: RemoteError },
    Cancel { seq: u64 },
    Release { seq: u64, id: IdPack, count: u64 },
    Close,
}

/// What the peer learned from the session's output.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    /// The session's root, once its `Hello` (native) or a GETROOT reply (RPyC) named it.
    pub(crate) root: Option<IdPack>,
    /// Objects the session exported (sent as `REMOTE_REF`), first seen first.
    pub(crate) exports: Vec<IdPack>,
    /// The session's own requests (callbacks into the peer), by seq.
    pub(crate) requests: Vec<u64>,
}

/// The peer's end: encodes its messages and reads the session's.
pub(crate) struct PeerSide {
    kind: WireKind,
    native: FrameCodec,
    rpyc: RpycChannelCodec,
    /// The session's output not yet decoded (a frame may be split across turns' writes).
    incoming: BytesMut,
    pub(crate) learned: Learned,
}

impl PeerSide {
    pub(crate) fn new(kind: WireKind) -> PeerSide {
        PeerSide {
            kind,
            native: FrameCodec::new().with_peer_features(FEATURES),
            rpyc: RpycChannelCodec::new(),
            incoming: BytesMut::new(),
            learned: Learned::default(),
        }
    }

    /// Appends `message` as this wire writes it; `false` when the wire has no such message or
    /// refuses to encode it (a value past the limits, a frozenset holding a reference).
    pub(crate) fn encode(&self, message: &PeerMessage, compress: bool, out: &mut BytesMut) -> bool {
        match self.kind {
            WireKind::Native => {
                let frame = match message {
                    PeerMessage::Hello => Frame::Hello(Hello::new(Limits::default())),
                    PeerMessage::Request { seq, handle, args, deadline, one_way: false } => Frame::Request {
                        seq: *seq,
                        handle: *handle,
                        args: Value::Tuple(args.clone()),
                        deadline: *deadline,
                    },
                    PeerMessage::Request { handle, args, one_way: true, .. } => {
                        Frame::Notify { handle: *handle, args: Value::Tuple(args.clone()) }
                    }
                    PeerMessage::Reply { seq, value } => Frame::Reply { seq: *seq, value: value.clone() },
                    PeerMessage::Exception { seq, error } => Frame::Exception { seq: *seq, error: error.clone() },
                    PeerMessage::Cancel { seq } => Frame::Cancel { seq: *seq },
                    PeerMessage::Release { id, count, .. } => Frame::Release { refs: vec![(id.instance_id, *count)] },
                    PeerMessage::Close => Frame::Close { reason: "fuzz".into() },
                };
                self.native.encode_with(&frame, &WireRefs, out).is_ok()
            }
            WireKind::Rpyc => {
                let (msg, seq, args) = match message {
                    PeerMessage::Hello | PeerMessage::Cancel { .. } => return false,
                    PeerMessage::Request { seq, handle, args, .. } => {
                        (MsgType::Request, *seq, encode_request(*handle, args, &WireRefs))
                    }
                    PeerMessage::Reply { seq, value } => (MsgType::Reply, *seq, encode_reply(value, &WireRefs)),
                    PeerMessage::Exception { seq, error } => (MsgType::Exception, *seq, Ok(encode_exception(error))),
                    PeerMessage::Release { seq, id, count } => {
                        let args = [local(id.clone()), Value::Int(i64::try_from(*count).unwrap_or(i64::MAX))];
                        (MsgType::Request, *seq, encode_request(Handle::Del, &args, &WireRefs))
                    }
                    PeerMessage::Close => (MsgType::Request, u64::MAX, encode_request(Handle::Close, &[], &WireRefs)),
                };
                let Ok(args) = args else { return false };
                let codec = self.rpyc.clone().compress_above(compress.then_some(0));
                codec.encode_message(msg, seq, &args, out).is_ok()
            }
        }
    }

    /// Reads what the session wrote. Panics if any of it does not decode: netref wrote bytes
    /// its own peer cannot read.
    pub(crate) fn absorb(&mut self, written: &[u8]) {
        self.incoming.extend_from_slice(written);
        match self.kind {
            WireKind::Native => {
                while let Some(frame) = self.native.decode(&mut self.incoming).expect("the session wrote a bad frame") {
                    self.learn_native(frame);
                }
            }
            WireKind::Rpyc => {
                while let Some(payload) = self.rpyc.decode(&mut self.incoming).expect("the session wrote a bad frame") {
                    self.learn_rpyc(&payload);
                }
            }
        }
    }

    fn learn_native(&mut self, frame: Frame<WireRef>) {
        match frame {
            Frame::Hello(hello) => self.learned.root = hello.root,
            Frame::Reply { value, .. } => self.learn_refs(&value),
            Frame::Request { seq, args, .. } => {
                self.learn_refs(&args);
                self.learn_request(seq);
            }
            _ => {}
        }
    }

    fn learn_rpyc(&mut self, payload: &Bytes) {
        let message = decode_message(payload, &BrineLimits::default()).expect("the session wrote a bad message");
        match message.msg {
            MsgType::Reply => {
                let value = decode_reply(message.args, &WireRefs).expect("the session wrote a bad reply");
                if let Value::Ref(WireRef { label: RefLabel::Remote, id }) = &value {
                    if id.type_name == service::ROOT_TYPE && self.learned.root.is_none() {
                        self.learned.root = Some(id.clone());
                    }
                }
                self.learn_refs(&value);
            }
            MsgType::Request => {
                let (_, args) = decode_request(message.args, &WireRefs).expect("the session wrote a bad request");
                self.learn_refs(&Value::Tuple(args));
                self.learn_request(message.seq);
            }
            MsgType::Exception => {
                // `1` is StopIteration; anything else is vinegar.
                if message.args != Brine::Int(1) {
                    decode_exception(message.args).expect("the session wrote a bad exception");
                }
            }
        }
    }

    fn learn_request(&mut self, seq: u64) {
        if self.learned.requests.len() < REMEMBERED {
            self.learned.requests.push(seq);
        }
    }

    /// Remembers the session's objects in `value` (what it sent as `REMOTE_REF`).
    fn learn_refs(&mut self, value: &Value<WireRef>) {
        let mut stack = vec![value];
        while let Some(value) = stack.pop() {
            match value {
                Value::Ref(WireRef { label: RefLabel::Remote, id }) => {
                    let known = self.learned.exports.iter().any(|e| e.instance_id == id.instance_id);
                    if !known && self.learned.exports.len() < REMEMBERED {
                        self.learned.exports.push(id.clone());
                    }
                }
                Value::Tuple(items) | Value::List(items) | Value::FrozenSet(items) => stack.extend(items),
                Value::Map(pairs) => stack.extend(pairs.iter().flat_map(|(k, v)| [k, v])),
                _ => {}
            }
        }
    }
}

/// A reference to one of the session's own objects, as the peer sends it back.
pub(crate) fn local(id: IdPack) -> Value<WireRef> {
    Value::Ref(WireRef { label: RefLabel::Local, id })
}

/// A session on `kind`'s wire serving the fuzz service, and the peer's end, after the opening
/// a real peer makes: the `Hello` exchange (native) or a GETROOT (RPyC).
pub(crate) fn open(kind: WireKind) -> (SessionHarness, PeerSide) {
    let mut session = SessionHarness::new(kind.config(), service::service());
    let mut peer = PeerSide::new(kind);
    let opening = match kind {
        WireKind::Native => PeerMessage::Hello,
        WireKind::Rpyc => {
            PeerMessage::Request { seq: 0, handle: Handle::GetRoot, args: Vec::new(), deadline: None, one_way: false }
        }
    };
    let mut out = BytesMut::new();
    assert!(peer.encode(&opening, false, &mut out), "the opening encodes");
    session.read(&out);
    settle(&mut session, &mut peer);
    assert!(session.is_open(), "a session is open after a well-formed opening");
    assert!(peer.learned.root.is_some(), "the opening names the session's root");
    (session, peer)
}

/// Runs turns until the session writes nothing more; what it writes must decode.
pub(crate) fn settle(session: &mut SessionHarness, peer: &mut PeerSide) {
    for _ in 0..TURNS_PER_STEP {
        session.turn();
        let written = session.written();
        if written.is_empty() {
            return;
        }
        peer.absorb(&written);
    }
    panic!("the session still had something to write after {TURNS_PER_STEP} turns");
}

/// Hands `bytes` to the session as read off the socket, then settles it. A framing error
/// must end the connection.
pub(crate) fn feed(session: &mut SessionHarness, peer: &mut PeerSide, bytes: &[u8]) {
    let outcome = session.read(bytes);
    if let netref::__fuzz::ReadOutcome::FramingError { error } = &outcome {
        assert!(!session.is_open(), "the session stayed open after a framing error: {error}");
    }
    settle(session, peer);
}

/// The end every session comes to: the clock moves past every deadline and timeout (the
/// session stays within its limits meanwhile), the peer hangs up, and the session stops with
/// nothing left pending.
pub(crate) fn finish(mut session: SessionHarness, mut peer: PeerSide) {
    let max_exports = session.max_exports();
    for step in [Duration::from_secs(1), Duration::from_secs(31), Duration::from_secs(600)] {
        session.advance(step);
        settle(&mut session, &mut peer);
        let stats = session.stats();
        assert!(stats.exports <= max_exports + 1, "{} exports, past the limit {max_exports}", stats.exports);
    }
    session.read_end();
    settle(&mut session, &mut peer);
    assert!(!session.is_open(), "the session stayed open after the peer hung up");
    session.advance(Duration::from_secs(600));
    settle(&mut session, &mut peer);
    assert!(session.is_stopped(), "the session did not stop after the peer hung up and its grace ran out");
    session.stop();
    let stats = session.stats();
    assert_eq!((stats.pending, stats.queued), (0, 0), "requests left pending after the connection stopped");
    assert_eq!((stats.exports, stats.imports), (0, 0), "references left after the connection stopped");
}
