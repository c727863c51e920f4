//! [`AsyncResult`]: the future-backed reply of one request (RPyC's `rpyc.core.async_`).
//!
//! The connection settles a result exactly once — with the reply, the peer's exception, its
//! expiry, or the connection's end — and callbacks run then (or at once if already settled).
//! As in RPyC, an expired result has not arrived: only [`AsyncResult::expired`] turns true.
//! Blocking waits refuse to run on a thread that runs netref's connections (an actix thread),
//! where they would stop the reply they wait for; everywhere else they block.

use std::{
    fmt,
    future::Future,
    marker::PhantomData,
    pin::Pin,
    sync::{Arc, Condvar, Mutex, MutexGuard},
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use serde::de::DeserializeOwned;

use crate::{Error, Value};

type Outcome = Result<Value, Error>;
type Callback = Box<dyn FnOnce(&Outcome) + Send>;

/// Where a pending result lives, so expiry changes and cancellation reach it.
pub(crate) trait ResultOwner: Send + Sync {
    /// The result's expiry changed.
    fn reschedule(&self, shared: &Arc<Shared>);
    /// Nobody wants the result any more.
    fn cancel(&self, shared: &Arc<Shared>);
}

pub(crate) struct Shared {
    state: Mutex<State>,
    settled: Condvar,
}

struct State {
    outcome: Option<Outcome>,
    waker: Option<Waker>,
    callbacks: Vec<Callback>,
    expiry: Option<Instant>,
    timeout: Option<Duration>,
    seq: Option<u64>,
    owner: Option<Arc<dyn ResultOwner>>,
    /// [`AsyncResult::detach`]ed: dropping the handle does not cancel the request.
    detached: bool,
    /// Threads blocked in `wait`: `settle` signals the condition variable only for them (a
    /// `notify_all` is a futex system call even when nobody waits).
    blocked: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Settles the result; `false` if it was already settled (a late reply is dropped).
    pub(crate) fn settle(&self, outcome: Outcome) -> bool {
        let mut state = self.lock();
        if state.outcome.is_some() {
            return false;
        }
        let callbacks = std::mem::take(&mut state.callbacks);
        let waker = state.waker.take();
        let blocked = state.blocked > 0;
        state.owner = None;
        if callbacks.is_empty() {
            state.outcome = Some(outcome);
            drop(state);
        } else {
            state.outcome = Some(outcome.clone());
            drop(state);
            for cb in callbacks {
                cb(&outcome);
            }
        }
        if blocked {
            self.settled.notify_all();
        }
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Records the request number and owner, in one lock; returns the absolute expiry and the
    /// timeout it was set from, or `Err` if the result already settled (cancelled before it was
    /// sent: nothing to send).
    pub(crate) fn register(&self, seq: u64, owner: Arc<dyn ResultOwner>) -> Result<Option<(Instant, Duration)>, ()> {
        let mut state = self.lock();
        if state.outcome.is_some() {
            return Err(());
        }
        state.seq = Some(seq);
        state.owner = Some(owner);
        Ok(state.expiry.map(|at| (at, state.timeout.unwrap_or_default())))
    }

    /// Records the owner of a request that waits to be sent (no number yet), so that a new
    /// expiry or a cancellation reaches it.
    pub(crate) fn attach(&self, owner: Arc<dyn ResultOwner>) {
        let mut state = self.lock();
        if state.outcome.is_none() {
            state.owner = Some(owner);
        }
    }

    pub(crate) fn seq(&self) -> Option<u64> {
        self.lock().seq
    }

    pub(crate) fn expiry(&self) -> Option<Instant> {
        self.lock().expiry
    }

    /// The timeout the expiry came from, for the error message.
    pub(crate) fn timeout(&self) -> Duration {
        self.lock().timeout.unwrap_or_default()
    }
}

/// The settling side of a result, held by whoever will produce the outcome. Dropping it
/// unsettled settles the result with [`Error::ConnectionClosed`], so no caller waits forever.
pub(crate) struct Completer {
    pub(crate) shared: Arc<Shared>,
    /// Settled through [`settle`](Completer::settle): the drop has nothing left to do (and
    /// skips a lock and an error message built for nothing).
    done: bool,
}

impl Completer {
    pub(crate) fn settle(mut self, outcome: Outcome) -> bool {
        self.done = true;
        self.shared.settle(outcome)
    }
}

impl Drop for Completer {
    fn drop(&mut self) {
        if !self.done {
            self.shared.settle(Err(Error::ConnectionClosed("the connection ended before the reply arrived".into())));
        }
    }
}

/// The reply of one request, arriving in the background (RPyC's `AsyncResult`).
///
/// It is a [`Future`]: `.await` it for the typed value, or put it in `tokio::time::timeout`,
/// `futures::future::join_all`, `select!`. From a thread that may block use
/// [`wait`](AsyncResult::wait) / [`value`](AsyncResult::value). [`ready`](AsyncResult::ready),
/// [`error`](AsyncResult::error) and [`expired`](AsyncResult::expired) never block.
///
/// `AsyncResult<()>` accepts any reply and discards it. A call whose result does not matter
/// names `()` as its result type (compiles in editions 2021 and 2024):
///
/// ```edition2024
/// # async fn demo(calc: netref::NetRef) -> Result<(), netref::Error> {
/// calc.call_method::<()>("incr", ()).await?; // `incr` returns an int: discarded
/// # Ok(()) }
/// ```
///
/// ```edition2021
/// # async fn demo(calc: netref::NetRef) -> Result<(), netref::Error> {
/// calc.call_method::<()>("incr", ()).await?;
/// let sum: i64 = calc.call_method("add", (1, 2)).await?; // the result type comes from the binding
/// # Ok(()) }
/// ```
///
/// The type is needed: `call_method` is generic in its result so that
/// `let sum: i64 = calc.call_method(..).await?` works, and a bare `calc.call_method(..).await?;`
/// leaves that type to Rust's fallback, which in edition 2024 is `!` ("the trait bound `!:
/// Deserialize` is not satisfied"; in 2021, "this function depends on never type fallback
/// being `()`"):
///
/// ```compile_fail,edition2024
/// # async fn demo(calc: netref::NetRef) -> Result<(), netref::Error> {
/// calc.call_method("incr", ()).await?;
/// # Ok(()) }
/// ```
///
/// **Dropping an unsettled result cancels the request** (the peer is told to drop the work),
/// unless it has callbacks or was [`detach`](AsyncResult::detach)ed. So `let _ = call;`
/// cancels the call; `call.detach();` lets it run to completion unobserved.
#[must_use = "dropping an AsyncResult cancels its request: .await it, or call .detach() to let it run unobserved"]
pub struct AsyncResult<T = Value> {
    shared: CancelOnDrop,
    _type: PhantomData<fn() -> T>,
}

/// The user's hold on a result: when the last one goes unsettled and without callbacks, the
/// request is cancelled.
struct CancelOnDrop(Arc<Shared>);

impl std::ops::Deref for CancelOnDrop {
    type Target = Arc<Shared>;

    fn deref(&self) -> &Arc<Shared> {
        &self.0
    }
}

impl<T> fmt::Debug for AsyncResult<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.shared.lock().outcome {
            None => "pending",
            Some(Ok(_)) => "ready",
            Some(Err(Error::Timeout(_))) => "expired",
            Some(Err(_)) => "error",
        };
        write!(f, "<AsyncResult {state}>")
    }
}

