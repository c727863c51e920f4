//! The connection's I/O driver: one future of the actor's context that reads frame bodies,
//! hands them and the queued requests to the session, and writes what they produced in one
//! write per turn; and, when the connection ends while the peer may still be sending, the
//! bounded drain that keeps the socket from answering with a reset. It never decides anything
//! about the protocol: that is the session's.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context as TaskContext, Poll, Waker},
    time::Duration,
};

use actix::{ActorFuture, Context};
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_util::codec::FramedRead;

use super::{
    super::io::{Bodies, Gated, ReadWake},
    BoxRead, Connection,
};
use crate::session::Phase;

/// Frames read per turn at most before the driver lets the other futures of the arbiter run.
/// The turn's replies go out in one write, so a larger budget means fewer writes for a
/// pipelining peer; a smaller one lets the arbiter's other connections in sooner.
const READ_BUDGET: usize = 256;

/// Runs the connection's I/O, for the actor's life, as one future of its context: each turn it
/// hands the session the frames the transport has ready, then the requests callers queued (the
/// request queue wakes it, no mailbox message each), then writes everything those queued in
/// one write.
///
/// One future rather than a stream, a pump and a write task each: actix polls every future of
/// a context on each wake-up, and a write task spawned per write would cost an allocation and
/// a second pass over all of them.
pub(super) struct Driver {
    /// The frame bodies; `None` once the peer has closed its side.
    frames: Option<Gated<FramedRead<BoxRead, Bodies>>>,
    /// What the frames are polled with (made on the first turn, and again if the task's waker
    /// changes): only turns after it was woken poll them.
    read_wake: Option<(Arc<ReadWake>, Waker)>,
    /// The connection failed on the peer's bytes: more of them may still be on the way.
    drain_on_drop: bool,
}

impl Driver {
    /// The driver of a connection reading `frames`.
    pub(super) fn new(frames: Gated<FramedRead<BoxRead, Bodies>>) -> Driver {
        Driver { frames: Some(frames), read_wake: None, drain_on_drop: false }
    }
}

/// How long, and how many bytes, a closed connection keeps reading what its peer still sends.
const DRAIN_FOR: Duration = Duration::from_millis(500);
const DRAIN_MAX: usize = 256 << 10;

impl Drop for Driver {
    /// A connection that ends while its peer may still be sending (a protocol error, a close of
    /// ours) reads and discards what arrives for a moment, within bounds, before the socket is
    /// dropped: a socket closed with unread bytes sends the peer a reset, which can overtake
    /// what was written before it (the peer then sees "connection reset" instead of the close).
    ///
    /// Only then: a connection that failed on the peer's bytes, or one with bytes unread right
    /// now. A clean close has nothing unread, and a drain task (a task, a buffer, a timer) would
    /// cost every connection a quarter of its work.
    fn drop(&mut self) {
        let Some(frames) = self.frames.take() else {
            return;
        };
        if actix_rt::Arbiter::try_current().is_none() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let mut reader = frames.inner.into_inner();
        if !self.drain_on_drop {
            let mut probe = [0u8; 64];
            let mut probe = tokio::io::ReadBuf::new(&mut probe);
            let mut cx = TaskContext::from_waker(futures::task::noop_waker_ref());
            match Pin::new(&mut reader).poll_read(&mut cx, &mut probe) {
                Poll::Ready(Ok(())) if !probe.filled().is_empty() => {}
                // Nothing unread, the end of the stream, or a failed socket: nothing to drain.
                _ => return,
            }
        }
        actix_rt::spawn(async move {
            let drain = async {
                let mut buf = vec![0u8; 8 << 10];
                let mut total = 0;
                while total < DRAIN_MAX {
                    match reader.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => total += n,
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_FOR, drain).await;
        });
    }
}

impl ActorFuture<Connection> for Driver {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut Connection,
        ctx: &mut Context<Connection>,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        let this = self.get_mut();
        if !act.waker.as_ref().is_some_and(|w| w.will_wake(task.waker())) {
            act.waker = Some(task.waker().clone());
            act.alarm.register(task.waker());
        }
        if act.alarm.take_fired() {
            act.with_session(ctx, |session, host| session.wake(host));
        }
        act.deferring = true;
        if !this.read_wake.as_ref().is_some_and(|(wake, _)| wake.wakes(task.waker())) {
            this.read_wake = None;
        }
        let (read_wake, read_waker) = &*this.read_wake.get_or_insert_with(|| ReadWake::new(task.waker()));
        // The transport, the gate and the budget below all wake the read side through
        // `read_waker`: a turn nothing of those woke has nothing to read.
        let mut read = 0;
        let mut read_task = TaskContext::from_waker(read_waker);
        while let Some(frames) = this.frames.as_mut().filter(|_| read > 0 || read_wake.take()) {
            if act.session.phase() == Phase::Closed {
                break;
            }
            match frames.poll_next_unpin(&mut read_task) {
                Poll::Pending => break,
                Poll::Ready(Some(item)) => {
                    act.with_session(ctx, |session, host| session.receive(item, host));
                    act.update_gate();
                    read += 1;
                    if read == READ_BUDGET {
                        // More may be ready: come back after the others had their turn.
                        read_waker.wake_by_ref();
                        break;
                    }
                }
                Poll::Ready(None) => {
                    this.frames = None;
                    act.with_session(ctx, |session, host| session.read_end(host));
                }
            }
        }
        act.link.request_signal.register(task.waker());
        if act.link.requests_waiting() {
            act.drain_requests(ctx);
            // What they asked may stop reading (a close, a full write buffer).
            act.update_gate();
        }
        act.with_session(ctx, |session, host| session.end_turn(host));
        act.write_out(ctx, task);
        act.maybe_shut_down(ctx);
        act.arm_grace(ctx);
        act.deferring = false;
        this.drain_on_drop = act.session.failed_on_peer_bytes();
        Poll::Pending
    }
}
