//! [`Service`]: what a connection exposes as its root, and hooks for connect and disconnect.

use std::{
    collections::BTreeMap,
    fmt,
    sync::{Arc, OnceLock},
};

use crate::{link::Peer, object::Object};

type RootFactory = Arc<dyn Fn(&Peer) -> Object + Send + Sync>;
type Hook = Arc<dyn Fn(&Peer) + Send + Sync>;

/// The root object a connection exposes to its peer (HANDLE_GETROOT), and the hooks that run
/// when a connection starts and ends. Cheap to clone.
///
/// A service is either **shared** (one root object for every connection) or **per
/// connection** (a factory builds a root for each).
#[derive(Clone)]
pub struct Service {
    root: RootFactory,
    on_connect: Option<Hook>,
    on_disconnect: Option<Hook>,
    names: Arc<BTreeMap<String, Object>>,
}

impl fmt::Debug for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Service")
            .field("on_connect", &self.on_connect.is_some())
            .field("on_disconnect", &self.on_disconnect.is_some())
            .field("names", &self.names.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for Service {
    fn default() -> Self {
        Service::void()
    }
}

impl Service {
    /// One root object shared by every connection.
    pub fn shared(root: Object) -> Self {
        Service { root: Arc::new(move |_| root.clone()), on_connect: None, on_disconnect: None, names: Arc::default() }
    }

    /// A root built for each connection by `factory`.
    pub fn per_connection(factory: impl Fn(&Peer) -> Object + Send + Sync + 'static) -> Self {
        Service { root: Arc::new(factory), on_connect: None, on_disconnect: None, names: Arc::default() }
    }

    /// Exposes nothing (RPyC's `VoidService`): the default for clients. Every void service
    /// of the process shares one root object (it has no members, so nothing tells them
    /// apart), made once: a client that connects often does not build one per connection.
    pub fn void() -> Self {
        static VOID: OnceLock<Service> = OnceLock::new();
        VOID.get_or_init(|| Service::shared(Object::builder("netref.VoidService").build())).clone()
    }

    /// Exposes `object` under `name`: a peer gets it with [`Peer::lookup`] (HANDLE_GETROOT with
    /// a name). Named exports are shared by every connection and pinned while it lasts.
    pub fn export(mut self, name: impl Into<String>, object: impl Into<Object>) -> Self {
        Arc::make_mut(&mut self.names).insert(name.into(), object.into());
        self
    }

    /// The named export `name`.
    pub(crate) fn named(&self, name: &str) -> Option<&Object> {
        self.names.get(name)
    }

    /// The names exported.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.keys().map(String::as_str)
    }

    /// Runs `hook` when a connection starts, before any request is served.
    pub fn on_connect(mut self, hook: impl Fn(&Peer) + Send + Sync + 'static) -> Self {
        self.on_connect = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` after a connection ended (its netrefs already fail); it must not block.
    pub fn on_disconnect(mut self, hook: impl Fn(&Peer) + Send + Sync + 'static) -> Self {
        self.on_disconnect = Some(Arc::new(hook));
        self
    }

    pub(crate) fn root_for(&self, peer: &Peer) -> Object {
        (self.root)(peer)
    }

    pub(crate) fn connected(&self, peer: &Peer) {
        if let Some(hook) = &self.on_connect {
            hook(peer);
        }
    }

    pub(crate) fn disconnected(&self, peer: &Peer) {
        if let Some(hook) = &self.on_disconnect {
            hook(peer);
        }
    }
}
