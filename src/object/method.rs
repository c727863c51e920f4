//! Typed method registration: plain functions and closures whose arguments and results convert
//! through serde. No `Value` matching in user code.

use std::{any::Any, fmt::Display, future::Future, sync::Arc};

use futures::{future::BoxFuture, FutureExt};
use serde::{de::DeserializeOwned, Serialize};

use crate::{
    error::{kinds, RemoteError},
    from_value, to_value, Value,
};

/// The arguments of a call as they arrive: positional values and keyword pairs.
#[derive(Debug, Default)]
pub struct Args {
    /// Positional arguments.
    pub positional: Vec<Value>,
    /// Keyword arguments, in the order the caller gave them.
    pub kwargs: Vec<(String, Value)>,
}

/// The future a method returns.
pub type MethodFuture = BoxFuture<'static, Result<Value, RemoteError>>;

/// A method as the dispatcher sees it.
pub(crate) type MethodFn = Arc<dyn Fn(Args) -> Served + Send + Sync>;

/// What a method gives back: its result at once (most methods are synchronous, and then
/// nothing is boxed or polled), or a future for the rest of the work.
pub(crate) enum Served {
    /// The result, now.
    Done(Result<Value, RemoteError>),
    /// Work still to do.
    Later(MethodFuture),
    /// A wait for an event (see `ObjectBuilder::long_poll`).
    LongPoll(MethodFuture),
}

/// A function whose arguments convert from [`Value`]s: implemented for `Fn(A1, …, An) -> Out`
/// with up to eight arguments, each `DeserializeOwned`. `Marker` is the argument tuple.
pub trait FromArgs<Marker, Out>: Send + Sync + 'static {
    /// The argument type names, for error messages.
    fn arg_types() -> Vec<&'static str>;
    /// Converts the arguments and calls the function.
    fn call_with(&self, method: &str, args: Args) -> Result<Out, RemoteError>;
}

