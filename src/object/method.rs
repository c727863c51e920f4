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

/// Converts a user error into a remote error: a [`RemoteError`] passes through as it is; any
/// other error becomes a remote error whose kind is its Rust type path (`a::b::E` → `a.b.E`).
pub(crate) fn user_error<E: Display + 'static>(e: E) -> RemoteError {
    if let Some(remote) = (&e as &dyn Any).downcast_ref::<RemoteError>() {
        return remote.clone();
    }
    if let Some(err) = (&e as &dyn Any).downcast_ref::<crate::Error>() {
        if let Some(remote) = err.as_remote() {
            return remote.clone();
        }
    }
    let kind = std::any::type_name::<E>().replace("::", ".");
    RemoteError::new(kind, e.to_string())
}

pub(crate) fn sync_method<M, F, R>(name: &str, f: F) -> MethodFn
where
    F: FromArgs<M, R>,
    R: Serialize + 'static,
{
    let name = name.to_owned();
    Arc::new(move |args| Served::Done(f.call_with(&name, args).and_then(reply_owned)))
}

pub(crate) fn try_sync_method<M, F, R, E>(name: &str, f: F) -> MethodFn
where
    F: FromArgs<M, Result<R, E>>,
    R: Serialize + 'static,
    E: Display + 'static,
{
    let name = name.to_owned();
    Arc::new(move |args| {
        Served::Done(f.call_with(&name, args).and_then(|r| r.map_err(user_error)).and_then(reply_owned))
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

pub(crate) fn try_async_method<M, F, Fut, R, E>(name: &str, f: F) -> MethodFn
where
    F: FromArgs<M, Fut>,
    Fut: Future<Output = Result<R, E>> + Send + 'static,
    R: Serialize + 'static,
    E: Display + 'static,
{
    let name = name.to_owned();
    Arc::new(move |args| match f.call_with(&name, args) {
        Ok(fut) => Served::Later(fut.map(|r| r.map_err(user_error).and_then(reply_owned)).boxed()),
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
            try_sync_method("try_sync", move || Ok::<_, RemoteError>(make2())),
            async_method("async", move || std::future::ready(make3())),
            try_async_method("try_async", move || std::future::ready(Ok::<_, RemoteError>(make4()))),
        ];
        for m in methods {
            let value = reply_of(m(args()));
            let Value::Bytes(b) = &value else { panic!("a byte string, got {value:?}") };
            assert_eq!(b.len(), 1 << 16);
            assert_eq!(b.as_ptr() as usize, last.load(Ordering::Relaxed), "the result's own buffer");
        }
    }
}
