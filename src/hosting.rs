//! Where netref's actors run, decided for the caller.
//!
//! A connection is an actix actor, and an actor starts on the actix arbiter of the thread that
//! starts it. An actix program (`#[actix_rt::main]`, `#[actix_rt::test]`, an arbiter of its
//! own) starts connections on its own thread. Any other caller — a `#[tokio::main]` program,
//! a plain thread — has its connections started on the process's *default runtime*: one
//! [`Runtime`] thread, started on first use and kept for the life of the process.
//!
//! It also knows which threads must never block on a reply: those that run an actix arbiter
//! and those where netref itself started connections, since a blocked thread there would stop
//! the very actor that delivers the reply.
//!
//! Nothing here may block the caller for longer than it takes another thread to start an actor.

use std::{cell::Cell, future::Future, sync::OnceLock};

use crate::{runtime::Runtime, Error};

thread_local! {
    /// Whether netref started a connection actor on this thread (a tokio `LocalSet` without an
    /// actix arbiter is such a thread too).
    static DRIVES_CONNECTIONS: Cell<bool> = const { Cell::new(false) };
}

/// Notes that connections live on the current thread (called when one starts here).
pub(crate) fn mark_connection_thread() {
    DRIVES_CONNECTIONS.with(|d| d.set(true));
}

/// Whether the current thread runs an actix arbiter, so actors can start here.
pub(crate) fn on_actor_thread() -> bool {
    actix_rt::Arbiter::try_current().is_some()
}

/// Whether blocking the current thread until a reply arrives is safe: not on a thread that runs
/// an actix arbiter or netref's connections. Plain threads, tokio worker threads and tokio's
/// blocking pool (`spawn_blocking`, `block_in_place`) may block.
pub(crate) fn may_block() -> bool {
    !on_actor_thread() && !DRIVES_CONNECTIONS.with(Cell::get)
}

/// The process's default runtime, started on first use.
pub(crate) fn default_runtime() -> Result<Runtime, Error> {
    static DEFAULT: OnceLock<Runtime> = OnceLock::new();
    if let Some(rt) = DEFAULT.get() {
        return Ok(rt.clone());
    }
    let rt = Runtime::new()?;
    // Two threads racing here start two runtimes; the loser's is dropped (and stops) at once.
    Ok(DEFAULT.get_or_init(|| rt).clone())
}

/// Runs `start` where actors can start: at once on an actix thread, otherwise on the default
/// runtime's thread, waiting (blocking this thread for the moment it takes) for its result.
/// For quick, synchronous starts only.
pub(crate) fn start_actors<T, F>(start: F) -> Result<T, Error>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if on_actor_thread() {
        return Ok(start());
    }
    let rt = default_runtime()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let started = rt.spawn(move || async move {
        let _ = tx.send(start());
    });
    // The spawned work sends before the returned future would resolve; the future itself is
    // not needed (it only reports the runtime's failure, which the closed channel reports too).
    drop(started);
    rx.recv().map_err(|_| Error::ConnectionClosed("netref's default runtime stopped".into()))
}

/// Runs the future `make()` returns where actors can start: in the caller's task on an actix
/// thread, otherwise as a task on the default runtime's thread, awaited from here.
pub(crate) async fn run_on_actor_thread<T, F, Fut>(make: F) -> Result<T, Error>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, Error>> + 'static,
    T: Send + 'static,
{
    if on_actor_thread() {
        return make().await;
    }
    default_runtime()?.spawn(make).await?
}
