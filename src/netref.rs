//! [`NetRef`]: the `Send + Sync` handle to an object, local or on a peer.
//!
//! A netref to a remote object holds the connection and the object's [`IdPack`]. Its local
//! attributes — `Debug`, identity equality and hash, [`id_pack`](NetRef::id_pack),
//! [`connection`](NetRef::connection), `Clone`, `Drop` — cost no traffic; every operation is one
//! request, in a sync form (`.await` the [`AsyncResult`]) and an async form (keep the
//! `AsyncResult`). When the last clone of a remote netref drops, the connection sends a batched
//! `Release` for it.
//!
//! The Python data-model operations (repr, comparison, inspect, iteration …) are in `python`.

use std::{
    fmt,
    hash::{Hash, Hasher},
    sync::{Arc, OnceLock},
};

mod python;

use futures::{future::BoxFuture, FutureExt};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{
    async_result::AsyncResult,
    link::{CallEncoding, ConnShared, Payload, Peer},
    object::{dispatch, AccessPolicy, Object, Served},
    protocol::{encode_call_tail, CallTail},
    to_value, Error, Handle, IdPack, Value,
};

/// A handle to an object: on a peer (a *netref*) or on this side (when one of ours came back).
#[derive(Clone)]
pub struct NetRef(pub(crate) Arc<RefInner>);

pub(crate) enum RefInner {
    Local(Object),
    Remote(RemoteRef),
}

pub(crate) struct RemoteRef {
    pub(crate) conn: Arc<ConnShared>,
    pub(crate) id: IdPack,
    /// The number the connection tracks this import by (its receipts and release): the
    /// instance id, except where a dialect's instance ids are not unique per object (RPyC names
    /// every class with instance id 0, so its classes are keyed apart).
    pub(crate) key: u64,
    pub(crate) generation: u64,
    /// `id` boxed as the `LOCAL_REF` that names the object when it is sent back (the target
    /// of every call on it), encoded the first time (`Boxer::boxed`).
    pub(crate) boxed: OnceLock<Box<[u8]>>,
}

impl RemoteRef {
    pub(crate) fn new(conn: Arc<ConnShared>, id: IdPack, generation: u64) -> Self {
        let key = id.instance_id;
        RemoteRef::keyed(conn, id, key, generation)
    }

    /// A proxy tracked under `key` rather than its instance id (see [`RemoteRef::key`]).
    pub(crate) fn keyed(conn: Arc<ConnShared>, id: IdPack, key: u64, generation: u64) -> Self {
        RemoteRef { conn, id, key, generation, boxed: OnceLock::new() }
    }

    fn is_alias(&self) -> bool {
        self.generation == ALIAS_GENERATION
    }

    /// For a root alias, the root it names, once the peer's `Hello` has said which it is.
    fn alias_of(&self) -> Option<&IdPack> {
        if self.is_alias() {
            self.conn.peer_root()
        } else {
            None
        }
    }
}

impl Drop for RemoteRef {
    fn drop(&mut self) {
        match self.alias_of() {
            // The root alias, adopted as the root's proxy when the `Hello` arrived: the
            // receipts of the root counted on it meanwhile are owed.
            Some(root) => self.conn.proxy_dropped(root.instance_id, ALIAS_GENERATION),
            // An alias never adopted counted nothing; nothing is owed.
            None if self.is_alias() => {}
            None => self.conn.proxy_dropped(self.key, self.generation),
        }
    }
}

/// The generation of root aliases; import generations start at 1.
pub(crate) const ALIAS_GENERATION: u64 = 0;

impl RemoteRef {
    /// The number that identifies the object on its connection (its [`key`](RemoteRef::key)):
    /// a root alias's is the root's once the peer's `Hello` has named it (before that,
    /// [`ROOT_ALIAS`](crate::protocol::ROOT_ALIAS)).
    #[inline]
    pub(crate) fn instance_id(&self) -> u64 {
        self.alias_of().map_or(self.key, |root| root.instance_id)
    }
}

impl From<Object> for NetRef {
    fn from(object: Object) -> Self {
        NetRef(Arc::new(RefInner::Local(object)))
    }
}

