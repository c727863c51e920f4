//! The protocol state of one connection, kept apart from its I/O.
//!
//! What a connection must remember between frames lives here, in parts named for their
//! concept; the connection actor (`connection`) feeds them what it reads and the time, and
//! writes what they decide. This module must never touch a socket, a timer, a waker, an actix
//! type or the clock: every `now` is passed in, so each part is tested by calling it with
//! values and instants of the test's choosing.
//!
//! Parts so far: [`outbound`] — this side's requests (numbering, the replies awaited, the
//! backlog waiting for an in-flight slot, and their expiry); [`inbound`] — the peer's requests
//! running here (the table by number, the concurrency cap, deadlines, cancellation);
//! [`liveness`] — when a silent peer is lost and what to send so the peer hears from this side;
//! [`references`] — the counted exports and imports, and the releases owed; [`lifecycle`] — the
//! handshake and the phases open → closing → closed.

mod inbound;
mod lifecycle;
mod liveness;
mod outbound;
mod references;

pub(crate) use inbound::{Inbound, SeqInUse};
pub(crate) use lifecycle::{Lifecycle, Phase};
pub(crate) use liveness::{Liveness, Tick};
pub(crate) use outbound::{Outbound, Payload, Submit};
pub(crate) use references::{ExportTable, ImportCache};
