//! Serving the peer's requests: the requests the session answers itself (PING, GETROOT, CLOSE,
//! DEL), dispatch of the others to this side's objects with user code isolated, the
//! concurrency cap and deadlines of those that keep running, and the replies.
//!
//! A method that finishes on its first poll (most do) is answered at once, with nothing
//! spawned or boxed; one that keeps running is handed to the host, which runs it and hands its
//! outcome back ([`Session::finish`]). A panic in user code becomes a `netref.Panic` reply,
//! never a dead connection. Nothing here performs I/O.

use std::{
    panic::AssertUnwindSafe,
    task::{Context as TaskContext, Poll},
    time::{Duration, Instant},
};

use futures::FutureExt;
use tracing::{debug, error, trace, warn, Instrument};

use super::{Host, SeqInUse, Session};
use crate::{
    error::{kinds, RemoteError},
    forward::Arrival,
    object::{dispatch, dispatch_call, dispatch_callable, AccessPolicy, MethodFuture, Object, Served},
    Error, Frame, Handle, NetRef, ProtocolError, Value,
};

/// An object request to serve: its unboxed items (target first), or a CALLATTR (`name` given)
/// or CALL whose target the dialect resolved while decoding.
pub(super) enum ObjectRequest<'a> {
    Items(Vec<Value>),
    Call { object: Object, name: Option<&'a str>, args: Vec<Value> },
}

/// What the session needs back with a running method's outcome (see [`Host::run`]).
pub(crate) enum Finish {
    /// Request `seq`: its reply is due.
    Request { seq: u64, span: tracing::Span, started: Option<Instant> },
    /// A one-way request: its outcome is only logged.
    OneWay { handle: Handle, target: Target, span: tracing::Span },
}

impl<W> Session<W> {
    /// Serves request `seq`. Only while the connection is open; a seq still running is a
    /// protocol error.
    pub(super) fn serve(
        &mut self,
        seq: u64,
        handle: Handle,
        request: ObjectRequest<'_>,
        deadline: Option<Duration>,
        host: &mut impl Host<Work = W>,
    ) {
        if !self.life.is_open() {
            debug!(parent: &self.span, seq, %handle, "request after Close ignored");
            return;
        }
        if let Err(SeqInUse(seq)) = self.inbound.check_free(seq) {
            // Two running requests under one seq would share one slot of the concurrency cap
            // (and one Cancel): a peer could run any number of them. It is a protocol error.
            let e = ProtocolError::Unexpected(format!("request seq {seq} reused while that request is still running"));
            return self.fail(Error::Protocol(e), host);
        }
        let items = match request {
            ObjectRequest::Items(items) => items,
            call @ ObjectRequest::Call { .. } => return self.serve_object(seq, handle, call, deadline, host),
        };
        match handle {
            Handle::Ping => self.reply(seq, Ok(items.into_iter().next().unwrap_or(Value::None))),
            Handle::GetRoot => {
                let r = self.get_root(items.first());
                self.reply(seq, r);
            }
            Handle::Close => {
                self.reply(seq, Ok(Value::None));
                let grace = self.config.close_grace;
                let reason = Error::ConnectionClosed("the peer closed the connection".into());
                self.begin_close(reason, false, grace, host);
            }
            Handle::Del => {
                let r = match (items.first(), items.get(1)) {
                    (Some(Value::Ref(r)), count) => {
                        let count = match count {
                            Some(Value::Int(n)) if *n > 0 => *n as u64,
                            _ => 1,
                        };
                        let id = r.id_pack().instance_id;
                        drop(items);
                        self.exports.release(id, count).map(|()| Value::None).map_err(|m| {
                            warn!(parent: &self.span, "{m}");
                            RemoteError::new(kinds::REFERENCE_ERROR, m)
                        })
                    }
                    _ => Err(RemoteError::new(kinds::TYPE_ERROR, "HANDLE_DEL needs (object, count)")),
                };
                self.reply(seq, r);
            }
            _ => self.serve_object(seq, handle, ObjectRequest::Items(items), deadline, host),
        }
    }

    /// GETROOT: the root (no name) or the export named `name`, which stays exported until the
    /// connection ends.
    fn get_root(&mut self, name: Option<&Value>) -> Result<Value, RemoteError> {
        match name {
            None | Some(Value::None) => Ok(Value::Ref(NetRef::from(self.root.clone()))),
            Some(Value::Str(name)) => match self.service.named(name) {
                Some(object) => {
                    let object = object.clone();
                    self.exports.pin(&object);
                    Ok(Value::Ref(NetRef::from(object)))
                }
                None => {
                    let known: Vec<&str> = self.service.names().collect();
                    Err(RemoteError::new(
                        kinds::LOOKUP_ERROR,
                        format!("no export named '{name}' (exported: {})", known.join(", ")),
                    ))
                }
            },
            Some(other) => Err(RemoteError::new(
                kinds::TYPE_ERROR,
                format!("an export name must be a string, not {}", other.kind()),
            )),
        }
    }

