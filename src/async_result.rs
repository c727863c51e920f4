//! [`AsyncResult`]: the future-backed reply of one request (RPyC's `rpyc.core.async_`).
//!
//! The connection settles a result exactly once — with the reply, the peer's exception, a
//! timeout, or the connection's end — and callbacks run then (or at once if already settled).
//! Blocking waits are for threads outside any async runtime; on a runtime thread they return
//! [`Error::BlockingInRuntime`] instead of deadlocking.

use std::{
    fmt,
    future::{Future, IntoFuture},
    marker::PhantomData,
    pin::Pin,
    sync::{Arc, Condvar, Mutex, MutexGuard},
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use serde::de::DeserializeOwned;

use crate::{from_value, Error, Value};

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

    pub(crate) fn is_settled(&self) -> bool {
        self.lock().outcome.is_some()
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
/// `.await` it (it is `IntoFuture`) for the typed value, or use [`wait`](AsyncResult::wait) /
/// [`value`](AsyncResult::value) from a plain thread. [`ready`](AsyncResult::ready),
/// [`error`](AsyncResult::error) and [`expired`](AsyncResult::expired) never block.
///
/// Dropping an unsettled result that has no callbacks cancels the request: the peer is told to
/// drop the work.
#[must_use = "an AsyncResult does nothing useful unless awaited, waited on, or given a callback"]
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

    /// Whether the result has arrived (a value or an error, timeouts included). Never blocks.
    pub fn ready(&self) -> bool {
        self.shared.is_settled()
    }

    /// Whether the result is an error (the peer's exception, a timeout, a closed connection).
    pub fn error(&self) -> bool {
        matches!(self.shared.lock().outcome, Some(Err(_)))
    }

    /// Whether the result expired before a reply arrived.
    pub fn expired(&self) -> bool {
        matches!(self.shared.lock().outcome, Some(Err(Error::Timeout(_))))
    }

    /// Sets the expiry, relative to now; `None` (or a duration too large to represent as an
    /// instant) waits without limit. On expiry the result
    /// settles with [`Error::Timeout`], the peer is told to cancel, and a late reply is dropped.
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

    /// Waits until the result settles (blocking). Returns the error if it settled with one.
    ///
    /// On an async runtime thread this returns [`Error::BlockingInRuntime`] at once: blocking
    /// there could stop the very task that delivers the reply.
    pub fn wait(&self) -> Result<(), Error> {
        if tokio::runtime::Handle::try_current().is_ok() {
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

impl<T: DeserializeOwned> AsyncResult<T> {
    /// Waits for the result (blocking, like [`wait`](AsyncResult::wait)) and returns it converted
    /// to `T`. Can be called again; each call converts a copy.
    pub fn value(&self) -> Result<T, Error> {
        self.wait()?;
        let outcome = self.shared.lock().outcome.clone();
        convert(outcome.unwrap_or_else(|| Err(Error::ConnectionClosed("no result".into()))))
    }

    /// Runs `f` once with the converted result when it settles — at once, on this thread, if it
    /// already has; otherwise on the thread that settles it (the connection's). Keep it short.
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

fn convert<T: DeserializeOwned>(outcome: Outcome) -> Result<T, Error> {
    outcome.and_then(|v| from_value(v).map_err(Error::from))
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let owner = {
            let state = self.0.lock();
            if state.outcome.is_some() || !state.callbacks.is_empty() {
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

/// The future of an awaited [`AsyncResult`]. Dropping it before it completes cancels the request.
#[must_use = "futures do nothing unless awaited"]
pub struct ResultFuture<T> {
    result: AsyncResult<T>,
}

impl<T> fmt::Debug for ResultFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.result.fmt(f)
    }
}

impl<T: DeserializeOwned> Future for ResultFuture<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.result.shared.lock();
        match state.outcome.take() {
            Some(outcome) => {
                // Keep the slot settled (a timeout stays visible), without cloning the value.
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

impl<T: DeserializeOwned> IntoFuture for AsyncResult<T> {
    type Output = Result<T, Error>;
    type IntoFuture = ResultFuture<T>;

    fn into_future(self) -> ResultFuture<T> {
        ResultFuture { result: self }
    }
}
