//! The session's behaviours, each on both dialects: calls, expiry, the backlog's own expiry,
//! a reused request number, release counting, a silent peer, a close during calls, limits.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::{BufMut, Bytes, BytesMut};

use super::{calculator, outcome, Kind, Pair, BOTH};
use crate::{config::Config, session::Phase, Error, NetRef};

/// A pair whose server's slow calls finish when the test says.
fn pair(kind: Kind, config: Config) -> (Pair, Arc<Mutex<Vec<futures::channel::oneshot::Sender<i64>>>>) {
    let gate = Arc::new(Mutex::new(Vec::new()));
    (Pair::new(kind, calculator(gate.clone()), config), gate)
}

fn root(pair: &mut Pair) -> NetRef {
    let root = pair.a.peer().root();
    pair.pump();
    outcome(&root).expect("the root arrives").expect("the root")
}

#[test]
fn calls_round_trip_and_a_wire_without_handshake_is_ready_at_once() {
    for kind in BOTH {
        let (mut pair, _) = pair(kind, Config::default());
        assert!(pair.a.link.is_greeted(), "{kind:?}: greeted after the first exchange");
        let root = root(&mut pair);
        assert_eq!(root.type_name(), "test.Calc", "{kind:?}");
        let sum = root.call_method::<i64>("add", (2, 3));
        pair.pump();
        assert_eq!(outcome(&sum).unwrap().unwrap(), 5, "{kind:?}");
        assert_eq!(pair.a.session.stats().pending, 0, "{kind:?}");
    }
}

#[test]
fn an_expired_request_times_out_and_only_a_wire_with_cancel_cancels_it() {
    for kind in BOTH {
        let (mut pair, gate) = pair(kind, Config::default());
        let root = root(&mut pair);
        let slow = root.call_method::<i64>("slow", ());
        slow.set_expiry(Some(Duration::from_secs(1)));
        pair.pump();
        assert_eq!(pair.b.session.stats().inbound, 1, "{kind:?}: running on the server");
        // Only the caller's clock moves: the server's deadline for the work is not reached.
        pair.a.advance(Duration::from_secs(2));
        assert!(slow.expired(), "{kind:?}: expired");
        assert!(matches!(outcome(&slow), Some(Err(Error::Timeout(_)))), "{kind:?}");
        pair.pump();
        match kind {
            Kind::Native => {
                assert_eq!(pair.b.host.aborted.len(), 1, "the Cancel stopped the work");
                assert_eq!(pair.b.session.stats().inbound, 0);
            }
            Kind::Sequenced | Kind::Rpyc => {
                assert!(pair.b.host.aborted.is_empty(), "no cancel on this wire");
                // The late reply is dropped.
                let _ = gate.lock().unwrap().pop().unwrap().send(7);
                pair.pump();
                assert_eq!(pair.b.session.stats().inbound, 0);
            }
        }
        assert_eq!(pair.a.session.stats().pending, 0, "{kind:?}");
        assert_eq!(pair.a.session.phase(), Phase::Open, "{kind:?}");
    }
}

#[test]
fn a_queued_request_expires_on_its_own_expiry_not_when_a_slot_frees() {
    for kind in BOTH {
        let config = Config::default().max_in_flight(1).request_timeout(Some(Duration::from_secs(1)));
        let (mut pair, gate) = pair(kind, config);
        let root = root(&mut pair);
        let first = root.call_method::<i64>("slow", ());
        first.set_expiry(Some(Duration::from_secs(3)));
        let second = root.call_method::<i64>("add", (1, 2));
        second.set_expiry(Some(Duration::from_millis(150)));
        // The default timeout (1 s here) counts from the call, also while queued.
        let third = root.call_method::<i64>("add", (3, 4));
        pair.pump();
        assert_eq!(pair.a.session.stats().queued, 2, "{kind:?}: two wait for the slot");
        pair.a.advance(Duration::from_millis(600));
        assert!(second.expired(), "{kind:?}: the queued call expired on its own expiry");
        assert!(outcome(&first).is_none() && outcome(&third).is_none(), "{kind:?}");
        pair.a.advance(Duration::from_millis(900));
        assert!(third.expired(), "{kind:?}: the default timeout counted from the call");
        assert!(outcome(&first).is_none(), "{kind:?}: the first still runs");
        assert_eq!(pair.a.session.stats().queued, 0, "{kind:?}");
        let _ = gate.lock().unwrap().pop().unwrap().send(9);
        pair.pump();
        assert_eq!(outcome(&first).unwrap().unwrap(), 9, "{kind:?}");
    }
}

/// `bytes` — one frame of `kind` — as the frame after it: the sequenced framing numbers its
/// frames, so a frame sent twice must carry the next number to be read at all.
fn again(kind: Kind, bytes: &Bytes) -> Bytes {
    match kind {
        Kind::Native | Kind::Rpyc => bytes.clone(),
        Kind::Sequenced => {
            let counter = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
            let mut copy = BytesMut::from(&bytes[..]);
            copy[1..5].copy_from_slice(&(counter + 1).to_be_bytes());
            copy.freeze()
        }
    }
}