    fn serve_object(
        &mut self,
        seq: u64,
        handle: Handle,
        request: ObjectRequest<'_>,
        deadline: Option<Duration>,
        host: &mut impl Host<Work = W>,
    ) {
        // Timing is only logged at TRACE; skip the clock reads otherwise.
        let started = tracing::enabled!(tracing::Level::TRACE).then(|| host.now());
        // A span per request only when something listens for it: with tracing's `log` feature
        // on (a dependency may turn it on), even a disabled span formats its fields for `log`.
        let span = if tracing::enabled!(kind: tracing::metadata::Kind::SPAN, tracing::Level::DEBUG) {
            tracing::debug_span!(parent: &self.span, "netref.request", seq, handle = %handle, object = tracing::field::Empty)
        } else {
            tracing::Span::none()
        };
        let arrival = Arrival { deadline, one_way: false };
        let (object, outcome) = request.start(handle, &self.config.policy, arrival, &span);
        if !span.is_disabled() {
            span.record("object", tracing::field::display(&object));
        }
        match outcome {
            Started::Done(r) => {
                trace!(parent: &span, elapsed = ?started.map(|t| host.now() - t), ok = r.is_ok(), "served");
                self.reply(seq, r);
            }
            Started::Running(fut, long_poll) => {
                // The caller stops waiting at its deadline; past it the work is dropped without a
                // reply (the caller has its own Timeout and sent, or will send, a Cancel).
                let deadline = deadline.and_then(|limit| host.now().checked_add(limit));
                let fut = if span.is_disabled() { fut } else { fut.instrument(span.clone()).boxed() };
                let work = host.run(fut, Finish::Request { seq, span, started });
                self.inbound.start(seq, work, long_poll, deadline);
                if let Some(at) = deadline {
                    self.arm_expiry(at, host);
                }
            }
        }
    }

    /// Serves a one-way request: like a request, but the outcome is only logged. Dispatch
    /// happens now, in frame order, so one-way messages to an actor keep their order.
    pub(super) fn serve_one_way(&mut self, handle: Handle, request: ObjectRequest<'_>, host: &mut impl Host<Work = W>) {
        // A one-way PING is a liveness frame: reading it was its whole purpose.
        if !self.life.is_open() || handle == Handle::Ping {
            return;
        }
        let span = self.span.clone();
        let arrival = Arrival { deadline: None, one_way: true };
        let (target, outcome) = request.start(handle, &self.config.policy, arrival, &span);
        match outcome {
            Started::Done(Ok(_)) => {}
            Started::Done(Err(e)) => {
                debug!(parent: &span, %handle, object = %target, error = %e, "one-way request failed")
            }
            Started::Running(fut, _) => {
                self.inbound.start_one_way();
                // One-way work is not cancellable by the peer: its handle is not kept.
                let _ = host.run(fut, Finish::OneWay { handle, target, span });
            }
        }
    }

    /// A method the host ran (see [`Host::run`]) finished with `outcome`.
    pub(crate) fn finish(
        &mut self,
        finish: Finish,
        outcome: Result<Value, RemoteError>,
        host: &mut impl Host<Work = W>,
    ) {
        match finish {
            Finish::Request { seq, span, started } => {
                if self.inbound.finish(seq) {
                    trace!(parent: &span, elapsed = ?started.map(|t| host.now() - t), ok = outcome.is_ok(), "served");
                    self.reply(seq, outcome);
                }
            }
            Finish::OneWay { handle, target, span } => {
                self.inbound.finish_one_way();
                if let Err(e) = outcome {
                    debug!(parent: &span, %handle, object = %target, error = %e, "one-way request failed");
                }
            }
        }
    }

    /// Answers request `seq`, which the dialect could not decode into something to serve, with
    /// `error` (only while the connection is open).
    pub(super) fn refuse(&mut self, seq: u64, error: RemoteError) {
        if self.life.is_open() {
            debug!(parent: &self.span, seq, error = %error, "request refused");
            self.reply(seq, Err(error));
        }
    }

