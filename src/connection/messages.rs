//! One actix message type per request kind, numbered like RPyC's `HANDLE_*`.
//!
//! Send them to a connection's [`Addr`](actix::Addr) (see [`Peer::addr`](super::Peer::addr));
//! each resolves to the reply [`Value`]. [`NetRef`]'s methods are the usual way to make these
//! requests; the messages are for actor code that wants them as messages.
//!
//! **Ordering.** Requests made through netrefs keep the order they were made in, and request
//! messages keep the order they were sent in. Between the two, a message follows every netref
//! request made before it was sent, but netref requests made *after* a message may be handled
//! before it: netref requests reach the actor in batches through a shared queue, drained at
//! the first actor wake-up. Await (or send) through one of the two when order across them
//! matters.
//!
//! ```no_run
//! # async fn demo(peer: netref::Peer, calc: netref::NetRef) -> Result<(), netref::Error> {
//! use netref::dev::messages::CallAttr;
//! let reply = peer
//!     .addr()
//!     .send(CallAttr { target: calc, name: "add".into(), args: vec![1.into(), 2.into()], kwargs: vec![] })
//!     .await
//!     .map_err(|_| netref::Error::ConnectionClosed("actor gone".into()))??;
//! # Ok(()) }
//! ```

use std::future::IntoFuture;

use actix::{Handler, Message, ResponseFuture};

use super::Connection;
use crate::{Error, Handle, NetRef, Value};

fn kwargs(pairs: Vec<(String, Value)>) -> Value {
    if pairs.is_empty() {
        Value::None
    } else {
        Value::Map(pairs.into_iter().map(|(k, v)| (Value::Str(k), v)).collect())
    }
}

macro_rules! request_messages {
    ($(
        $(#[$doc:meta])*
        $name:ident = $handle:ident { $($field:ident : $ty:ty),* } => |$m:ident| $args:expr;
    )*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            $(
                #[allow(missing_docs)]
                pub $field: $ty,
            )*
        }

        impl $name {
            /// The request kind this message sends.
            pub const HANDLE: Handle = Handle::$handle;
        }

        impl Message for $name {
            type Result = Result<Value, Error>;
        }

        impl Handler<$name> for Connection {
            type Result = ResponseFuture<Result<Value, Error>>;

            fn handle(&mut self, $m: $name, ctx: &mut Self::Context) -> Self::Result {
                let args: Vec<Value> = $args;
                Box::pin(self.submit_message(Handle::$handle, Value::Tuple(args), ctx).into_future())
            }
        }
    )*};
}

request_messages! {
    /// `HANDLE_PING` (1): echo `data`.
    Ping = Ping { data: Value } => |m| vec![m.data];
    /// `HANDLE_CLOSE` (2): ask the peer to close the connection.
    Close = Close {} => |m| { let _ = m; Vec::new() };
    /// `HANDLE_GETROOT` (3): the peer's root object.
    GetRoot = GetRoot {} => |m| { let _ = m; Vec::new() };
    /// `HANDLE_GETATTR` (4): read an attribute.
    GetAttr = GetAttr { target: NetRef, name: String } => |m| vec![Value::Ref(m.target), Value::Str(m.name)];
    /// `HANDLE_DELATTR` (5): delete an attribute.
    DelAttr = DelAttr { target: NetRef, name: String } => |m| vec![Value::Ref(m.target), Value::Str(m.name)];
    /// `HANDLE_SETATTR` (6): write an attribute.
    SetAttr = SetAttr { target: NetRef, name: String, value: Value } => |m| vec![Value::Ref(m.target), Value::Str(m.name), m.value];
    /// `HANDLE_CALL` (7): call a callable object.
    Call = Call { target: NetRef, args: Vec<Value>, kwargs: Vec<(String, Value)> } => |m| vec![Value::Ref(m.target), Value::Tuple(m.args), kwargs(m.kwargs)];
    /// `HANDLE_CALLATTR` (8): call a method by name, in one round trip.
    CallAttr = CallAttr { target: NetRef, name: String, args: Vec<Value>, kwargs: Vec<(String, Value)> } => |m| vec![Value::Ref(m.target), Value::Str(m.name), Value::Tuple(m.args), kwargs(m.kwargs)];
    /// `HANDLE_REPR` (9): the object's debug text.
    Repr = Repr { target: NetRef } => |m| vec![Value::Ref(m.target)];
    /// `HANDLE_STR` (10): the object's display text.
    Str = Str { target: NetRef } => |m| vec![Value::Ref(m.target)];
    /// `HANDLE_CMP` (11): compare with `other` using `op` (`__eq__`, `__lt__`, …).
    Cmp = Cmp { target: NetRef, other: Value, op: String } => |m| vec![Value::Ref(m.target), m.other, Value::Str(m.op)];
    /// `HANDLE_HASH` (12): the object's hash.
    Hash = Hash { target: NetRef } => |m| vec![Value::Ref(m.target)];
    /// `HANDLE_DIR` (13): the names the object exposes.
    Dir = Dir { target: NetRef } => |m| vec![Value::Ref(m.target)];
    /// `HANDLE_PICKLE` (14): obtain a copy by value (off by default on the serving side).
    Pickle = Pickle { target: NetRef } => |m| vec![Value::Ref(m.target)];
    /// `HANDLE_DEL` (15): release `count` references (netrefs batch these in `Release` frames).
    Del = Del { target: NetRef, count: u64 } => |m| vec![Value::Ref(m.target), Value::from(m.count)];
    /// `HANDLE_INSPECT` (16): the object's method list.
    Inspect = Inspect { target: NetRef } => |m| vec![Value::Ref(m.target)];
    /// `HANDLE_BUFFITER` (17): the next `count` items of an iterator.
    BuffIter = BuffIter { target: NetRef, count: u32 } => |m| vec![Value::Ref(m.target), Value::from(m.count)];
    /// `HANDLE_OLDSLICING` (18): reserved; always answered with an "unsupported" error.
    OldSlicing = OldSlicing { target: NetRef } => |m| vec![Value::Ref(m.target)];
    /// `HANDLE_CTXEXIT` (19): leave a context manager with the block's error `(kind, message)`.
    CtxExit = CtxExit { target: NetRef, error: Option<(String, String)> } => |m| vec![Value::Ref(m.target), match m.error { Some((k, msg)) => Value::Tuple(vec![Value::Str(k), Value::Str(msg)]), None => Value::None }];
    /// `HANDLE_INSTANCECHECK` (20): whether the object is an instance of `type_name`.
    InstanceCheck = InstanceCheck { target: NetRef, type_name: String } => |m| vec![Value::Ref(m.target), Value::Str(m.type_name)];
}
