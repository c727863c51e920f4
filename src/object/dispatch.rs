//! Serving one request on an exported object: the server side of every object `HANDLE_*`.
//!
//! Every member access resolves through the [`AccessPolicy`] first — CMP, HASH, REPR, STR, DIR
//! and INSPECT included (RPyC's CVE-2019-16328 was a handler that skipped the check).

use std::sync::Arc;

use super::{
    method::Served,
    policy::{Access, Lookup},
    AccessPolicy, Args, Member, Object,
};
use crate::{
    error::{kinds, RemoteError},
    forward::Arrival,
    from_value, Handle, IdPack, NetRef, Value,
};

/// The largest chunk one BUFFITER request may ask for.
pub(crate) const MAX_BUFFITER_CHUNK: usize = 10_000;

fn ready(r: Result<Value, RemoteError>) -> Served {
    Served::Done(r)
}

fn attribute_error(message: String) -> RemoteError {
    RemoteError::new(kinds::ATTRIBUTE_ERROR, message)
}

fn type_error(message: String) -> RemoteError {
    RemoteError::new(kinds::TYPE_ERROR, message)
}

fn arg_str(args: &[Value], i: usize, what: &str) -> Result<String, RemoteError> {
    match args.get(i) {
        Some(Value::Str(s)) => Ok(s.clone()),
        other => Err(type_error(format!("{what} must be a string, not {}", other.map_or("nothing", Value::kind)))),
    }
}

/// The exported object a request targets (its first argument).
fn target(args: &[Value]) -> Result<&Object, RemoteError> {
    match args.first() {
        Some(Value::Ref(r)) => {
            r.as_local().ok_or_else(|| type_error("the request's target is not an object of this side".into()))
        }
        other => Err(type_error(format!(
            "the request's target must be an object, not {}",
            other.map_or("nothing", Value::kind)
        ))),
    }
}

/// The forwarding object a request targets, if it targets one.
#[inline]
fn forwarding_target(args: &[Value]) -> Option<Object> {
    match args.first() {
        Some(Value::Ref(r)) => r.as_local().filter(|o| o.forwarded().is_some() || o.named().is_some()).cloned(),
        _ => None,
    }
}

/// Resolves `name` on `obj`, or explains why not.
fn resolve<'a>(
    obj: &'a Object,
    name: &'a str,
    access: Access,
    policy: &AccessPolicy,
) -> Result<std::borrow::Cow<'a, str>, RemoteError> {
    let find = |n: &str| obj.inner.members.get_key_value(n).map(|(k, _)| k.as_str());
    policy.resolve(name, access, find).ok_or_else(|| refused(obj, name, access, policy))
}

/// The error for `access` to `name` refused by `policy`: what was refused, on which type, and
/// the setting that would allow it.
fn refused(obj: &Object, name: &str, access: Access, policy: &AccessPolicy) -> RemoteError {
    let prefix = policy.exposed_prefix.as_str();
    let exposed_twin = !prefix.is_empty() && obj.inner.members.contains_key(format!("{prefix}{name}").as_str());
    let what = match access {
        Access::Get => "access",
        Access::Set => "set",
        Access::Del => "delete",
    };
    let why = policy.refusal(name, access, exposed_twin);
    attribute_error(format!("cannot {what} '{name}' on '{}': {why}", obj.type_name()))
}

fn no_attribute(obj: &Object, name: &str) -> RemoteError {
    attribute_error(format!("'{}' object has no attribute '{name}'", obj.type_name()))
}

/// Checks a special operation through the policy, as if reaching the dunder `name`.
fn check_special(obj: &Object, name: &str, policy: &AccessPolicy) -> Result<(), RemoteError> {
    // Only the dunder itself counts as present: `exposed___repr__` must not open it.
    let find = |n: &str| (n == name).then_some(name);
    match policy.resolve(name, Access::Get, find) {
        Some(_) => Ok(()),
        // A plain name here (CMP's operator is the peer's text) is never a member lookup.
        None if !(name.starts_with("__") && name.ends_with("__")) => Err(attribute_error(format!(
            "cannot access '{name}' on '{}': '{name}' is not a special name (an operator such as __eq__)",
            obj.type_name()
        ))),
        None => Err(refused(obj, name, Access::Get, policy)),
    }
}

fn bound_method(obj: &Object, name: &str, m: super::MethodFn) -> Object {
    let mut b = Object::builder("builtins.method");
    b = b.repr({
        let text = format!("<bound method {}.{name} of #{}>", obj.type_name(), obj.instance_id());
        move || text.clone()
    });
    let mut built = b.build();
    if let Some(inner) = Arc::get_mut(&mut built.inner) {
        inner.call = Some(m);
    }
    built
}

