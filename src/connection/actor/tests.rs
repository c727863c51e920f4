//! The actor's own I/O behaviour: what it asks of the transport.

use std::{cell::RefCell, io, pin::Pin, rc::Rc, sync::Arc, task::Poll};

use tokio::io::{AsyncWrite, DuplexStream, WriteHalf};

use super::{super::io::Writer, ConnInfo, Connection};
use crate::{config::Config, service::Service};

#[derive(Debug, PartialEq)]
enum Event {
    Write,
    Hold,
    Shutdown,
}

/// A write half that records what the connection asks of it.
struct Recording {
    inner: WriteHalf<DuplexStream>,
    events: Rc<RefCell<Vec<Event>>>,
}

impl AsyncWrite for Recording {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(_))) {
            self.events.borrow_mut().push(Event::Write);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        if r.is_ready() {
            self.events.borrow_mut().push(Event::Shutdown);
        }
        r
    }
}

impl Writer for Recording {
    fn hold_for_shutdown(&mut self) {
        self.events.borrow_mut().push(Event::Hold);
    }
}

/// A graceful close asks the transport to hold the `Close` frame for the shutdown, and
/// only then: the frames before it are written as usual.
#[actix_rt::test]
async fn the_close_frame_is_held_for_the_shutdown() {
    let (left, right) = tokio::io::duplex(64 << 10);
    let (lr, lw) = tokio::io::split(left);
    let events = Rc::new(RefCell::new(Vec::new()));
    let writer = Recording { inner: lw, events: events.clone() };
    let config = Arc::new(Config::default());
    let a = Connection::start(Box::new(lr), Box::new(writer), Service::void(), config.clone(), ConnInfo::default());
    let (rr, rw) = tokio::io::split(right);
    let b = Connection::start(Box::new(rr), Box::new(rw), Service::void(), config, ConnInfo::default());
    a.ready().await.unwrap();
    b.ready().await.unwrap();
    assert!(!events.borrow().contains(&Event::Hold), "held before the close: {:?}", events.borrow());
    a.close().await;
    b.closed().await;
    let events = events.borrow();
    let hold = events.iter().position(|e| *e == Event::Hold).expect("the close asked to hold");
    assert_eq!(&events[hold..], [Event::Hold, Event::Write, Event::Shutdown], "all events: {events:?}");
}

/// Two connections speaking the sequenced test dialect (no handshake, no cancel, releases as
/// DEL requests, its own framing) over an in-memory transport: the actor carries a second wire
/// unchanged — calls both ways, a callback during a call, a release, a clean close.
#[actix_rt::test]
async fn the_actor_carries_a_dialect_without_handshake_cancel_or_release_frames() {
    use std::time::Duration;

    use super::DialectChoice;
    use crate::{session::Sequenced, NetRef, Object};

    fn sequenced() -> DialectChoice {
        DialectChoice::Custom(Box::new(|config: &Config, _vectored: bool| {
            Box::new(Sequenced::new(config.max_frame_len, config.decode_limits)) as Box<dyn crate::session::Dialect>
        }))
    }
    let root = Object::builder("test.Calc")
        .method("add", |a: i64, b: i64| a + b)
        .method("child", || Object::builder("test.Child").method("one", || 1).build())
        .try_async_method("twice", |callback: NetRef| async move {
            let once: i64 = callback.call(()).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(once * 2)
        })
        .build();
    let (left, right) = tokio::io::duplex(64 << 10);
    let (lr, lw) = tokio::io::split(left);
    let (rr, rw) = tokio::io::split(right);
    let config = Arc::new(Config::default());
    let server = Connection::start_with(
        Box::new(rr),
        Box::new(rw),
        Service::shared(root),
        config.clone(),
        ConnInfo::default(),
        sequenced(),
    );
    let client =
        Connection::start_with(Box::new(lr), Box::new(lw), Service::void(), config, ConnInfo::default(), sequenced());
    client.ready().await.expect("ready at once: no handshake");
    let calc = client.root().await.unwrap();
    assert_eq!(calc.type_name(), "test.Calc");
    assert_eq!(calc.call_method::<i64>("add", (20, 22)).await.unwrap(), 42);
    let callback = Object::function(|| 21i64);
    assert_eq!(calc.call_method::<i64>("twice", (callback,)).await.unwrap(), 42);
    let child: NetRef = calc.call_method("child", ()).await.unwrap();
    assert_eq!(child.call_method::<i64>("one", ()).await.unwrap(), 1);
    assert_eq!(server.stats().await.unwrap().unpinned_exports, 1);
    drop(child);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while server.stats().await.unwrap().unpinned_exports != 0 {
        assert!(tokio::time::Instant::now() < deadline, "the DEL request released the child");
        tokio::task::yield_now().await;
    }
    client.close().await;
    server.closed().await;
}
