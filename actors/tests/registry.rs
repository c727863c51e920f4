//! Guards the service registry: register / query / list / unregister over TCP and in memory,
//! case-insensitive names, TTL expiry of entries whose server vanished, auto-registration that
//! keeps an entry alive, reconnects and unregisters on stop, discovery and connect-by-service
//! against a real netref server, input validation and the table bound, and the
//! `netref-registry` binary.

mod common;

use common::wait_until;

use std::{net::SocketAddr, time::Duration};

use netref::{kinds, prelude::*, Server};
use netref_actors::registry::{
    self, connect_by_service, discover, DiscoveryError, Registration, RegistryClient, RegistryConfig, RegistryService,
    REGISTRY_FULL,
};

const T: Duration = Duration::from_secs(5);

async fn start_registry(config: RegistryConfig) -> (RegistryService, Server, SocketAddr) {
    let registry = RegistryService::new(config);
    let server = registry.serve("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    (registry, server, addr)
}

async fn start_calculator() -> (Server, String) {
    let calc = Object::builder("demo.Calculator").method("add", |a: i64, b: i64| a + b).build();
    let server = Server::builder(Service::shared(calc)).bind_tcp("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    (server, addr)
}

/// An address nothing listens on: a port the OS just handed out and took back.
async fn dead_addr() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().to_string()
}

fn remote_kind(e: &Error) -> &str {
    e.as_remote().map_or("<not remote>", |r| r.kind.as_str())
}

#[actix_rt::test]
async fn register_query_list_unregister_round_trip() {
    let (_registry, server, addr) = start_registry(RegistryConfig::default()).await;
    let client = RegistryClient::connect(addr, T).await.unwrap();
    assert_eq!(client.root().type_name(), registry::TYPE_NAME);

    client.register("Calculator", "127.0.0.1:7001", T).await.unwrap();
    client.register("CALCULATOR", "127.0.0.1:7002", T).await.unwrap();
    client.register("echo", "[::1]:7003", T).await.unwrap();
    // Names are case-insensitive; addresses come most recently registered first.
    for spelling in ["calculator", "Calculator", "CALCULATOR"] {
        assert_eq!(client.query(spelling).await.unwrap(), ["127.0.0.1:7002", "127.0.0.1:7001"]);
    }
    // Refreshing an entry makes it the most recent, without duplicating it.
    client.register("calculator", "127.0.0.1:7001", T).await.unwrap();
    assert_eq!(client.query("calculator").await.unwrap(), ["127.0.0.1:7001", "127.0.0.1:7002"]);
    assert_eq!(
        client.list().await.unwrap(),
        vec![
            ("CALCULATOR".to_owned(), vec!["127.0.0.1:7001".to_owned(), "127.0.0.1:7002".to_owned()]),
            ("ECHO".to_owned(), vec!["[::1]:7003".to_owned()]),
        ]
    );
    assert!(client.query("nobody").await.unwrap().is_empty());

    assert!(client.unregister("calculator", "127.0.0.1:7001").await.unwrap());
    assert!(!client.unregister("calculator", "127.0.0.1:7001").await.unwrap(), "already gone");
    assert_eq!(client.query("calculator").await.unwrap(), ["127.0.0.1:7002"]);
    assert!(client.unregister("Echo", "[::1]:7003").await.unwrap());
    assert_eq!(client.list().await.unwrap().len(), 1, "a name with no address left is not listed");

    // The object is plain netref: reachable without the typed client, typed errors included.
    let root = client.root().clone();
    let n: Vec<String> = root.call_method("query", ("CALCULATOR",)).await.unwrap();
    assert_eq!(n, ["127.0.0.1:7002"]);
    let e = root.call_method::<()>("register", (1, 2, 3)).await.unwrap_err();
    assert_eq!(remote_kind(&e), kinds::TYPE_ERROR, "{e}");
    assert!(root.repr().await.unwrap().contains("1 entries"));

    client.close().await;
    server.shutdown(T).await;
}

#[actix_rt::test]
async fn works_in_memory_and_in_process() {
    let registry = RegistryService::default();
    let (_server_side, client_side) = netref::connect_pair(Service::shared(registry.object()), Service::void());
    let client = RegistryClient::from_peer(client_side.clone()).await.unwrap();
    client.register("svc", "host.example:1", T).await.unwrap();
    // The same table, in-process.
    assert_eq!(registry.query("SVC").unwrap(), ["host.example:1"]);
    registry.register("svc", "host.example:2", T).unwrap();
    assert_eq!(client.query("svc").await.unwrap(), ["host.example:2", "host.example:1"]);
    assert_eq!(registry.len(), 2);
    drop(client);
    assert!(!client_side.is_closed(), "a client made from a peer leaves the connection open");
}

#[actix_rt::test]
async fn an_entry_expires_after_its_ttl_when_its_server_vanished() {
    let (registry, server, addr) = start_registry(RegistryConfig::default()).await;
    let ttl = Duration::from_millis(300);

    // A server registers with a short TTL, then its connection closes without unregistering.
    let vanishing = RegistryClient::connect(addr, T).await.unwrap();
    let registered_at = std::time::Instant::now();
    vanishing.register("ephemeral", "127.0.0.1:7100", ttl).await.unwrap();
    vanishing.register("lasting", "127.0.0.1:7101", T * 10).await.unwrap();
    vanishing.close().await;
    server.wait_connections(|n| n == 0).await;

    let observer = RegistryClient::connect(addr, T).await.unwrap();
    // Still there until the TTL runs out, when the test machine is not too slow to see it.
    if registered_at.elapsed() < ttl / 2 {
        assert_eq!(observer.query("ephemeral").await.unwrap(), ["127.0.0.1:7100"]);
    }
    wait_until(T, "the entry expires", || async { observer.query("ephemeral").await.unwrap().is_empty() }).await;
    assert!(registered_at.elapsed() >= ttl, "expired after {:?}, before its TTL", registered_at.elapsed());
    assert_eq!(observer.query("lasting").await.unwrap(), ["127.0.0.1:7101"], "other entries stay");
    assert_eq!(registry.len(), 1);
    observer.close().await;
    server.shutdown(T).await;
}

#[actix_rt::test]
async fn auto_registration_keeps_an_entry_alive_and_unregisters_on_stop() {
    let (registry, server, addr) = start_registry(RegistryConfig::default()).await;
    let ttl = Duration::from_millis(900);

    let handle = Registration::start(addr, "worker", "127.0.0.1:7200", ttl);
    tokio::time::timeout(T, handle.registered()).await.expect("registered within 5 s");
    let first = std::time::Instant::now();
    assert_eq!(registry.query("worker").unwrap(), ["127.0.0.1:7200"]);
    // Past the TTL of the first registration, the refreshes (every ttl / 3) keep it alive.
    wait_until(T, "renewed past the first TTL", || async { handle.status().renewals >= 4 }).await;
    assert!(first.elapsed() > ttl, "4 renewals, every {:?}, took only {:?}", ttl / 3, first.elapsed());
    assert_eq!(registry.query("worker").unwrap(), ["127.0.0.1:7200"]);
    assert!(handle.status().registered);

    // stop() unregisters before it returns: gone at once, not after the TTL.
    handle.stop().await;
    assert!(registry.query("worker").unwrap().is_empty());

    // Dropping the handle unregisters too, in the background.
    let dropped = Registration::start(addr, "worker", "127.0.0.1:7201", ttl * 100);
    tokio::time::timeout(T, dropped.registered()).await.expect("registered within 5 s");
    drop(dropped);
    wait_until(T, "a dropped registration unregisters", || async { registry.is_empty() }).await;
    server.wait_connections(|n| n == 0).await;
    server.shutdown(T).await;
}

#[actix_rt::test]
async fn auto_registration_reconnects_when_the_registry_connection_drops() {
    let (registry, server, addr) = start_registry(RegistryConfig::default()).await;
    let handle = Registration::start(addr, "resilient", "127.0.0.1:7300", Duration::from_secs(60));
    tokio::time::timeout(T, handle.registered()).await.expect("registered within 5 s");
    assert_eq!(server.accepted(), 1);

    // The registry drops the connection (as a restarted registry would) and forgets the entry.
    for peer in server.peers() {
        peer.close().await;
    }
    registry.unregister("resilient", "127.0.0.1:7300").unwrap();
    // Re-registered at once over a new connection, long before the next refresh (20 s).
    wait_until(T, "re-registered over a new connection", || async {
        server.accepted() == 2 && !registry.query("resilient").unwrap().is_empty()
    })
    .await;
    // The client counts the renewal when the reply reaches it, a moment after the registry
    // stored the entry: wait for that too rather than race it.
    wait_until(T, "the handle counted the renewal", || async { handle.status().renewals >= 2 }).await;
    handle.stop().await;
    assert!(registry.is_empty());
    server.shutdown(T).await;
}

#[actix_rt::test]
async fn a_registration_retries_until_the_registry_is_up() {
    let registry_addr = dead_addr().await;
    let handle = Registration::start(registry_addr.clone(), "early", "127.0.0.1:7400", Duration::from_millis(300));
    wait_until(T, "a failed attempt is reported", || async { handle.status().last_error.is_some() }).await;
    assert!(!handle.status().registered);

    let registry = RegistryService::default();
    let server = registry.serve(registry_addr.as_str()).await.unwrap();
    tokio::time::timeout(T, handle.registered()).await.expect("registered once the registry is up");
    assert_eq!(registry.query("early").unwrap(), ["127.0.0.1:7400"]);
    handle.stop().await;
    server.shutdown(T).await;
}

#[actix_rt::test]
async fn discover_and_connect_by_service_reach_a_registered_server() {
    let (_registry, registry_server, addr) = start_registry(RegistryConfig::default()).await;
    let (calc_server, calc_addr) = start_calculator().await;
    let registration = Registration::start(addr, "calculator", calc_addr.clone(), Duration::from_secs(60));
    tokio::time::timeout(T, registration.registered()).await.expect("registered within 5 s");
    // A stale entry, registered last: tried first, skipped.
    let stale = dead_addr().await;
    let client = RegistryClient::connect(addr, T).await.unwrap();
    client.register("calculator", &stale, Duration::from_secs(60)).await.unwrap();

    assert_eq!(discover(addr, "Calculator").await.unwrap(), [stale.clone(), calc_addr.clone()]);
    let peer = connect_by_service(addr, "CALCULATOR", Service::void(), Config::default(), T).await.unwrap();
    assert_eq!(peer.info().peer_addr.as_deref(), Some(calc_addr.as_str()));
    let sum: i64 = peer.root().await.unwrap().call_method("add", (20, 22)).await.unwrap();
    assert_eq!(sum, 42);
    peer.close().await;

    // An unknown name.
    let e = discover(addr, "no-such-service").await.unwrap_err();
    assert!(matches!(&e, DiscoveryError::NotFound { name, .. } if name == "no-such-service"), "{e:?}");
    assert_eq!(e.to_string(), format!("no service named \"no-such-service\" is registered at the registry at {addr}"));
    let e = connect_by_service(addr, "no-such-service", Service::void(), Config::default(), T).await.unwrap_err();
    assert!(matches!(e, DiscoveryError::NotFound { .. }), "{e:?}");

    // Every address dead.
    client.register("ghost", &stale, Duration::from_secs(60)).await.unwrap();
    let e = connect_by_service(addr, "ghost", Service::void(), Config::default(), T).await.unwrap_err();
    match &e {
        DiscoveryError::Unreachable { name, attempts } => {
            assert_eq!(name, "ghost");
            assert_eq!(attempts.len(), 1);
            assert_eq!(attempts[0].0, stale);
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(e.to_string().contains(&stale), "{e}");

    // No registry at all.
    let nowhere = dead_addr().await;
    let e = discover(nowhere.as_str(), "calculator").await.unwrap_err();
    assert!(matches!(&e, DiscoveryError::Registry { registry, .. } if *registry == nowhere), "{e:?}");

    registration.stop().await;
    client.close().await;
    calc_server.shutdown(T).await;
    registry_server.shutdown(T).await;
}

#[actix_rt::test]
async fn bad_input_is_refused_and_the_registry_keeps_working() {
    let config = RegistryConfig::default().max_entries(3).max_ttl(Duration::from_secs(60));
    let (registry, server, addr) = start_registry(config).await;
    let client = RegistryClient::connect(addr, T).await.unwrap();

    let refused = |r: Result<(), Error>, kind: &str, needle: &str| {
        let e = r.expect_err("refused");
        assert_eq!(remote_kind(&e), kind, "{e}");
        assert!(e.to_string().contains(needle), "{e:?} should mention {needle:?}");
    };
    let huge = "x".repeat(100_000);
    refused(client.register(&huge, "127.0.0.1:1", T).await, kinds::VALUE_ERROR, "100000 bytes long");
    refused(client.register("", "127.0.0.1:1", T).await, kinds::VALUE_ERROR, "empty");
    refused(client.register("bell\u{7}", "127.0.0.1:1", T).await, kinds::VALUE_ERROR, "control characters");
    refused(client.register("svc", &huge, T).await, kinds::VALUE_ERROR, "address is 100000 bytes long");
    refused(client.register("svc", "no-port", T).await, kinds::VALUE_ERROR, "expected host:port");
    refused(client.register("svc", "host:http", T).await, kinds::VALUE_ERROR, "port is not a number");
    refused(client.register("svc", "host:0", T).await, kinds::VALUE_ERROR, "port 0");
    refused(client.register("svc", "127.0.0.1:1", Duration::ZERO).await, kinds::VALUE_ERROR, "ttl must be above 0");
    refused(
        client.register("svc", "127.0.0.1:1", Duration::from_secs(61)).await,
        kinds::VALUE_ERROR,
        "exceeds the registry's maximum of 60000 ms",
    );
    refused(client.register("svc", "127.0.0.1:1", Duration::MAX).await, kinds::VALUE_ERROR, "exceeds");
    let e = client.query(&huge).await.unwrap_err();
    assert_eq!(remote_kind(&e), kinds::VALUE_ERROR);
    assert!(registry.is_empty(), "nothing invalid was stored");

    // The table bound: a fourth entry is refused; refreshing an existing one still works.
    for port in 1..=3 {
        client.register("svc", &format!("127.0.0.1:{port}"), T).await.unwrap();
    }
    refused(client.register("other", "127.0.0.1:4", T).await, REGISTRY_FULL, "the registry is full (3 entries)");
    client.register("SVC", "127.0.0.1:1", T).await.unwrap();
    assert!(client.unregister("svc", "127.0.0.1:2").await.unwrap());
    client.register("other", "127.0.0.1:4", T).await.unwrap();

    // Still working, on the same connection.
    assert!(!client.is_closed());
    assert_eq!(client.query("svc").await.unwrap(), ["127.0.0.1:1", "127.0.0.1:3"]);
    assert_eq!(client.list().await.unwrap().len(), 2);
    assert_eq!(registry.len(), 3);
    client.close().await;
    server.shutdown(T).await;
}

#[cfg(feature = "cli")]
#[actix_rt::test]
async fn the_binary_serves_a_registry_and_exits_on_sigterm() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_netref-registry"))
        .args(["--listen", "127.0.0.1:0", "--prune-secs", "1"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(T, lines.next_line()).await.expect("a line within 5 s").unwrap().unwrap();
    let addr = line.strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let addr: SocketAddr = addr.parse().unwrap();
    assert_ne!(addr.port(), 0);

    let client = RegistryClient::connect(addr, T).await.unwrap();
    client.register("from-test", "127.0.0.1:7500", T).await.unwrap();
    assert_eq!(discover(addr, "FROM-TEST").await.unwrap(), ["127.0.0.1:7500"]);
    client.close().await;

    let pid = child.id().expect("running").to_string();
    let kill = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(T, child.wait()).await.expect("exits within 5 s").unwrap();
    assert!(status.success(), "exit status {status}");
}
