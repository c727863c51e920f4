//! Guards TLS (`netref::tls`): a client verifies the server's certificate (root and name) and
//! refuses an untrusted one with a clear error; mutual TLS refuses clients without a trusted
//! certificate and hands the verified client chain to the service as credentials; handshakes
//! are bounded by their timeouts; a refused client never stops the server from serving others;
//! an accepted TLS socket gets TCP keepalive and `TCP_USER_TIMEOUT` as a plain one does.
//! Certificates are made at run time with rcgen (no key files).

mod common;

use std::{net::SocketAddr, time::Duration};

use common::certs::Ca;
use netref::{
    prelude::*,
    tls::{accept_tls, connect_tls, PeerCertificates, TlsClientConfig, TlsServerConfig},
};
use rcgen::ExtendedKeyUsagePurpose;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
};

/// Generous bound for anything that should happen promptly on loopback.
const PROMPTLY: Duration = Duration::from_secs(10);

/// A TLS server on 127.0.0.1 accepting clients with [`accept_tls`], one task per handshake;
/// every handshake's outcome (the server-side peer, or the error) arrives on `outcomes`, which
/// also keeps the server-side peers alive.
struct TlsServer {
    addr: SocketAddr,
    outcomes: mpsc::UnboundedReceiver<Result<Peer, netref::Error>>,
}

impl TlsServer {
    async fn start(tls: TlsServerConfig, service: Service) -> TlsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, outcomes) = mpsc::unbounded_channel();
        actix_rt::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tls, service, tx) = (tls.clone(), service.clone(), tx.clone());
                actix_rt::spawn(async move {
                    let _ = tx.send(accept_tls(stream, &tls, service, Config::default(), PROMPTLY).await);
                });
            }
        });
        TlsServer { addr, outcomes }
    }

    /// The outcome of the next handshake the server finished.
    async fn next_outcome(&mut self) -> Result<Peer, netref::Error> {
        tokio::time::timeout(PROMPTLY, self.outcomes.recv())
            .await
            .expect("the server finishes a handshake promptly")
            .expect("the server is running")
    }

    async fn connect(&self, server_name: &str, tls: &TlsClientConfig) -> Result<Peer, netref::Error> {
        connect_tls(self.addr, server_name, tls, Service::void(), Config::default(), PROMPTLY).await
    }
}

fn calculator() -> Service {
    Service::shared(Object::builder("demo.Calculator").method("add", |a: i64, b: i64| a + b).build())
}

/// Asserts that a client with `tls` can call the server at `server` as `server_name`.
async fn assert_serves(server: &mut TlsServer, server_name: &str, tls: &TlsClientConfig) {
    let client = server.connect(server_name, tls).await.unwrap_or_else(|e| panic!("connect as {server_name}: {e}"));
    let sum: i64 = client.root().await.unwrap().call_method("add", (40, 2)).await.unwrap();
    assert_eq!(sum, 42);
    let server_side = server.next_outcome().await.expect("the server accepted the client");
    assert!(server_side.info().label.starts_with("tls:"), "{:?}", server_side.info());
    client.close().await;
}

#[actix_rt::test]
async fn a_trusting_client_calls_a_tls_server() {
    let ca = Ca::new("netref test CA");
    let mut server = TlsServer::start(ca.server_config(), calculator()).await;
    let tls = ca.client_config();
    assert_serves(&mut server, "localhost", &tls).await;
    // The certificate also names the IP address.
    assert_serves(&mut server, "127.0.0.1", &tls).await;

    // Without client authentication the server side has no client certificate.
    let client = server.connect("localhost", &tls).await.unwrap();
    let server_side = server.next_outcome().await.unwrap();
    assert!(server_side.credentials::<PeerCertificates>().is_none());
    assert_eq!(client.ping("over tls").await.unwrap(), Value::Str("over tls".into()));
}

#[actix_rt::test]
async fn an_untrusted_server_certificate_is_refused_and_the_server_serves_on() {
    let ca = Ca::new("netref test CA");
    let other_ca = Ca::new("some other CA");
    let mut server = TlsServer::start(ca.server_config(), calculator()).await;

    let err = server.connect("localhost", &other_ca.client_config()).await.unwrap_err();
    let msg = err.to_string();
    assert!(!matches!(err, netref::Error::Timeout(_)), "{msg}");
    assert!(msg.contains("server's certificate was not trusted") && msg.contains("UnknownIssuer"), "{msg}");
    let refused = server.next_outcome().await.unwrap_err().to_string();
    assert!(refused.contains("did not trust this server's certificate"), "{refused}");

    assert_serves(&mut server, "localhost", &ca.client_config()).await;
}

