//! Requests reach the connection actor through a shared request queue, a batch per actor wake-up.
//! Guards what that must not change: netref requests (calls and one-way calls) keep the order
//! they were made in, request messages keep theirs, requests made before `close()` go out
//! before the `Close` frame, and requests made once the actor is gone fail instead of hanging.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{connect_default, wait_until, Transport};
use netref::{dev::messages, prelude::*};

/// An object recording the numbers pushed to it, in arrival order.
fn recorder(log: Arc<Mutex<Vec<i64>>>) -> Object {
    Object::builder("test.Recorder")
        .method("push", move |n: i64| {
            log.lock().unwrap().push(n);
            n
        })
        .build()
}

async fn one_way_calls_and_calls_keep_their_order(t: Transport) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (_server, client) = connect_default(t, Service::shared(recorder(log.clone()))).await;
    let root = client.root().await.unwrap();
    // A burst mixing one-way calls and calls, without awaiting.
    let mut calls = Vec::new();
    for i in 0..300i64 {
        if i % 2 == 0 {
            root.notify_method("push", (i,)).unwrap();
        } else {
            calls.push(root.call_method::<i64>("push", (i,)));
        }
    }
    for c in calls {
        c.await.unwrap();
    }
    wait_until(Duration::from_secs(5), "every request served", || async { log.lock().unwrap().len() == 300 }).await;
    assert_eq!(*log.lock().unwrap(), (0..300).collect::<Vec<i64>>(), "requests were served out of order");
}

/// Request messages sent to the actor keep their order among themselves, and follow the netref
/// requests made before them once those were handed to the actor (here: awaited).
async fn request_messages_keep_their_order(t: Transport) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (_server, client) = connect_default(t, Service::shared(recorder(log.clone()))).await;
    let root = client.root().await.unwrap();
    root.call_method::<i64>("push", (0,)).await.unwrap();
    for i in 1..100i64 {
        client.addr().do_send(messages::CallAttr {
            target: root.clone(),
            name: "push".into(),
            args: vec![Value::Int(i)],
            kwargs: vec![],
        });
    }
    wait_until(Duration::from_secs(5), "every request served", || async { log.lock().unwrap().len() == 100 }).await;
    assert_eq!(*log.lock().unwrap(), (0..100).collect::<Vec<i64>>(), "request messages were served out of order");
}

async fn requests_made_before_close_are_sent_before_it(t: Transport) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (_server, client) = connect_default(t, Service::shared(recorder(log.clone()))).await;
    let root = client.root().await.unwrap();
    for i in 0..200i64 {
        root.notify_method("push", (i,)).unwrap();
    }
    client.close().await;
    wait_until(Duration::from_secs(5), "every one-way call served", || async { log.lock().unwrap().len() == 200 })
        .await;
    assert_eq!(*log.lock().unwrap(), (0..200).collect::<Vec<i64>>());
}

over_both_transports!(
    one_way_calls_and_calls_keep_their_order,
    request_messages_keep_their_order,
    requests_made_before_close_are_sent_before_it
);

/// The actor's arbiter stops under it: calls made afterwards fail at once, none hangs.
#[test]
fn requests_after_the_actor_is_gone_fail() {
    let sys = actix_rt::System::new();
    let arbiter = actix_rt::Arbiter::new();
    let (tx, rx) = std::sync::mpsc::channel();
    arbiter.spawn(async move {
        let (client, server) = netref::connect_pair(Service::void(), Service::shared(recorder(Arc::default())));
        let root = client.root().await.unwrap();
        tx.send((client, server, root)).unwrap();
    });
    let (client, _server, root) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    arbiter.stop();
    arbiter.join().unwrap();
    sys.block_on(async move {
        for i in 0..100i64 {
            let r = tokio::time::timeout(Duration::from_secs(5), root.call_method::<i64>("push", (i,)))
                .await
                .expect("a call on a stopped connection must not hang");
            assert!(r.is_err(), "a call on a stopped connection succeeded");
        }
        assert!(client.is_closed());
    });
}
