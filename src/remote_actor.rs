//! Typed remote actors: expose an actix [`Addr<A>`](actix::Addr); a peer holds an
//! [`ActorRef<A>`] and sends it the actor's messages as if it were local.
//!
//! A message that crosses the wire implements [`RemoteMessage`] (serde, with a stable name);
//! an actor that is reachable remotely implements [`RemoteActor`] (a stable name). Expose one
//! with [`expose`], listing the messages it answers; the result is an [`Object`] that travels
//! by reference like any other. `send` is one CALLATTR round trip; `do_send` is a one-way
//! `Notify` frame with no reply at all. Requests on one connection are dispatched to the actor
//! in the order they were sent (actix's mailbox order then applies).

use std::{
    fmt,
    future::Future,
    hash::{Hash, Hasher},
    marker::PhantomData,
    sync::Arc,
    time::Duration,
};

use actix::{Actor, Addr, Handler, Message};
use futures::FutureExt;
use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};

use crate::{
    error::{kinds, RemoteError},
    from_value,
    object::{reply_owned, Args, MethodFuture, ObjectBuilder},
    AsyncResult, ConvertError, Error, NetRef, Object, Peer, Service, Value,
};

/// A message that can cross the wire: serde both ways, and a name that stays the same across
/// builds and versions (it is what the wire carries).
///
/// ```
/// use actix::Message;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Message, Serialize, Deserialize)]
/// #[rtype(result = "i64")]
/// struct Add(i64);
///
/// impl netref::RemoteMessage for Add {
///     const NAME: &'static str = "counter.Add";
/// }
/// ```
pub trait RemoteMessage: Message + Serialize + DeserializeOwned + Send + 'static
where
    Self::Result: Serialize + DeserializeOwned + Send + 'static,
{
    /// The message's stable name.
    const NAME: &'static str;
}

/// An actor that can be exposed to peers, with a stable type name (`"module.Type"`).
pub trait RemoteActor: Actor {
    /// The actor's stable type name; typed lookups compare it.
    const NAME: &'static str;
}

/// The method behind [`ActorRef::watch`]; dotted like message names, so it cannot clash with
/// a plain method name.
const WATCH_METHOD: &str = "netref.watch";

/// How often a watched actor is checked for having stopped.
const WATCH_INTERVAL: Duration = Duration::from_millis(20);

/// Starts exposing `addr`: list the messages it answers with [`ActorExport::handle`], then
/// [`build`](ActorExport::build) the object (or pass the export straight to
/// [`Service::export`], which takes anything that converts into an [`Object`]).
pub fn expose<A: RemoteActor>(addr: Addr<A>) -> ActorExport<A> {
    let watched = addr.clone();
    let builder = Object::builder(A::NAME).payload(addr.clone()).raw_method(WATCH_METHOD, move |_args| {
        let addr = watched.clone();
        async move {
            while addr.connected() {
                tokio::time::sleep(WATCH_INTERVAL).await;
            }
            Ok(Value::Str("stopped".into()))
        }
        .boxed()
    });
    let builder = builder.long_poll(WATCH_METHOD);
    ActorExport { addr, builder, _actor: PhantomData }
}

/// An actor being exposed; see [`expose`].
#[must_use = "call .build() (or pass it to Service::export) to expose the actor"]
pub struct ActorExport<A: Actor> {
    addr: Addr<A>,
    builder: ObjectBuilder,
    _actor: PhantomData<fn() -> A>,
}

impl<A: Actor> fmt::Debug for ActorExport<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorExport").field("builder", &self.builder).finish_non_exhaustive()
    }
}

impl<A: RemoteActor> ActorExport<A> {
    /// Makes message `M` remotely callable on the actor.
    pub fn handle<M>(mut self) -> Self
    where
        M: RemoteMessage,
        M::Result: Serialize + DeserializeOwned + Send + 'static,
        A: Handler<M>,
        A::Context: actix::dev::ToEnvelope<A, M>,
    {
        let addr = self.addr.clone();
        self.builder = self.builder.raw_method(M::NAME, move |args: Args| -> MethodFuture {
            let msg = match decode::<M>(A::NAME, args) {
                Ok(msg) => msg,
                Err(e) => return futures::future::ready(Err(e)).boxed(),
            };
            // `send` enqueues now, while the request is dispatched in frame order.
            let request = addr.send(msg);
            async move {
                match request.await {
                    Ok(result) => reply_owned(result),
                    Err(e) => {
                        Err(RemoteError::new(kinds::ACTOR_STOPPED, format!("the actor {} is gone: {e}", A::NAME)))
                    }
                }
            }
            .boxed()
        });
        self
    }

    /// The exposed object.
    pub fn build(self) -> Object {
        self.builder.build()
    }

    /// The exposed actor as a typed reference, e.g. to send it to a peer in a message.
    pub fn into_ref(self) -> ActorRef<A> {
        ActorRef { netref: NetRef::from(self.build()), _actor: PhantomData }
    }
}

