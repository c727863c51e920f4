//! Guards the RPyC client over every transport a native client has: `netref::connect(..).rpyc()`
//! over a Unix socket (`unix:PATH`) and over TLS, and `connect_stream` over any byte stream with
//! a `Config` whose wire is RPyC — each against a netref RPyC server, with a call, a callback
//! served while the server waits, and a clean close. (TCP: `tests/rpyc_wire.rs`.)

use std::time::Duration;

use netref::{prelude::*, Server, Wire};

/// Generous bound for anything that should happen promptly on loopback.
const PROMPTLY: Duration = Duration::from_secs(10);

fn calc() -> Service {
    Service::shared(
        Object::builder("test.Calc")
            .method("add", |a: i64, b: i64| a + b)
            .try_async_method("apply", |f: NetRef, x: i64| async move {
                let y: i64 = f.call((x,)).await?;
                Ok::<_, netref::Error>(y + 1)
            })
            .build(),
    )
}

/// A call, a callback served while the server waits, and a close, on an RPyC connection (the
/// servers here speak only RPyC: a native client fails at its first request).
async fn exercise(peer: &Peer) {
    let root = peer.root().await.unwrap();
    assert_eq!(root.type_name(), "test.Calc");
    assert_eq!(root.call_method::<i64>("add", (40, 2)).await.unwrap(), 42);
    let double = NetRef::from(Object::function(|x: i64| x * 2));
    assert_eq!(root.call_method::<i64>("apply", (double, 20)).await.unwrap(), 41);
    drop(root);
    peer.close_within("done", PROMPTLY).await;
    assert!(peer.is_closed());
}

#[cfg(unix)]
#[actix_rt::test]
async fn the_rpyc_client_reaches_a_unix_socket() {
    let dir = std::env::temp_dir().join(format!("netref-rpyc-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("calc.sock");
    let _ = std::fs::remove_file(&path);
    let server = Server::builder(calc()).rpyc().bind_unix(&path).await.unwrap();
    let peer = netref::connect(format!("unix:{}", path.display())).rpyc().timeout(PROMPTLY).await.unwrap();
    exercise(&peer).await;
    server.shutdown(PROMPTLY).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_rt::test]
async fn the_rpyc_client_runs_over_any_byte_stream() {
    // RPyC has no handshake and is symmetric: both ends of an in-memory pipe start at once.
    let (near, far) = tokio::io::duplex(64 * 1024);
    let rpyc = || Config::default().wire(Wire::Rpyc);
    let _server_side = netref::connect_stream(far, calc(), rpyc());
    let peer = netref::connect_stream(near, Service::void(), rpyc());
    exercise(&peer).await;
}

#[actix_rt::test]
async fn the_wire_choice_survives_a_later_config() {
    let server = Server::builder(calc()).rpyc().bind_tcp("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let peer =
        netref::connect(addr.as_str()).rpyc().config(Config::default().request_timeout(Some(PROMPTLY))).await.unwrap();
    exercise(&peer).await;
    server.shutdown(PROMPTLY).await;
}

#[cfg(feature = "tls")]
mod tls {
    use netref::{
        prelude::*,
        tls::{CertificateDer, PrivatePkcs8KeyDer, TlsClientConfig, TlsServerConfig},
    };
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};

    use super::{calc, exercise, PROMPTLY};

    /// A CA made at run time, and a server certificate for `localhost` it signed.
    fn certificates() -> (CertificateDer<'static>, TlsServerConfig) {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, "netref rpyc test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, "localhost");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        let server =
            TlsServerConfig::new(vec![cert.der().clone()], PrivatePkcs8KeyDer::from(key.serialize_der()).into())
                .unwrap();
        (ca_cert.der().clone(), server)
    }

    #[actix_rt::test]
    async fn the_rpyc_client_reaches_a_tls_listener() {
        let (root, server_tls) = certificates();
        // An RPyC server speaks only when asked, and this one never pings on its own: the
        // connect must not wait for the server's first bytes as it does for a native `Hello`.
        let quiet = Config::default().peer_timeout(None);
        let server =
            Server::builder(calc()).rpyc().config(quiet).tls(server_tls).bind_tcp("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let client_tls = TlsClientConfig::new(vec![root]).unwrap();
        let peer = netref::connect(addr.to_string())
            .rpyc()
            .tls(client_tls)
            .server_name("localhost")
            .timeout(PROMPTLY)
            .await
            .unwrap();
        exercise(&peer).await;
        server.shutdown(PROMPTLY).await;
    }
}