/// A one-way call ready to queue on its connection, or already started on a local object.
enum OneWayCall {
    Remote { conn: Arc<ConnShared>, handle: Handle, args: Payload },
    Local,
}

/// The chunk sizes of remote iteration (RPyC's `buffiter`): 10, doubling up to 1000.
const FIRST_CHUNK: usize = 10;
const MAX_CHUNK: usize = 1000;

/// Splits user arguments into positional values: a tuple is the argument list, `()` is none,
/// anything else is a single argument.
pub(crate) fn positional(args: &impl Serialize) -> Result<Vec<Value>, Error> {
    Ok(match to_value(args)? {
        Value::Tuple(items) => items,
        Value::None => Vec::new(),
        other => vec![other],
    })
}

/// A call encoded where it is made: its connection, its handle and the items after the target.
type PlainCall<'a> = (&'a Arc<ConnShared>, Handle, CallTail);

/// A call on `target` encoded for the wire where it is made, when `target` is remote and the
/// arguments are plain data (see [`encode_call_tail`]): its connection, its handle (CALLATTR
/// with a method name, CALL without) and the items after the target. The handle is decided here
/// and only here, from what the tail holds.
///
/// `Some(Err(_))`: the call would pass the connection's decode limits, and fails without
/// being sent (see [`encode_call_tail`]).
fn plain_call<'a>(
    target: &'a NetRef,
    name: Option<&str>,
    args: &impl Serialize,
) -> Option<Result<PlainCall<'a>, Error>> {
    let RefInner::Remote(r) = &*target.0 else { return None };
    if r.conn.call_encoding != CallEncoding::Native {
        return None;
    }
    let mut tail = CallTail::new();
    match encode_call_tail(name, args, &r.conn.config.decode_limits, &mut tail) {
        Ok(true) => {}
        Ok(false) => return None,
        Err(e) => return Some(Err(Error::Protocol(e))),
    }
    let handle = if name.is_some() { Handle::CallAttr } else { Handle::Call };
    Some(Ok((&r.conn, handle, tail)))
}

impl NetRef {
    /// The object's identity (`type_name`, `class_id`, `instance_id`). No traffic.
    ///
    /// A root alias ([`Peer::root`] with [`Config::early_requests`](crate::Config::early_requests),
    /// before the peer's `Hello`) has `instance_id` [`ROOT_ALIAS`](crate::protocol::ROOT_ALIAS)
    /// and an empty type name until the `Hello` arrives, then the root's identity.
    pub fn id_pack(&self) -> IdPack {
        match &*self.0 {
            RefInner::Local(o) => o.id_pack(),
            RefInner::Remote(r) => r.alias_of().unwrap_or(&r.id).clone(),
        }
    }

    /// The object's type name. No traffic. (A root alias reports `""` until the peer's `Hello`
    /// has named its root.)
    pub fn type_name(&self) -> &str {
        match &*self.0 {
            RefInner::Local(o) => o.type_name(),
            RefInner::Remote(r) => r.alias_of().map_or(&r.id.type_name, |root| &root.type_name),
        }
    }

    /// A root alias on `conn`: made on the caller's side, outside the import cache until the
    /// peer's `Hello` arrives; then the connection adopts it as the root's proxy (see
    /// `ImportCache::adopt`), so the root received later is this same netref.
    pub(crate) fn root_alias(conn: Arc<ConnShared>) -> Arc<RefInner> {
        let id = IdPack { type_name: String::new(), class_id: 0, instance_id: crate::protocol::ROOT_ALIAS };
        Arc::new(RefInner::Remote(RemoteRef::new(conn, id, ALIAS_GENERATION)))
    }

    /// Whether this netref is a root alias: the peer's root named before its identity was
    /// known ([`Config::early_requests`](crate::Config::early_requests), the default). Calls on
    /// it go out before the handshake is over and reach the root. Once the peer's `Hello` has
    /// named the root, it is the root's netref in every respect: it compares and hashes as the
    /// root (before that, by the alias id; keep aliases out of hashed collections until the
    /// first reply, which always follows the `Hello`), and the root received in a reply is
    /// this same netref.
    pub fn is_root_alias(&self) -> bool {
        matches!(&*self.0, RefInner::Remote(r) if r.is_alias())
    }

