//! The structured session targets: the fuzzer's bytes choose a sequence of peer messages
//! (through `arbitrary`) whose references point at objects the session really exported, so
//! that requests get past reference lookup into serving, callbacks, releases and expiry —
//! places raw bytes almost never reach, since a valid reference needs ids only the session's
//! output tells.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use bytes::BytesMut;
use netref::{dev::Handle, IdPack, RefLabel, RemoteError, Value, WireRef};

use crate::{
    peer::{self, local, PeerMessage, PeerSide, WireKind},
    service,
};

/// At most this many operations per input.
const MAX_OPS: usize = 64;

#[derive(Arbitrary, Debug)]
enum Op {
    /// CALLATTR of a method on an object of the session's.
    Call { target: Target, method: Method, args: Vec<Arg>, kwargs: Vec<(String, Leaf)>, timing: Timing },
    /// Any handler, on an object of the session's or with free arguments.
    Request { handle: u8, target: Option<Target>, args: Vec<Arg>, timing: Timing },
    /// An answer to one of the session's own requests (a callback).
    Answer { pick: u8, value: Arg, fail: bool },
    /// A cancel of one of the peer's earlier requests.
    Cancel { back: u8 },
    /// A release of one of the session's objects.
    Release { target: Target, count: u8 },
    /// Time passes.
    Advance { millis: u32 },
    /// The peer closes.
    Close,
}

#[derive(Arbitrary, Debug)]
struct Timing {
    deadline_millis: Option<u16>,
    one_way: bool,
    /// Compressed (RPyC) when below 16: one message in 16. A zlib encoder costs more than the
    /// rest of a message's round trip, and the compressed path needs no more than a few.
    compress: u8,
}

#[derive(Arbitrary, Debug)]
enum Target {
    Root,
    Export(u8),
    /// An id the session never exported.
    Stale(u32),
}

#[derive(Arbitrary, Debug)]
enum Method {
    Known(u8),
    Other(String),
}

/// A value, two levels deep at most: deep nesting is the raw-byte targets' job, and a
/// recursive `arbitrary` type would recurse as deep as the input is long.
#[derive(Arbitrary, Debug)]
enum Arg {
    Leaf(Leaf),
    Tuple(Vec<Leaf>),
    List(Vec<Leaf>),
    Map(Vec<(Leaf, Leaf)>),
}

#[derive(Arbitrary, Debug)]
enum Leaf {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    /// One of the session's objects, sent back to it.
    Export(u8),
    /// An object of the peer's own (the session imports a proxy for it).
    Mine(u8),
}

/// See [`crate::native_structured`] and [`crate::rpyc_structured`].
pub(crate) fn run(kind: WireKind, data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (mut session, mut peer) = peer::open(kind);
    let mut next_seq = 1u64;
    for _ in 0..MAX_OPS {
        if u.is_empty() || session.is_stopped() {
            break;
        }
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        if let Op::Advance { millis } = op {
            session.advance(Duration::from_millis(u64::from(millis)));
            peer::settle(&mut session, &mut peer);
            continue;
        }
        let (message, compress) = message(op, &mut peer, &mut next_seq);
        let mut out = BytesMut::new();
        if peer.encode(&message, compress, &mut out) {
            peer::feed(&mut session, &mut peer, &out);
        }
    }
    peer::finish(session, peer);
}