impl<T> AsyncResult<T> {
    /// A pending result and its completer. `timeout` is the initial expiry (`None`: unlimited).
    pub(crate) fn pending(timeout: Option<Duration>) -> (Self, Completer) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                outcome: None,
                waker: None,
                callbacks: Vec::new(),
                expiry: timeout.and_then(|t| Instant::now().checked_add(t)),
                timeout,
                seq: None,
                owner: None,
                detached: false,
                blocked: 0,
            }),
            settled: Condvar::new(),
        });
        (AsyncResult { shared: CancelOnDrop(shared.clone()), _type: PhantomData }, Completer { shared, done: false })
    }

    /// A result that is already settled.
    pub(crate) fn settled(outcome: Result<Value, Error>) -> Self {
        let (result, completer) = AsyncResult::pending(None);
        completer.settle(outcome);
        result
    }

    /// The same result, converted to another type when read.
    pub fn typed<U>(self) -> AsyncResult<U> {
        AsyncResult { shared: self.shared, _type: PhantomData }
    }

    /// Whether the reply has arrived: a value or the peer's error (or the connection's end).
    /// An expired result has not arrived: this stays `false` and [`expired`](AsyncResult::expired)
    /// is `true`, as in RPyC. Never blocks.
    pub fn ready(&self) -> bool {
        matches!(&self.shared.lock().outcome, Some(outcome) if !is_expiry(outcome))
    }

    /// Whether the reply arrived and is an error (the peer's exception, a closed connection).
    /// `false` while pending and after expiry. Never blocks.
    pub fn error(&self) -> bool {
        matches!(&self.shared.lock().outcome, Some(outcome @ Err(_)) if !is_expiry(outcome))
    }

    /// Whether the result expired before its reply arrived. Never blocks.
    pub fn expired(&self) -> bool {
        matches!(&self.shared.lock().outcome, Some(outcome) if is_expiry(outcome))
    }

    /// Sets the expiry, relative to now; `None` (or a duration too large to represent as an
    /// instant) waits without limit. On expiry the result settles as expired
    /// ([`Error::Timeout`] for whoever reads it), the peer is told to cancel, and a late reply
    /// is dropped.
    pub fn set_expiry(&self, timeout: Option<Duration>) {
        let owner = {
            let mut state = self.shared.lock();
            if state.outcome.is_some() {
                return;
            }
            state.timeout = timeout;
            state.expiry = timeout.and_then(|t| Instant::now().checked_add(t));
            state.owner.clone()
        };
        if let Some(owner) = owner {
            owner.reschedule(&self.shared);
        }
    }

    /// Lets the request run to completion without anyone waiting for it: dropping the result
    /// no longer cancels it (callbacks still run). The way to fire a call and forget it.
    pub fn detach(self) {
        self.shared.lock().detached = true;
    }

    /// Waits until the result settles (blocking). Returns the error if it settled with one
    /// (for an expired result, [`Error::Timeout`]).
    ///
    /// Blocks any thread except one that runs netref's connections — an actix thread
    /// (`#[actix_rt::main]`, an actor, netref's own runtime thread) — where it returns
    /// [`Error::BlockingInRuntime`] at once, since blocking there would stop the very actor
    /// that delivers the reply. Plain threads, tokio
    /// worker threads, `tokio::task::spawn_blocking` and `block_in_place` may wait.
    pub fn wait(&self) -> Result<(), Error> {
        if !crate::actor_thread::may_block() {
            return Err(Error::BlockingInRuntime);
        }
        let mut state = self.shared.lock();
        if state.outcome.is_none() {
            state.blocked += 1;
            while state.outcome.is_none() {
                state = self.shared.settled.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            state.blocked -= 1;
        }
        match &state.outcome {
            Some(Err(e)) => Err(e.clone()),
            _ => Ok(()),
        }
    }
}

