//! Guards forwarding across dialects: a netref handed by a middle process from a connection of
//! one dialect to a peer on a connection of the other (RPyC 6 and native) works as between two
//! native connections — calls, attributes, special requests, errors (their kinds kept), a
//! callback that crosses both hops, identity (one netref per object and per class, the owner's
//! own object when it goes home), releases reaching the owner (DEL counts mapped onto the
//! forwarding exports), expiry, and a lost owner failing forwarded calls fast. Both directions:
//! an RPyC client in front of a native owner, and a native client in front of an RPyC owner.

mod common;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use common::{counter_object, wait_until};
use netref::{kinds, prelude::*, RemoteError, Server};

const T: Duration = Duration::from_secs(10);

/// What the owner's object lets the test observe.
#[derive(Default)]
struct Probe {
    waits_started: AtomicUsize,
    waits_dropped: AtomicUsize,
    noted: AtomicUsize,
}

/// Counts the drop of a `wait` call's work on the owner.
struct DropGuard(Arc<Probe>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.waits_dropped.fetch_add(1, Ordering::SeqCst);
    }
}

/// The owner's root object.
fn owner(probe: Arc<Probe>) -> Object {
    let noted = probe.clone();
    let (class_a, class_b) = (class("demo.A"), class("demo.B"));
    Object::builder("demo.Owner")
        .method("add", |a: i64, b: i64| a + b)
        .try_method("div", |a: i64, b: i64| {
            if b == 0 {
                Err(RemoteError::new(kinds::ZERO_DIVISION_ERROR, "division by zero"))
            } else {
                Ok(a / b)
            }
        })
        .try_method("lookup", |key: String| Err::<i64, _>(RemoteError::new(kinds::KEY_ERROR, key)))
        .try_async_method("call_me", |cb: NetRef, x: i64| async move {
            let r: i64 = cb.call((x,)).await?;
            Ok::<_, netref::Error>(r + 1)
        })
        // The instance id of `r` if it is an object of this side (a netref that came home).
        .method("whose", |r: NetRef| r.as_local().map(|o| o.instance_id()))
        .method("identity", |r: NetRef| r)
        .method("make_counter", |start: i64| counter_object(start))
        .method("note", move |x: usize| {
            noted.noted.fetch_add(x, Ordering::SeqCst);
        })
        .async_method("wait", move || {
            let probe = probe.clone();
            async move {
                probe.waits_started.fetch_add(1, Ordering::SeqCst);
                let _guard = DropGuard(probe);
                std::future::pending::<i64>().await
            }
        })
        .method("class_a", move || class_a.clone())
        .method("class_b", move || class_b.clone())
        .attr("answer", 42)
        .repr(|| "<demo.Owner>".to_owned())
        .display(|| "the owner".to_owned())
        .hash_with(|| 1234)
        .instance_of("demo.Base")
        .build()
}

/// A class object of the owner (RPyC names a class `(name, class_id, 0)`, so there is one
/// object per class name): calling it makes an instance whose `kind` is the class's name.
fn class(name: &'static str) -> Object {
    Object::builder(name)
        .callable(move || Object::builder(name).attr("kind", name).build())
        .instance_of("builtins.type")
        .build()
}

/// The middle's root object, served to the client: hands out the owner's objects.
fn gateway(to_owner: Peer) -> Object {
    let (p1, p2) = (to_owner.clone(), to_owner);
    Object::builder("demo.Gateway")
        .try_async_method("backend", move || {
            let p = p1.clone();
            async move { p.root().await }
        })
        .try_async_method("counter", move |start: i64| {
            let p = p2.clone();
            async move { p.root().await?.call_method::<NetRef>("make_counter", (start,)).await }
        })
        .method("pass", |r: NetRef| r)
        .build()
}

/// Owner, middle and client, with the middle's two connections in different dialects.
struct World {
    /// The owner's end of the owner–middle connection.
    owner: Peer,
    /// The middle's end of the owner–middle connection.
    middle_up: Peer,
    /// The middle's end of the middle–client connection.
    middle_down: Peer,
    /// The client's end of the middle–client connection.
    client: Peer,
    probe: Arc<Probe>,
    owner_id: u64,
    /// The listener of whichever hop speaks RPyC (shut down at the end).
    server: Server,
}

/// Which hop speaks RPyC.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// An RPyC client in front of a native owner: client =RPyC= middle —native— owner.
    RpycFront,
    /// A native client in front of an RPyC owner: client —native— middle =RPyC= owner.
    RpycBack,
}