#[test]
fn a_request_number_still_running_is_refused() {
    for kind in BOTH {
        let (mut pair, _gate) = pair(kind, Config::default());
        let root = root(&mut pair);
        let _slow = root.call_method::<i64>("slow", ());
        pair.a.turn();
        let frame = pair.a.written();
        pair.b.read(&frame);
        assert_eq!(pair.b.session.stats().inbound, 1, "{kind:?}");
        pair.b.read(&again(kind, &frame));
        let reason = pair.b.link.closed_error().to_string();
        assert!(reason.contains("reused while that request is still running"), "{kind:?}: {reason}");
        assert_ne!(pair.b.session.phase(), Phase::Open, "{kind:?}");
        assert_eq!(pair.b.host.aborted.len(), 1, "{kind:?}: the running work is dropped");
    }
}

#[test]
fn releases_are_counted_and_sent_as_the_wire_says() {
    for kind in BOTH {
        let (mut pair, _) = pair(kind, Config::default());
        let root = root(&mut pair);
        let child = {
            // The result holds the netref as long as it lives: only the value is kept.
            let result = root.call_method::<NetRef>("child", ());
            pair.pump();
            outcome(&result).unwrap().unwrap()
        };
        assert_eq!(pair.b.session.stats().unpinned_exports, 1, "{kind:?}");
        assert_eq!(pair.a.session.stats().imports, 2, "{kind:?}: the root and the child");
        let clone = child.clone();
        drop(child);
        pair.pump();
        assert_eq!(pair.b.session.stats().unpinned_exports, 1, "{kind:?}: a clone still holds it");
        drop(clone);
        pair.a.turn();
        let release = pair.a.written();
        assert!(!release.is_empty(), "{kind:?}: the release goes out in the turn");
        assert_eq!(
            pair.a.session.stats().pending,
            usize::from(kind != Kind::Native),
            "{kind:?}: a DEL awaits its reply"
        );
        pair.b.read(&release);
        pair.pump();
        assert_eq!(pair.b.session.stats().unpinned_exports, 0, "{kind:?}: released");
        assert_eq!(pair.a.session.stats().pending, 0, "{kind:?}: nothing awaited");
        assert_eq!(pair.a.session.phase(), Phase::Open, "{kind:?}");
    }
}

#[test]
fn a_silent_peer_is_lost_within_peer_timeout_and_a_talking_one_never() {
    for kind in BOTH {
        let config = Config::default().peer_timeout(Some(Duration::from_secs(3)));
        let (mut pair, _) = pair(kind, config);
        // Both clocks move and both sides talk: nobody is lost.
        for _ in 0..10 {
            pair.advance(Duration::from_secs(1));
            pair.pump();
        }
        assert!(!pair.a.host.stopped && !pair.b.host.stopped, "{kind:?}");
        // Now nothing reaches the client.
        for _ in 0..4 {
            pair.a.advance(Duration::from_secs(1));
            pair.a.turn();
            let _ = pair.a.written();
        }
        assert!(pair.a.host.stopped, "{kind:?}: lost");
        let reason = pair.a.link.closed_error().to_string();
        assert!(reason.contains("peer lost"), "{kind:?}: {reason}");
    }
}

#[test]
fn a_close_fails_this_sides_calls_and_the_peer_drops_their_work() {
    for kind in BOTH {
        let (mut pair, _gate) = pair(kind, Config::default());
        let root = root(&mut pair);
        let slow = root.call_method::<i64>("slow", ());
        pair.pump();
        pair.a.peer().start_close("done here");
        pair.a.turn();
        assert!(matches!(outcome(&slow), Some(Err(Error::ConnectionClosed(_)))), "{kind:?}");
        let close = pair.a.written();
        assert!(pair.a.session.shutdown_due(), "{kind:?}: the client waits only for its writes");
        pair.b.read(&close);
        assert_eq!(pair.b.host.aborted.len(), 1, "{kind:?}: the server dropped the work");
        assert!(pair.b.session.shutdown_due(), "{kind:?}");
        let reason = pair.b.link.closed_error().to_string();
        // RPyC's CLOSE carries no reason.
        let expected = if kind == Kind::Rpyc { "CLOSE" } else { "done here" };
        assert!(reason.contains(expected), "{kind:?}: {reason}");
    }
}

#[test]
fn frames_past_the_limits_are_refused_on_both_sides() {
    for kind in BOTH {
        let config = Config::default().max_frame_len(4096).max_concurrent_requests(1);
        let (mut pair, _gate) = pair(kind, config);
        let root = root(&mut pair);
        // Sending: refused before anything is queued; the connection stays up.
        let big = root.call_method::<String>("add", ("x".repeat(8192), 1));
        pair.pump();
        assert!(outcome(&big).unwrap().is_err(), "{kind:?}");
        assert_eq!(pair.a.session.phase(), Phase::Open, "{kind:?}");
        // The concurrency cap pauses reading while a request runs.
        let _slow = root.call_method::<i64>("slow", ());
        pair.pump();
        assert!(pair.b.session.reads_paused(), "{kind:?}: at the cap");
        // Receiving: a length past the limit is refused before any room is made for it.
        let mut header = BytesMut::new();
        match kind {
            Kind::Native => header.put_u32(1 << 20),
            Kind::Rpyc => {
                header.put_u32(1 << 30);
                header.put_u8(0);
            }
            Kind::Sequenced => {
                header.put_u8(0xA5);
                header.put_u32(99);
                header.put_u32(1 << 20);
            }
        }
        pair.b.read(&header);
        let reason = pair.b.link.closed_error().to_string();
        assert_ne!(pair.b.session.phase(), Phase::Open, "{kind:?}: {reason}");
    }
}