    /// The connection the object lives behind, or `None` for a local object. No traffic.
    ///
    /// For a netref of a [`Reconnecting`](crate::Reconnecting) handle (its root, or one it
    /// looked up by name), the connection that serves it now, `None` while there is none.
    pub fn connection(&self) -> Option<Peer> {
        match &*self.0 {
            RefInner::Local(o) => o.named()?.live_target()?.connection(),
            RefInner::Remote(r) => Some(Peer::from_shared(r.conn.clone())),
        }
    }

    /// Whether this is a netref of a [`Reconnecting`](crate::Reconnecting) handle: its root or
    /// one it looked up by name, which each new connection re-resolves. Such a netref is an
    /// object of this side standing for the remote one ([`is_local`](NetRef::is_local) is
    /// `true`, its `instance_id` is this process's), so its identity never changes.
    pub fn is_reconnecting(&self) -> bool {
        matches!(&*self.0, RefInner::Local(o) if o.named().is_some())
    }

    /// Whether the object lives on this side.
    pub fn is_local(&self) -> bool {
        matches!(&*self.0, RefInner::Local(_))
    }

    /// The local object, if the object lives on this side.
    pub fn as_local(&self) -> Option<&Object> {
        match &*self.0 {
            RefInner::Local(o) => Some(o),
            RefInner::Remote(_) => None,
        }
    }

    /// Sends one request on this object (the target goes first, as in RPyC).
    fn request<T>(&self, handle: Handle, extra: Vec<Value>) -> AsyncResult<T> {
        let mut args = Vec::with_capacity(extra.len() + 1);
        args.push(Value::Ref(self.clone()));
        args.extend(extra);
        self.request_items(handle, args)
    }

    /// Sends a request whose argument list (this netref first) is already built.
    pub(crate) fn request_items<T>(&self, handle: Handle, args: Vec<Value>) -> AsyncResult<T> {
        match &*self.0 {
            RefInner::Remote(r) => r.conn.submit(handle, Value::Tuple(args)),
            RefInner::Local(o) => match o.named() {
                Some(named) => named.request(handle, args),
                None => local_request(handle, args),
            },
        }
    }

    /// Sends a one-way request whose argument list (this netref first) is already built.
    pub(crate) fn notify_items(&self, handle: Handle, args: Vec<Value>) -> Result<(), Error> {
        match &*self.0 {
            RefInner::Remote(r) => r.conn.notify_payload(handle, Payload::Value(Value::Tuple(args))),
            RefInner::Local(o) => match o.named() {
                Some(named) => named.notify(handle, args),
                None => {
                    let result = local_request::<Value>(handle, args);
                    result.add_callback(|_| {});
                    Ok(())
                }
            },
        }
    }

    /// Whether this netref's connection is closed (`false` for a local object).
    pub(crate) fn is_connection_closed(&self) -> bool {
        matches!(&*self.0, RefInner::Remote(r) if r.conn.is_closed())
    }

    fn request_with<T>(&self, handle: Handle, extra: Result<Vec<Value>, Error>) -> AsyncResult<T> {
        match extra {
            Ok(extra) => self.request(handle, extra),
            Err(e) => AsyncResult::settled(Err(e)),
        }
    }

    /// Reads attribute `name` (HANDLE_GETATTR). A method comes back as a callable netref.
    pub fn getattr<T>(&self, name: &str) -> AsyncResult<T> {
        self.request(Handle::GetAttr, vec![Value::Str(name.to_owned())])
    }

    /// Writes attribute `name` (HANDLE_SETATTR); refused unless the peer allows setattr.
    pub fn setattr(&self, name: &str, value: impl Serialize) -> AsyncResult<()> {
        let value = to_value(&value).map_err(Error::from);
        self.request_with(Handle::SetAttr, value.map(|v| vec![Value::Str(name.to_owned()), v]))
    }

    /// Deletes attribute `name` (HANDLE_DELATTR); refused unless the peer allows delattr.
    pub fn delattr(&self, name: &str) -> AsyncResult<()> {
        self.request(Handle::DelAttr, vec![Value::Str(name.to_owned())])
    }