fn short_type_name(full: &'static str) -> &'static str {
    // `alloc::string::String` → `String`; keep generic arguments readable enough.
    match full.find('<') {
        Some(_) => full,
        None => full.rsplit("::").next().unwrap_or(full),
    }
}

pub(crate) fn signature(method: &str, types: &[&'static str]) -> String {
    let list: Vec<&str> = types.iter().map(|t| short_type_name(t)).collect();
    format!("{method}({})", list.join(", "))
}

pub(crate) fn type_error(message: String) -> RemoteError {
    RemoteError::new(kinds::TYPE_ERROR, message)
}

macro_rules! impl_from_args {
    ($n:literal $(, $a:ident)*) => {
        impl<F, Out, $($a,)*> FromArgs<($($a,)*), Out> for F
        where
            F: Fn($($a),*) -> Out + Send + Sync + 'static,
            $($a: DeserializeOwned + 'static,)*
        {
            fn arg_types() -> Vec<&'static str> {
                vec![$(std::any::type_name::<$a>()),*]
            }

            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn call_with(&self, method: &str, args: Args) -> Result<Out, RemoteError> {
                let sig = || signature(method, &<Self as FromArgs<($($a,)*), Out>>::arg_types());
                if !args.kwargs.is_empty() {
                    let names: Vec<&str> = args.kwargs.iter().map(|(k, _)| k.as_str()).collect();
                    return Err(type_error(format!("{} got unexpected keyword arguments: {}", sig(), names.join(", "))));
                }
                if args.positional.len() != $n {
                    return Err(type_error(format!(
                        "{} takes {} argument{} but {} were given", sig(), $n, if $n == 1 { "" } else { "s" }, args.positional.len()
                    )));
                }
                let mut it = args.positional.into_iter();
                let mut index = 0usize;
                $(
                    index += 1;
                    let $a: $a = from_value(it.next().unwrap_or(Value::None)).map_err(|e| {
                        type_error(format!("{}: argument {} expected {}: {}", sig(), index, short_type_name(std::any::type_name::<$a>()), e))
                    })?;
                )*
                Ok((self)($($a),*))
            }
        }
    };
}

impl_from_args!(0);
impl_from_args!(1, A1);
impl_from_args!(2, A1, A2);
impl_from_args!(3, A1, A2, A3);
impl_from_args!(4, A1, A2, A3, A4);
impl_from_args!(5, A1, A2, A3, A4, A5);
impl_from_args!(6, A1, A2, A3, A4, A5, A6);
impl_from_args!(7, A1, A2, A3, A4, A5, A6, A7);
impl_from_args!(8, A1, A2, A3, A4, A5, A6, A7, A8);

/// Converts a result into a reply value.
pub(crate) fn reply<R: Serialize>(r: R) -> Result<Value, RemoteError> {
    to_value(&r).map_err(result_error)
}

/// [`reply`] for a method's result, which the method gave up: a byte buffer, a `String` or a
/// `Value` is moved into the reply rather than copied (see [`into_value`](crate::value::into_value)).
pub(crate) fn reply_owned<R: Serialize + 'static>(r: R) -> Result<Value, RemoteError> {
    crate::value::into_value(r).map_err(result_error)
}

fn result_error(e: crate::value::ConvertError) -> RemoteError {
    RemoteError::new(kinds::TYPE_ERROR, format!("cannot convert the result: {e}"))
}

/// Converts the error a fallible method returned into the remote error its caller receives.
///
/// * A [`RemoteError`] (or a [`crate::Error::Remote`], e.g. from a call to another peer) keeps
///   its kind and message.
/// * A plain string (`&str`, `String`, `Cow<str>`), a boxed `dyn Error` or an `anyhow`/`eyre`
///   error becomes [`kinds::RUNTIME_ERROR`], RPyC's generic kind.
/// * A few standard errors become the Python kind for the same failure (see [`std_kind`]).
/// * Any other type keeps its Rust path as the kind (`my_app::errors::DivError<T>` →
///   `my_app.errors.DivError`).
///
/// Every error gets a traceback naming the method (`name`) and the object type it was
/// registered on (`owner`), unless it brought its own.
pub(crate) fn user_error<E: Display + 'static>(e: E, name: &str, owner: &str) -> RemoteError {
    let any = &e as &dyn Any;
    let mut remote = match any.downcast_ref::<RemoteError>() {
        Some(remote) => remote.clone(),
        None => match any.downcast_ref::<crate::Error>() {
            Some(crate::Error::Remote(remote)) => remote.clone(),
            _ => {
                let kind = std_kind(any).map_or_else(|| kind_of_type(std::any::type_name::<E>()), Into::into);
                RemoteError::new(kind, e.to_string())
            }
        },
    };
    if remote.traceback.is_empty() {
        let at = format!("method '{name}' of '{owner}' returned an error");
        remote.traceback = crate::error::traceback_text(&at, &remote.kind, &remote.message);
    }
    remote
}

