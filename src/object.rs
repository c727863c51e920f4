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
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
};

use serde::Serialize;

mod dispatch;
mod method;
mod policy;

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

/// Builds an [`Object`]. Every member registered here is *exposed*: a peer reaches it by its
/// name or by `exposed_` + its name.
#[must_use = "call .build() to get the object"]
pub struct ObjectBuilder {
    inner: ObjectInner,
    exposed_prefix: String,
}

impl fmt::Debug for ObjectBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectBuilder").field("type_name", &self.inner.id.type_name).finish_non_exhaustive()
    }
}

impl ObjectBuilder {
    fn exposed(&self, name: &str) -> String {
        if name.starts_with(&self.exposed_prefix) || name.starts_with("__") {
            name.to_owned()
        } else {
            let mut stored = String::with_capacity(self.exposed_prefix.len() + name.len());
            stored.push_str(&self.exposed_prefix);
            stored.push_str(name);
            stored
        }
    }

    fn add(mut self, name: &str, member: Member) -> Self {
        let stored = self.exposed(name);
        self.inner.members.insert(stored, member);
        self
    }

    /// Registers a method from a typed function or closure (`|a: i64, b: i64| a + b`).
    ///
    /// Arguments convert from the request's values and the result to the reply's value through
    /// serde. A result that is a byte buffer (`serde_bytes::ByteBuf`, `bytes::Bytes`,
    /// `BytesMut`, [`SharedBytes`](crate::SharedBytes)), a `String` or a [`Value`] is moved into
    /// the reply rather than copied (this holds for every way of registering a method).
    ///
    /// # Arguments are owned: `String`, not `&str`
    ///
    /// Arguments must own their data (`serde::de::DeserializeOwned`): take `String` rather than
    /// `&str`, and `serde_bytes::ByteBuf` or [`SharedBytes`](crate::SharedBytes) rather than
    /// `&[u8]` (a `Vec<u8>` also works, but travels as a list of ints, one value per byte).
    ///
    /// ```
    /// use netref::{Object, SharedBytes};
    ///
    /// let text = Object::builder("demo.Text")
    ///     .method("len", |s: String| s.len())
    ///     .method("checksum", |data: SharedBytes| data.iter().map(|&b| u64::from(b)).sum::<u64>())
    ///     .build();
    /// # let _ = text;
    /// ```
    ///
    /// A borrowed argument fails to compile with "implementation of `Deserialize` is not general
    /// enough" (`` `&str` must implement `Deserialize<'0>`, for any lifetime `'0` ``):
    ///
    /// ```compile_fail
    /// let text = netref::Object::builder("demo.Text").method("len", |s: &str| s.len()).build();
    /// ```
    pub fn method<M, F, R>(self, name: &str, f: F) -> Self
    where
        F: FromArgs<M, R>,
        R: Serialize + 'static,
    {
        let m = method::sync_method(name, f);
        self.add(name, Member::Method(m))
    }

