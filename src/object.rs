//! The exported-object model: what a peer can reach through a netref.
//!
//! An [`Object`] has a type name, methods, attributes, and optional call, iteration and
//! context-manager behaviour. Build one with [`Object::builder`]; methods are plain functions or
//! closures whose arguments and results convert through serde. Objects travel by reference:
//! returned from a method or passed as an argument, they reach the peer as a netref.
//!
//! Nothing here touches a connection; the connection serves a request by dispatching it here.
//!
//! # Method arguments are owned types
//!
//! A method's arguments are converted from the request's values into types that own their
//! data, so a method takes `String`, not `&str`, and `serde_bytes::ByteBuf` or
//! [`SharedBytes`](crate::SharedBytes), not `&[u8]`. A closure taking `&str` does not compile:
//!
//! ```text
//! error: implementation of `Deserialize` is not general enough
//!   = note: `&str` must implement `Deserialize<'0>`, for any lifetime `'0`...
//!   = note: ...but `&str` actually implements `Deserialize<'1>`, for some specific lifetime `'1`
//! ```
//!
//! Take the owned form instead (`|s: String| s.len()`); see [`ObjectBuilder::method`].
//!
//! # Errors a method raises
//!
//! A fallible method ([`ObjectBuilder::try_method`], [`ObjectBuilder::try_async_method`])
//! chooses the kind its caller sees by returning a [`RemoteError`] (kinds in
//! [`error::kinds`](crate::error::kinds)); a plain string error arrives as
//! `builtins.RuntimeError`. Every such error carries a remote traceback naming the method and the
//! object type.

use std::{
    fmt::{self, Display},
    future::Future,
    sync::{atomic::AtomicU64, Arc, Mutex},
};

use serde::Serialize;

mod builder;
mod dispatch;
mod method;
mod policy;

pub use builder::ObjectBuilder;
pub(crate) use dispatch::{dispatch, dispatch_call, dispatch_callable};
pub(crate) use method::{reply, reply_owned, MethodFn, Served};
pub use method::{Args, FromArgs, MethodFuture};
pub use policy::{Access, AccessPolicy, NameSet, SAFE_ATTRS};

use crate::{error::RemoteError, Value};

static NEXT_INSTANCE_ID: AtomicU64 = AtomicU64::new(1);

/// A stable id for a type name (FNV-1a), so the same type has the same `class_id` everywhere.
fn class_id(type_name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in type_name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.max(1)
}

/// An object that can be exported to peers. Cheap to clone (shared).
#[derive(Clone)]
pub struct Object {
    pub(crate) inner: Arc<ObjectInner>,
}

pub(crate) type Getter = Arc<dyn Fn() -> Result<Value, RemoteError> + Send + Sync>;
pub(crate) type Chunker = Arc<dyn Fn(usize) -> Result<Vec<Value>, RemoteError> + Send + Sync>;
pub(crate) type ExitFn = Arc<dyn Fn(Option<RemoteError>) -> Result<bool, RemoteError> + Send + Sync>;
pub(crate) type CompareFn = Arc<dyn Fn(&str, &Value) -> Option<bool> + Send + Sync>;

pub(crate) enum Member {
    Method(MethodFn),
    Const(Value),
    Property(Getter),
    Field(Mutex<Option<Value>>),
}

pub(crate) struct ObjectInner {
    /// Type name, class id and instance id, kept as the `IdPack` sent to peers so that boxing
    /// a reference borrows it instead of building one per send.
    pub(crate) id: crate::IdPack,
    pub(crate) members: crate::hash::NameMap<Member>,
    pub(crate) call: Option<MethodFn>,
    pub(crate) next_chunk: Option<Chunker>,
    pub(crate) enter: Option<MethodFn>,
    pub(crate) exit: Option<ExitFn>,
    pub(crate) repr: Option<Arc<dyn Fn() -> String + Send + Sync>>,
    pub(crate) display: Option<Arc<dyn Fn() -> String + Send + Sync>>,
    pub(crate) hash: Option<Arc<dyn Fn() -> i64 + Send + Sync>>,
    pub(crate) compare: Option<CompareFn>,
    pub(crate) obtain: Option<Getter>,
    pub(crate) instance_of: Vec<String>,
    pub(crate) payload: Option<Arc<dyn std::any::Any + Send + Sync>>,
    /// Set on a forwarding object: the netref of another connection it stands for (see
    /// [`crate::forward`]).
    pub(crate) forward: Option<crate::forward::Forward>,
    /// Set on a stand-in of a reconnecting handle: the name it stands for on whichever
    /// connection is current (see `reconnect::named`).
    pub(crate) named: Option<Arc<crate::reconnect::Named>>,
}

impl Object {
    /// Starts building an object of type `type_name` (`"module.Type"`, e.g. `"demo.Calculator"`).
    pub fn builder(type_name: impl Into<String>) -> ObjectBuilder {
        let type_name = type_name.into();
        ObjectBuilder {
            inner: ObjectInner {
                id: crate::IdPack { class_id: class_id(&type_name), type_name, instance_id: 0 },
                members: crate::hash::NameMap::default(),
                call: None,
                next_chunk: None,
                enter: None,
                exit: None,
                repr: None,
                display: None,
                hash: None,
                compare: None,
                obtain: None,
                instance_of: Vec::new(),
                payload: None,
                forward: None,
                named: None,
            },
            exposed_prefix: "exposed_".to_owned(),
        }
    }