/// The Python kind of a standard error that has one: an I/O error is an `OSError` (its
/// subclass for the error's kind, as Python maps `errno`), a failed parse a `ValueError`, a
/// failed integer narrowing an `OverflowError`; netref's own errors by what they say.
fn std_kind(e: &dyn Any) -> Option<&'static str> {
    use std::io::ErrorKind;
    if let Some(e) = e.downcast_ref::<std::io::Error>() {
        return Some(match e.kind() {
            ErrorKind::NotFound => "builtins.FileNotFoundError",
            ErrorKind::PermissionDenied => kinds::ACCESS_DENIED,
            ErrorKind::AlreadyExists => "builtins.FileExistsError",
            ErrorKind::TimedOut => kinds::TIMEOUT_ERROR,
            ErrorKind::ConnectionRefused => "builtins.ConnectionRefusedError",
            ErrorKind::ConnectionReset => "builtins.ConnectionResetError",
            ErrorKind::ConnectionAborted => "builtins.ConnectionAbortedError",
            ErrorKind::BrokenPipe => "builtins.BrokenPipeError",
            ErrorKind::Interrupted => "builtins.InterruptedError",
            ErrorKind::WouldBlock => "builtins.BlockingIOError",
            _ => kinds::OS_ERROR,
        });
    }
    if e.is::<std::num::ParseIntError>()
        || e.is::<std::num::ParseFloatError>()
        || e.is::<std::str::ParseBoolError>()
        || e.is::<std::char::ParseCharError>()
        || e.is::<std::net::AddrParseError>()
        || e.is::<std::str::Utf8Error>()
        || e.is::<std::string::FromUtf8Error>()
    {
        return Some(kinds::VALUE_ERROR);
    }
    if e.is::<std::num::TryFromIntError>() {
        return Some(kinds::OVERFLOW_ERROR);
    }
    if e.is::<crate::ConvertError>() {
        return Some(kinds::TYPE_ERROR);
    }
    e.downcast_ref::<crate::Error>().map(|e| match e {
        crate::Error::Timeout(_) => kinds::TIMEOUT_ERROR,
        crate::Error::ConnectionClosed(_) => kinds::CONNECTION_ERROR,
        crate::Error::Io(_) => kinds::OS_ERROR,
        crate::Error::Convert(_) => kinds::TYPE_ERROR,
        crate::Error::AccessDenied(_) => kinds::ACCESS_DENIED,
        _ => kinds::RUNTIME_ERROR,
    })
}

/// The kind for an error of the type named `full` (from `std::any::type_name`): its path with
/// `.` for `::` and without generic arguments, looking through references and `Box`, `Arc` and
/// `Rc`; [`kinds::RUNTIME_ERROR`] for strings, trait objects, primitives and `anyhow`-like
/// catch-all errors, whose type says nothing about the failure.
fn kind_of_type(full: &str) -> String {
    let mut name = full;
    loop {
        let inner = name.trim_start_matches('&').trim_start_matches("mut ");
        let unwrapped = ["alloc::boxed::Box<", "alloc::sync::Arc<", "alloc::rc::Rc<"]
            .iter()
            .find_map(|p| inner.strip_prefix(p).and_then(|rest| rest.strip_suffix('>')));
        match unwrapped {
            Some(rest) => name = rest,
            None if inner.len() == name.len() => break,
            None => name = inner,
        }
    }
    let path = name.split('<').next().unwrap_or(name);
    let catch_all =
        ["dyn ", "str", "alloc::string::String", "alloc::borrow::Cow", "anyhow::", "eyre::", "color_eyre::"];
    if catch_all.iter().any(|c| path.starts_with(c)) || !path.contains("::") {
        return kinds::RUNTIME_ERROR.to_owned();
    }
    path.replace("::", ".")
}

pub(crate) fn sync_method<M, F, R>(name: &str, f: F) -> MethodFn
where
    F: FromArgs<M, R>,
    R: Serialize + 'static,
{
    let name = name.to_owned();
    Arc::new(move |args| Served::Done(f.call_with(&name, args).and_then(reply_owned)))
}

/// A fallible method `name` of objects of type `owner`: an `Err` becomes a remote error by
/// [`user_error`].
pub(crate) fn try_sync_method<M, F, R, E>(name: &str, owner: &str, f: F) -> MethodFn
where
    F: FromArgs<M, Result<R, E>>,
    R: Serialize + 'static,
    E: Display + 'static,
{
    let name = name.to_owned();
    let owner = owner.to_owned();
    Arc::new(move |args| {
        Served::Done(
            f.call_with(&name, args).and_then(|r| r.map_err(|e| user_error(e, &name, &owner))).and_then(reply_owned),
        )
    })
}

