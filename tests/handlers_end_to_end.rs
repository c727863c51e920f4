//! Guards every request kind end to end over the in-memory and TCP transports: PING, GETROOT,
//! GETATTR, SETATTR/DELATTR (with the policy opened), CALL, CALLATTR, REPR, STR, CMP, HASH,
//! DIR, INSPECT, PICKLE (obtain), BUFFITER iteration, OLDSLICING, CTXEXIT, INSTANCECHECK, CLOSE.

mod common;

use std::sync::Arc;

use common::{calculator, connect, connect_default, Counters, Transport};
use futures::StreamExt;
use netref::{kinds, prelude::*, AccessPolicy};

async fn ping_and_root(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let echoed = client.ping("hello").await.unwrap();
    assert_eq!(echoed, Value::Str("hello".into()));
    let root = client.root().await.unwrap();
    assert_eq!(root.type_name(), "demo.Calculator");
    assert!(!root.is_local());
    let debug = format!("{root:?}");
    assert!(
        debug.starts_with("<netref demo.Calculator #") && debug.ends_with(&format!("@conn{}>", client.id())),
        "{debug}"
    );
    // The same remote object comes back as an equal netref (identity, no traffic).
    let again = client.root().await.unwrap();
    assert_eq!(root, again);
    assert_eq!(root.id_pack(), again.id_pack());
}

async fn call_and_callattr(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let sum: i64 = calc.call_method("add", (1, 2)).await.unwrap();
    assert_eq!(sum, 3);
    let sum: i64 = calc.call_method("exposed_add", (20, 22)).await.unwrap();
    assert_eq!(sum, 42);
    let s: String = calc.call_method("concat", ("net", "ref")).await.unwrap();
    assert_eq!(s, "netref");
    // GETATTR of a method gives a callable netref; CALL calls it.
    let add: NetRef = calc.getattr("add").await.unwrap();
    assert_eq!(add.type_name(), "builtins.method");
    let sum: i64 = add.call((5, 6)).await.unwrap();
    assert_eq!(sum, 11);
    // A returned object travels by reference.
    let counter: NetRef = calc.call_method("make_counter", (10,)).await.unwrap();
    assert_eq!(counter.type_name(), "demo.Counter");
    let v: i64 = counter.call_method("incr", ()).await.unwrap();
    assert_eq!(v, 11);
    let v: i64 = counter.getattr("value").await.unwrap();
    assert_eq!(v, 11);
}

async fn attributes(t: Transport) {
    let policy = AccessPolicy { allow_setattr: true, allow_delattr: true, ..AccessPolicy::default() };
    let (_s, client) = connect(
        t,
        Service::shared(calculator(Arc::default())),
        Config::default().policy(policy),
        Service::void(),
        Config::default(),
    )
    .await;
    let calc = client.root().await.unwrap();
    let answer: i64 = calc.getattr("answer").await.unwrap();
    assert_eq!(answer, 42);
    let pi: f64 = calc.getattr("pi").await.unwrap();
    assert_eq!(pi, 3.25);
    let memo: String = calc.getattr("memo").await.unwrap();
    assert_eq!(memo, "hello");
    calc.setattr("memo", "changed").await.unwrap();
    let memo: String = calc.getattr("memo").await.unwrap();
    assert_eq!(memo, "changed");
    let err = calc.setattr("answer", 1).await.unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.is(kinds::ATTRIBUTE_ERROR) && e.message.contains("read-only")), "{err}");
    calc.delattr("memo").await.unwrap();
    let err = calc.getattr::<String>("memo").await.unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.is(kinds::ATTRIBUTE_ERROR)), "{err}");
}

