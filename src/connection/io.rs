//! Reading frames off the transport: frame bodies as a `Stream`, behind a gate the actor closes
//! to stop reading (back-pressure on the peer when too much is running or queued).

use std::{
    cell::{Cell, RefCell},
    pin::Pin,
    rc::Rc,
    task::{Context, Poll, Waker},
};

use bytes::{Bytes, BytesMut};
use futures::Stream;
use tokio_util::codec::Decoder;

use crate::{protocol::FrameCodec, ProtocolError};

/// Splits the byte stream into frame bodies; decoding the body happens in the actor, which owns
/// the tables references resolve against.
pub(crate) struct Bodies(pub(crate) FrameCodec);

impl Decoder for Bodies {
    type Item = Bytes;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        self.0.decode_body(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        match self.0.decode_body(src)? {
            Some(body) => Ok(Some(body)),
            None if src.is_empty() => Ok(None),
            None => Err(ProtocolError::TruncatedAtEof { buffered: std::mem::take(src).len() }),
        }
    }
}

/// Open or shut: while shut, the gated stream yields nothing and remembers who to wake.
#[derive(Default)]
pub(crate) struct Gate {
    shut: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Gate {
    pub(crate) fn set_shut(&self, shut: bool) {
        if self.shut.replace(shut) && !shut {
            if let Some(w) = self.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    pub(crate) fn is_shut(&self) -> bool {
        self.shut.get()
    }
}

pub(crate) struct Gated<S> {
    pub(crate) inner: S,
    pub(crate) gate: Rc<Gate>,
}

impl<S: Stream + Unpin> Stream for Gated<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.gate.shut.get() {
            *self.gate.waker.borrow_mut() = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}
