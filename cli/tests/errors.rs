//! Guards the failure paths: each prints a message a person can act on and exits with the
//! code `netref --help` documents (1 remote, 2 usage, 3 connection, 4 timeout).

mod common;

use std::{io::Write, net::TcpListener, thread};

use common::{run, Demo};

#[test]
fn a_refused_connection_exits_3_and_says_what_to_check() {
    // A port that was just free: bind, note it, drop the listener.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let out = run(&["ping", &addr]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.starts_with(&format!("error: connecting to {addr}: connection refused")), "{out:?}");
    assert!(out.stderr.contains("is the server running"), "{out:?}");
    let out = run(&["--json", "get", &addr, "x"]);
    let doc: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        (doc["ok"].as_bool(), doc["error"]["class"].as_str(), doc["error"]["exit_code"].as_i64()),
        (Some(false), Some("connection"), Some(3))
    );
}

#[test]
fn a_remote_exception_exits_1_with_its_traceback_under_verbose() {
    let demo = Demo::tcp();
    let out = run(&["call", &demo.addr, "div", "1", "0"]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "error: calling div: remote error: builtins.ZeroDivisionError: division by zero\n  hint: -v shows the remote traceback\n"
    );
    let out = run(&["-v", "call", &demo.addr, "div", "1", "0"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("========= Remote Traceback =========\nTraceback (most recent call last):\n  method 'div' of 'demo.Calculator'"), "{out:?}");
}

#[test]
fn a_name_the_policy_keeps_private_exits_1_and_names_the_setting() {
    let demo = Demo::tcp();
    let out = run(&["call", &demo.addr, "secret"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("'secret' is not exposed"), "{out:?}");
    assert!(out.stderr.contains("allow_public_attrs"), "{out:?}");
    let out = run(&["get", &demo.addr, "stats.nope"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.starts_with("error: reading stats.nope: remote error: builtins.AttributeError"), "{out:?}");
}

#[test]
fn usage_errors_exit_2() {
    let demo = Demo::tcp();
    for (args, says) in [
        (vec!["call", &demo.addr, "add", "{oops"], "argument 1: not JSON"),
        (vec!["call", &demo.addr, "echo", "{\"$tupel\":[]}"], "unknown tag \"$tupel\""),
        (vec!["call", &demo.addr, "echo", "{\"$ref\":{}}"], "$ref cannot be sent"),
        (vec!["call", &demo.addr, "add", "--kw", "nameonly"], "expected NAME=JSON"),
        (vec!["call", &demo.addr, "root"], "call needs a method path"),
        (vec!["get", &demo.addr, "memory.x"], "memory is a int value"),
        (vec!["--tls", "ping", &demo.addr], "--tls needs --ca"),
        (vec!["--timeout", "soon", "ping", &demo.addr], "not a duration"),
        (vec!["--registry", "http://x", "ping", "calc"], "unsupported registry URL"),
    ] {
        let out = run(&args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(out.stderr.contains(says), "{args:?}: {out:?}");
    }
}

#[test]
fn a_silent_server_times_out_with_exit_4() {
    // Accepts and says nothing: the connect waits for a Hello that never comes.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let holder = thread::spawn(move || listener.accept().map(|(socket, _)| socket));
    let out = run(&["--timeout", "300ms", "ping", &addr]);
    assert_eq!(out.code, 4, "{out:?}");
    assert!(out.stderr.contains("timed out") && out.stderr.contains("raise --timeout"), "{out:?}");
    drop(holder.join().unwrap());
}

#[test]
fn another_protocol_version_exits_3_naming_both_versions() {
    use tokio_util::codec::Encoder;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let theirs = netref::dev::PROTOCOL_VERSION + 1;
    let server = thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let hello: netref::Frame<netref::WireRef> = netref::Frame::Hello(netref::dev::Hello {
            version: theirs,
            features: 0,
            limits: netref::dev::Limits::default(),
            root: None,
        });
        let mut buf = bytes::BytesMut::new();
        netref::dev::FrameCodec::new().encode(hello, &mut buf).unwrap();
        socket.write_all(&buf).unwrap();
        // Hold the socket until the client hangs up.
        let mut sink = [0u8; 256];
        while std::io::Read::read(&mut socket, &mut sink).is_ok_and(|n| n > 0) {}
    });
    let out = run(&["ping", &addr]);
    assert_eq!(out.code, 3, "{out:?}");
    let ours = netref::dev::PROTOCOL_VERSION;
    assert!(
        out.stderr.contains(&format!("this side speaks version {ours}, the peer speaks version {theirs}")),
        "{out:?}"
    );
    assert!(out.stderr.contains("upgrade the older side"), "{out:?}");
    server.join().unwrap();
}

#[test]
fn a_server_speaking_something_else_exits_3() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        socket
    });
    let out = run(&["--timeout", "5s", "ping", &addr]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("--rpyc") || out.stderr.contains("protocol"), "{out:?}");
    drop(server.join().unwrap());
}