fn split_call(args: Vec<Value>, from: usize) -> Result<Args, RemoteError> {
    split_rest(args.into_iter().skip(from))
}

/// [`split_call`] on what is left of a request's items.
fn split_rest(mut it: impl Iterator<Item = Value>) -> Result<Args, RemoteError> {
    let positional = match it.next() {
        Some(Value::Tuple(v)) | Some(Value::List(v)) => v,
        None | Some(Value::None) => Vec::new(),
        Some(other) => return Err(type_error(format!("call arguments must be a tuple, not {}", other.kind()))),
    };
    let kwargs = match it.next() {
        None | Some(Value::None) => Vec::new(),
        Some(Value::Map(pairs)) => pairs
            .into_iter()
            .map(|(k, v)| match k {
                Value::Str(k) => Ok((k, v)),
                other => Err(type_error(format!("keyword names must be strings, not {}", other.kind()))),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(type_error(format!("keyword arguments must be a map, not {}", other.kind()))),
    };
    Ok(Args { positional, kwargs })
}

fn read_member(obj: &Object, stored: &str, name: &str) -> Result<Value, RemoteError> {
    match obj.inner.members.get(stored) {
        Some(Member::Method(m)) => Ok(Value::Ref(NetRef::from(bound_method(obj, name, m.clone())))),
        Some(Member::Const(v)) => Ok(v.clone()),
        Some(Member::Property(get)) => get(),
        Some(Member::Field(slot)) => {
            slot.lock().unwrap_or_else(|p| p.into_inner()).clone().ok_or_else(|| no_attribute(obj, name))
        }
        None => Err(no_attribute(obj, name)),
    }
}

/// Serves one object request. `args` are the unboxed request arguments (target first).
/// `arrival`: how the request came, for a forwarding object to pass it on alike.
pub(crate) fn dispatch(handle: Handle, args: Vec<Value>, policy: &AccessPolicy, arrival: Arrival) -> Served {
    if let Some(obj) = forwarding_target(&args) {
        if let Some(fwd) = obj.forwarded() {
            // The owner's policy decides, not this side's: the request is passed on as it came.
            return crate::forward::serve(fwd, handle, args, arrival);
        }
        if let Some(named) = obj.named() {
            return named.serve(handle, args, arrival);
        }
    }
    match serve(handle, args, policy) {
        Ok(fut) => fut,
        Err(e) => ready(Err(e)),
    }
}

fn serve(handle: Handle, args: Vec<Value>, policy: &AccessPolicy) -> Result<Served, RemoteError> {
    let obj = target(&args)?.clone();
    let r = match handle {
        Handle::GetAttr => {
            let name = arg_str(&args, 1, "attribute name")?;
            let stored = resolve(&obj, &name, Access::Get, policy)?;
            read_member(&obj, &stored, &name)
        }
        Handle::CallAttr => {
            let mut items = args.into_iter().skip(1);
            let name = match items.next() {
                Some(Value::Str(name)) => name,
                other => {
                    let kind = other.as_ref().map_or("nothing", Value::kind);
                    return Err(type_error(format!("method name must be a string, not {kind}")));
                }
            };
            return call_attr(&obj, &name, || split_rest(items), policy);
        }
        Handle::Call => return call_object(&obj, || split_call(args, 1), policy),
        Handle::SetAttr => {
            let name = arg_str(&args, 1, "attribute name")?;
            let stored = resolve(&obj, &name, Access::Set, policy)?;
            let value = args.into_iter().nth(2).unwrap_or(Value::None);
            match obj.inner.members.get(&*stored) {
                Some(Member::Field(slot)) => {
                    *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
                    Ok(Value::None)
                }
                Some(_) => Err(attribute_error(format!("attribute '{name}' of '{}' is read-only", obj.type_name()))),
                None => Err(no_attribute(&obj, &name)),
            }
        }
        Handle::DelAttr => {
            let name = arg_str(&args, 1, "attribute name")?;
            let stored = resolve(&obj, &name, Access::Del, policy)?;
            match obj.inner.members.get(&*stored) {
                Some(Member::Field(slot)) => match slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
                    Some(_) => Ok(Value::None),
                    None => Err(no_attribute(&obj, &name)),
                },
                Some(_) => {
                    Err(attribute_error(format!("attribute '{name}' of '{}' cannot be deleted", obj.type_name())))
                }
                None => Err(no_attribute(&obj, &name)),
            }
        }
        Handle::Repr => {
            check_special(&obj, "__repr__", policy)?;
            Ok(Value::Str(match &obj.inner.repr {
                Some(f) => f(),
                None => format!("<{} object #{}>", obj.type_name(), obj.instance_id()),
            }))
        }
        Handle::Str => {
            check_special(&obj, "__str__", policy)?;
            Ok(Value::Str(match (&obj.inner.display, &obj.inner.repr) {
                (Some(f), _) | (None, Some(f)) => f(),
                (None, None) => format!("<{} object #{}>", obj.type_name(), obj.instance_id()),
            }))
        }
        Handle::Hash => {
            check_special(&obj, "__hash__", policy)?;
            Ok(Value::Int(match &obj.inner.hash {
                Some(f) => f(),
                None => obj.instance_id() as i64,
            }))
        }
        Handle::Cmp => {
            let op = arg_str(&args, 2, "comparison operator")?;
            check_special(&obj, &op, policy)?;
            let other = args.get(1).cloned().unwrap_or(Value::None);
            compare(&obj, &op, &other)
        }
        Handle::Dir => {
            if !policy.allow_getattr {
                // Only `allow_getattr` refuses DIR and INSPECT: the refusal names it.
                let why = policy.refusal("__dir__", Access::Get, false);
                return Err(attribute_error(format!("cannot list the attributes of '{}': {why}", obj.type_name())));
            }
            let mut names: Vec<String> = obj
                .inner
                .members
                .keys()
                .filter(|n| policy.is_visible(n))
                .map(|n| policy.public_name(n).to_owned())
                .collect();
            names.sort();
            names.dedup();
            Ok(Value::List(names.into_iter().map(Value::Str).collect()))
        }
        Handle::Inspect => {
            if !policy.allow_getattr {
                let why = policy.refusal("__dir__", Access::Get, false);
                return Err(attribute_error(format!("cannot inspect '{}': {why}", obj.type_name())));
            }
            let mut names: Vec<String> = obj
                .inner
                .members
                .iter()
                .filter(|(n, m)| matches!(m, Member::Method(_)) && policy.is_visible(n))
                .map(|(n, _)| policy.public_name(n).to_owned())
                .collect();
            if obj.inner.call.is_some() {
                names.push("__call__".to_owned());
            }
            names.sort();
            Ok(Value::List(names.into_iter().map(|n| Value::Tuple(vec![Value::Str(n), Value::None])).collect()))
        }
        Handle::Pickle => match (&obj.inner.obtain, policy.allow_obtain) {
            (_, false) => Err(RemoteError::new(
                kinds::ACCESS_DENIED,
                format!(
                    "cannot obtain '{}' by value: obtain is disabled by the serving side's access policy \
                     (AccessPolicy::allow_obtain)",
                    obj.type_name()
                ),
            )),
            (None, true) => Err(type_error(format!("'{}' cannot be obtained by value", obj.type_name()))),
            (Some(f), true) => f(),
        },
        Handle::BuffIter => {
            let Some(next) = &obj.inner.next_chunk else {
                return Err(type_error(format!("'{}' object is not an iterator", obj.type_name())));
            };
            check_special(&obj, "__next__", policy)?;
            let n = match args.get(1) {
                Some(Value::Int(n)) if *n > 0 => (*n as usize).min(MAX_BUFFITER_CHUNK),
                _ => return Err(type_error("BUFFITER needs a positive chunk size".into())),
            };
            let items = next(n)?;
            if items.is_empty() {
                Err(RemoteError::stop_iteration())
            } else {
                Ok(Value::Tuple(items))
            }
        }
        Handle::CtxExit => {
            let Some(exit) = &obj.inner.exit else {
                return Err(type_error(format!("'{}' object is not a context manager", obj.type_name())));
            };
            check_special(&obj, "__exit__", policy)?;
            let err = match args.into_iter().nth(1) {
                None | Some(Value::None) => None,
                Some(Value::Tuple(mut parts)) if parts.len() == 2 => {
                    let msg = parts.pop();
                    let kind = parts.pop();
                    match (kind, msg) {
                        (Some(Value::Str(kind)), Some(Value::Str(msg))) => Some(RemoteError::new(kind, msg)),
                        _ => return Err(type_error("CTXEXIT error must be (kind, message)".into())),
                    }
                }
                Some(other) => {
                    return Err(type_error(format!("CTXEXIT error must be a tuple or None, not {}", other.kind())))
                }
            };
            exit(err).map(Value::Bool)
        }
        Handle::InstanceCheck => {
            let wanted = match args.get(1) {
                Some(Value::Str(name)) => name.clone(),
                Some(v) => {
                    from_value::<IdPack>(v.clone())
                        .map_err(|e| type_error(format!("INSTANCECHECK needs a type: {e}")))?
                        .type_name
                }
                None => return Err(type_error("INSTANCECHECK needs a type".into())),
            };
            Ok(Value::Bool(obj.type_name() == wanted || obj.inner.instance_of.contains(&wanted)))
        }
        Handle::OldSlicing => Err(RemoteError::new(
            kinds::NOT_IMPLEMENTED,
            "HANDLE_OLDSLICING (Python 2 slicing) is not supported by netref",
        )),
        other => Err(type_error(format!("{other} is not an object operation"))),
    };
    Ok(ready(r))
}

/// Serves CALLATTR: calls method `name` of `obj` with the arguments `args` gives. They are
/// converted only once the method is found, so a bad argument list never hides a refused or
/// missing name.
fn call_attr(
    obj: &Object,
    name: &str,
    args: impl FnOnce() -> Result<Args, RemoteError>,
    policy: &AccessPolicy,
) -> Result<Served, RemoteError> {
    if name == "__call__" {
        check_special(obj, "__call__", policy)?;
        return call(obj, args()?);
    }
    if name == "__next__" {
        if let Some(next) = &obj.inner.next_chunk {
            check_special(obj, "__next__", policy)?;
            let mut items = next(1)?;
            return Ok(ready(items.pop().ok_or_else(RemoteError::stop_iteration)));
        }
    }
    // The policy's lookup hands back the member itself: no second lookup by its stored name.
    match policy.lookup(name, Access::Get, |n| obj.inner.members.get(n)) {
        Some(Lookup::Found(Member::Method(m))) => Ok(m(args()?)),
        Some(Lookup::Found(_)) => Err(type_error(format!("'{}.{name}' is not callable", obj.type_name()))),
        Some(Lookup::Absent) => Err(no_attribute(obj, name)),
        None => Err(refused(obj, name, Access::Get, policy)),
    }
}

/// Serves a CALLATTR whose target is resolved and whose arguments are positional values (a
/// request read by the plain reader), exactly as [`dispatch`] serves it.
pub(crate) fn dispatch_call(
    obj: &Object,
    name: &str,
    positional: Vec<Value>,
    policy: &AccessPolicy,
    arrival: Arrival,
) -> Served {
    if let Some(fwd) = obj.forwarded() {
        return crate::forward::serve_call(fwd, Some(name), positional, arrival);
    }
    if let Some(named) = obj.named() {
        return named.serve_call(NetRef::from(obj.clone()), Some(name), positional, arrival);
    }
    match call_attr(obj, name, || Ok(Args { positional, kwargs: Vec::new() }), policy) {
        Ok(served) => served,
        Err(e) => ready(Err(e)),
    }
}

/// CALL on `obj` (its `__call__`, if the policy lets the peer reach it); `args` builds the
/// arguments once that is known.
fn call_object(
    obj: &Object,
    args: impl FnOnce() -> Result<Args, RemoteError>,
    policy: &AccessPolicy,
) -> Result<Served, RemoteError> {
    check_special(obj, "__call__", policy)?;
    call(obj, args()?)
}

/// CALL on `obj` with plain positional arguments, as the plain reader reads it (the same path
/// as [`dispatch`]'s, so the two cannot drift).
pub(crate) fn dispatch_callable(
    obj: &Object,
    positional: Vec<Value>,
    policy: &AccessPolicy,
    arrival: Arrival,
) -> Served {
    if let Some(fwd) = obj.forwarded() {
        return crate::forward::serve_call(fwd, None, positional, arrival);
    }
    if let Some(named) = obj.named() {
        return named.serve_call(NetRef::from(obj.clone()), None, positional, arrival);
    }
    match call_object(obj, || Ok(Args { positional, kwargs: Vec::new() }), policy) {
        Ok(served) => served,
        Err(e) => ready(Err(e)),
    }
}

fn call(obj: &Object, args: Args) -> Result<Served, RemoteError> {
    match &obj.inner.call {
        Some(f) => Ok(f(args)),
        None => Err(type_error(format!("'{}' object is not callable", obj.type_name()))),
    }
}

fn compare(obj: &Object, op: &str, other: &Value) -> Result<Value, RemoteError> {
    if let Some(f) = &obj.inner.compare {
        if let Some(b) = f(op, other) {
            return Ok(Value::Bool(b));
        }
    }
    let same = matches!(other, Value::Ref(r) if r.as_local().is_some_and(|o| o.same(obj)));
    match op {
        "__eq__" => Ok(Value::Bool(same)),
        "__ne__" => Ok(Value::Bool(!same)),
        _ => Err(type_error(format!("'{op}' is not supported by '{}'", obj.type_name()))),
    }
}