    /// A callable object (type `builtins.function`) from a typed closure: the usual way to pass
    /// a callback to a peer.
    pub fn function<M, F, R>(f: F) -> Object
    where
        F: FromArgs<M, R>,
        R: Serialize + 'static,
    {
        let mut b = Object::builder("builtins.function");
        b.inner.call = Some(method::sync_method("function", f));
        b.build()
    }

    /// A fallible callable object (type `builtins.function`): an `Err` reaches the caller as a
    /// remote error (a [`RemoteError`] keeps its kind and message; see
    /// [`ObjectBuilder::try_method`] for the other error types), as a Python callback's
    /// exception does.
    pub fn try_function<M, F, R, E>(f: F) -> Object
    where
        F: FromArgs<M, Result<R, E>>,
        R: Serialize + 'static,
        E: Display + 'static,
    {
        let mut b = Object::builder("builtins.function");
        b.inner.call = Some(method::try_sync_method("function", "builtins.function", f));
        b.build()
    }

    /// A callable object from an async typed closure.
    pub fn async_function<M, F, Fut, R>(f: F) -> Object
    where
        F: FromArgs<M, Fut>,
        Fut: Future<Output = R> + Send + 'static,
        R: Serialize + 'static,
    {
        let mut b = Object::builder("builtins.function");
        b.inner.call = Some(method::async_method("function", f));
        b.build()
    }

    /// An iterator object (type `builtins.iterator`) over `items`; a peer reads it in chunks
    /// (HANDLE_BUFFITER) until StopIteration.
    pub fn iterator<I>(items: I) -> Object
    where
        I: IntoIterator,
        I::Item: Serialize,
        I::IntoIter: Send + 'static,
    {
        let it = Mutex::new(items.into_iter());
        let mut b = Object::builder("builtins.iterator");
        b.inner.next_chunk = Some(Arc::new(move |n| {
            let mut it = it.lock().unwrap_or_else(|p| p.into_inner());
            it.by_ref().take(n).map(reply).collect()
        }));
        b.build()
    }

    /// The object's type name.
    pub fn type_name(&self) -> &str {
        &self.inner.id.type_name
    }

    /// The object's instance id (unique in this process).
    pub fn instance_id(&self) -> u64 {
        self.inner.id.instance_id
    }

    /// The object's identity as sent to peers.
    pub fn id_pack(&self) -> crate::IdPack {
        self.inner.id.clone()
    }

    /// The object's identity, borrowed.
    pub(crate) fn id_pack_ref(&self) -> &crate::IdPack {
        &self.inner.id
    }

    /// The value attached with [`ObjectBuilder::payload`], if it is a `T`.
    pub fn payload<T: std::any::Any + Send + Sync>(&self) -> Option<&T> {
        self.inner.payload.as_deref()?.downcast_ref::<T>()
    }

    /// A forwarding object standing for a netref of another connection, with that netref's
    /// type name and class (and an instance id of this process).
    pub(crate) fn forwarding(id: &crate::IdPack, forward: crate::forward::Forward) -> Object {
        let mut b = Object::builder(id.type_name.clone());
        b.inner.id.class_id = id.class_id;
        b.inner.forward = Some(forward);
        b.build()
    }

    /// What this object forwards to, if it is a forwarding object.
    #[inline]
    pub(crate) fn forwarded(&self) -> Option<&crate::forward::Forward> {
        self.inner.forward.as_ref()
    }

    /// A stand-in of a reconnecting handle for the remote object `id` names (its type name and
    /// class, an instance id of this process).
    pub(crate) fn standing_in(id: &crate::IdPack, named: Arc<crate::reconnect::Named>) -> Object {
        let mut b = Object::builder(id.type_name.clone());
        b.inner.id.class_id = id.class_id;
        b.inner.named = Some(named);
        b.build()
    }

    /// What this object stands for, if it is a stand-in of a reconnecting handle.
    #[inline]
    pub(crate) fn named(&self) -> Option<&Arc<crate::reconnect::Named>> {
        self.inner.named.as_ref()
    }

    /// Whether two handles are the same object.
    pub fn same(&self, other: &Object) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// A handle that does not keep the object alive: e.g. to hand the same object out again
    /// while a peer still holds it, and to learn when every holder (export) is gone.
    pub fn downgrade(&self) -> WeakObject {
        WeakObject(Arc::downgrade(&self.inner))
    }
}

/// A weak handle on an [`Object`] (see [`Object::downgrade`]).
#[derive(Clone)]
pub struct WeakObject(std::sync::Weak<ObjectInner>);

impl WeakObject {
    /// The object, if anything still holds it.
    pub fn upgrade(&self) -> Option<Object> {
        self.0.upgrade().map(|inner| Object { inner })
    }
}

impl fmt::Debug for WeakObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<weak object, alive: {}>", self.0.strong_count() > 0)
    }
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<object {} #{}>", self.inner.id.type_name, self.inner.id.instance_id)
    }
}