async fn text_hash_cmp_dir_inspect(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    assert_eq!(calc.repr().await.unwrap(), "<demo.Calculator>");
    assert_eq!(calc.str().await.unwrap(), "a calculator");
    assert_eq!(calc.remote_hash().await.unwrap(), 1234);
    assert!(calc.remote_cmp("__eq__", &calc).await.unwrap());
    assert!(!calc.remote_cmp("__ne__", &calc).await.unwrap());
    assert!(!calc.remote_cmp("__eq__", 5).await.unwrap());
    let err = calc.remote_cmp("__lt__", 5).await.unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.is(kinds::TYPE_ERROR)), "{err}");
    let names = calc.dir().await.unwrap();
    for expected in ["add", "answer", "memo", "pi", "call_me", "__iter__", "__enter__"] {
        assert!(names.iter().any(|n| n == expected), "dir() lacks {expected}: {names:?}");
    }
    assert!(!names.iter().any(|n| n == "helper" || n == "_secret"), "dir() shows unexposed names: {names:?}");
    let methods = calc.inspect().await.unwrap();
    assert!(methods.contains(&"add".to_owned()) && !methods.contains(&"answer".to_owned()), "{methods:?}");
    // Cached per type: a second call answers without a request (and so works offline).
    let cached = calc.inspect();
    assert!(cached.ready(), "INSPECT should be cached per remote type");
    assert_eq!(cached.await.unwrap(), methods);
}

/// `r.hash(&mut h)` is `std::hash::Hash::hash`: a netref hashes its identity, locally and with
/// no request, so it can key a `HashSet`; the peer's hash is `remote_hash`.
async fn a_netref_hashes_its_identity_through_std_hash(t: Transport) {
    use std::{
        collections::HashSet,
        hash::{DefaultHasher, Hash, Hasher},
    };
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let counter: NetRef = calc.call_method("make_counter", (1,)).await.unwrap();
    let hash_of = |r: &NetRef| {
        let mut h = DefaultHasher::new();
        r.hash(&mut h);
        h.finish()
    };
    let again = client.root().await.unwrap();
    assert_eq!(again, calc, "the root fetched twice is the same object");
    assert_eq!(hash_of(&calc), hash_of(&again));
    assert_eq!(hash_of(&calc), hash_of(&calc.clone()));
    assert_ne!(hash_of(&calc), hash_of(&counter));
    let mut h = DefaultHasher::new();
    Hash::hash(&calc, &mut h);
    assert_eq!(h.finish(), hash_of(&calc));
    // A netref's `Hash` and `Eq` read only its identity, which never changes, whatever the
    // interior mutability clippy sees inside it.
    #[allow(clippy::mutable_key_type)]
    let set: HashSet<NetRef> = [calc.clone(), again, counter.clone()].into_iter().collect();
    assert_eq!(set.len(), 2);
    assert_eq!(calc.remote_hash().await.unwrap(), 1234, "the peer's hash is the calculator's own");
}

async fn obtain_is_off_by_default(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let err = calc.obtain::<Vec<i64>>().await.unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.is(kinds::ACCESS_DENIED)), "{err}");

    let policy = AccessPolicy { allow_obtain: true, ..AccessPolicy::default() };
    let (_s, client) = connect(
        t,
        Service::shared(calculator(Arc::default())),
        Config::default().policy(policy),
        Service::void(),
        Config::default(),
    )
    .await;
    let calc = client.root().await.unwrap();
    assert_eq!(calc.obtain::<Vec<i64>>().await.unwrap(), vec![1, 2, 3]);
}

async fn iteration(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let items: Vec<i64> = calc.iter::<i64>().map(|r| r.unwrap()).collect().await;
    assert_eq!(items, (0..25).collect::<Vec<_>>());
    // BUFFITER directly: chunks, then StopIteration.
    let it: NetRef = calc.call_method("__iter__", ()).await.unwrap();
    assert_eq!(it.next_chunk::<i64>(20).await.unwrap().len(), 20);
    assert_eq!(it.next_chunk::<i64>(20).await.unwrap(), vec![20, 21, 22, 23, 24]);
    let end = it.next_chunk::<i64>(20).await.unwrap_err();
    assert!(end.as_remote().is_some_and(RemoteError::is_stop_iteration), "{end}");
}

async fn context_manager(t: Transport) {
    let counters = Arc::new(Counters::default());
    let (_s, client) = connect_default(t, Service::shared(calculator(counters.clone()))).await;
    let calc = client.root().await.unwrap();
    let entered: String = calc.enter().await.unwrap();
    assert_eq!(entered, "entered");
    assert!(!calc.exit(None).await.unwrap());
    let failure = RemoteError::new("builtins.KeyError", "k");
    assert!(!calc.exit(Some(&failure)).await.unwrap());
    assert_eq!(*counters.exits.lock().unwrap(), vec![None, Some("builtins.KeyError".to_owned())]);
}