#[actix_rt::test]
async fn a_server_name_mismatch_is_refused() {
    let ca = Ca::new("netref test CA");
    let mut server = TlsServer::start(ca.server_config(), calculator()).await;

    let err = server.connect("example.invalid", &ca.client_config()).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("server's certificate was not trusted") && msg.contains("example.invalid"),
        "the error names the certificate problem and the name: {msg}"
    );
    assert!(server.next_outcome().await.is_err());
    assert_serves(&mut server, "localhost", &ca.client_config()).await;
}

#[actix_rt::test]
async fn mutual_tls_requires_a_trusted_client_certificate() {
    let ca = Ca::new("netref test CA");
    let (client_chain, client_key) = ca.issue(&["client-1"], ExtendedKeyUsagePurpose::ClientAuth);
    let expected = client_chain[0].clone();
    // The root built for each connection reports the client certificate the server verified.
    let service = Service::per_connection(move |peer| {
        let certs = peer.credentials::<PeerCertificates>();
        let count = certs.as_ref().map_or(0, |c| c.0.len() as i64);
        let matches = certs.as_ref().and_then(|c| c.end_entity()) == Some(&expected);
        Object::builder("demo.WhoAmI")
            .method("cert_count", move || count)
            .method("is_client_1", move || matches)
            .method("add", |a: i64, b: i64| a + b)
            .build()
    });
    let tls = ca.server_config().with_client_auth(vec![ca.cert.clone()]).unwrap();
    let mut server = TlsServer::start(tls, service).await;

    // No client certificate: refused, on both sides, with errors that say so.
    let err = server.connect("localhost", &ca.client_config()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("requires a client certificate"), "{msg}");
    let refused = server.next_outcome().await.unwrap_err().to_string();
    assert!(refused.contains("presented no certificate"), "{refused}");

    // A certificate from a CA the server does not trust: refused.
    let stranger = Ca::new("some other CA");
    let (chain, key) = stranger.issue(&["client-2"], ExtendedKeyUsagePurpose::ClientAuth);
    let untrusted = ca.client_config().with_client_cert(chain, key).unwrap();
    let err = server.connect("localhost", &untrusted).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("did not accept this client's certificate"), "{msg}");
    let refused = server.next_outcome().await.unwrap_err().to_string();
    assert!(refused.contains("client's certificate was not trusted"), "{refused}");

    // A certificate signed by the trusted CA: served, and the service sees the certificate.
    let trusted = ca.client_config().with_client_cert(client_chain, client_key).unwrap();
    let client = server.connect("localhost", &trusted).await.unwrap();
    let root = client.root().await.unwrap();
    let count: i64 = root.call_method("cert_count", ()).await.unwrap();
    assert_eq!(count, 1);
    let matches: bool = root.call_method("is_client_1", ()).await.unwrap();
    assert!(matches, "the service reads the client's own certificate");
    let server_side = server.next_outcome().await.unwrap();
    let certs = server_side.credentials::<PeerCertificates>().expect("the client's certificates as credentials");
    assert_eq!(certs.0.len(), 1);
}

