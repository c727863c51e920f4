//! Guards what an RPyC listener offers in place of the authentication RPyC lacks: the same TLS
//! and authenticator as a native listener. `Server::builder(..).rpyc()` composes with `.tls(..)`
//! (a netref RPyC client over TLS calls it; a plaintext RPyC request is never served) and with
//! `.authenticator(..)` (it runs before the first frame, a refusal is counted and serves
//! nothing, its credentials — or the verified client certificate under mutual TLS — reach the
//! service). Certificates are made at run time (`common::certs`).

mod common;

use std::{
    any::Any,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use common::{certs::Ca, wait_until};
use netref::{prelude::*, tls::PeerCertificates, Server};
use rcgen::ExtendedKeyUsagePurpose;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Generous bound for anything that should happen promptly on loopback.
const PROMPTLY: Duration = Duration::from_secs(10);

/// RPyC 6's GETROOT request, seq 0, as rpyc 6.0.2 sends it (`rpyc-reference.md` §8.2):
/// `len 8 | uncompressed | REQUEST (0, (GETROOT, (VALUE, ()))) | 0x0A`.
const GETROOT: [u8; 14] = [0, 0, 0, 8, 0, 0x01, 0x11, 0x50, 0x11, 0x53, 0x11, 0x51, 0x02, 0x0a];

/// A root that says who the connection is: the authenticator's credentials (a `String`) and
/// the number of client certificates verified.
fn whoami() -> Service {
    Service::per_connection(|peer| {
        let name = peer.credentials::<String>().map_or_else(|| "anonymous".to_owned(), |n| (*n).clone());
        let certs = peer.credentials::<PeerCertificates>().map_or(0, |c| c.0.len() as i64);
        Object::builder("demo.WhoAmI")
            .method("name", move || name.clone())
            .method("cert_count", move || certs)
            .method("add", |a: i64, b: i64| a + b)
            .build()
    })
}

/// Everything `stream` receives until the peer closes (or the read fails), within [`PROMPTLY`].
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(PROMPTLY, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server did not close the connection within {PROMPTLY:?}");
    received
}

#[actix_rt::test]
async fn an_rpyc_listener_serves_tls_and_never_serves_plaintext() {
    let ca = Ca::new("netref test CA");
    let server = Server::builder(whoami())
        .rpyc()
        .tls(ca.server_config())
        .handshake_timeout(PROMPTLY)
        .bind_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();

    // A netref client speaking RPyC over TLS calls the service.
    let client = netref::connect(addr.clone())
        .rpyc()
        .tls(ca.client_config())
        .server_name("localhost")
        .timeout(PROMPTLY)
        .await
        .unwrap();
    let sum: i64 = client.root().await.unwrap().call_method("add", (40, 2)).await.unwrap();
    assert_eq!(sum, 42);
    let served = server.peers();
    assert_eq!(served.len(), 1);
    assert!(served[0].info().label.starts_with("tls:"), "{:?}", served[0].info());
    assert!(served[0].credentials::<PeerCertificates>().is_none(), "no client authentication asked for");

    // A plaintext RPyC request is not a TLS ClientHello: the handshake fails, the connection is
    // refused, and no RPyC reply comes back (at most a TLS alert record, content type 0x15).
    let mut plain = TcpStream::connect(&addr).await.unwrap();
    plain.write_all(&GETROOT).await.unwrap();
    let answer = read_to_close(&mut plain).await;
    assert!(answer.is_empty() || answer[0] == 0x15, "a plaintext client got {answer:02x?}");
    wait_until(PROMPTLY, "the plaintext connection is counted as refused", || async { server.refused() == 1 }).await;

    // The TLS client was not disturbed.
    let sum: i64 = client.root().await.unwrap().call_method("add", (1, 2)).await.unwrap();
    assert_eq!(sum, 3);
    client.close().await;
    server.shutdown(PROMPTLY).await;
}

#[actix_rt::test]
async fn an_rpyc_listener_runs_the_authenticator_before_the_first_frame() {
    let admit = Arc::new(AtomicBool::new(true));
    let gate = admit.clone();
    let server = Server::builder(whoami())
        .rpyc()
        .authenticator(move |info| {
            assert!(info.peer_addr.as_deref().is_some_and(|a| a.starts_with("127.0.0.1:")), "{info:?}");
            if gate.load(Ordering::SeqCst) {
                Ok(Some(Arc::new("alice".to_owned()) as Arc<dyn Any + Send + Sync>))
            } else {
                Err("not on the list".into())
            }
        })
        .bind_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();

    // Admitted: the authenticator's credentials reach the service.
    let client = netref::connect(addr.clone()).rpyc().timeout(PROMPTLY).await.unwrap();
    let name: String = client.root().await.unwrap().call_method("name", ()).await.unwrap();
    assert_eq!(name, "alice");

    // Refused: counted, and a stock client's GETROOT gets no answer, only the close.
    admit.store(false, Ordering::SeqCst);
    let mut refused = TcpStream::connect(&addr).await.unwrap();
    refused.write_all(&GETROOT).await.unwrap();
    assert_eq!(read_to_close(&mut refused).await, Vec::<u8>::new(), "a refused connection is answered nothing");
    wait_until(PROMPTLY, "the refusal is counted", || async { server.refused() == 1 }).await;

    // A refused netref RPyC client learns it at its first call (RPyC has no handshake).
    let late = netref::connect(addr).rpyc().timeout(PROMPTLY).await.unwrap();
    let err = late.root().await.expect_err("a refused connection serves nothing");
    assert!(matches!(err, netref::Error::ConnectionClosed(_)), "{err}");
    wait_until(PROMPTLY, "the second refusal is counted", || async { server.refused() == 2 }).await;

    let name: String = client.root().await.unwrap().call_method("name", ()).await.unwrap();
    assert_eq!(name, "alice", "the admitted client was not disturbed");
    client.close().await;
    server.shutdown(PROMPTLY).await;
}

#[actix_rt::test]
async fn mutual_tls_on_an_rpyc_listener_hands_the_client_certificate_to_the_authenticator() {
    let ca = Ca::new("netref test CA");
    let server = Server::builder(whoami())
        .rpyc()
        .tls(ca.server_config().with_client_auth(vec![ca.cert.clone()]).unwrap())
        .handshake_timeout(PROMPTLY)
        .authenticator(|info| {
            let certs = info.credentials.clone().and_then(|c| c.downcast::<PeerCertificates>().ok());
            match certs {
                // `None` keeps the verified chain as the connection's credentials.
                Some(chain) if chain.0.len() == 1 => Ok(None),
                _ => Err("expected exactly one verified client certificate".into()),
            }
        })
        .bind_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();

    let (chain, key) = ca.issue(&["client-1"], ExtendedKeyUsagePurpose::ClientAuth);
    let with_cert = ca.client_config().with_client_cert(chain, key).unwrap();
    let client =
        netref::connect(addr.clone()).rpyc().tls(with_cert).server_name("localhost").timeout(PROMPTLY).await.unwrap();
    let certs: i64 = client.root().await.unwrap().call_method("cert_count", ()).await.unwrap();
    assert_eq!(certs, 1);

    // Without a client certificate the handshake is refused; over RPyC's wire (nothing sent
    // first by the server) the client learns it at its first call at the latest.
    let outcome = netref::connect(addr).rpyc().tls(ca.client_config()).server_name("localhost").timeout(PROMPTLY).await;
    if let Ok(anonymous) = outcome {
        let err = anonymous.root().await.expect_err("a client without a certificate is served nothing");
        assert!(matches!(err, netref::Error::ConnectionClosed(_)), "{err}");
    }
    wait_until(PROMPTLY, "the client without a certificate is counted as refused", || async { server.refused() == 1 })
        .await;

    let certs: i64 = client.root().await.unwrap().call_method("cert_count", ()).await.unwrap();
    assert_eq!(certs, 1, "the authenticated client was not disturbed");
    client.close().await;
    server.shutdown(PROMPTLY).await;
}