/// Whether a settled outcome is an expiry (the reply never arrived).
fn is_expiry(outcome: &Outcome) -> bool {
    matches!(outcome, Err(Error::Timeout(_)))
}

impl<T: DeserializeOwned> AsyncResult<T> {
    /// Waits for the result (blocking, like [`wait`](AsyncResult::wait)) and returns it converted
    /// to `T`. Can be called again; each call converts a copy.
    pub fn value(&self) -> Result<T, Error> {
        self.wait()?;
        let outcome = self.shared.lock().outcome.clone();
        convert(outcome.unwrap_or_else(|| Err(Error::ConnectionClosed("no result".into()))))
    }

    /// Runs `f` once with the converted result when it settles (with [`Error::Timeout`] if it
    /// expires) — at once, on this thread, if it already has; otherwise on the thread that
    /// settles it (the connection's). Keep it short.
    pub fn add_callback(&self, f: impl FnOnce(Result<T, Error>) + Send + 'static) {
        let cb: Callback = Box::new(move |outcome: &Outcome| f(convert(outcome.clone())));
        let mut state = self.shared.lock();
        match &state.outcome {
            None => state.callbacks.push(cb),
            Some(outcome) => {
                let outcome = outcome.clone();
                drop(state);
                cb(&outcome);
            }
        }
    }
}

/// The reply converted to `T`; a reply read as `()` is discarded, whatever it is.
fn convert<T: DeserializeOwned>(outcome: Outcome) -> Result<T, Error> {
    outcome.and_then(|v| crate::value::from_reply(v).map_err(Error::from))
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let owner = {
            let state = self.0.lock();
            if state.outcome.is_some() || !state.callbacks.is_empty() || state.detached {
                return;
            }
            state.owner.clone()
        };
        match owner {
            Some(owner) => owner.cancel(&self.0),
            // Not sent yet: settling it makes the connection skip it.
            None => {
                self.0.settle(Err(Error::ConnectionClosed("cancelled before it was sent".into())));
            }
        }
    }
}

/// The reply, once it has arrived. Polled to completion, the result gives its value away: a
/// later [`value`](AsyncResult::value) (after `(&mut result).await`) reads `()`-like emptiness,
/// not the value again.
impl<T: DeserializeOwned> Future for AsyncResult<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.shared.lock();
        match state.outcome.take() {
            Some(outcome) => {
                // Keep the slot settled (an error or an expiry stays visible), without cloning
                // the value.
                state.outcome = Some(match &outcome {
                    Ok(_) => Ok(Value::None),
                    Err(e) => Err(e.clone()),
                });
                drop(state);
                Poll::Ready(convert(outcome))
            }
            None => {
                match &state.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    _ => state.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}
