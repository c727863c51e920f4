//! Which kind of thread this is: one that runs an actix arbiter — where actors start, and
//! where nothing may block on a reply, since a blocked thread there would stop the very actor
//! that delivers the reply — or any other.
//!
//! It only looks at the current thread: it must never start, spawn or wait for anything, nor
//! use another module of the crate, so that waiting on a result ([`AsyncResult`]) can ask it
//! without depending on where actors are started (`hosting`, which starts netref's runtime).
//!
//! [`AsyncResult`]: crate::AsyncResult

/// Whether the current thread runs an actix arbiter inside its runtime, so actors can start
/// here. (A thread whose actix system has ended still names its arbiter, but runs no runtime.)
pub(crate) fn on_actor_thread() -> bool {
    actix_rt::Arbiter::try_current().is_some() && tokio::runtime::Handle::try_current().is_ok()
}

/// Whether blocking the current thread until a reply arrives is safe: not on a thread that runs
/// an actix arbiter, where every netref connection started from this process lives (netref
/// starts connections nowhere else). Plain threads, tokio worker threads and tokio's blocking
/// pool (`spawn_blocking`, `block_in_place`) may block.
pub(crate) fn may_block() -> bool {
    !on_actor_thread()
}
