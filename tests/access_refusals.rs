//! Guards what a refusal by the serving side's access policy says: which operation was refused
//! on which name and type, and the `AccessPolicy` setting that would allow it (setattr, delattr,
//! obtain, getattr, private, unexposed and special names); and that the chained setters open
//! what they name.

mod common;

use std::sync::Arc;

use common::{calculator, connect, Transport};
use netref::{kinds, prelude::*, AccessPolicy};

/// A client connected to a calculator served under `policy`, and its root.
async fn served_under(policy: AccessPolicy) -> (Peer, Peer, NetRef) {
    let (server, client) = connect(
        Transport::Memory,
        Service::shared(calculator(Arc::default())),
        Config::default().policy(policy),
        Service::void(),
        Config::default(),
    )
    .await;
    let root = client.root().await.unwrap();
    (server, client, root)
}

/// The refusal's message, checked to be an AttributeError.
fn refusal(err: netref::Error) -> String {
    let e = err.as_remote().unwrap_or_else(|| panic!("a remote error, got {err}"));
    assert!(e.is(kinds::ATTRIBUTE_ERROR), "{e}");
    e.message.clone()
}

#[actix_rt::test]
async fn a_refused_setattr_says_setattr_is_disabled_on_an_attribute_that_reads_fine() {
    let (_s, _c, calc) = served_under(AccessPolicy::default()).await;
    assert_eq!(calc.getattr::<String>("memo").await.unwrap(), "hello");
    assert_eq!(
        refusal(calc.setattr("memo", "x").await.unwrap_err()),
        "cannot set 'memo' on 'demo.Calculator': setattr is disabled by the serving side's access policy \
         (AccessPolicy::allow_setattr)"
    );
}

#[actix_rt::test]
async fn a_refused_delattr_names_allow_delattr() {
    let (_s, _c, calc) = served_under(AccessPolicy::default().allow_setattr(true)).await;
    calc.setattr("memo", "changed").await.unwrap();
    let message = refusal(calc.delattr("memo").await.unwrap_err());
    assert!(message.starts_with("cannot delete 'memo' on 'demo.Calculator': delattr is disabled"), "{message}");
    assert!(message.ends_with("(AccessPolicy::allow_delattr)"), "{message}");
    assert_eq!(calc.getattr::<String>("memo").await.unwrap(), "changed", "the refused delete left it");
}

#[actix_rt::test]
async fn a_refused_obtain_names_allow_obtain() {
    let (_s, _c, calc) = served_under(AccessPolicy::default()).await;
    let err = calc.obtain::<Vec<i64>>().await.unwrap_err();
    let e = err.as_remote().expect("a remote error");
    assert!(e.is(kinds::ACCESS_DENIED), "{e}");
    assert!(e.message.contains("'demo.Calculator'") && e.message.contains("AccessPolicy::allow_obtain"), "{e}");
}

#[actix_rt::test]
async fn refused_names_say_which_setting_would_reach_them() {
    let (_s, _c, calc) = served_under(AccessPolicy::default()).await;
    let message = refusal(calc.call_method::<String>("_secret", ()).await.unwrap_err());
    assert!(message.starts_with("cannot access '_secret' on 'demo.Calculator': '_secret' is private"), "{message}");
    assert!(message.contains("AccessPolicy::allow_all_attrs"), "{message}");
    let message = refusal(calc.getattr::<Value>("helper").await.unwrap_err());
    assert!(message.starts_with("cannot access 'helper' on 'demo.Calculator': 'helper' is not exposed"), "{message}");
    assert!(message.contains("AccessPolicy::allow_public_attrs"), "{message}");
    let message = refusal(calc.getattr::<Value>("__dict__").await.unwrap_err());
    assert!(message.contains("'__dict__'") && message.contains("AccessPolicy::safe_attrs"), "{message}");
    // CMP's operator is never a member: a plain name is refused as not special.
    let message = refusal(calc.remote_cmp("add", 1).await.unwrap_err());
    assert!(message.contains("'add' is not a special name"), "{message}");
}

#[actix_rt::test]
async fn refusals_under_a_closed_policy_name_the_switch_that_is_off() {
    let (_s, _c, calc) = served_under(AccessPolicy::default().allow_safe_attrs(false)).await;
    let message = refusal(calc.repr().await.unwrap_err());
    assert!(message.contains("'__repr__'") && message.ends_with("(AccessPolicy::allow_safe_attrs)"), "{message}");
    let (_s, _c, calc) = served_under(AccessPolicy::default().allow_exposed_attrs(false)).await;
    let message = refusal(calc.call_method::<i64>("add", (1, 2)).await.unwrap_err());
    assert!(message.contains("'add'") && message.ends_with("(AccessPolicy::allow_exposed_attrs)"), "{message}");
    let (_s, _c, calc) = served_under(AccessPolicy::default().allow_getattr(false)).await;
    let message = refusal(calc.call_method::<i64>("add", (1, 2)).await.unwrap_err());
    assert!(message.ends_with("(AccessPolicy::allow_getattr)"), "{message}");
    let message = refusal(calc.dir().await.unwrap_err());
    assert!(message.contains("'demo.Calculator'") && message.ends_with("(AccessPolicy::allow_getattr)"), "{message}");
}

#[actix_rt::test]
async fn the_chained_setters_open_what_they_name() {
    let policy =
        AccessPolicy::default().allow_setattr(true).allow_delattr(true).allow_public_attrs(true).allow_obtain(true);
    assert_eq!(
        policy,
        AccessPolicy {
            allow_setattr: true,
            allow_delattr: true,
            allow_public_attrs: true,
            allow_obtain: true,
            ..AccessPolicy::default()
        }
    );
    let (_s, _c, calc) = served_under(policy).await;
    calc.setattr("memo", "set").await.unwrap();
    assert_eq!(calc.getattr::<String>("memo").await.unwrap(), "set");
    calc.delattr("memo").await.unwrap();
    assert_eq!(calc.call_method::<String>("helper", ()).await.unwrap(), "internal");
    assert_eq!(calc.obtain::<Vec<i64>>().await.unwrap(), vec![1, 2, 3]);
    let all = AccessPolicy::default()
        .allow_public_attrs(true)
        .allow_all_attrs(true)
        .allow_setattr(true)
        .allow_delattr(true)
        .allow_obtain(true);
    assert_eq!(all, AccessPolicy::allow_all());
    assert_eq!(AccessPolicy::default().exposed_prefix("api_").exposed_prefix, "api_");
}