async fn world(shape: Shape) -> World {
    let probe = Arc::new(Probe::default());
    let root = owner(probe.clone());
    let owner_id = root.instance_id();
    match shape {
        Shape::RpycFront => {
            let (owner, middle_up) =
                netref::connect_pair_with(Service::shared(root), Config::default(), Service::void(), Config::default());
            let server = Server::builder(Service::shared(gateway(middle_up.clone())))
                .rpyc()
                .bind_tcp("127.0.0.1:0")
                .await
                .unwrap();
            let addr = server.local_addr().unwrap().to_string();
            let client = netref::connect(addr.as_str()).rpyc().await.unwrap();
            client.ping(Value::None).await.unwrap();
            let middle_down = server.peers().pop().expect("the client's connection");
            World { owner, middle_up, middle_down, client, probe, owner_id, server }
        }
        Shape::RpycBack => {
            let server = Server::builder(Service::shared(root)).rpyc().bind_tcp("127.0.0.1:0").await.unwrap();
            let addr = server.local_addr().unwrap().to_string();
            let middle_up = netref::connect(addr.as_str()).rpyc().await.unwrap();
            middle_up.ping(Value::None).await.unwrap();
            let owner = server.peers().pop().expect("the middle's connection");
            let (middle_down, client) = netref::connect_pair_with(
                Service::shared(gateway(middle_up.clone())),
                Config::default(),
                Service::void(),
                Config::default(),
            );
            World { owner, middle_up, middle_down, client, probe, owner_id, server }
        }
    }
}

impl World {
    /// The owner's root as the client sees it, forwarded by the middle.
    async fn backend(&self) -> NetRef {
        let gw = self.client.root().await.unwrap();
        gw.call_method("backend", ()).await.unwrap()
    }

    /// Every connection holds nothing but pinned exports, and no proxies but the roots.
    async fn all_released(&self) {
        for (name, peer) in
            [("client", &self.client), ("middle down", &self.middle_down), ("middle up", &self.middle_up)]
        {
            wait_until(T, &format!("the {name} connection holds nothing"), || async {
                peer.stats().await.is_ok_and(|s| s.unpinned_exports == 0 && s.imports <= 1)
            })
            .await;
        }
        wait_until(T, "the owner holds nothing but its root", || async {
            self.owner.stats().await.is_ok_and(|s| s.unpinned_exports == 0)
        })
        .await;
    }

    async fn finish(self) {
        self.client.close_within("done", Duration::from_secs(3)).await;
        self.middle_up.close_within("done", Duration::from_secs(3)).await;
        self.server.shutdown(Duration::from_secs(1)).await;
    }
}

async fn calls_attributes_and_errors_through_the_middle(shape: Shape) {
    let w = world(shape).await;
    let backend = w.backend().await;
    assert_eq!(backend.type_name(), "demo.Owner", "the forwarded netref keeps the owner's type");
    assert_eq!(backend.call_method::<i64>("add", (1, 2)).await.unwrap(), 3);
    assert_eq!(backend.getattr::<i64>("answer").await.unwrap(), 42);
    let add: NetRef = backend.getattr("add").await.unwrap();
    assert_eq!(add.call::<i64>((20, 22)).await.unwrap(), 42, "a bound method read through the middle");
    assert_eq!(backend.repr().await.unwrap(), "<demo.Owner>");
    assert_eq!(backend.str().await.unwrap(), "the owner");
    assert_eq!(backend.remote_hash().await.unwrap(), 1234);
    assert!(backend.instance_of("demo.Base").await.unwrap());
    assert!(backend.dir().await.unwrap().contains(&"add".to_owned()));
    let methods = backend.inspect().await.unwrap();
    assert!(methods.contains(&"call_me".to_owned()) && methods.contains(&"add".to_owned()), "{methods:?}");
    // The owner's errors pass with their kinds.
    let err = backend.call_method::<i64>("div", (1, 0)).await.unwrap_err();
    let e = err.as_remote().expect("raised by the owner");
    assert!(e.is(kinds::ZERO_DIVISION_ERROR) && e.message == "division by zero", "{e}");
    let err = backend.call_method::<i64>("lookup", ("missing",)).await.unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.is(kinds::KEY_ERROR)), "{err}");
    let err = backend.getattr::<Value>("nothing_here").await.unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.is(kinds::ATTRIBUTE_ERROR)), "{err}");
    // Copying by value stays refused.
    let err = backend.obtain::<Value>().await.unwrap_err();
    assert!(err.as_remote().is_some(), "{err}");
    // One-way calls reach the owner.
    backend.notify_method("note", (5,)).unwrap();
    wait_until(T, "the one-way call reaches the owner", || async { w.probe.noted.load(Ordering::SeqCst) == 5 }).await;
    drop((backend, add));
    w.all_released().await;
    w.finish().await;
}