async fn instancecheck_and_oldslicing(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    assert!(calc.instance_of("demo.Calculator").await.unwrap());
    assert!(calc.instance_of("demo.Base").await.unwrap());
    assert!(!calc.instance_of("demo.Other").await.unwrap());
    let reply =
        client.addr().send(netref::dev::messages::OldSlicing { target: calc.clone() }).await.unwrap().unwrap_err();
    assert!(
        reply.as_remote().is_some_and(|e| e.is(kinds::NOT_IMPLEMENTED) && e.message.contains("not supported")),
        "{reply}"
    );
}

async fn messages_are_numbered_like_rpyc(t: Transport) {
    use netref::dev::messages::*;
    assert_eq!(GetAttr::HANDLE as u8, 4);
    assert_eq!(CallAttr::HANDLE as u8, 8);
    assert_eq!(InstanceCheck::HANDLE as u8, 20);
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let root = client.addr().send(GetRoot {}).await.unwrap().unwrap();
    let Value::Ref(calc) = root else { panic!("root is not a reference: {root:?}") };
    let sum = client
        .addr()
        .send(CallAttr { target: calc.clone(), name: "add".into(), args: vec![2.into(), 3.into()], kwargs: vec![] })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sum, Value::Int(5));
    let hash = client.addr().send(Hash { target: calc }).await.unwrap().unwrap();
    assert_eq!(hash, Value::Int(1234));
}

async fn graceful_close(t: Transport) {
    let (server, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let sum: i64 = calc.call_method("add", (1, 1)).await.unwrap();
    assert_eq!(sum, 2);
    client.close().await;
    assert!(client.is_closed());
    tokio::time::timeout(std::time::Duration::from_secs(5), server.closed()).await.expect("the server saw the close");
    let err = calc.call_method::<i64>("add", (1, 1)).await.unwrap_err();
    assert!(matches!(err, netref::Error::ConnectionClosed(_)), "{err}");
}

over_both_transports!(
    ping_and_root,
    call_and_callattr,
    attributes,
    text_hash_cmp_dir_inspect,
    a_netref_hashes_its_identity_through_std_hash,
    obtain_is_off_by_default,
    iteration,
    context_manager,
    instancecheck_and_oldslicing,
    messages_are_numbered_like_rpyc,
    graceful_close,
);

/// A transport whose shutdown takes a few polls (as TLS's can: its close_notify has to be
/// written first), waking its task each time as a real one would when ready.
struct SlowShutdown {
    inner: tokio::io::DuplexStream,
    pending_polls: usize,
    /// Set once the shutdown went through.
    done: Arc<std::sync::atomic::AtomicBool>,
}

impl tokio::io::AsyncRead for SlowShutdown {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for SlowShutdown {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.pending_polls > 0 {
            self.pending_polls -= 1;
            cx.waker().wake_by_ref();
            return std::task::Poll::Pending;
        }
        let done = std::pin::Pin::new(&mut self.inner).poll_shutdown(cx);
        if done.is_ready() {
            self.done.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        done
    }
}

/// A graceful close finishes with a transport whose shutdown does not complete at once: the
/// connection tries it in place, then keeps polling it until it is done, and the peer sees
/// the close with its reason.
#[actix_rt::test]
async fn a_graceful_close_waits_for_a_slow_shutdown() {
    for pending_polls in [1, 3] {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let slow = SlowShutdown { inner: a, pending_polls, done: done.clone() };
        let client = netref::connect_stream(slow, Service::void(), Config::default());
        let server = netref::connect_stream(b, Service::shared(calculator(Arc::default())), Config::default());
        let sum: i64 = client.root().await.unwrap().call_method("add", (2, 2)).await.unwrap();
        assert_eq!(sum, 4);
        tokio::time::timeout(std::time::Duration::from_secs(5), client.close())
            .await
            .expect("the close finished after the slow shutdown");
        assert!(done.load(std::sync::atomic::Ordering::SeqCst), "the close dropped a shutdown still under way");
        tokio::time::timeout(std::time::Duration::from_secs(5), server.closed())
            .await
            .expect("the server saw the close");
        let reason = server.close_reason().expect("the server side is closed").to_string();
        assert!(reason.contains("the peer closed the connection: closed by the local side"), "{reason}");
    }
}