impl<A: RemoteActor> From<ActorExport<A>> for Object {
    fn from(export: ActorExport<A>) -> Object {
        export.build()
    }
}

fn decode<M: RemoteMessage>(actor: &str, args: Args) -> Result<M, RemoteError>
where
    M::Result: Serialize + DeserializeOwned + Send + 'static,
{
    let mut positional = args.positional.into_iter();
    let (Some(value), None) = (positional.next(), positional.next()) else {
        return Err(RemoteError::new(
            kinds::TYPE_ERROR,
            format!("message {} to {actor} takes exactly one value", M::NAME),
        ));
    };
    from_value::<M>(value)
        .map_err(|e| RemoteError::new(kinds::TYPE_ERROR, format!("cannot decode message {} for {actor}: {e}", M::NAME)))
}

/// A typed handle to an actor, local or remote. `Send + Sync + Clone`; it travels inside
/// messages and replies, and one sent back to its owner resolves to the local [actix `Addr`](actix::Addr)
/// ([`local_addr`](ActorRef::local_addr)).
pub struct ActorRef<A> {
    netref: NetRef,
    _actor: PhantomData<fn() -> A>,
}

/// Why a watched actor is no longer reachable.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Down {
    /// The actor stopped.
    Stopped,
    /// The connection to the actor's node was lost (or closed).
    ConnectionLost(Error),
}

impl<A: RemoteActor> ActorRef<A> {
    /// A typed handle over `netref`, checked against the actor's type name. The check is made
    /// here, with no request: a netref of another type is an [`Error::Convert`], not an error
    /// from the peer.
    pub fn from_netref(netref: NetRef) -> Result<Self, Error> {
        if netref.type_name() == A::NAME {
            Ok(ActorRef { netref, _actor: PhantomData })
        } else {
            Err(Error::Convert(ConvertError::new(format!(
                "a netref to '{}' is not an ActorRef to '{}' (the actor type names differ)",
                netref.type_name(),
                A::NAME
            ))))
        }
    }

    /// Sends `msg` and returns its reply (one round trip). The usual expiry rules of
    /// [`AsyncResult`] apply (default 30 s); a stopped actor gives a `netref.ActorStopped`
    /// remote error.
    pub fn send<M>(&self, msg: M) -> AsyncResult<M::Result>
    where
        M: RemoteMessage,
        M::Result: Serialize + DeserializeOwned + Send + 'static,
        A: Handler<M>,
    {
        self.netref.call_method(M::NAME, (Wrapped(&msg),))
    }

    /// Sends `msg` without waiting for, or getting, a reply: no reply frame at all. Fails if
    /// the message does not convert, if the connection is closed, or at once with
    /// [`Error::Backpressure`] when the connection is full of one-way traffic not yet written
    /// (see [`NetRef::notify_method`]); [`do_send_when_ready`](ActorRef::do_send_when_ready)
    /// waits for room instead.
    pub fn do_send<M>(&self, msg: M) -> Result<(), Error>
    where
        M: RemoteMessage,
        M::Result: Serialize + DeserializeOwned + Send + 'static,
        A: Handler<M>,
    {
        self.netref.notify_method(M::NAME, (Wrapped(&msg),))
    }

    /// [`do_send`](ActorRef::do_send) that waits for room in the connection instead of failing
    /// with back-pressure (see [`NetRef::notify_method_when_ready`]); resolves once the message
    /// is queued, in order.
    pub fn do_send_when_ready<M>(&self, msg: M) -> futures::future::BoxFuture<'static, Result<(), Error>>
    where
        M: RemoteMessage,
        M::Result: Serialize + DeserializeOwned + Send + 'static,
        A: Handler<M>,
    {
        self.netref.notify_method_when_ready(M::NAME, (Wrapped(&msg),))
    }

    /// Resolves when the actor stops or its connection is lost (Erlang's monitor).
    pub fn watch(&self) -> impl Future<Output = Down> + Send + 'static {
        let request = self.netref.call_method::<String>(WATCH_METHOD, ());
        request.set_expiry(None);
        async move {
            match request.await {
                Ok(_) => Down::Stopped,
                Err(Error::Remote(e)) if e.is(kinds::ACTOR_STOPPED) => Down::Stopped,
                Err(e) => Down::ConnectionLost(e),
            }
        }
    }

    /// The local address, when the actor lives on this side.
    pub fn local_addr(&self) -> Option<Addr<A>> {
        self.netref.as_local()?.payload::<Addr<A>>().cloned()
    }

    /// The untyped netref.
    pub fn netref(&self) -> &NetRef {
        &self.netref
    }
}

/// Carries a message through [`to_value`](crate::to_value) without requiring `Clone`.
struct Wrapped<'a, M>(&'a M);

