//! The access policy (RPyC's `DEFAULT_CONFIG` attribute rules). Every handler that names a
//! member — GETATTR, SETATTR, DELATTR, CALLATTR, CMP, HASH, DIR, INSPECT — resolves it here.

use std::{
    borrow::Cow,
    collections::HashSet,
    fmt,
    sync::{Arc, LazyLock},
};

/// Which members of exported objects a peer may reach. Each side enforces its own policy on the
/// requests it serves.
///
/// Defaults follow RPyC: exposed members (registered through the builder, or named with the
/// `exposed_` prefix) and a fixed set of safe special names are reachable; plain public names,
/// private names, attribute writes and deletes, and *obtain* (copy by value) are refused.
///
/// Change the defaults with the chained setters (each named after its field), or set the public
/// fields directly:
///
/// ```
/// use netref::{AccessPolicy, Config};
///
/// let policy = AccessPolicy::default().allow_setattr(true).allow_public_attrs(true);
/// assert!(policy.allow_setattr && policy.allow_public_attrs && !policy.allow_delattr);
/// let config = Config::default().policy(policy);
/// # let _ = config;
/// ```
///
/// A refused request's error says which setting refused it, e.g. `cannot set 'count' on
/// 'demo.Counter': setattr is disabled by the serving side's access policy
/// (AccessPolicy::allow_setattr)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    /// The prefix of exposed names; `add` and `exposed_add` both reach `exposed_add`.
    pub exposed_prefix: String,
    /// Exposed names are reachable (default `true`).
    pub allow_exposed_attrs: bool,
    /// Names in [`safe_attrs`](AccessPolicy::safe_attrs) are reachable (default `true`).
    pub allow_safe_attrs: bool,
    /// Names not starting with `_` are reachable (default `false`).
    pub allow_public_attrs: bool,
    /// Every name is reachable (default `false`).
    pub allow_all_attrs: bool,
    /// Master switch for reading attributes and calling methods (default `true`).
    pub allow_getattr: bool,
    /// Master switch for SETATTR (default `false`).
    pub allow_setattr: bool,
    /// Master switch for DELATTR (default `false`).
    pub allow_delattr: bool,
    /// Serve *obtain* (HANDLE_PICKLE: copy an object by value) (default `false`).
    pub allow_obtain: bool,
    /// Special names that are safe to reach (comparison operators, iteration, context
    /// managers, `__repr__`, …). Default [`SAFE_ATTRS`].
    pub safe_attrs: NameSet,
}

/// A set of member names, shared until changed: cloning one (with its `Config`, for every
/// connection) copies a pointer, and the first change to a clone copies the set.
#[derive(Clone, PartialEq, Eq)]
pub struct NameSet(Arc<HashSet<String>>);

impl NameSet {
    /// An empty set.
    pub fn new() -> Self {
        NameSet(Arc::default())
    }

    /// Whether `name` is in the set.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }

    /// Adds `name`; `false` if it was there already.
    pub fn insert(&mut self, name: impl Into<String>) -> bool {
        Arc::make_mut(&mut self.0).insert(name.into())
    }

    /// Removes `name`; `false` if it was not there.
    pub fn remove(&mut self, name: &str) -> bool {
        self.0.contains(name) && Arc::make_mut(&mut self.0).remove(name)
    }

    /// The names, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    /// How many names there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Default for NameSet {
    fn default() -> Self {
        NameSet::new()
    }
}

impl fmt::Debug for NameSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<S: Into<String>> FromIterator<S> for NameSet {
    fn from_iter<I: IntoIterator<Item = S>>(names: I) -> Self {
        NameSet(Arc::new(names.into_iter().map(Into::into).collect()))
    }
}

impl<S: Into<String>> Extend<S> for NameSet {
    fn extend<I: IntoIterator<Item = S>>(&mut self, names: I) {
        Arc::make_mut(&mut self.0).extend(names.into_iter().map(Into::into));
    }
}

