//! Guards what a fallible method's error arrives as: a kind a person can read (plain strings as
//! `builtins.RuntimeError`, standard errors as their Python kinds, a `RemoteError` as it is,
//! other types as their path) and a remote traceback that names the method and the object type
//! and ends as Python's does (`Kind: message`); and that `{:#}` of an `Error` shows it.

mod common;

use std::sync::Arc;

use common::{calculator, connect_default, Transport};
use netref::{kinds, prelude::*, RemoteError};

/// Error types of the test's own, to see the kind a user's type arrives as.
mod shapes {
    use std::fmt;

    /// A generic error: its kind must not carry the generic argument.
    #[derive(Debug)]
    pub(crate) struct BadShape<T>(pub(crate) T);

    impl<T: fmt::Debug> fmt::Display for BadShape<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "bad shape {:?}", self.0)
        }
    }
}

fn failing() -> Object {
    Object::builder("demo.Failing")
        .try_method("str_error", || Err::<i64, _>("not today"))
        .try_method("string_error", |n: i64| Err::<i64, _>(format!("{n} is too many")))
        .try_method("boxed_error", || -> Result<i64, Box<dyn std::error::Error + Send + Sync>> {
            Err("boxed failure".into())
        })
        .try_async_method("async_str_error", || async {
            tokio::task::yield_now().await;
            Err::<i64, _>("later, not today")
        })
        .try_method("missing_file", || {
            Err::<i64, _>(std::io::Error::new(std::io::ErrorKind::NotFound, "no such file: data.bin"))
        })
        .try_method("other_io", || Err::<i64, _>(std::io::Error::other("disk on fire")))
        .try_method("parse", |text: String| text.parse::<i64>())
        .try_method("narrow", |n: i64| u8::try_from(n))
        .try_method("shape", || Err::<i64, _>(shapes::BadShape(vec![1, 2])))
        .try_method("key", |key: String| Err::<i64, _>(RemoteError::new(kinds::KEY_ERROR, format!("'{key}'"))))
        .try_method("own_traceback", || {
            Err::<i64, _>(RemoteError::new(kinds::VALUE_ERROR, "bad").with_traceback("the caller's own text"))
        })
        .build()
}

/// Calls `method` and returns the remote error it must fail with.
async fn call_err(root: &NetRef, method: &str, args: impl serde::Serialize) -> RemoteError {
    let err = root.call_method::<i64>(method, args).await.unwrap_err();
    err.as_remote().cloned().unwrap_or_else(|| panic!("{method}: a remote error, got {err}"))
}

/// The traceback names the method and the object type and ends with `shown: message`.
fn assert_traceback(e: &RemoteError, method: &str, shown: &str) {
    assert!(e.traceback.starts_with("Traceback (most recent call last):"), "{method}: {}", e.traceback);
    assert!(e.traceback.contains(&format!("'{method}'")), "{method}: {}", e.traceback);
    assert!(e.traceback.contains("'demo.Failing'"), "{method}: {}", e.traceback);
    let last = format!("\n{shown}: {}", e.message);
    assert!(e.traceback.ends_with(&last), "{method}: traceback {:?} must end with {last:?}", e.traceback);
}

#[actix_rt::test]
async fn a_plain_string_error_arrives_as_a_runtime_error_with_a_traceback() {
    let (_s, client) = connect_default(Transport::Memory, Service::shared(failing())).await;
    let root = client.root().await.unwrap();
    for (method, message) in [
        ("str_error", "not today"),
        ("string_error", "7 is too many"),
        ("boxed_error", "boxed failure"),
        ("async_str_error", "later, not today"),
    ] {
        let e = if method == "string_error" {
            call_err(&root, method, (7,)).await
        } else {
            call_err(&root, method, ()).await
        };
        assert_eq!(e.kind, kinds::RUNTIME_ERROR, "{method}: {e}");
        assert_eq!(e.message, message, "{method}");
        assert_traceback(&e, method, "RuntimeError");
    }
}

#[actix_rt::test]
async fn standard_errors_arrive_as_their_python_kinds() {
    let (_s, client) = connect_default(Transport::Memory, Service::shared(failing())).await;
    let root = client.root().await.unwrap();
    let e = call_err(&root, "missing_file", ()).await;
    assert_eq!((e.kind.as_str(), e.message.as_str()), ("builtins.FileNotFoundError", "no such file: data.bin"));
    assert_traceback(&e, "missing_file", "FileNotFoundError");
    let e = call_err(&root, "other_io", ()).await;
    assert_eq!((e.kind.as_str(), e.message.as_str()), (kinds::OS_ERROR, "disk on fire"));
    let e = call_err(&root, "parse", ("twelve",)).await;
    assert_eq!(e.kind, kinds::VALUE_ERROR, "{e}");
    assert_traceback(&e, "parse", "ValueError");
    let e = call_err(&root, "narrow", (300,)).await;
    assert_eq!(e.kind, kinds::OVERFLOW_ERROR, "{e}");
    assert_eq!(root.call_method::<u8>("narrow", (200,)).await.unwrap(), 200);
}

#[actix_rt::test]
async fn an_error_of_a_users_type_arrives_as_its_path_without_generics() {
    let (_s, client) = connect_default(Transport::Memory, Service::shared(failing())).await;
    let root = client.root().await.unwrap();
    let e = call_err(&root, "shape", ()).await;
    assert_eq!(e.kind, "remote_errors.shapes.BadShape");
    assert_eq!(e.message, "bad shape [1, 2]");
    assert_traceback(&e, "shape", "remote_errors.shapes.BadShape");
}

#[actix_rt::test]
async fn a_remote_error_keeps_its_kind_and_gains_a_traceback_unless_it_has_one() {
    let (_s, client) = connect_default(Transport::Memory, Service::shared(failing())).await;
    let root = client.root().await.unwrap();
    let e = call_err(&root, "key", ("colour",)).await;
    assert!(e.is(kinds::KEY_ERROR), "{e}");
    assert_eq!(e.message, "'colour'");
    assert_traceback(&e, "key", "KeyError");
    let e = call_err(&root, "own_traceback", ()).await;
    assert!(e.is(kinds::VALUE_ERROR), "{e}");
    assert_eq!(e.traceback, "the caller's own text");
}

async fn the_alternate_display_of_an_error_shows_the_remote_traceback(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let err = calc.call_method::<i64>("div", (1, 0)).await.unwrap_err();
    let plain = err.to_string();
    assert_eq!(plain, "remote error: builtins.ZeroDivisionError: division by zero");
    let full = format!("{err:#}");
    assert!(full.starts_with(&plain), "{full}");
    assert!(full.contains("Remote Traceback"), "{full}");
    assert!(full.contains("method 'div' of 'demo.Calculator'"), "{full}");
    assert!(full.ends_with("\nZeroDivisionError: division by zero"), "{full}");
}

over_both_transports!(the_alternate_display_of_an_error_shows_the_remote_traceback);
