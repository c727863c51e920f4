//! The RPyC dialect in a session, byte for byte: what a stock rpyc 6 client's requests get
//! back (GETROOT, an unknown handler, PICKLE, a stale reference, INSPECT by id_pack, DEL), and
//! that a peer's garbage ends only the connection, without a panic.

use std::time::Instant;

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use super::{calculator, Kind, Side};
use crate::{
    config::Config,
    protocol::rpyc::{decode_message, values::id_pack_from_brine, Brine, BrineLimits, MsgType, RpycChannelCodec},
    service::Service,
    session::Phase,
};

fn server() -> Side {
    Side::new(Kind::Rpyc, Service::shared(calculator(Default::default())), Config::default(), Instant::now())
}

/// The frame of request `seq`: `(handler, (LABEL_VALUE | LABEL_TUPLE, args))`.
fn request(seq: u64, handler: i64, boxed_args: Brine) -> BytesMut {
    let mut out = BytesMut::new();
    let args = Brine::tuple([Brine::Int(handler), boxed_args]);
    RpycChannelCodec::new().encode_message(MsgType::Request, seq, &args, &mut out).unwrap();
    out
}

fn value(items: impl IntoIterator<Item = Brine>) -> Brine {
    Brine::tuple([Brine::Int(1), Brine::tuple(items)])
}

/// Every message the side wrote, decoded.
fn replies(side: &mut Side) -> Vec<(MsgType, u64, Brine)> {
    side.turn();
    let mut written = BytesMut::from(&side.written()[..]);
    let mut codec = RpycChannelCodec::new();
    let mut out = Vec::new();
    while let Some(payload) = codec.decode(&mut written).unwrap() {
        let m = decode_message(&payload, &BrineLimits::default()).unwrap();
        out.push((m.msg, m.seq, m.args));
    }
    out
}

/// GETROOT, answered with the root as `(LABEL_REMOTE_REF, id_pack)`; its id_pack.
fn get_root(side: &mut Side) -> Brine {
    side.read(&request(0, 3, value([])));
    let out = replies(side);
    assert_eq!(out.len(), 1, "{out:?}");
    let (msg, seq, args) = &out[0];
    assert_eq!((*msg, *seq), (MsgType::Reply, 0));
    let [label, id] = args.as_tuple().unwrap() else { panic!("{args:?}") };
    assert_eq!(label, &Brine::Int(4), "the root goes as REMOTE_REF");
    let id_pack = id_pack_from_brine(id).unwrap();
    assert_eq!(id_pack.type_name, "test.Calc");
    assert_ne!(id_pack.instance_id, 0);
    id.clone()
}

#[test]
fn getroot_then_callattr_and_ping() {
    let mut side = server();
    let root = get_root(&mut side);
    // CALLATTR(root as LOCAL_REF, "add", (2, 3), ()).
    let target = Brine::tuple([Brine::Int(3), root]);
    let args = Brine::tuple([
        Brine::Int(2),
        Brine::tuple([
            target,
            Brine::str("add").pipe_value(),
            Brine::tuple([Brine::Int(1), Brine::tuple([Brine::Int(2), Brine::Int(3)])]),
            Brine::tuple([Brine::Int(1), Brine::tuple([])]),
        ]),
    ]);
    side.read(&request(1, 8, args));
    side.run_ready();
    let out = replies(&mut side);
    assert_eq!(out, vec![(MsgType::Reply, 1, Brine::tuple([Brine::Int(1), Brine::Int(5)]))]);
    side.read(&request(2, 1, value([Brine::str("hi")])));
    let out = replies(&mut side);
    assert_eq!(out, vec![(MsgType::Reply, 2, Brine::tuple([Brine::Int(1), Brine::str("hi")]))]);
}

trait PipeValue {
    fn pipe_value(self) -> Brine;
}

impl PipeValue for Brine {
    /// `(LABEL_VALUE, self)`.
    fn pipe_value(self) -> Brine {
        Brine::tuple([Brine::Int(1), self])
    }
}

#[test]
fn unknown_handler_and_pickle_are_refused_on_their_seq() {
    let mut side = server();
    let root = get_root(&mut side);
    side.read(&request(7, 99, value([])));
    let out = replies(&mut side);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].0, out[0].1), (MsgType::Exception, 7));
    let text = format!("{:?}", out[0].2);
    assert!(text.contains("KeyError"), "{text}");

    let target = Brine::tuple([Brine::Int(3), root]);
    side.read(&request(8, 14, Brine::tuple([Brine::Int(2), Brine::tuple([target, Brine::Int(4).pipe_value()])])));
    let out = replies(&mut side);
    assert_eq!((out[0].0, out[0].1), (MsgType::Exception, 8));
    let text = format!("{:?}", out[0].2);
    assert!(text.contains("ValueError") && text.contains("pickling is disabled"), "{text}");
    assert_eq!(side.session.phase(), Phase::Open, "the connection stays usable");
}

#[test]
fn stale_local_ref_is_a_key_error_and_inspect_takes_an_id_pack() {
    let mut side = server();
    let root = get_root(&mut side);
    let stale = Brine::tuple([Brine::str("test.Gone"), Brine::Int(5), Brine::Int(123_456)]);
    let target = Brine::tuple([Brine::Int(3), stale]);
    side.read(&request(1, 4, Brine::tuple([Brine::Int(2), Brine::tuple([target, Brine::str("x").pipe_value()])])));
    let out = replies(&mut side);
    assert_eq!((out[0].0, out[0].1), (MsgType::Exception, 1));
    assert!(format!("{:?}", out[0].2).contains("KeyError"));

    // INSPECT(id_pack): a tuple of (name, doc) pairs.
    side.read(&request(2, 16, value([root])));
    let out = replies(&mut side);
    assert_eq!((out[0].0, out[0].1), (MsgType::Reply, 2));
    let text = format!("{:?}", out[0].2);
    assert!(text.contains("\"add\"") && text.contains("\"slow\""), "{text}");
}

#[test]
fn garbage_ends_the_connection_without_a_panic() {
    for garbage in [
        &b"\x00\x00\x00\x02\x00\x09\x00\x0a"[..],
        &b"\x00\x00\x00\x02\x00\x01\xff\x0a"[..],
        &b"\x00\x00\x00\x04\x00\x12\x51\x50\x02\x0a"[..],
        &b"\xff\xff\xff\xff\x00"[..],
    ] {
        let mut side = server();
        side.read(garbage);
        side.turn();
        assert_ne!(side.session.phase(), Phase::Open, "{garbage:?}");
    }
}