/// [`SAFE_ATTRS`] as a set, built once per process: `Config::default()` shares it.
static DEFAULT_SAFE_ATTRS: LazyLock<NameSet> = LazyLock::new(|| SAFE_ATTRS.iter().copied().collect());

/// RPyC's `safe_attrs` that mean something to netref objects.
pub const SAFE_ATTRS: &[&str] = &[
    "__eq__",
    "__ne__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__cmp__",
    "__hash__",
    "__repr__",
    "__str__",
    "__iter__",
    "__next__",
    "__len__",
    "__contains__",
    "__getitem__",
    "__enter__",
    "__exit__",
    "__call__",
    "__doc__",
    "__bool__",
    "__length_hint__",
    "__format__",
];

impl Default for AccessPolicy {
    fn default() -> Self {
        AccessPolicy {
            exposed_prefix: "exposed_".to_owned(),
            allow_exposed_attrs: true,
            allow_safe_attrs: true,
            allow_public_attrs: false,
            allow_all_attrs: false,
            allow_getattr: true,
            allow_setattr: false,
            allow_delattr: false,
            allow_obtain: false,
            safe_attrs: DEFAULT_SAFE_ATTRS.clone(),
        }
    }
}

/// What a member access wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read an attribute or call a method.
    Get,
    /// Write an attribute.
    Set,
    /// Delete an attribute.
    Del,
}

/// What [`AccessPolicy::lookup`] found.
pub(crate) enum Lookup<T> {
    /// What `find` returned for the stored name the policy allows.
    Found(T),
    /// The object has no such member, under a name the policy lets through as it is.
    Absent,
}

impl AccessPolicy {
    /// A policy that lets the peer reach everything (RPyC's classic mode). Only for peers you
    /// trust completely.
    pub fn allow_all() -> Self {
        AccessPolicy {
            allow_public_attrs: true,
            allow_all_attrs: true,
            allow_setattr: true,
            allow_delattr: true,
            allow_obtain: true,
            ..AccessPolicy::default()
        }
    }