async fn a_callback_crosses_both_hops(shape: Shape) {
    let w = world(shape).await;
    let backend = w.backend().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let times_ten = Object::function(move |x: i64| {
        counted.fetch_add(1, Ordering::SeqCst);
        x * 10
    });
    assert_eq!(backend.call_method::<i64>("call_me", (times_ten.clone(), 4)).await.unwrap(), 41);
    assert_eq!(backend.call_method::<i64>("call_me", (times_ten, 5)).await.unwrap(), 51);
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the owner called the client's function through the middle");
    // A callback that fails (it takes a string, the owner passes an int): its error reaches the
    // client with its kind, through both hops.
    let wants_text = Object::function(|s: String| s.len() as i64);
    let err = backend.call_method::<i64>("call_me", (wants_text, 1)).await.unwrap_err();
    let e = err.as_remote().expect("raised by the callback");
    assert!(e.is(kinds::TYPE_ERROR), "{e}");
    drop(backend);
    w.all_released().await;
    w.finish().await;
}

async fn identity_and_going_home(shape: Shape) {
    let w = world(shape).await;
    let gw = w.client.root().await.unwrap();
    let first: NetRef = gw.call_method("backend", ()).await.unwrap();
    let second: NetRef = gw.call_method("backend", ()).await.unwrap();
    assert_eq!(first, second, "the same object forwarded twice is one netref at the client");
    assert_eq!(first.id_pack(), second.id_pack());
    let s = w.middle_down.stats().await.unwrap();
    assert_eq!(s.unpinned_exports, 1, "one forwarding entry, counted twice: {s:?}");
    // Sent to the owner through the middle, it arrives as the owner's own object.
    let whose: Option<u64> = first.call_method("whose", (first.clone(),)).await.unwrap();
    assert_eq!(whose, Some(w.owner_id), "a forwarded netref going home is the original object");
    let back: NetRef = first.call_method("identity", (first.clone(),)).await.unwrap();
    assert_eq!(back, first);
    // Handed to the middle's own object and back: still the same netref.
    let passed: NetRef = gw.call_method("pass", (first.clone(),)).await.unwrap();
    assert_eq!(passed, first);
    assert!(first.remote_cmp("__eq__", second.clone()).await.unwrap(), "equal at the owner");
    drop((gw, first, second, back, passed));
    w.all_released().await;
    w.finish().await;
}

async fn classes_keep_their_identity(shape: Shape) {
    let w = world(shape).await;
    let backend = w.backend().await;
    let a: NetRef = backend.call_method("class_a", ()).await.unwrap();
    let b: NetRef = backend.call_method("class_b", ()).await.unwrap();
    assert_eq!((a.type_name(), b.type_name()), ("demo.A", "demo.B"));
    assert_ne!(a, b, "two classes are two netrefs");
    let a_again: NetRef = backend.call_method("class_a", ()).await.unwrap();
    assert_eq!(a_again.type_name(), "demo.A");
    assert_eq!(a_again, a, "the same class handed out twice is one netref");
    // A class sent home names the owner's class.
    let back: NetRef = backend.call_method("identity", (b.clone(),)).await.unwrap();
    assert_eq!(back, b);
    let made_a: NetRef = a.call(()).await.unwrap();
    let made_b: NetRef = b.call(()).await.unwrap();
    assert_eq!(made_a.getattr::<String>("kind").await.unwrap(), "demo.A");
    assert_eq!(made_b.getattr::<String>("kind").await.unwrap(), "demo.B");
    drop((backend, a, b, a_again, back, made_a, made_b));
    w.all_released().await;
    w.finish().await;
}