#[actix_rt::test]
async fn a_tls12_client_from_rustls_is_verified_and_refused_alike() {
    use netref::tls::rustls;
    let ca = Ca::new("netref test CA");
    let tls12_client = |roots: &Ca| {
        let mut store = rustls::RootCertStore::empty();
        store.add(roots.cert.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(netref::tls::crypto_provider())
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(store)
            .with_no_client_auth();
        TlsClientConfig::from_rustls(std::sync::Arc::new(config))
    };
    let mut server = TlsServer::start(ca.server_config(), calculator()).await;
    assert_serves(&mut server, "localhost", &tls12_client(&ca)).await;
    let err = server.connect("localhost", &tls12_client(&Ca::new("some other CA"))).await.unwrap_err().to_string();
    assert!(err.contains("server's certificate was not trusted"), "{err}");
    assert!(server.next_outcome().await.is_err());

    // Mutual TLS over TLS 1.2: the refusal comes inside the handshake.
    let (chain, key) = ca.issue(&["client-1"], ExtendedKeyUsagePurpose::ClientAuth);
    let mut server =
        TlsServer::start(ca.server_config().with_client_auth(vec![ca.cert.clone()]).unwrap(), calculator()).await;
    let err = server.connect("localhost", &tls12_client(&ca)).await.unwrap_err().to_string();
    assert!(err.contains("requires a client certificate"), "{err}");
    assert!(server.next_outcome().await.is_err());
    assert_serves(&mut server, "localhost", &tls12_client(&ca).with_client_cert(chain, key).unwrap()).await;
}

#[actix_rt::test]
async fn a_silent_server_times_out_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts and never answers; holds the socket until the test ends.
    let (held_tx, mut held) = mpsc::unbounded_channel();
    actix_rt::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = held_tx.send(stream);
        }
    });
    let timeout = Duration::from_millis(300);
    let start = tokio::time::Instant::now();
    let result =
        connect_tls(addr, "localhost", &Ca::new("CA").client_config(), Service::void(), Config::default(), timeout)
            .await;
    let elapsed = start.elapsed();
    assert!(matches!(result, Err(netref::Error::Timeout(t)) if t == timeout), "{result:?}");
    assert!(elapsed >= timeout && elapsed < timeout + Duration::from_secs(5), "{elapsed:?}");
    assert!(held.recv().await.is_some(), "the silent server did accept the connection");
}

#[actix_rt::test]
async fn a_silent_client_times_out_the_server_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted, silent_client) = tokio::join!(listener.accept(), TcpStream::connect(addr));
    let (_silent_client, (stream, _)) = (silent_client.unwrap(), accepted.unwrap());
    let timeout = Duration::from_millis(300);
    let ca = Ca::new("netref test CA");
    let result = accept_tls(stream, &ca.server_config(), calculator(), Config::default(), timeout).await;
    assert!(matches!(result, Err(netref::Error::Timeout(t)) if t == timeout), "{result:?}");
}

#[actix_rt::test]
async fn a_tls_client_never_falls_back_to_plaintext() {
    // A plain netref server: it sends its Hello in clear text at once.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (peers_tx, _peers) = mpsc::unbounded_channel();
    actix_rt::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = peers_tx.send(netref::from_tcp(stream, calculator(), Config::default()));
        }
    });
    let ca = Ca::new("netref test CA");
    let result =
        connect_tls(addr, "localhost", &ca.client_config(), Service::void(), Config::default(), PROMPTLY).await;
    let err = result.expect_err("a plaintext server is refused");
    assert!(!matches!(err, netref::Error::Timeout(_)), "refused at once, not timed out: {err}");
    assert!(err.to_string().contains("does not speak TLS"), "{err}");
}

