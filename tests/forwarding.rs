//! Guards forwarding netrefs between connections (RPyC-over-RPyC): a netref of the owner's
//! connection handed by a middle process to a client on another connection works at the client
//! — calls, callbacks, attributes, iteration, special requests, typed actor messages, one-way
//! calls — keeps its identity (one netref per object, the owner's own object when it goes
//! home), is released all the way to the owner, carries the client's expiry to the far leg,
//! fails fast naming the hop when the owner is lost, forwards through chains, and leaves
//! nothing exported anywhere once every user has dropped every clone.

mod common;

use std::{
    sync::{
        atomic::{AtomicI64, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use actix::prelude::*;
use common::{connect, counter_object, wait_until, Transport};
use futures::StreamExt;
use netref::{expose, kinds, prelude::*, ActorRef, RemoteActor, RemoteError, RemoteMessage};
use serde::{Deserialize, Serialize};

const T: Duration = Duration::from_secs(10);

/// What the owner's object lets the test observe.
#[derive(Default)]
struct Probe {
    waits_started: AtomicUsize,
    waits_dropped: AtomicUsize,
    noted: AtomicI64,
}

/// Counts the drop of a `wait` call's work on the owner.
struct DropGuard(Arc<Probe>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.waits_dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Tally {
    total: i64,
}

impl Actor for Tally {
    type Context = Context<Self>;
}

impl RemoteActor for Tally {
    const NAME: &'static str = "test.Tally";
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "i64")]
struct Add(i64);

impl RemoteMessage for Add {
    const NAME: &'static str = "tally.Add";
}

impl Handler<Add> for Tally {
    type Result = i64;
    fn handle(&mut self, msg: Add, _: &mut Context<Self>) -> i64 {
        self.total += msg.0;
        self.total
    }
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "()")]
struct Stop;

impl RemoteMessage for Stop {
    const NAME: &'static str = "tally.Stop";
}

impl Handler<Stop> for Tally {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// The owner's (A's) root object.
fn owner(probe: Arc<Probe>) -> Object {
    let noted = probe.clone();
    Object::builder("demo.Owner")
        .method("add", |a: i64, b: i64| a + b)
        .try_method("div", |a: i64, b: i64| {
            if b == 0 {
                Err(RemoteError::new(kinds::ZERO_DIVISION_ERROR, "division by zero"))
            } else {
                Ok(a / b)
            }
        })
        .try_async_method("call_me", |cb: NetRef, x: i64| async move {
            let r: i64 = cb.call((x,)).await?;
            Ok::<_, netref::Error>(r + 1)
        })
        // The instance id of `r` if it is an object of this side (a netref that came home).
        .method("whose", |r: NetRef| r.as_local().map(|o| o.instance_id()))
        .method("identity", |r: NetRef| r)
        .method("make_counter", |start: i64| counter_object(start))
        .method("note", move |x: i64| {
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
        .attr("answer", 42)
        .iterable(|| 0..25i64)
        .context_manager(|| "entered", |_| false)
        .repr(|| "<demo.Owner>".to_owned())
        .display(|| "the owner".to_owned())
        .hash_with(|| 1234)
        .instance_of("demo.Base")
        .build()
}

/// The middle's root object, served to its client: hands out the owner's objects.
fn gateway(to_owner: Peer) -> Object {
    let (p1, p2, p3) = (to_owner.clone(), to_owner.clone(), to_owner);
    Object::builder("demo.Gateway")
        .try_async_method("backend", move || {
            let p = p1.clone();
            async move { p.root().await }
        })
        .try_async_method("counter", move |start: i64| {
            let p = p2.clone();
            async move { p.root().await?.call_method::<NetRef>("make_counter", (start,)).await }
        })
        .try_async_method("tally", move || {
            let p = p3.clone();
            async move { p.lookup("tally").await }
        })
        .method("pass", |r: NetRef| r)
        .build()
}

/// Owner A, middle M and client C: A serves [`owner`] to M, M serves [`gateway`] to C.
struct World {
    /// A's end of the A–M connection.
    owner: Peer,
    /// M's end of the A–M connection.
    middle_up: Peer,
    /// M's end of the M–C connection.
    middle_down: Peer,
    /// C's end of the M–C connection.
    client: Peer,
    probe: Arc<Probe>,
    owner_id: u64,
}

async fn world(t: Transport, middle_down_cfg: Config) -> World {
    let probe = Arc::new(Probe::default());
    let root = owner(probe.clone());
    let owner_id = root.instance_id();
    let tally = expose(Tally::default().start()).handle::<Add>().handle::<Stop>();
    let owner_service = Service::shared(root).export("tally", tally);
    let (owner, middle_up) = connect(t, owner_service, Config::default(), Service::void(), Config::default()).await;
    let (middle_down, client) =
        connect(t, Service::shared(gateway(middle_up.clone())), middle_down_cfg, Service::void(), Config::default())
            .await;
    World { owner, middle_up, middle_down, client, probe, owner_id }
}

/// Every party's tables hold nothing but pinned exports.
async fn all_released(peers: &[&Peer]) {
    for peer in peers {
        wait_until(T, &format!("connection {} holds nothing", peer.id()), || async {
            let s = peer.stats().await.unwrap();
            s.unpinned_exports == 0 && s.imports == 0
        })
        .await;
    }
}

impl World {
    async fn all_released(&self) {
        all_released(&[&self.client, &self.middle_down, &self.middle_up, &self.owner]).await;
    }

    /// The owner's root as the client sees it, forwarded by the middle.
    async fn backend(&self) -> NetRef {
        let gw = self.client.root().await.unwrap();
        gw.call_method("backend", ()).await.unwrap()
    }
}

async fn calls_and_callbacks_through_the_middle(t: Transport) {
    let w = world(t, Config::default()).await;
    let backend = w.backend().await;
    assert_eq!(backend.type_name(), "demo.Owner", "the forwarded netref keeps the owner's type");
    assert!(!backend.is_local());
    assert_eq!(backend.call_method::<i64>("add", (1, 2)).await.unwrap(), 3);
    // Arguments that are objects of the client travel on as forwarded callbacks.
    let times_ten = Object::function(|x: i64| x * 10);
    assert_eq!(backend.call_method::<i64>("call_me", (times_ten, 4)).await.unwrap(), 41);
    // The owner's errors pass unchanged.
    let err = backend.call_method::<i64>("div", (1, 0)).await.unwrap_err();
    let e = err.as_remote().expect("raised by the owner");
    assert!(e.is(kinds::ZERO_DIVISION_ERROR) && e.message == "division by zero", "{e}");
    // A bound method read through the middle is itself forwarded, and callable.
    let add: NetRef = backend.getattr("add").await.unwrap();
    assert_eq!(add.call::<i64>((20, 22)).await.unwrap(), 42);
    // Keyword arguments reach the owner as sent (its typed method refuses them by name).
    let kwargs = std::collections::BTreeMap::from([("a", 5), ("b", 6)]);
    let err = backend.call_method_kw::<i64>("add", (), kwargs).await.unwrap_err();
    assert!(err.to_string().contains("unexpected keyword arguments: a, b"), "{err}");
    drop((backend, add));
    w.all_released().await;
}

async fn attributes_iteration_and_special_requests_through_the_middle(t: Transport) {
    let w = world(t, Config::default()).await;
    let backend = w.backend().await;
    assert_eq!(backend.getattr::<i64>("answer").await.unwrap(), 42);
    assert_eq!(backend.repr().await.unwrap(), "<demo.Owner>");
    assert_eq!(backend.str().await.unwrap(), "the owner");
    assert_eq!(backend.remote_hash().await.unwrap(), 1234);
    assert!(backend.instance_of("demo.Base").await.unwrap());
    assert!(backend.dir().await.unwrap().contains(&"add".to_owned()));
    assert!(backend.inspect().await.unwrap().contains(&"call_me".to_owned()));
    // Comparison with itself: the forwarded netref goes home as the owner's own object.
    assert!(backend.remote_cmp("__eq__", backend.clone()).await.unwrap());
    let items: Vec<i64> = backend.iter::<i64>().map(|r| r.unwrap()).collect().await;
    assert_eq!(items, (0..25).collect::<Vec<_>>());
    assert_eq!(backend.enter::<String>().await.unwrap(), "entered");
    assert!(!backend.exit(None).await.unwrap());
    // One-way calls are forwarded one way.
    backend.notify_method("note", (5,)).unwrap();
    wait_until(T, "the one-way call reaches the owner", || async { w.probe.noted.load(Ordering::SeqCst) == 5 }).await;
    drop(backend);
    w.all_released().await;
}

async fn typed_actor_messages_through_the_middle(t: Transport) {
    let w = world(t, Config::default()).await;
    let gw = w.client.root().await.unwrap();
    let netref: NetRef = gw.call_method("tally", ()).await.unwrap();
    let tally = ActorRef::<Tally>::from_netref(netref).unwrap();
    assert_eq!(tally.send(Add(2)).await.unwrap(), 2);
    tally.do_send(Add(3)).unwrap();
    assert_eq!(tally.send(Add(4)).await.unwrap(), 9, "the one-way message arrived first, in order");
    // A watch (a request without expiry) waits through the middle until the actor stops.
    let down = tally.watch();
    tally.send(Stop).await.unwrap();
    let down = tokio::time::timeout(T, down).await.expect("the watch ends");
    assert!(matches!(down, netref::Down::Stopped), "{down:?}");
    drop((gw, tally));
    // The tally is a named (pinned) export on the owner; everything else is released.
    w.all_released().await;
}

async fn identity_rules(t: Transport) {
    let w = world(t, Config::default()).await;
    let gw = w.client.root().await.unwrap();
    let first: NetRef = gw.call_method("backend", ()).await.unwrap();
    let second: NetRef = gw.call_method("backend", ()).await.unwrap();
    assert_eq!(first, second, "the same object forwarded twice is one netref at the client");
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
    drop((gw, first, second, back, passed));
    w.all_released().await;
}

async fn release_reaches_the_owner(t: Transport) {
    let w = world(t, Config::default()).await;
    let gw = w.client.root().await.unwrap();
    let counters: Vec<NetRef> =
        futures::future::try_join_all((0..3).map(|i| gw.call_method::<NetRef>("counter", (i,)))).await.unwrap();
    for c in &counters {
        let _: i64 = c.call_method("incr", ()).await.unwrap();
    }
    let s = w.owner.stats().await.unwrap();
    assert_eq!(s.unpinned_exports, 3, "the owner holds the three counters while the client does: {s:?}");
    let s = w.middle_down.stats().await.unwrap();
    assert_eq!(s.unpinned_exports, 3, "three forwarding entries: {s:?}");
    drop(counters);
    drop(gw);
    w.all_released().await;
}

async fn expiry_at_the_client_cancels_the_far_leg(t: Transport) {
    let w = world(t, Config::default()).await;
    let backend = w.backend().await;
    let call = backend.call_method::<i64>("wait", ());
    call.set_expiry(Some(Duration::from_millis(300)));
    wait_until(T, "the owner starts the work", || async { w.probe.waits_started.load(Ordering::SeqCst) == 1 }).await;
    let err = call.await.unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    wait_until(T, "the owner's work is dropped", || async { w.probe.waits_dropped.load(Ordering::SeqCst) == 1 }).await;
    // Dropping a pending call at the client cancels the far leg too.
    let call = backend.call_method::<i64>("wait", ());
    wait_until(T, "the owner starts the work", || async { w.probe.waits_started.load(Ordering::SeqCst) == 2 }).await;
    drop(call);
    wait_until(T, "the owner's work is dropped", || async { w.probe.waits_dropped.load(Ordering::SeqCst) == 2 }).await;
    drop(backend);
    w.all_released().await;
}

async fn losing_the_owner_fails_forwarded_calls_fast_naming_the_hop(t: Transport) {
    let w = world(t, Config::default()).await;
    let backend = w.backend().await;
    let pending = backend.call_method::<i64>("wait", ());
    wait_until(T, "the owner starts the work", || async { w.probe.waits_started.load(Ordering::SeqCst) == 1 }).await;
    w.owner.close_within("the owner goes away", Duration::ZERO).await;
    let err = tokio::time::timeout(T, pending).await.expect("no hang").unwrap_err();
    let e = err.as_remote().unwrap_or_else(|| panic!("a remote error from the middle: {err}"));
    assert!(e.is(kinds::CONNECTION_ERROR), "{e}");
    assert!(e.message.contains("forwarding hop"), "{e}");
    assert!(e.message.contains("demo.Owner"), "{e}");
    // Later calls fail at once, the same way.
    let started = std::time::Instant::now();
    let err = backend.call_method::<i64>("add", (1, 2)).await.unwrap_err();
    assert!(
        err.as_remote().is_some_and(|e| e.is(kinds::CONNECTION_ERROR) && e.message.contains("forwarding hop")),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(!w.client.is_closed(), "only the far leg is lost");
    drop(backend);
    all_released(&[&w.client, &w.middle_down]).await;
}

async fn losing_the_client_releases_the_middles_imports(t: Transport) {
    let w = world(t, Config::default()).await;
    let backend = w.backend().await;
    let counter: NetRef = w.client.root().await.unwrap().call_method("counter", (7,)).await.unwrap();
    assert_eq!(w.owner.stats().await.unwrap().unpinned_exports, 1);
    w.client.close_within("the client goes away", Duration::ZERO).await;
    w.middle_down.closed().await;
    // The middle's forwarding entries went with the connection, and its imports of the owner's
    // objects with them.
    all_released(&[&w.middle_up, &w.owner]).await;
    drop((backend, counter));
}

async fn losing_the_middle_frees_both_ends(t: Transport) {
    let w = world(t, Config::default()).await;
    let backend = w.backend().await;
    let counter: NetRef = w.client.root().await.unwrap().call_method("counter", (7,)).await.unwrap();
    assert_eq!(w.owner.stats().await.unwrap().unpinned_exports, 1);
    // The middle goes away: both of its connections end.
    w.middle_down.close_within("the middle goes away", Duration::ZERO).await;
    w.middle_up.close_within("the middle goes away", Duration::ZERO).await;
    // The client and the owner see their connections end (the owner frees every export of
    // its connection then, as for any lost peer).
    w.client.closed().await;
    w.owner.closed().await;
    let err = backend.call_method::<i64>("add", (1, 2)).await.unwrap_err();
    assert!(matches!(err, Error::ConnectionClosed(_)), "the client's netrefs fail fast: {err}");
    drop((backend, counter));
}

async fn a_chain_of_depth_three(t: Transport) {
    // A → M1 → M2 → C: M2's gateway hands out what M1's gateway hands out.
    let w = world(t, Config::default()).await;
    let (m2_down, far_client) = connect(
        t,
        Service::shared(gateway_of_gateway(w.client.clone())),
        Config::default(),
        Service::void(),
        Config::default(),
    )
    .await;
    let gw2 = far_client.root().await.unwrap();
    let backend: NetRef = gw2.call_method("backend", ()).await.unwrap();
    assert_eq!(backend.type_name(), "demo.Owner");
    assert_eq!(backend.call_method::<i64>("add", (2, 3)).await.unwrap(), 5);
    let plus_one = Object::function(|x: i64| x + 100);
    assert_eq!(backend.call_method::<i64>("call_me", (plus_one, 1)).await.unwrap(), 102);
    let whose: Option<u64> = backend.call_method("whose", (backend.clone(),)).await.unwrap();
    assert_eq!(whose, Some(w.owner_id), "home through three hops is still the original");
    drop((gw2, backend));
    all_released(&[&far_client, &m2_down]).await;
    w.all_released().await;
}

/// A gateway in front of another gateway (`upstream`: this side's end of the connection to it).
fn gateway_of_gateway(upstream: Peer) -> Object {
    Object::builder("demo.Gateway2")
        .try_async_method("backend", move || {
            let p = upstream.clone();
            async move { p.root().await?.call_method::<NetRef>("backend", ()).await }
        })
        .build()
}

async fn a_forwarding_loop_ends_without_leaking(t: Transport) {
    // A serves its object to M on one connection; M's gateway, served back to A on a second
    // connection, hands A its own object: A reaches it through M (A → M → A).
    let probe = Arc::new(Probe::default());
    let root = owner(probe.clone());
    let owner_id = root.instance_id();
    let (a_up, m_up) = connect(t, Service::shared(root), Config::default(), Service::void(), Config::default()).await;
    let (m_down, a_down) =
        connect(t, Service::shared(gateway(m_up.clone())), Config::default(), Service::void(), Config::default()).await;
    let gw = a_down.root().await.unwrap();
    let looped: NetRef = gw.call_method("backend", ()).await.unwrap();
    assert!(!looped.is_local(), "on the second connection it is M's forwarding object");
    assert_eq!(looped.call_method::<i64>("add", (4, 5)).await.unwrap(), 9);
    let whose: Option<u64> = looped.call_method("whose", (looped.clone(),)).await.unwrap();
    assert_eq!(whose, Some(owner_id));
    // Passed back and forth: the one forwarding entry, counted.
    let again: NetRef = gw.call_method("pass", (looped.clone(),)).await.unwrap();
    assert_eq!(again, looped);
    assert_eq!(m_down.stats().await.unwrap().unpinned_exports, 1);
    drop((gw, looped, again));
    all_released(&[&a_down, &m_down, &m_up, &a_up]).await;
}

async fn forwarding_entries_count_against_max_exports(t: Transport) {
    // The root is pinned, so two exports leave room for one forwarding entry.
    let w = world(t, Config::default().max_exports(2)).await;
    let gw = w.client.root().await.unwrap();
    let first: NetRef = gw.call_method("counter", (1,)).await.unwrap();
    let err = gw.call_method::<NetRef>("counter", (2,)).await.unwrap_err();
    assert!(err.to_string().contains("export limit reached"), "{err}");
    assert!(err.to_string().contains("cannot be forwarded"), "{err}");
    assert_eq!(first.call_method::<i64>("incr", ()).await.unwrap(), 2);
    drop((gw, first));
    w.all_released().await;
}

over_both_transports!(
    calls_and_callbacks_through_the_middle,
    attributes_iteration_and_special_requests_through_the_middle,
    typed_actor_messages_through_the_middle,
    identity_rules,
    release_reaches_the_owner,
    expiry_at_the_client_cancels_the_far_leg,
    losing_the_owner_fails_forwarded_calls_fast_naming_the_hop,
    losing_the_client_releases_the_middles_imports,
    losing_the_middle_frees_both_ends,
    a_chain_of_depth_three,
    a_forwarding_loop_ends_without_leaking,
    forwarding_entries_count_against_max_exports,
);