    /// Registers a fallible method: an `Err(e)` reaches the caller as a remote error
    /// ([`Error::Remote`](crate::Error::Remote)) whose traceback names the method and this
    /// object's type and ends, as Python's does, with `Kind: message`.
    ///
    /// # Raising a chosen kind
    ///
    /// The kind the caller sees depends on the error's type:
    ///
    /// * a [`RemoteError`] keeps its kind and message: return
    ///   `Err(RemoteError::new(kinds::KEY_ERROR, ..))` to raise a `KeyError` (kinds in
    ///   [`error::kinds`](crate::error::kinds), or any `"module.Type"` text);
    /// * a plain string (`&str`, `String`), a `Box<dyn Error>` or an `anyhow`-style error arrives
    ///   as `builtins.RuntimeError` (RPyC's generic kind) with the text as its message;
    /// * `std::io::Error` arrives as `builtins.OSError` (or its Python subclass for the error's
    ///   kind, e.g. `builtins.FileNotFoundError`), a parse error as `builtins.ValueError`, a
    ///   `TryFromIntError` as `builtins.OverflowError`;
    /// * any other type arrives with its Rust path as the kind, without generic arguments
    ///   (`my_app::errors::DivError<T>` → `my_app.errors.DivError`).
    ///
    /// ```
    /// use netref::{kinds, prelude::*};
    ///
    /// # #[actix_rt::main]
    /// # async fn main() -> Result<(), netref::Error> {
    /// let calculator = Object::builder("demo.Calculator")
    ///     .try_method("div", |a: i64, b: i64| {
    ///         if b == 0 {
    ///             return Err(RemoteError::new("builtins.ZeroDivisionError", "division by zero"));
    ///         }
    ///         Ok(a / b)
    ///     })
    ///     .try_method("constant", |name: String| match name.as_str() {
    ///         "answer" => Ok(42),
    ///         _ => Err(RemoteError::new(kinds::KEY_ERROR, format!("'{name}'"))),
    ///     })
    ///     .try_method("halve", |x: i64| if x % 2 != 0 { Err("odd input") } else { Ok(x / 2) })
    ///     .build();
    /// let (_server, client) = netref::connect_pair(Service::shared(calculator), Service::void());
    /// let calc = client.root().await?;
    ///
    /// let err = calc.call_method::<i64>("div", (1, 0)).await.unwrap_err();
    /// let e = err.as_remote().expect("raised by the peer");
    /// assert!(e.is(kinds::ZERO_DIVISION_ERROR) && e.message == "division by zero");
    /// assert!(e.traceback.contains("method 'div' of 'demo.Calculator'"));
    /// assert!(e.traceback.ends_with("\nZeroDivisionError: division by zero"));
    ///
    /// let err = calc.call_method::<i64>("constant", ("tau",)).await.unwrap_err();
    /// assert!(err.as_remote().is_some_and(|e| e.is(kinds::KEY_ERROR) && e.message == "'tau'"));
    ///
    /// // A plain string error: a RuntimeError with the string as its message.
    /// let err = calc.call_method::<i64>("halve", (3,)).await.unwrap_err();
    /// assert!(err.as_remote().is_some_and(|e| e.is(kinds::RUNTIME_ERROR) && e.message == "odd input"));
    /// // `{:#}` shows the remote traceback too.
    /// assert!(format!("{err:#}").ends_with("\nRuntimeError: odd input"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_method<M, F, R, E>(self, name: &str, f: F) -> Self
    where
        F: FromArgs<M, Result<R, E>>,
        R: Serialize + 'static,
        E: Display + 'static,
    {
        let m = method::try_sync_method(name, &self.inner.id.type_name, f);
        self.add(name, Member::Method(m))
    }

    /// Registers an async method. It runs on the connection's thread; it may call back into
    /// the peer (callbacks) while it runs.
    pub fn async_method<M, F, Fut, R>(self, name: &str, f: F) -> Self
    where
        F: FromArgs<M, Fut>,
        Fut: Future<Output = R> + Send + 'static,
        R: Serialize + 'static,
    {
        let m = method::async_method(name, f);
        self.add(name, Member::Method(m))
    }

    /// Registers a fallible async method. Its error reaches the caller as
    /// [`try_method`](ObjectBuilder::try_method)'s does (a [`RemoteError`] keeps its kind, a
    /// plain string becomes `builtins.RuntimeError`, with a traceback naming the method):
    ///
    /// ```
    /// use netref::{kinds, prelude::*};
    ///
    /// # #[actix_rt::main]
    /// # async fn main() -> Result<(), netref::Error> {
    /// let store = Object::builder("demo.Store")
    ///     .try_async_method("get", |index: usize| async move {
    ///         let items = ["a", "b"];
    ///         match items.get(index) {
    ///             Some(item) => Ok(item.to_string()),
    ///             None => Err(RemoteError::new(kinds::INDEX_ERROR, "list index out of range")),
    ///         }
    ///     })
    ///     .build();
    /// let (_server, client) = netref::connect_pair(Service::shared(store), Service::void());
    /// let err = client.root().await?.call_method::<String>("get", (5,)).await.unwrap_err();
    /// let e = err.as_remote().expect("raised by the peer");
    /// assert!(e.is(kinds::INDEX_ERROR));
    /// assert!(e.traceback.contains("method 'get' of 'demo.Store'"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn try_async_method<M, F, Fut, R, E>(self, name: &str, f: F) -> Self
    where
        F: FromArgs<M, Fut>,
        Fut: Future<Output = Result<R, E>> + Send + 'static,
        R: Serialize + 'static,
        E: Display + 'static,
    {
        let m = method::try_async_method(name, &self.inner.id.type_name, f);
        self.add(name, Member::Method(m))
    }