    /// Sets `exposed_prefix`: the prefix of exposed names (default `"exposed_"`).
    #[must_use = "the setter returns the changed policy"]
    pub fn exposed_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.exposed_prefix = prefix.into();
        self
    }

    /// Sets `allow_exposed_attrs`: exposed names are reachable (default `true`).
    #[must_use = "the setter returns the changed policy"]
    pub fn allow_exposed_attrs(mut self, allow: bool) -> Self {
        self.allow_exposed_attrs = allow;
        self
    }

    /// Sets `allow_safe_attrs`: the special names in `safe_attrs` are reachable (default `true`).
    #[must_use = "the setter returns the changed policy"]
    pub fn allow_safe_attrs(mut self, allow: bool) -> Self {
        self.allow_safe_attrs = allow;
        self
    }

    /// Sets `allow_public_attrs`: names not starting with `_` are reachable, exposed or not
    /// (default `false`).
    #[must_use = "the setter returns the changed policy"]
    pub fn allow_public_attrs(mut self, allow: bool) -> Self {
        self.allow_public_attrs = allow;
        self
    }

    /// Sets `allow_all_attrs`: every name is reachable, private ones too (default `false`).
    #[must_use = "the setter returns the changed policy"]
    pub fn allow_all_attrs(mut self, allow: bool) -> Self {
        self.allow_all_attrs = allow;
        self
    }

    /// Sets `allow_getattr`: reading attributes and calling methods (default `true`).
    #[must_use = "the setter returns the changed policy"]
    pub fn allow_getattr(mut self, allow: bool) -> Self {
        self.allow_getattr = allow;
        self
    }

    /// Sets `allow_setattr`: SETATTR on reachable fields (default `false`).
    #[must_use = "the setter returns the changed policy"]
    pub fn allow_setattr(mut self, allow: bool) -> Self {
        self.allow_setattr = allow;
        self
    }

    /// Sets `allow_delattr`: DELATTR on reachable fields (default `false`).
    #[must_use = "the setter returns the changed policy"]
    pub fn allow_delattr(mut self, allow: bool) -> Self {
        self.allow_delattr = allow;
        self
    }

    /// Sets `allow_obtain`: serving *obtain*, a copy by value (default `false`).
    #[must_use = "the setter returns the changed policy"]
    pub fn allow_obtain(mut self, allow: bool) -> Self {
        self.allow_obtain = allow;
        self
    }

    /// Why this policy refuses `access` to `name` (which [`resolve`](AccessPolicy::resolve)
    /// refused), naming the setting that would allow it, for the refusal's message.
    /// `exposed_twin` says whether the object has the member `exposed_prefix + name`.
    pub(crate) fn refusal(&self, name: &str, access: Access, exposed_twin: bool) -> String {
        const BY: &str = "by the serving side's access policy";
        match access {
            Access::Get if !self.allow_getattr => {
                return format!("attribute access is disabled {BY} (AccessPolicy::allow_getattr)")
            }
            Access::Set if !self.allow_setattr => {
                return format!("setattr is disabled {BY} (AccessPolicy::allow_setattr)")
            }
            Access::Del if !self.allow_delattr => {
                return format!("delattr is disabled {BY} (AccessPolicy::allow_delattr)")
            }
            _ => {}
        }
        let prefix = self.exposed_prefix.as_str();
        if !self.allow_exposed_attrs && (exposed_twin || (!prefix.is_empty() && name.starts_with(prefix))) {
            format!("exposed names are disabled {BY} (AccessPolicy::allow_exposed_attrs)")
        } else if !self.allow_safe_attrs && self.safe_attrs.contains(name) {
            format!("special names are disabled {BY} (AccessPolicy::allow_safe_attrs)")
        } else if name.len() > 4 && name.starts_with("__") && name.ends_with("__") {
            format!(
                "'{name}' is not one of the serving side's safe special names (AccessPolicy::safe_attrs; \
                 AccessPolicy::allow_all_attrs reaches every name)"
            )
        } else if name.starts_with('_') {
            format!("'{name}' is private; {BY}, only AccessPolicy::allow_all_attrs reaches private names")
        } else {
            format!(
                "'{name}' is not exposed (the object's builder exposes what it registers, except \
                 internal_method, and names starting with '{prefix}'); {BY}, only \
                 AccessPolicy::allow_public_attrs reaches names that are not exposed"
            )
        }
    }

    /// Resolves `name` to the member name to use on an object, following RPyC's
    /// `_check_attr`; `None` means access is refused. `find` looks a stored name up on the
    /// object and returns it as stored (so no name is built on the heap for a hit).
    pub fn resolve<'a>(
        &self,
        name: &'a str,
        access: Access,
        find: impl Fn(&str) -> Option<&'a str>,
    ) -> Option<Cow<'a, str>> {
        self.lookup(name, access, find).map(|found| match found {
            Lookup::Found(stored) => Cow::Borrowed(stored),
            Lookup::Absent => Cow::Borrowed(name),
        })
    }

    /// [`resolve`](AccessPolicy::resolve) with whatever `find` returns for the stored name (a
    /// member, say, so that it is not looked up again): `None` when access is refused.
    #[inline]
    pub(crate) fn lookup<T>(&self, name: &str, access: Access, find: impl Fn(&str) -> Option<T>) -> Option<Lookup<T>> {
        let switch = match access {
            Access::Get => self.allow_getattr,
            Access::Set => self.allow_setattr,
            Access::Del => self.allow_delattr,
        };
        if !switch {
            return None;
        }
        let prefix = self.exposed_prefix.as_str();
        // Whether `name` may be reached as it is. Cheapest tests first, and only asked when it
        // matters: this runs on every request, and most requests name an exposed member.
        let plain = || {
            self.allow_all_attrs
                || (self.allow_public_attrs && !name.starts_with('_'))
                || (self.allow_exposed_attrs && !prefix.is_empty() && name.starts_with(prefix))
                || (self.allow_safe_attrs && self.safe_attrs.contains(name))
        };
        // A plain name the object has wins over its exposed twin (RPyC's order).
        if let Some(found) = find(name) {
            if plain() {
                return Some(Lookup::Found(found));
            }
        }
        if self.allow_exposed_attrs && !prefix.is_empty() {
            // `prefix + name` on the stack when it is short (it nearly always is).
            let mut buf = [0u8; 64];
            let len = prefix.len() + name.len();
            let found = if len <= buf.len() {
                buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
                buf[prefix.len()..len].copy_from_slice(name.as_bytes());
                std::str::from_utf8(&buf[..len]).ok().and_then(&find)
            } else {
                find(&format!("{prefix}{name}"))
            };
            if let Some(found) = found {
                return Some(Lookup::Found(found));
            }
        }
        plain().then_some(Lookup::Absent)
    }

    /// Whether `name` (as stored on the object) is visible to the peer, for DIR and INSPECT.
    pub fn is_visible(&self, stored_name: &str) -> bool {
        let prefix = self.exposed_prefix.as_str();
        self.allow_getattr
            && (self.allow_all_attrs
                || (self.allow_exposed_attrs && !prefix.is_empty() && stored_name.starts_with(prefix))
                || (self.allow_safe_attrs && self.safe_attrs.contains(stored_name))
                || (self.allow_public_attrs && !stored_name.starts_with('_')))
    }

    /// The name a peer uses for a stored member: `exposed_add` is shown as `add`.
    pub fn public_name<'a>(&self, stored_name: &'a str) -> &'a str {
        match stored_name.strip_prefix(self.exposed_prefix.as_str()) {
            Some(rest) if !self.exposed_prefix.is_empty() && !rest.is_empty() => rest,
            _ => stored_name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_and_prefixed_names_reach_the_exposed_member() {
        let p = AccessPolicy::default();
        let stored = ["exposed_add", "helper", "_secret"];
        let has = |n: &str| stored.iter().copied().find(|s| *s == n);
        assert_eq!(p.resolve("add", Access::Get, has).as_deref(), Some("exposed_add"));
        assert_eq!(p.resolve("exposed_add", Access::Get, has).as_deref(), Some("exposed_add"));
        assert_eq!(p.resolve("helper", Access::Get, has), None);
        assert_eq!(p.resolve("_secret", Access::Get, has), None);
        assert_eq!(p.resolve("__eq__", Access::Get, has).as_deref(), Some("__eq__"));
        assert_eq!(p.resolve("add", Access::Set, has), None);
        let public = AccessPolicy { allow_public_attrs: true, ..AccessPolicy::default() };
        assert_eq!(public.resolve("helper", Access::Get, has).as_deref(), Some("helper"));
        assert_eq!(public.resolve("_secret", Access::Get, has), None);
        assert_eq!(AccessPolicy::allow_all().resolve("_secret", Access::Get, has).as_deref(), Some("_secret"));
        let closed = AccessPolicy { allow_getattr: false, ..AccessPolicy::default() };
        assert_eq!(closed.resolve("add", Access::Get, has), None);
    }

    #[test]
    fn safe_attrs_are_shared_until_changed() {
        let a = AccessPolicy::default();
        let mut b = AccessPolicy::default();
        assert!(Arc::ptr_eq(&a.safe_attrs.0, &b.safe_attrs.0), "defaults share one set");
        assert_eq!(a.safe_attrs.len(), SAFE_ATTRS.len());
        assert!(b.safe_attrs.insert("__custom__"));
        assert!(!b.safe_attrs.insert("__custom__"));
        assert!(b.safe_attrs.contains("__custom__") && !a.safe_attrs.contains("__custom__"), "a change copies");
        let has = |n: &str| ["__custom__"].into_iter().find(|s| *s == n);
        assert_eq!(b.resolve("__custom__", Access::Get, has).as_deref(), Some("__custom__"));
        assert_eq!(a.resolve("__custom__", Access::Get, has), None);
        assert!(b.safe_attrs.remove("__repr__") && !b.safe_attrs.remove("__repr__"));
        assert!(a.safe_attrs.contains("__repr__"));
        assert_ne!(a, b);
    }
}
