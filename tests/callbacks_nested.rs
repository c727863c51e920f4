//! Guards callbacks: a local closure or object passed as an argument is called back by the peer
//! during the outer call, nested at least three deep in both directions, without deadlock.

mod common;

use std::{sync::Arc, time::Duration};

use common::{calculator, connect, connect_default, Transport};
use netref::prelude::*;

async fn callback_during_call(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let times_ten = Object::function(|v: i64| v * 10);
    let r: i64 = calc.call_method("call_me", (times_ten, 4)).await.unwrap();
    assert_eq!(r, 41);
}

/// A "ping-pong" object on each side: `bounce(other, depth)` calls `other.bounce(self, depth-1)`
/// until depth 0, so calls nest alternately on both connections' sides.
fn bouncer(name: &'static str) -> Object {
    Object::builder("demo.Bouncer")
        .try_async_method("bounce", move |other: NetRef, me: NetRef, depth: u32| async move {
            if depth == 0 {
                return Ok::<_, netref::Error>(vec![name.to_owned()]);
            }
            let mut trail: Vec<String> = other.call_method("bounce", (&me, &other, depth - 1)).await?;
            trail.push(name.to_owned());
            Ok(trail)
        })
        .build()
}

async fn nested_both_directions(t: Transport) {
    let (_server, client) =
        connect(t, Service::shared(bouncer("server")), Config::default(), Service::void(), Config::default()).await;
    let remote = client.root().await.unwrap();
    let local = NetRef::from(bouncer("client"));
    let trail: Vec<String> =
        tokio::time::timeout(Duration::from_secs(10), remote.call_method("bounce", (&local, &remote, 6u32)))
            .await
            .expect("nested callbacks deadlocked")
            .unwrap();
    // bounce(server) -> client.bounce -> server.bounce -> ... 7 frames deep.
    assert_eq!(trail.len(), 7);
    assert_eq!(trail.first().map(String::as_str), Some("server"));
    assert_eq!(trail.iter().filter(|n| *n == "client").count(), 3);
}

async fn local_object_returns_as_itself(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let mine = NetRef::from(Object::function(|| 7));
    // Sent to the peer (REMOTE_REF), returned unchanged (LOCAL_REF): it is the original object.
    let back: NetRef = calc.call_method("identity", (&mine,)).await.unwrap();
    assert!(back.is_local());
    assert_eq!(back, mine);
    // And a netref of the peer's object sent back resolves to the peer's own object there.
    let again: NetRef = calc.call_method("identity", (&calc,)).await.unwrap();
    assert_eq!(again, calc);
}

over_both_transports!(callback_during_call, nested_both_directions, local_object_returns_as_itself);