    fn reply(&mut self, seq: u64, r: Result<Value, RemoteError>) {
        if self.life.is_closed() {
            return;
        }
        let frame = match r {
            Ok(value) => Frame::Reply { seq, value },
            Err(error) => Frame::Exception { seq, error },
        };
        if let Err(e) = self.queue_frame(&frame) {
            warn!(parent: &self.span, seq, error = %e, "cannot send reply; sending the error instead");
            // Short enough for any peer's frames (at least `MIN_MAX_FRAME_LEN`), so the caller
            // always hears back.
            let mut message = format!("the reply could not be sent: {e}");
            truncate_at_char(&mut message, FALLBACK_MESSAGE_MAX);
            let error = RemoteError::new(kinds::VALUE_ERROR, message);
            if let Err(e) = self.queue_frame(&Frame::Exception { seq, error }) {
                error!(parent: &self.span, seq, error = %e, "cannot send the error reply either: the caller waits for its timeout");
            }
        }
    }
}

/// The target of a request, named in logs and panic messages. Holding the object or netref
/// (an `Arc`) rather than a copy of its type name keeps the hot path free of allocations.
#[derive(Clone)]
pub(crate) enum Target {
    /// The request's first argument was not a reference.
    Nothing,
    /// The first argument, a netref.
    Ref(NetRef),
    /// An object of this side (a call the dialect resolved while decoding).
    Object(Object),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Target::Nothing => "",
            Target::Ref(r) => r.type_name(),
            Target::Object(o) => o.type_name(),
        })
    }
}

impl ObjectRequest<'_> {
    /// Dispatches the request and polls it once, with user code isolated (see
    /// [`start_isolated`]).
    fn start(self, handle: Handle, policy: &AccessPolicy, arrival: Arrival, span: &tracing::Span) -> (Target, Started) {
        match self {
            ObjectRequest::Items(items) => {
                let target = match items.first() {
                    Some(Value::Ref(r)) => Target::Ref(r.clone()),
                    _ => Target::Nothing,
                };
                start_isolated(target, span, || dispatch(handle, items, policy, arrival))
            }
            ObjectRequest::Call { object, name, args } => {
                let target = Target::Object(object.clone());
                start_isolated(target, span, || match name {
                    Some(name) => dispatch_call(&object, name, args, policy, arrival),
                    None => dispatch_callable(&object, args, policy, arrival),
                })
            }
        }
    }
}

/// How a dispatched request went on its first poll.
enum Started {
    /// It finished at once (most methods are synchronous): nothing to spawn or box.
    Done(Result<Value, RemoteError>),
    /// It is still running; the future is panic-isolated. `long_poll`: it waits for an event
    /// (a graceful close drops it rather than waiting for it).
    Running(futures::future::BoxFuture<'static, Result<Value, RemoteError>>, bool),
}

/// Dispatches a request on an exported object (`run`) and polls it once, with user code
/// isolated: a panic while the method starts or while its future runs becomes a `netref.Panic`
/// remote error. Returns the target (for logs) and how it went. The first poll uses a no-op
/// waker: a future that is pending is polled again by the host with its task's own.
fn start_isolated(target: Target, span: &tracing::Span, run: impl FnOnce() -> Served) -> (Target, Started) {
    let (mut fut, long_poll): (MethodFuture, bool) = match std::panic::catch_unwind(AssertUnwindSafe(run)) {
        Ok(Served::Done(r)) => return (target, Started::Done(r)),
        Ok(Served::Later(fut)) => (fut, false),
        Ok(Served::LongPoll(fut)) => (fut, true),
        Err(panic) => {
            let error = panic_error(&target, panic);
            return (target, Started::Done(Err(error)));
        }
    };
    let mut cx = TaskContext::from_waker(futures::task::noop_waker_ref());
    let polled = span.in_scope(|| std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))));
    let started = match polled {
        Ok(Poll::Ready(r)) => Started::Done(r),
        Err(panic) => Started::Done(Err(panic_error(&target, panic))),
        Ok(Poll::Pending) => {
            let for_panic = target.clone();
            let fut = AssertUnwindSafe(fut)
                .catch_unwind()
                .map(move |r| r.unwrap_or_else(|panic| Err(panic_error(&for_panic, panic))));
            Started::Running(fut.boxed(), long_poll)
        }
    };
    (target, started)
}

fn panic_error(object: &Target, panic: Box<dyn std::any::Any + Send>) -> RemoteError {
    let message = crate::error::panic_message(&*panic).to_owned();
    let traceback =
        crate::error::traceback_text(&format!("panic while serving a request on '{object}'"), kinds::PANIC, &message);
    RemoteError::new(kinds::PANIC, message).with_traceback(traceback)
}

/// The longest message of the error sent in place of a reply that could not be sent: with
/// the frame's other fields it stays well within [`MIN_MAX_FRAME_LEN`](crate::protocol::MIN_MAX_FRAME_LEN).
const FALLBACK_MESSAGE_MAX: usize = 512;

/// Shortens `s` to at most `max` bytes, at a character boundary, marking the cut with `…`.
fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max - '…'.len_utf8();
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
}
