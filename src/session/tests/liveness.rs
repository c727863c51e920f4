//! Liveness on the fake clock, on every wire, on both sides of a connection: with the default
//! `peer_timeout` (15 s) an idle connection stays up on liveness frames alone; a side whose
//! peer went silent declares it lost within the bound (and not before two thirds of it),
//! failing its calls and, once stopped, freeing its exports; a busy peer — a call running far
//! longer than the timeout, the in-flight cap full — is never declared lost, because liveness
//! pings go out past the cap and the peer answers them whatever its own settings.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::{calculator, outcome, Kind, Pair, Side, BOTH};
use crate::{config::Config, service::Service, session::Phase, Error, NetRef};

const STEP: Duration = Duration::from_millis(500);
const DEFAULT: Duration = Duration::from_secs(15);

fn root(pair: &mut Pair) -> NetRef {
    let root = pair.a.peer().root();
    pair.pump();
    outcome(&root).expect("the root arrives").expect("the root")
}

/// Moves both clocks by `STEP` and lets both sides talk, `steps` times.
fn both_talk(pair: &mut Pair, steps: u32) {
    for _ in 0..steps {
        pair.advance(STEP);
        pair.pump();
        pair.a.run_ready();
        pair.b.run_ready();
    }
}

/// Moves `side`'s clock by `STEP` at a time while nothing reaches it (what it writes is lost);
/// returns how long it took to declare its peer lost.
fn silence_until_lost(side: &mut Side) -> Duration {
    let mut waited = Duration::ZERO;
    while !side.host.stopped {
        assert!(waited < 2 * DEFAULT, "still not lost after {waited:?} of silence");
        side.advance(STEP);
        waited += STEP;
        side.turn();
        let _ = side.written();
    }
    waited
}

fn assert_lost_within_the_bound(kind: Kind, who: &str, side: &Side, waited: Duration) {
    assert!(waited <= DEFAULT, "{kind:?}: the {who} took {waited:?} to declare a silent peer lost");
    assert!(waited >= DEFAULT * 2 / 3, "{kind:?}: the {who} declared its peer lost after only {waited:?}");
    let reason = side.link.closed_error();
    assert!(
        matches!(&reason, Error::ConnectionClosed(m) if m.contains("peer lost")),
        "{kind:?}: the {who} says {reason}"
    );
}

#[test]
fn an_idle_connection_lives_on_liveness_frames_and_a_silent_peer_is_lost_within_the_bound_on_each_side() {
    for kind in BOTH {
        for silent_side_is_the_server in [true, false] {
            let gate = Arc::new(Mutex::new(Vec::new()));
            let mut pair = Pair::new(kind, calculator(gate), Config::default());
            let root = root(&mut pair);
            // An object of the server's held by the client: one unpinned export on the server.
            let child = root.call_method::<NetRef>("child", ());
            pair.pump();
            let child = outcome(&child).unwrap().unwrap();
            assert_eq!(pair.b.session.stats().unpinned_exports, 1, "{kind:?}");

            // A minute idle: nothing but liveness frames, and nobody is lost.
            both_talk(&mut pair, 120);
            assert!(!pair.a.host.stopped && !pair.b.host.stopped, "{kind:?}: an idle connection was lost");
            assert_eq!(pair.a.session.phase(), Phase::Open, "{kind:?}");

            if silent_side_is_the_server {
                // The client hears nothing more; a call it makes fails with the loss.
                let pending = child.call_method::<i64>("ping", ());
                // Its own expiry counts on the real clock, which this test does not move.
                pending.set_expiry(None);
                let waited = silence_until_lost(&mut pair.a);
                assert_lost_within_the_bound(kind, "client", &pair.a, waited);
                assert!(
                    matches!(outcome(&pending), Some(Err(Error::ConnectionClosed(ref m))) if m.contains("peer lost")),
                    "{kind:?}: the pending call fails with the loss: {:?}",
                    outcome(&pending)
                );
            } else {
                // The server hears nothing more: it declares the client lost and, once the
                // connection stops, frees what it exported to it.
                let waited = silence_until_lost(&mut pair.b);
                assert_lost_within_the_bound(kind, "server", &pair.b, waited);
                pair.b.session.stopped();
                assert_eq!(pair.b.session.stats().exports, 0, "{kind:?}: exports freed");
            }
        }
    }
}

#[test]
fn a_busy_peer_with_a_long_call_and_a_full_in_flight_cap_is_never_lost() {
    for kind in BOTH {
        let gate = Arc::new(Mutex::new(Vec::new()));
        let now = Instant::now();
        // The client allows one call in flight; the server sends no liveness frames of its own,
        // so the client hears from it only through the answers to its pings.
        let a = Side::new(kind, Service::void(), Config::default().max_in_flight(1), now);
        let server_config = Config::default().peer_timeout(None);
        let b = Side::new(kind, Service::shared(calculator(gate.clone())), server_config, now);
        let mut pair = Pair { a, b };
        pair.pump();
        let root = root(&mut pair);
        let slow = root.call_method::<i64>("slow", ());
        slow.set_expiry(None);
        let queued = root.call_method::<i64>("add", (1, 2));
        queued.set_expiry(None);
        pair.pump();
        assert_eq!(pair.a.session.stats().pending, 1, "{kind:?}: the cap is full");
        assert_eq!(pair.a.session.stats().queued, 1, "{kind:?}: a call waits behind it");

        // Four times the timeout with the server busy on the call.
        both_talk(&mut pair, 120);
        assert!(!pair.a.host.stopped && !pair.b.host.stopped, "{kind:?}: a busy peer was declared lost");
        assert_eq!(pair.a.session.stats().queued, 1, "{kind:?}: the pings did not take the slot");

        // The call finishes; the queued one goes out and gets its answer.
        let _ = gate.lock().unwrap().pop().expect("the slow call runs").send(5);
        both_talk(&mut pair, 2);
        assert_eq!(outcome(&slow).unwrap().unwrap(), 5, "{kind:?}");
        assert_eq!(outcome(&queued).unwrap().unwrap(), 3, "{kind:?}");
    }
}
