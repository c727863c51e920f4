//! Guards the ways to reach a service: a Unix socket, TLS with a CA made by the test (server
//! and client certificates), RPyC's wire (`--rpyc`) and a registry lookup (`--registry`).

mod common;

use std::fs;

use common::{ok, run, scratch, Demo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

#[test]
fn a_unix_socket_serves_every_command() {
    let dir = scratch("unix");
    let path = dir.join("calc.sock");
    let demo = Demo::start(&[&format!("unix:{}", path.display())]);
    assert_eq!(demo.addr, format!("unix:{}", path.display()));
    assert!(ok(&["ping", &demo.addr]).starts_with("pong from unix:"));
    assert_eq!(ok(&["call", &demo.addr, "add", "1", "2"]), "3\n");
    assert_eq!(ok(&["get", &demo.addr, "memory"]), "0\n");
    assert!(ok(&["ls", &demo.addr]).starts_with("type  demo.Calculator\n"));
    let missing = format!("unix:{}", dir.join("nobody.sock").display());
    let out = run(&["ping", &missing]);
    assert_eq!(out.code, 3, "{out:?}");
}

/// A CA, and PEM files for a server (`localhost`, `127.0.0.1`) and a client it issued.
struct Pki {
    ca: std::path::PathBuf,
    server_cert: std::path::PathBuf,
    server_key: std::path::PathBuf,
    client_cert: std::path::PathBuf,
    client_key: std::path::PathBuf,
    other_ca: std::path::PathBuf,
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

fn leaf(issuer: &Issuer<'static, KeyPair>, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> (String, String) {
    let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![purpose];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn pki(name: &str) -> Pki {
    let dir = scratch(name);
    let (ca_pem, issuer) = ca("netref-cli test CA");
    let (server_cert, server_key) = leaf(&issuer, &["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
    let (client_cert, client_key) = leaf(&issuer, &["client"], ExtendedKeyUsagePurpose::ClientAuth);
    let (other_ca, _) = ca("some other CA");
    let write = |file: &str, text: &str| {
        let path = dir.join(file);
        fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", &ca_pem),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server.key", &server_key),
        client_cert: write("client.pem", &client_cert),
        client_key: write("client.key", &client_key),
        other_ca: write("other-ca.pem", &other_ca),
    }
}

#[test]
fn tls_with_a_test_ca_reaches_the_service_and_refuses_a_stranger() {
    let pki = pki("tls");
    let demo = Demo::start(&[
        "127.0.0.1:0",
        "--tls-cert",
        pki.server_cert.to_str().unwrap(),
        "--tls-key",
        pki.server_key.to_str().unwrap(),
    ]);
    let ca = pki.ca.to_str().unwrap();
    assert_eq!(ok(&["--tls", "--ca", ca, "call", &demo.addr, "add", "2", "3"]), "5\n");
    let port = demo.addr.rsplit_once(':').unwrap().1;
    let by_name = format!("localhost:{port}");
    assert_eq!(ok(&["--tls", "--ca", ca, "get", &by_name, "memory"]), "0\n");
    assert_eq!(ok(&["--tls", "--ca", ca, "--server-name", "localhost", "get", &demo.addr, "memory"]), "0\n");
    // A client certificate is offered when given (this server does not ask for one).
    let (cert, key) = (pki.client_cert.to_str().unwrap(), pki.client_key.to_str().unwrap());
    assert_eq!(ok(&["--tls", "--ca", ca, "--cert", cert, "--key", key, "call", &demo.addr, "add", "1", "1"]), "2\n");

    let out = run(&["--tls", "--ca", pki.other_ca.to_str().unwrap(), "ping", &demo.addr]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("tls error") && out.stderr.contains("hint: check --ca"), "{out:?}");
    let out = run(&["--tls", "--ca", ca, "--server-name", "elsewhere.example", "ping", &demo.addr]);
    assert_eq!(out.code, 3, "{out:?}");
    // Plain netref to a TLS server fails as a connection problem, not a hang.
    let out = run(&["--timeout", "3s", "ping", &demo.addr]);
    assert!(out.code == 3 || out.code == 4, "{out:?}");
}

#[test]
fn rpyc_speaks_to_a_server_on_rpycs_wire() {
    let demo = Demo::start(&["--rpyc", "127.0.0.1:0"]);
    assert_eq!(ok(&["--rpyc", "call", &demo.addr, "add", "20", "22"]), "42\n");
    assert_eq!(ok(&["--rpyc", "get", &demo.addr, "memory"]), "0\n");
    assert!(ok(&["--rpyc", "ping", &demo.addr]).starts_with("pong from "));
    assert!(ok(&["--rpyc", "dir", &demo.addr]).contains("add"));
}