    /// Calls the object (HANDLE_CALL). `args` is a tuple of arguments, `()` for none, or a
    /// single value. Arguments that are objects or netrefs travel by reference.
    pub fn call<T>(&self, args: impl Serialize) -> AsyncResult<T> {
        // Plain arguments are encoded here, as `call_method` does.
        match plain_call(self, None, &args) {
            Some(Ok((conn, handle, tail))) => return conn.submit_call(handle, self.clone(), tail),
            Some(Err(e)) => return AsyncResult::settled(Err(e)),
            None => {}
        }
        self.request_with(Handle::Call, positional(&args).map(|a| vec![Value::Tuple(a), Value::None]))
    }

    /// Calls method `name` in **one** round trip (HANDLE_CALLATTR).
    ///
    /// ```no_run
    /// # async fn demo(calc: netref::NetRef) -> Result<(), netref::Error> {
    /// let sum: i64 = calc.call_method("add", (1, 2)).await?;
    /// # Ok(()) }
    /// ```
    pub fn call_method<T>(&self, name: &str, args: impl Serialize) -> AsyncResult<T> {
        // The hot path of every method call: plain arguments are encoded here, straight from
        // their serde types; anything else goes through a `Value` tree, built in one vector.
        match plain_call(self, Some(name), &args) {
            Some(Ok((conn, handle, tail))) => return conn.submit_call(handle, self.clone(), tail),
            Some(Err(e)) => return AsyncResult::settled(Err(e)),
            None => {}
        }
        match positional(&args) {
            Ok(a) => self.request_items(
                Handle::CallAttr,
                vec![Value::Ref(self.clone()), Value::Str(name.to_owned()), Value::Tuple(a), Value::None],
            ),
            Err(e) => AsyncResult::settled(Err(e)),
        }
    }

    /// Calls method `name` one way (a `Notify` frame): the peer runs it but sends no reply, not
    /// even an error (it logs errors). Requests on one connection keep their order, so
    /// one-way calls and calls to the same object are served in the order they were made.
    ///
    /// Fails if the arguments do not convert (or pass the connection's decode limits), if the
    /// connection is closed, or — at once, nothing sent — with [`Error::Backpressure`] when the
    /// connection already holds
    /// [`max_queued_notifications`](crate::Config::max_queued_notifications) one-way calls not
    /// yet written (a peer reading slower than calls are made); use
    /// [`notify_method_when_ready`](NetRef::notify_method_when_ready) to wait for room instead.
    /// A call accepted here is never dropped: if the connection closes before it is written,
    /// that is logged.
    pub fn notify_method(&self, name: &str, args: impl Serialize) -> Result<(), Error> {
        match self.one_way_call(name, &args)? {
            OneWayCall::Remote { conn, handle, args } => conn.notify_payload(handle, args),
            OneWayCall::Local => Ok(()),
        }
    }

