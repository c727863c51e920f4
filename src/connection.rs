//! The connection: one [`Connection`] actor per transport, the I/O around one protocol
//! session. The `Send + Sync` handles users hold ([`Peer`], netrefs) and the state they share
//! with the actor are in `link`; this module adds to [`Peer`] what needs the actor's type (its
//! address, its counters).
//!
//! Handles reach the actor one way: the request queue in `link`, which carries requests, expiry
//! changes, cancellations and closes in the order they were made, and wakes the actor once per
//! burst. The public request messages ([`messages`]) are actix messages numbered like
//! `HANDLE_*` for actor code that wants them; their handler puts the request in the same queue.
//! The actor never waits on the wire, so callbacks into the caller during a call just work.
//!
//! Nothing below it may name it: the session, netrefs, services and `link` know the actor only
//! as an address `link` holds without its type, so that they never depend on this module.

use actix::Addr;

mod actor;
mod alarm;
mod frame_aligned;
mod io;
pub mod messages;

pub(crate) use actor::BoxWrite;
pub use actor::Connection;
pub(crate) use frame_aligned::FrameAligned;

use crate::{
    link::{ConnStats, Peer},
    Error,
};

impl Peer {
    /// The actor's address, for sending the request messages of [`messages`] directly.
    pub fn addr(&self) -> &Addr<Connection> {
        self.shared.actor().expect("a connection's handles hold the address of its actor")
    }

    /// Counters of the connection (exports, imports, pending requests, …).
    pub async fn stats(&self) -> Result<ConnStats, Error> {
        self.addr().send(actor::GetStats).await.map_err(|_| self.shared.closed_error())
    }
}
