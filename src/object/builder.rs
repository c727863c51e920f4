//! [`ObjectBuilder`]: how an [`Object`] is put together — its methods, attributes, and call,
//! iteration and context-manager behaviour. Every member registered here is exposed to peers;
//! the builder must never start anything or touch a connection: [`build`](ObjectBuilder::build)
//! only numbers the object.

use std::{
    fmt::{self, Display},
    future::Future,
    sync::{atomic::Ordering, Arc, Mutex},
};

use serde::Serialize;

use super::{
    method::{self, reply, Args, FromArgs, MethodFn, MethodFuture},
    Member, Object, ObjectInner, NEXT_INSTANCE_ID,
};
use crate::{error::RemoteError, Value};

/// Builds an [`Object`]. Every member registered here is *exposed*: a peer reaches it by its
/// name or by `exposed_` + its name.
#[must_use = "call .build() to get the object"]
pub struct ObjectBuilder {
    pub(super) inner: ObjectInner,
    pub(super) exposed_prefix: String,
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
