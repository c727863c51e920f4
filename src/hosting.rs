//! Where netref's actors run, decided for the caller.
//!
//! A connection is an actix actor, and an actor starts on the actix arbiter of the thread that
//! starts it. An actix program (`#[actix_rt::main]`, `#[actix_rt::test]`, an arbiter of its
//! own) starts connections on its own thread. Any other caller — a `#[tokio::main]` program,
//! a plain thread — has its connections started on the process's *default runtime*: one
//! [`Runtime`] thread, started on first use and kept for the life of the process.
//!
//! Which threads run actors (and so must never block on a reply) is `actor_thread`'s to say.
//!
//! Nothing here may block the caller for longer than it takes another thread to start an actor.

use std::{future::Future, sync::OnceLock};

pub(crate) use crate::actor_thread::on_actor_thread;
use crate::{runtime::Runtime, Error};

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