pub(crate) fn async_method<M, F, Fut, R>(name: &str, f: F) -> MethodFn
where
    F: FromArgs<M, Fut>,
    Fut: Future<Output = R> + Send + 'static,
    R: Serialize + 'static,
{
    let name = name.to_owned();
    Arc::new(move |args| match f.call_with(&name, args) {
        Ok(fut) => Served::Later(fut.map(reply_owned).boxed()),
        Err(e) => Served::Done(Err(e)),
    })
}

/// [`try_sync_method`] for a method that returns a future.
pub(crate) fn try_async_method<M, F, Fut, R, E>(name: &str, owner: &str, f: F) -> MethodFn
where
    F: FromArgs<M, Fut>,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    R: Serialize + 'static,
    E: Display + 'static,
{
    // One copy of the names, shared by every call's future (which must own what it uses).
    let names: Arc<(String, String)> = Arc::new((name.to_owned(), owner.to_owned()));
    Arc::new(move |args| match f.call_with(&names.0, args) {
        Ok(fut) => {
            let names = names.clone();
            Served::Later(
                fut.map(move |r| r.map_err(|e| user_error(e, &names.0, &names.1)).and_then(reply_owned)).boxed(),
            )
        }
        Err(e) => Served::Done(Err(e)),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };

    use serde_bytes::ByteBuf;

    use super::*;

    /// The address of the last buffer `make` handed out, and a method body that hands one out.
    fn buffers() -> (Arc<AtomicUsize>, impl Fn() -> ByteBuf + Clone + Send + Sync + 'static) {
        let last = Arc::new(AtomicUsize::new(0));
        let made = last.clone();
        let make = move || {
            let buf = ByteBuf::from(vec![9u8; 1 << 16]);
            made.store(buf.as_ptr() as usize, Ordering::Relaxed);
            buf
        };
        (last, make)
    }

    fn reply_of(served: Served) -> Value {
        let result = match served {
            Served::Done(result) => result,
            Served::Later(fut) | Served::LongPoll(fut) => futures::executor::block_on(fut),
        };
        result.expect("the method succeeds")
    }

    #[test]
    fn a_byte_buffer_result_is_the_reply_without_a_copy() {
        let (last, make) = buffers();
        let args = || Args { positional: Vec::new(), kwargs: Vec::new() };
        let make2 = make.clone();
        let make3 = make.clone();
        let make4 = make.clone();
        let methods: [MethodFn; 4] = [
            sync_method("sync", make),
            try_sync_method("try_sync", "test.Buffers", move || Ok::<_, RemoteError>(make2())),
            async_method("async", move || std::future::ready(make3())),
            try_async_method("try_async", "test.Buffers", move || std::future::ready(Ok::<_, RemoteError>(make4()))),
        ];
        for m in methods {
            let value = reply_of(m(args()));
            let Value::Bytes(b) = &value else { panic!("a byte string, got {value:?}") };
            assert_eq!(b.len(), 1 << 16);
            assert_eq!(b.as_ptr() as usize, last.load(Ordering::Relaxed), "the result's own buffer");
        }
    }

    #[test]
    fn catch_all_error_types_become_runtime_errors_and_others_keep_their_path() {
        for name in [
            "&str",
            "alloc::string::String",
            "alloc::borrow::Cow<str>",
            "alloc::boxed::Box<dyn core::error::Error + core::marker::Send + core::marker::Sync>",
            "anyhow::Error",
            "eyre::Report",
            "i32",
            "(i32, i32)",
        ] {
            assert_eq!(kind_of_type(name), kinds::RUNTIME_ERROR, "{name}");
        }
        assert_eq!(kind_of_type("my_app::errors::DivError"), "my_app.errors.DivError");
        assert_eq!(kind_of_type("&my_app::DivError<alloc::string::String>"), "my_app.DivError");
        assert_eq!(kind_of_type("alloc::sync::Arc<alloc::boxed::Box<my_app::DivError<u8>>>"), "my_app.DivError");
    }
}