    /// Registers a method that takes the raw [`Args`] (positional and keyword values).
    pub fn raw_method<F>(self, name: &str, f: F) -> Self
    where
        F: Fn(Args) -> MethodFuture + Send + Sync + 'static,
    {
        self.add(name, Member::Method(Arc::new(move |args| method::Served::Later(f(args)))))
    }

    /// Marks method `name` as a long poll: it waits for an event rather than works, so a
    /// connection closing gracefully drops a call to it at once instead of waiting for it.
    /// The method must already be registered; its futures are then served as
    /// [`Served::LongPoll`](method::Served::LongPoll).
    pub(crate) fn long_poll(mut self, name: &str) -> Self {
        let stored = self.exposed(name);
        if let Some(Member::Method(m)) = self.inner.members.remove(&stored) {
            let waits: MethodFn = Arc::new(move |args| match m(args) {
                method::Served::Later(fut) => method::Served::LongPoll(fut),
                served => served,
            });
            self.inner.members.insert(stored, Member::Method(waits));
        }
        self
    }

    /// Registers a method under its literal name, *not* exposed: the default policy refuses it;
    /// it is reachable only when the serving side allows public (or all) attributes.
    pub fn internal_method<M, F, R>(mut self, name: &str, f: F) -> Self
    where
        F: FromArgs<M, R>,
        R: Serialize + 'static,
    {
        let m = method::sync_method(name, f);
        self.inner.members.insert(name.to_owned(), Member::Method(m));
        self
    }

    /// A read-only attribute with a fixed value.
    pub fn attr<T: Serialize>(self, name: &str, value: T) -> Self {
        let v = crate::to_value(&value).unwrap_or(Value::None);
        self.add(name, Member::Const(v))
    }