async fn releases_reach_the_owner(shape: Shape) {
    let w = world(shape).await;
    let gw = w.client.root().await.unwrap();
    let before = w.owner.stats().await.unwrap().unpinned_exports;
    let counters: Vec<NetRef> =
        futures::future::try_join_all((0..3).map(|i| gw.call_method::<NetRef>("counter", (i,)))).await.unwrap();
    for (i, c) in counters.iter().enumerate() {
        assert_eq!(c.call_method::<i64>("incr", ()).await.unwrap(), i as i64 + 1);
    }
    let s = w.owner.stats().await.unwrap();
    assert_eq!(s.unpinned_exports, before + 3, "the owner holds the three counters while the client does: {s:?}");
    let s = w.middle_down.stats().await.unwrap();
    assert!(s.unpinned_exports >= 3, "a forwarding entry per counter: {s:?}");
    // Dropping one proxy frees exactly that counter at the owner.
    let mut counters = counters.into_iter();
    drop(counters.next());
    wait_until(T, "the owner frees the first counter", || async {
        w.owner.stats().await.is_ok_and(|s| s.unpinned_exports == before + 2)
    })
    .await;
    drop(counters);
    drop(gw);
    w.all_released().await;
    w.finish().await;
}

async fn expiry_at_the_client(shape: Shape) {
    let w = world(shape).await;
    let backend = w.backend().await;
    let call = backend.call_method::<i64>("wait", ());
    call.set_expiry(Some(Duration::from_millis(300)));
    wait_until(T, "the owner starts the work", || async { w.probe.waits_started.load(Ordering::SeqCst) == 1 }).await;
    let err = tokio::time::timeout(T, call).await.expect("expiry ends the call").unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    // The connections stay usable after an expired call.
    assert_eq!(backend.call_method::<i64>("add", (2, 2)).await.unwrap(), 4);
    match shape {
        // The native far leg carries the cancel: but the RPyC client cannot send one, so the
        // middle's leg runs until the client's connection ends.
        Shape::RpycFront => {
            w.client.close_within("the client goes away", Duration::from_secs(3)).await;
            wait_until(T, "the owner's work is dropped when the client's connection ends", || async {
                w.probe.waits_dropped.load(Ordering::SeqCst) == 1
            })
            .await;
        }
        // The client's deadline reaches the middle, whose RPyC leg expires with it (its late
        // reply dropped); RPyC has no cancel frame, so the owner's work ends with the middle's
        // RPyC connection.
        Shape::RpycBack => {
            wait_until(T, "the middle stops waiting on the far leg", || async {
                w.middle_up.stats().await.is_ok_and(|s| s.pending == 0)
            })
            .await;
            w.middle_up.close_within("the middle goes away", Duration::from_secs(3)).await;
            wait_until(T, "the owner's work is dropped when the middle's connection ends", || async {
                w.probe.waits_dropped.load(Ordering::SeqCst) == 1
            })
            .await;
        }
    }
    drop(backend);
    w.finish().await;
}

async fn losing_the_owner_fails_forwarded_calls_naming_the_hop(shape: Shape) {
    let w = world(shape).await;
    let backend = w.backend().await;
    let pending = backend.call_method::<i64>("wait", ());
    wait_until(T, "the owner starts the work", || async { w.probe.waits_started.load(Ordering::SeqCst) == 1 }).await;
    w.owner.close_within("the owner goes away", Duration::ZERO).await;
    let err = tokio::time::timeout(T, pending).await.expect("no hang").unwrap_err();
    let e = err.as_remote().unwrap_or_else(|| panic!("a remote error from the middle: {err}"));
    assert!(e.is(kinds::CONNECTION_ERROR) && e.message.contains("forwarding hop"), "{e}");
    assert!(e.message.contains("demo.Owner"), "{e}");
    // Later calls fail at once, the same way, and the client's own connection stays up.
    let err = tokio::time::timeout(T, backend.call_method::<i64>("add", (1, 2))).await.expect("no hang").unwrap_err();
    assert!(
        err.as_remote().is_some_and(|e| e.is(kinds::CONNECTION_ERROR) && e.message.contains("forwarding hop")),
        "{err}"
    );
    assert!(!w.client.is_closed(), "only the far leg is lost");
    drop(backend);
    wait_until(T, "the middle frees the forwarding entry", || async {
        w.middle_down.stats().await.is_ok_and(|s| s.unpinned_exports == 0)
    })
    .await;
    w.finish().await;
}

macro_rules! in_both_shapes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_rt::test]
            async fn rpyc_client_native_owner() {
                super::$name(super::Shape::RpycFront).await
            }
            #[actix_rt::test]
            async fn native_client_rpyc_owner() {
                super::$name(super::Shape::RpycBack).await
            }
        }
    )*};
}

in_both_shapes!(
    calls_attributes_and_errors_through_the_middle,
    a_callback_crosses_both_hops,
    identity_and_going_home,
    classes_keep_their_identity,
    releases_reach_the_owner,
    expiry_at_the_client,
    losing_the_owner_fails_forwarded_calls_naming_the_hop,
);