    /// [`notify_method`](NetRef::notify_method) that waits for room in the connection instead
    /// of failing with back-pressure: the returned future resolves once the call is accepted
    /// (queued in order, as `notify_method` queues it), or with the error that prevents it
    /// (arguments that do not convert, the connection closed). The arguments are converted
    /// before it returns. Wrap it in a timeout to bound the wait.
    ///
    /// ```no_run
    /// # async fn demo(log: netref::NetRef) -> Result<(), netref::Error> {
    /// for line in ["a", "b", "c"] {
    ///     // Waits while the peer is slow to read, rather than failing or buffering without end.
    ///     log.notify_method_when_ready("write", (line,)).await?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn notify_method_when_ready(&self, name: &str, args: impl Serialize) -> BoxFuture<'static, Result<(), Error>> {
        let prepared = self.one_way_call(name, &args);
        async move {
            match prepared? {
                OneWayCall::Remote { conn, handle, args } => conn.notify_when_ready(handle, args).await,
                OneWayCall::Local => Ok(()),
            }
        }
        .boxed()
    }

    /// A one-way call of method `name` made ready to queue: encoded where it can be, or, on a
    /// local object, already started.
    fn one_way_call(&self, name: &str, args: &impl Serialize) -> Result<OneWayCall, Error> {
        if let Some(plain) = plain_call(self, Some(name), args) {
            let (conn, handle, tail) = plain?;
            return Ok(OneWayCall::Remote {
                conn: conn.clone(),
                handle,
                args: Payload::Call { target: self.clone(), tail },
            });
        }
        let items =
            vec![Value::Ref(self.clone()), Value::Str(name.to_owned()), Value::Tuple(positional(args)?), Value::None];
        match &*self.0 {
            RefInner::Remote(r) => Ok(OneWayCall::Remote {
                conn: r.conn.clone(),
                handle: Handle::CallAttr,
                args: Payload::Value(Value::Tuple(items)),
            }),
            RefInner::Local(o) => {
                // A reconnecting handle's stand-in sends it one way on its current connection.
                match o.named() {
                    Some(named) => named.notify(Handle::CallAttr, items)?,
                    None => local_request::<Value>(Handle::CallAttr, items).add_callback(|_| {}),
                }
                Ok(OneWayCall::Local)
            }
        }
    }

    /// Calls method `name` with keyword arguments (`kwargs` serializes to a map or struct).
    pub fn call_method_kw<T>(&self, name: &str, args: impl Serialize, kwargs: impl Serialize) -> AsyncResult<T> {
        let extra = positional(&args).and_then(|a| {
            let kw = to_value(&kwargs)?;
            Ok(vec![Value::Str(name.to_owned()), Value::Tuple(a), kw])
        });
        self.request_with(Handle::CallAttr, extra)
    }
}

/// Serves a request on a local object directly, with no policy (it is this side's own object).
fn local_request<T>(handle: Handle, args: Vec<Value>) -> AsyncResult<T> {
    let policy = AccessPolicy::allow_all();
    let mut fut = match dispatch(handle, args, &policy, crate::forward::Arrival::default()) {
        Served::Done(out) => return AsyncResult::settled(out.map_err(Error::from)),
        Served::Later(fut) | Served::LongPoll(fut) => fut,
    };
    if let Some(out) = (&mut fut).now_or_never() {
        return AsyncResult::settled(out.map_err(Error::from));
    }
    let (result, completer) = AsyncResult::pending(None);
    let task = async move {
        completer.settle(fut.await.map_err(Error::from));
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(task);
        }
        Err(_) => {
            std::thread::spawn(move || futures::executor::block_on(task));
        }
    }
    result
}

impl fmt::Debug for NetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.0 {
            RefInner::Local(o) => write!(f, "<local {} #{}>", o.type_name(), o.instance_id()),
            RefInner::Remote(r) => match r.alias_of() {
                _ if !r.is_alias() => {
                    write!(f, "<netref {} #{} @conn{}>", r.id.type_name, r.id.instance_id, r.conn.id)
                }
                Some(root) => write!(f, "<netref {} root alias @conn{}>", root.type_name, r.conn.id),
                None => write!(f, "<netref root alias @conn{}>", r.conn.id),
            },
        }
    }
}

impl PartialEq for NetRef {
    /// Identity: the same object (same connection and instance), not remote equality — use
    /// [`NetRef::remote_cmp`] for that.
    fn eq(&self, other: &Self) -> bool {
        match (&*self.0, &*other.0) {
            (RefInner::Local(a), RefInner::Local(b)) => a.same(b),
            (RefInner::Remote(a), RefInner::Remote(b)) => a.conn.id == b.conn.id && a.instance_id() == b.instance_id(),
            _ => false,
        }
    }
}

impl Eq for NetRef {}

impl Hash for NetRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match &*self.0 {
            RefInner::Local(o) => (0u64, o.instance_id()).hash(state),
            RefInner::Remote(r) => (r.conn.id, r.instance_id()).hash(state),
        }
    }
}

impl Serialize for NetRef {
    /// A netref serializes as a reference token that only [`to_value`] understands; inside a
    /// request it travels by reference.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::value::serialize_ref(self, s)
    }
}

impl<'de> Deserialize<'de> for NetRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::value::deserialize_ref(d)
    }
}

impl Serialize for Object {
    /// An object serializes as a reference to itself: sent to a peer, it travels by reference.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::value::serialize_ref(&NetRef::from(self.clone()), s)
    }
}