    /// A read-only attribute computed on every read.
    pub fn property<R: Serialize, F: Fn() -> R + Send + Sync + 'static>(self, name: &str, get: F) -> Self {
        self.add(name, Member::Property(Arc::new(move || reply(get()))))
    }

    /// A writable attribute (SETATTR and DELATTR work on it when the serving side's policy
    /// allows them).
    pub fn field<T: Serialize>(self, name: &str, initial: T) -> Self {
        let v = crate::to_value(&initial).unwrap_or(Value::None);
        self.add(name, Member::Field(Mutex::new(Some(v))))
    }

    /// Makes the object callable (HANDLE_CALL).
    pub fn callable<M, F, R>(mut self, f: F) -> Self
    where
        F: FromArgs<M, R>,
        R: Serialize + 'static,
    {
        self.inner.call = Some(method::sync_method("__call__", f));
        self
    }

    /// Makes the object iterable: `__iter__` returns a fresh iterator over what `make` yields.
    pub fn iterable<I, F>(self, make: F) -> Self
    where
        F: Fn() -> I + Send + Sync + 'static,
        I: IntoIterator,
        I::Item: Serialize,
        I::IntoIter: Send + 'static,
    {
        let m: MethodFn = Arc::new(move |_args| {
            let it = Object::iterator(make());
            method::Served::Done(Ok(Value::Ref(crate::NetRef::from(it))))
        });
        self.add("__iter__", Member::Method(m))
    }

    /// Makes the object an iterator over `items`, under the type name the builder was given
    /// (e.g. `builtins.list_iterator`): `__next__` (StopIteration at the end) and
    /// HANDLE_BUFFITER read the same items. Unlike [`Object::iterator`], other members (an
    /// `__iter__`) may be added.
    pub fn iterator_over<I>(self, items: I) -> Self
    where
        I: IntoIterator,
        I::Item: Serialize,
        I::IntoIter: Send + 'static,
    {
        let it = Arc::new(Mutex::new(items.into_iter()));
        let chunks = it.clone();
        let mut b = self;
        b.inner.next_chunk = Some(Arc::new(move |n| {
            let mut it = chunks.lock().unwrap_or_else(|p| p.into_inner());
            it.by_ref().take(n).map(reply).collect()
        }));
        let next: MethodFn = Arc::new(move |_args| {
            let item = it.lock().unwrap_or_else(|p| p.into_inner()).next();
            method::Served::Done(item.map_or_else(|| Err(RemoteError::stop_iteration()), reply))
        });
        b.add("__next__", Member::Method(next))
    }

    /// Makes the object a context manager: `enter` runs on `__enter__` and its result is what
    /// the peer's block receives; `exit` runs on HANDLE_CTXEXIT with the block's error, if any,
    /// and returns whether to suppress it.
    pub fn context_manager<R, En, Ex>(mut self, enter: En, exit: Ex) -> Self
    where
        R: Serialize + 'static,
        En: Fn() -> R + Send + Sync + 'static,
        Ex: Fn(Option<RemoteError>) -> bool + Send + Sync + 'static,
    {
        let m = method::sync_method("__enter__", enter);
        self.inner.enter = Some(m.clone());
        self.inner.exit = Some(Arc::new(move |e| Ok(exit(e))));
        self.add("__enter__", Member::Method(m))
    }

    /// The text HANDLE_REPR returns.
    pub fn repr(mut self, f: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.inner.repr = Some(Arc::new(f));
        self
    }

    /// The text HANDLE_STR returns.
    pub fn display(mut self, f: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.inner.display = Some(Arc::new(f));
        self
    }

    /// The hash HANDLE_HASH returns (default: derived from the instance id).
    pub fn hash_with(mut self, f: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.inner.hash = Some(Arc::new(f));
        self
    }

    /// Comparison for HANDLE_CMP: `f(op, other)` with `op` one of `__eq__`, `__ne__`, `__lt__`,
    /// `__le__`, `__gt__`, `__ge__`; `None` means "not comparable" (a TypeError for the peer).
    pub fn compare_with(mut self, f: impl Fn(&str, &Value) -> Option<bool> + Send + Sync + 'static) -> Self {
        self.inner.compare = Some(Arc::new(f));
        self
    }

    /// Lets a peer *obtain* a copy of the object by value (HANDLE_PICKLE), when the serving
    /// side's policy allows it (`allow_obtain`, off by default).
    pub fn obtainable<R: Serialize>(mut self, f: impl Fn() -> R + Send + Sync + 'static) -> Self {
        self.inner.obtain = Some(Arc::new(move || reply(f())));
        self
    }

    /// Declares that the object is also an instance of `type_name` (for HANDLE_INSTANCECHECK).
    pub fn instance_of(mut self, type_name: impl Into<String>) -> Self {
        self.inner.instance_of.push(type_name.into());
        self
    }

    /// Attaches a value to the object, for this side's own use (peers never see it): e.g. the
    /// actor address behind an exposed actor, found again when its netref comes back.
    pub fn payload<T: std::any::Any + Send + Sync>(mut self, value: T) -> Self {
        self.inner.payload = Some(Arc::new(value));
        self
    }

    /// Finishes the object.
    pub fn build(mut self) -> Object {
        self.inner.id.instance_id = NEXT_INSTANCE_ID.fetch_add(1, Ordering::Relaxed);
        Object { inner: Arc::new(self.inner) }
    }
}
