//! Guards the access policy and call checking: exposed names are reachable by both spellings;
//! unexposed, private and unknown names are refused with an AttributeError naming them; the same
//! check guards CMP, HASH, REPR and CALLATTR; setattr/delattr are off by default; wrong argument
//! counts and types give a TypeError naming the expected signature.

mod common;

use std::sync::Arc;

use common::{calculator, connect, connect_default, Transport};
use netref::{kinds, prelude::*, AccessPolicy};

fn attribute_error(err: &netref::Error, name: &str) -> bool {
    err.as_remote().is_some_and(|e| e.is(kinds::ATTRIBUTE_ERROR) && e.message.contains(name))
}

async fn unknown_and_forbidden_attributes(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let err = calc.getattr::<Value>("nope").await.unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.is(kinds::ATTRIBUTE_ERROR)), "{err}");
    assert!(attribute_error(&err, "nope"), "{err}");
    for name in ["helper", "_secret"] {
        let err = calc.call_method::<String>(name, ()).await.unwrap_err();
        assert!(attribute_error(&err, name), "{name}: {err}");
        let err = calc.getattr::<Value>(name).await.unwrap_err();
        assert!(attribute_error(&err, name), "{name}: {err}");
    }
    // CMP with a non-dunder operator must not become an attribute fetch (CVE-2019-16328).
    let err = calc.remote_cmp("_secret", 1).await.unwrap_err();
    assert!(attribute_error(&err, "_secret"), "{err}");
    let err = calc.remote_cmp("add", 1).await.unwrap_err();
    assert!(attribute_error(&err, "add"), "{err}");
    // Writes are off by default.
    let err = calc.setattr("memo", "x").await.unwrap_err();
    assert!(attribute_error(&err, "memo"), "{err}");
    let err = calc.delattr("memo").await.unwrap_err();
    assert!(attribute_error(&err, "memo"), "{err}");
}

async fn every_special_handler_is_checked(t: Transport) {
    // A policy that refuses safe attrs: REPR, STR, HASH, CMP and CALL must all be refused.
    let policy = AccessPolicy { allow_safe_attrs: false, ..AccessPolicy::default() };
    let (_s, client) = connect(
        t,
        Service::shared(calculator(Arc::default())),
        Config::default().policy(policy),
        Service::void(),
        Config::default(),
    )
    .await;
    let calc = client.root().await.unwrap();
    assert!(attribute_error(&calc.repr().await.unwrap_err(), "__repr__"));
    assert!(attribute_error(&calc.str().await.unwrap_err(), "__str__"));
    assert!(attribute_error(&calc.remote_hash().await.unwrap_err(), "__hash__"));
    assert!(attribute_error(&calc.remote_cmp("__eq__", 1).await.unwrap_err(), "__eq__"));
    // Exposed methods still work.
    assert_eq!(calc.call_method::<i64>("add", (1, 2)).await.unwrap(), 3);
    // With getattr switched off, DIR and INSPECT refuse as well.
    let closed = AccessPolicy { allow_getattr: false, ..AccessPolicy::default() };
    let (_s, client) = connect(
        t,
        Service::shared(calculator(Arc::default())),
        Config::default().policy(closed),
        Service::void(),
        Config::default(),
    )
    .await;
    let calc = client.root().await.unwrap();
    assert!(calc.dir().await.unwrap_err().as_remote().is_some_and(|e| e.is(kinds::ATTRIBUTE_ERROR)));
    assert!(calc.inspect().await.unwrap_err().as_remote().is_some_and(|e| e.is(kinds::ATTRIBUTE_ERROR)));
    assert!(attribute_error(&calc.call_method::<i64>("add", (1, 2)).await.unwrap_err(), "add"));
}

async fn public_and_all_attrs_open_more(t: Transport) {
    let public = AccessPolicy { allow_public_attrs: true, ..AccessPolicy::default() };
    let (_s, client) = connect(
        t,
        Service::shared(calculator(Arc::default())),
        Config::default().policy(public),
        Service::void(),
        Config::default(),
    )
    .await;
    let calc = client.root().await.unwrap();
    assert_eq!(calc.call_method::<String>("helper", ()).await.unwrap(), "internal");
    assert!(attribute_error(&calc.call_method::<String>("_secret", ()).await.unwrap_err(), "_secret"));
    let (_s, client) = connect(
        t,
        Service::shared(calculator(Arc::default())),
        Config::default().policy(AccessPolicy::allow_all()),
        Service::void(),
        Config::default(),
    )
    .await;
    let calc = client.root().await.unwrap();
    assert_eq!(calc.call_method::<String>("_secret", ()).await.unwrap(), "private");
}

async fn wrong_arguments_name_the_signature(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let err = calc.call_method::<i64>("add", (1, 2, 3)).await.unwrap_err();
    let e = err.as_remote().expect("remote error");
    assert!(e.is(kinds::TYPE_ERROR), "{e}");
    assert!(e.message.contains("add(i64, i64)") && e.message.contains("3 were given"), "{e}");
    let err = calc.call_method::<i64>("add", ("one", 2)).await.unwrap_err();
    let e = err.as_remote().expect("remote error");
    assert!(e.is(kinds::TYPE_ERROR) && e.message.contains("add(i64, i64)") && e.message.contains("argument 1"), "{e}");
    let err = calc
        .call_method_kw::<i64>("add", (1, 2), [("c", 3)].into_iter().collect::<std::collections::BTreeMap<_, _>>())
        .await
        .unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.is(kinds::TYPE_ERROR) && e.message.contains("c")), "{err}");
    // Calling a non-callable attribute.
    let err = calc.call_method::<i64>("answer", ()).await.unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.is(kinds::TYPE_ERROR) && e.message.contains("not callable")), "{err}");
    // A typed local conversion error of the reply is a Convert error, not a remote one.
    let err = calc.call_method::<String>("add", (1, 2)).await.unwrap_err();
    assert!(matches!(err, netref::Error::Convert(_)), "{err}");
}

over_both_transports!(
    unknown_and_forbidden_attributes,
    every_special_handler_is_checked,
    public_and_all_attrs_open_more,
    wrong_arguments_name_the_signature,
);