#[test]
fn configuration_errors_are_explicit() {
    let err = TlsClientConfig::new(Vec::new()).unwrap_err().to_string();
    assert!(err.contains("no root certificates"), "{err}");

    let ca = Ca::new("netref test CA");
    let err = TlsServerConfig::new(Vec::new(), ca.issue(&["x"], ExtendedKeyUsagePurpose::ServerAuth).1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("chain is empty"), "{err}");

    // A key that does not belong to the certificate.
    let (chain, _) = ca.issue(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let (_, other_key) = ca.issue(&["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    assert!(TlsServerConfig::new(chain.clone(), other_key.clone_key()).is_err());
    assert!(ca.client_config().with_client_cert(chain, other_key).is_err());

    // Client authentication cannot be bolted onto a rustls config handed in as it is.
    let given = TlsServerConfig::from_rustls(ca.server_config().rustls_config().clone());
    let err = given.with_client_auth(vec![ca.cert.clone()]).unwrap_err().to_string();
    assert!(err.contains("from_rustls"), "{err}");
}

#[actix_rt::test]
async fn the_server_builder_serves_tls_and_passes_client_certificates_to_the_authenticator() {
    let ca = Ca::new("netref test CA");
    let (client_chain, client_key) = ca.issue(&["client-1"], ExtendedKeyUsagePurpose::ClientAuth);
    let server_tls = ca.server_config().with_client_auth(vec![ca.cert.clone()]).unwrap();
    let service = Service::per_connection(|peer| {
        let certs = peer.credentials::<netref::tls::PeerCertificates>().map_or(0, |c| c.0.len());
        Object::builder("demo.Who").method("certs", move || certs).build()
    });
    let server = netref::Server::builder(service)
        .tls(server_tls)
        .handshake_timeout(PROMPTLY)
        .authenticator(|info| {
            let certs =
                info.credentials.as_ref().and_then(|c| c.clone().downcast::<netref::tls::PeerCertificates>().ok());
            match certs {
                Some(c) if !c.0.is_empty() => Ok(None),
                _ => Err("no client certificate".into()),
            }
        })
        .bind_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let good = ca.client_config().with_client_cert(client_chain, client_key).unwrap();
    let peer = connect_tls(addr, "localhost", &good, Service::void(), Config::default(), PROMPTLY).await.unwrap();
    let n: usize = peer.root().await.unwrap().call_method("certs", ()).await.unwrap();
    assert_eq!(n, 1);
    // A client whose CA the server does not trust is refused; the server serves on.
    let other = Ca::new("someone else");
    let (chain, key) = other.issue(&["intruder"], ExtendedKeyUsagePurpose::ClientAuth);
    let bad = ca.client_config().with_client_cert(chain, key).unwrap();
    let refused = connect_tls(addr, "localhost", &bad, Service::void(), Config::default(), PROMPTLY).await;
    assert!(refused.is_err(), "an untrusted client certificate must be refused");
    server.wait_connections(|n| n == 1).await;
    let n: usize = peer.root().await.unwrap().call_method("certs", ()).await.unwrap();
    assert_eq!(n, 1);
    peer.close().await;
    server.shutdown(PROMPTLY).await;
}

#[actix_rt::test]
async fn large_byte_strings_cross_tls_intact_and_in_order() {
    let ca = Ca::new("netref test CA");
    let mut server = TlsServer::start(ca.server_config(), calculator()).await;
    let client = server.connect("localhost", &ca.client_config()).await.unwrap();
    let _server_side = server.next_outcome().await.unwrap();
    // Byte strings below and above the sizes written out of line, pipelined so that most wait
    // behind the write in flight; `ping` echoes its argument.
    let sent: Vec<Value> = (0..16usize)
        .map(|i| {
            let len = [10, 20 << 10, 1 << 20, 70 << 10][i % 4] + i;
            Value::Tuple(vec![
                Value::Bytes((0..len).map(|j| (j * 7 + i) as u8).collect::<Vec<u8>>().into()),
                Value::Int(i as i64),
            ])
        })
        .collect();
    let calls: Vec<_> = sent.iter().map(|v| client.ping(v.clone())).collect();
    for (call, sent) in calls.into_iter().zip(&sent) {
        assert_eq!(&call.await.unwrap(), sent);
    }
}

/// The server's socket of a TLS connection carries TCP keepalive and `TCP_USER_TIMEOUT` matched
/// to its `peer_timeout`, as plain TCP sockets do (read back from a second descriptor of it).
#[cfg(any(target_os = "linux", target_os = "android"))]
#[actix_rt::test]
async fn an_accepted_tls_socket_gets_keepalive_and_a_user_timeout_matching_peer_timeout() {
    let ca = Ca::new("netref test CA");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = Config::default().peer_timeout(Some(Duration::from_secs(6)));
    let client_config = config.clone();
    let tls = ca.client_config();
    let client = actix_rt::spawn(async move {
        connect_tls(addr, "localhost", &tls, Service::void(), client_config, PROMPTLY).await.unwrap()
    });
    let (accepted, _) = listener.accept().await.unwrap();
    let accepted = accepted.into_std().unwrap();
    let probe = accepted.try_clone().unwrap();
    let accepted = TcpStream::from_std(accepted).unwrap();
    let server_side = accept_tls(accepted, &ca.server_config(), calculator(), config, PROMPTLY).await.unwrap();
    let client = client.await.unwrap();
    assert_eq!(client.root().await.unwrap().call_method::<i64>("add", (1, 2)).await.unwrap(), 3);
    let socket = socket2::SockRef::from(&probe);
    assert!(socket.keepalive().unwrap());
    assert_eq!(socket.tcp_keepalive_time().unwrap(), Duration::from_secs(2));
    assert_eq!(socket.tcp_keepalive_interval().unwrap(), Duration::from_secs(2));
    assert_eq!(socket.tcp_keepalive_retries().unwrap(), 2);
    assert_eq!(socket.tcp_user_timeout().unwrap(), Some(Duration::from_secs(6)));
    client.close().await;
    tokio::time::timeout(PROMPTLY, server_side.closed()).await.expect("the server side closes");
}