/// The message `op` stands for, and whether to compress it (RPyC).
fn message(op: Op, peer: &mut PeerSide, next_seq: &mut u64) -> (PeerMessage, bool) {
    let mut seq = || {
        *next_seq += 1;
        *next_seq
    };
    match op {
        Op::Call { target, method, args, kwargs, timing } => {
            let name = match method {
                Method::Known(i) => service::METHODS[usize::from(i) % service::METHODS.len()].to_owned(),
                Method::Other(name) => name,
            };
            let args = Value::Tuple(args.into_iter().map(|a| arg(a, peer)).collect());
            let kwargs = if kwargs.is_empty() {
                Value::None
            } else {
                Value::Map(kwargs.into_iter().map(|(k, v)| (Value::Str(k), leaf(v, peer))).collect())
            };
            let items = vec![reference(target, peer), Value::Str(name), args, kwargs];
            (request(seq(), Handle::CallAttr, items, &timing), timing.compress < 16)
        }
        Op::Request { handle, target, args, timing } => {
            let handle = Handle::ALL[usize::from(handle) % Handle::ALL.len()];
            let mut items: Vec<_> = target.map(|t| reference(t, peer)).into_iter().collect();
            items.extend(args.into_iter().map(|a| arg(a, peer)));
            (request(seq(), handle, items, &timing), timing.compress < 16)
        }
        Op::Answer { pick, value, fail } => {
            let requests = &peer.learned.requests;
            let seq = requests.get(usize::from(pick) % requests.len().max(1)).copied().unwrap_or(u64::from(pick));
            let message = if fail {
                PeerMessage::Exception { seq, error: RemoteError::new("builtins.ValueError", "fuzz") }
            } else {
                PeerMessage::Reply { seq, value: arg(value, peer) }
            };
            (message, false)
        }
        Op::Cancel { back } => (PeerMessage::Cancel { seq: next_seq.saturating_sub(u64::from(back)) }, false),
        Op::Release { target, count } => {
            let id = match reference(target, peer) {
                Value::Ref(r) => r.id,
                _ => unreachable!("a target is a reference"),
            };
            (PeerMessage::Release { seq: seq(), id, count: u64::from(count) }, false)
        }
        Op::Close => (PeerMessage::Close, false),
        Op::Advance { .. } => unreachable!("time is not a message"),
    }
}

fn request(seq: u64, handle: Handle, args: Vec<Value<WireRef>>, timing: &Timing) -> PeerMessage {
    let deadline = timing.deadline_millis.map(|ms| Duration::from_millis(u64::from(ms)));
    PeerMessage::Request { seq, handle, args, deadline, one_way: timing.one_way }
}

fn reference(target: Target, peer: &PeerSide) -> Value<WireRef> {
    let learned = &peer.learned;
    let id = match target {
        Target::Export(i) if !learned.exports.is_empty() => {
            learned.exports[usize::from(i) % learned.exports.len()].clone()
        }
        Target::Stale(n) => IdPack { type_name: "fuzz.Gone".into(), class_id: 1, instance_id: u64::from(n) | 1 << 40 },
        Target::Root | Target::Export(_) => learned.root.clone().expect("the opening named the root"),
    };
    local(id)
}

fn arg(a: Arg, peer: &PeerSide) -> Value<WireRef> {
    match a {
        Arg::Leaf(l) => leaf(l, peer),
        Arg::Tuple(items) => Value::Tuple(items.into_iter().map(|l| leaf(l, peer)).collect()),
        Arg::List(items) => Value::List(items.into_iter().map(|l| leaf(l, peer)).collect()),
        Arg::Map(pairs) => Value::Map(pairs.into_iter().map(|(k, v)| (leaf(k, peer), leaf(v, peer))).collect()),
    }
}

fn leaf(l: Leaf, peer: &PeerSide) -> Value<WireRef> {
    match l {
        Leaf::None => Value::None,
        Leaf::Bool(b) => Value::Bool(b),
        Leaf::Int(n) => Value::Int(n),
        Leaf::Float(f) => Value::Float(f),
        Leaf::Str(s) => Value::Str(s),
        Leaf::Bytes(b) => Value::Bytes(b.into()),
        Leaf::Export(i) => reference(Target::Export(i), peer),
        Leaf::Mine(n) => Value::Ref(WireRef {
            label: RefLabel::Remote,
            id: IdPack { type_name: "builtins.function".into(), class_id: 7, instance_id: 1000 + u64::from(n) },
        }),
    }
}