impl<M: Serialize> Serialize for Wrapped<'_, M> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<A> Clone for ActorRef<A> {
    fn clone(&self) -> Self {
        ActorRef { netref: self.netref.clone(), _actor: PhantomData }
    }
}

impl<A> fmt::Debug for ActorRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorRef({:?})", self.netref)
    }
}

impl<A> PartialEq for ActorRef<A> {
    fn eq(&self, other: &Self) -> bool {
        self.netref == other.netref
    }
}

impl<A> Eq for ActorRef<A> {}

impl<A> Hash for ActorRef<A> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Hash::hash(&self.netref, state)
    }
}

impl<A: RemoteActor> From<Addr<A>> for ActorRef<A> {
    /// A local actor as an `ActorRef`: sent to a peer, it travels by reference, but only the
    /// messages listed with [`expose`] are callable — so prefer exposing it explicitly.
    fn from(addr: Addr<A>) -> Self {
        ActorRef { netref: NetRef::from(expose(addr).build()), _actor: PhantomData }
    }
}

impl<A> Serialize for ActorRef<A> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.netref.serialize(s)
    }
}

impl<'de, A: RemoteActor> Deserialize<'de> for ActorRef<A> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let netref = NetRef::deserialize(d)?;
        ActorRef::from_netref(netref).map_err(serde::de::Error::custom)
    }
}

/// Starts an actor from serde arguments and exposes it.
type Factory = Arc<dyn Fn(Value) -> Result<Object, RemoteError> + Send + Sync>;

/// Actor types a node is willing to start for its peers (remote spawn).
#[derive(Clone, Default)]
pub struct Spawner {
    factories: std::collections::BTreeMap<String, Factory>,
}

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.factories.keys()).finish()
    }
}

/// The name under which a service exports its [`Spawner`].
pub const SPAWNER_EXPORT: &str = "netref.spawner";

impl Spawner {
    /// An empty spawner.
    pub fn new() -> Self {
        Spawner::default()
    }

    /// Registers actor type `A`: `start(args)` starts one (on the connection's arbiter) and
    /// exposes it. The actor lives while a peer references it.
    pub fn register<A, Args, F>(mut self, start: F) -> Self
    where
        A: RemoteActor,
        Args: DeserializeOwned + 'static,
        F: Fn(Args) -> ActorExport<A> + Send + Sync + 'static,
    {
        self.factories.insert(
            A::NAME.to_owned(),
            Arc::new(move |args: Value| {
                let args = from_value::<Args>(args).map_err(|e| {
                    RemoteError::new(
                        kinds::TYPE_ERROR,
                        format!("cannot decode the arguments to spawn {}: {e}", A::NAME),
                    )
                })?;
                Ok(start(args).build())
            }),
        );
        self
    }

    /// The spawner as an object (exported under [`SPAWNER_EXPORT`] by [`Service::spawner`]).
    pub fn build(self) -> Object {
        let factories = self.factories;
        let names: Vec<String> = factories.keys().cloned().collect();
        Object::builder("netref.Spawner")
            .raw_method("spawn", move |args: Args| -> MethodFuture {
                let mut it = args.positional.into_iter();
                let out = match (it.next(), it.next()) {
                    (Some(Value::Str(kind)), Some(args)) => match factories.get(&kind) {
                        Some(start) => start(args).map(|o| Value::Ref(NetRef::from(o))),
                        None => Err(RemoteError::new(
                            kinds::LOOKUP_ERROR,
                            format!(
                                "actor type '{kind}' is not registered for spawning (registered: {})",
                                names.join(", ")
                            ),
                        )),
                    },
                    _ => Err(RemoteError::new(kinds::TYPE_ERROR, "spawn takes (actor type name, arguments)")),
                };
                futures::future::ready(out).boxed()
            })
            .build()
    }
}

impl Service {
    /// Lets peers start the actor types registered in `spawner` ([`Peer::spawn`]).
    pub fn spawner(self, spawner: Spawner) -> Self {
        self.export(SPAWNER_EXPORT, spawner.build())
    }
}

impl Peer {
    /// The actor the peer exports under `name`, checked against type `A`.
    pub async fn lookup_actor<A: RemoteActor>(&self, name: &str) -> Result<ActorRef<A>, Error> {
        let netref = self.lookup(name).await?;
        ActorRef::from_netref(netref)
    }

    /// Asks the peer to start an actor of type `A` with `args` (it must be registered in the
    /// peer's [`Spawner`]); the actor lives while referenced.
    pub async fn spawn<A: RemoteActor>(&self, args: impl Serialize) -> Result<ActorRef<A>, Error> {
        let spawner = self.lookup(SPAWNER_EXPORT).await?;
        let args = crate::to_value(&args)?;
        let netref: NetRef = spawner.call_method("spawn", (A::NAME, args)).await?;
        ActorRef::from_netref(netref)
    }
}
