//! Guards what happens when a stock rpyc client dials a listener that speaks netref's native
//! wire by mistake: the native side recognises the RPyC 6 request that came instead of a
//! `Hello`, logs one warning naming the cause and the fix (`.rpyc()`), and ends that connection
//! with a clean FIN and no native `Close` frame (the RPyC peer would misread it). Its own
//! `Hello` goes out as always — before anything is read, byte for byte as to a netref client —
//! and the listener serves netref clients on as before.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use common::calculator;
use netref::{prelude::*, Server};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tracing::Subscriber;
use tracing_subscriber::{layer::Context, prelude::*, Layer};

/// Generous bound for anything that should happen promptly on loopback.
const PROMPTLY: Duration = Duration::from_secs(10);

/// RPyC 6's GETROOT request, seq 0, as rpyc 6.0.2 sends it first (`rpyc-reference.md` §8.2).
const GETROOT: [u8; 14] = [0, 0, 0, 8, 0, 0x01, 0x11, 0x50, 0x11, 0x53, 0x11, 0x51, 0x02, 0x0a];

/// Records the fields of every event at WARN or above.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl<S: Subscriber> Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if *event.metadata().level() <= tracing::Level::WARN {
            struct Fields<'a>(&'a mut String);
            impl tracing::field::Visit for Fields<'_> {
                fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                    use std::fmt::Write;
                    let _ = write!(self.0, "{}={:?} ", field.name(), value);
                }
            }
            let mut text = String::new();
            event.record(&mut Fields(&mut text));
            self.0.lock().unwrap().push(text);
        }
    }
}

/// Reads one native frame (length prefix and body) off `stream`.
async fn read_native_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).await.unwrap();
    body
}

#[test]
fn a_stock_rpyc_request_on_a_native_listener_is_named_and_closed_cleanly() {
    let warnings = Warnings::default();
    let subscriber = tracing_subscriber::registry().with(warnings.clone());
    tracing::subscriber::with_default(subscriber, || {
        actix_rt::System::new().block_on(async {
            let root = calculator(Arc::default());
            let server = Server::builder(Service::shared(root)).bind_tcp("127.0.0.1:0").await.unwrap();
            let addr = server.local_addr().unwrap();

            // What a stock client's socket receives first: the native Hello, unasked.
            let mut rpyc_client = TcpStream::connect(addr).await.unwrap();
            let hello = read_native_frame(&mut rpyc_client).await;
            assert_eq!(&hello[..2], &[0x00, 0x01], "frame kind 0 (Hello), version 1: {hello:02x?}");

            // The stock client's first request: the connection ends with a FIN (a read of 0
            // bytes, not a reset), with nothing written after the Hello.
            rpyc_client.write_all(&GETROOT).await.unwrap();
            let mut after_hello = Vec::new();
            let end = tokio::time::timeout(PROMPTLY, rpyc_client.read_to_end(&mut after_hello)).await;
            let end = end.expect("the native side closes the connection promptly");
            assert!(end.is_ok(), "a clean close, not a reset: {end:?}");
            assert_eq!(after_hello, Vec::<u8>::new(), "no native Close frame is sent to an RPyC peer");

            // One warning names the cause and the fix.
            let logged = warnings.0.lock().unwrap().clone();
            let named: Vec<_> = logged.iter().filter(|w| w.contains("spoke RPyC 6")).collect();
            assert_eq!(named.len(), 1, "{logged:#?}");
            assert!(named[0].contains(".rpyc()"), "{}", named[0]);

            // The listener serves netref clients as before, and their Hello is the one the
            // RPyC peer received.
            let mut native = TcpStream::connect(addr).await.unwrap();
            assert_eq!(read_native_frame(&mut native).await, hello, "every client gets the same Hello");
            drop(native);
            let client = netref::connect(addr.to_string()).timeout(PROMPTLY).await.unwrap();
            let sum: i64 = client.root().await.unwrap().call_method("add", (2, 3)).await.unwrap();
            assert_eq!(sum, 5);
            client.close().await;
            server.shutdown(PROMPTLY).await;
        })
    });
}

#[test]
fn other_bad_first_frames_keep_their_own_error_and_close_frame() {
    let warnings = Warnings::default();
    let subscriber = tracing_subscriber::registry().with(warnings.clone());
    tracing::subscriber::with_default(subscriber, || {
        actix_rt::System::new().block_on(async {
            let server =
                Server::builder(Service::shared(calculator(Arc::default()))).bind_tcp("127.0.0.1:0").await.unwrap();
            let mut stream = TcpStream::connect(server.local_addr().unwrap()).await.unwrap();
            read_native_frame(&mut stream).await;
            // A native Hello with a root option byte that is neither 0 nor 1: malformed, and
            // not RPyC (its features byte is 0x01, not brine's 2-tuple).
            stream.write_all(&[0, 0, 0, 6, 0x00, 0x01, 0x01, 0x50, 0x11, 0x53]).await.unwrap();
            let close = tokio::time::timeout(PROMPTLY, read_native_frame(&mut stream)).await.unwrap();
            assert_eq!(close[0], 6, "a native Close frame explains the error: {close:02x?}");
            let logged = warnings.0.lock().unwrap().clone();
            assert!(!logged.iter().any(|w| w.contains("RPyC")), "{logged:#?}");
            assert!(logged.iter().any(|w| w.contains("malformed")), "{logged:#?}");
            server.shutdown(PROMPTLY).await;
        })
    });
}
