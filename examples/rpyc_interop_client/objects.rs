//! Objects: Token's protocol (repr, str, hash, comparisons, attributes), the class `Token` and
//! instance checks, PICKLE refused, and export lifetimes (`tracked`, `released`).

use std::time::{Duration, Instant};

use netref::{kinds, prelude::*};

use crate::{Checks, PROMPTLY};

pub(crate) async fn run(root: &NetRef, peer: &Peer, c: &mut Checks) -> Result<(), netref::Error> {
    token(root, c).await?;
    token_class(root, peer, c).await?;
    tracked(root, peer, c).await
}

async fn token(root: &NetRef, c: &mut Checks) -> Result<(), netref::Error> {
    let seven: NetRef = root.call_method("make_token", (7,)).await?;
    c.check_seen("make_token(7) is an interop.Token", seven.type_name() == "interop.Token", seven.id_pack());
    let repr = seven.repr().await?;
    let text = seven.str().await?;
    let hash = seven.remote_hash().await?;
    c.check_seen(
        "Token(7): repr \"Token(7)\", str \"token #7\", hash 7",
        repr == "Token(7)" && text == "token #7" && hash == 7,
        (&repr, &text, hash),
    );

    // The six comparisons, against an int and against another Token (by reference).
    let eight: NetRef = root.call_method("make_token", (8,)).await?;
    let mut against_int = Vec::new();
    let mut against_token = Vec::new();
    for op in ["__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"] {
        against_int.push(seven.remote_cmp(op, 7).await?);
        against_token.push(seven.remote_cmp(op, eight.clone()).await?);
    }
    // 7 vs 7: == <= >=; 7 vs Token(8): != < <=.
    c.check_seen(
        "Token(7) compared with 7: eq, not ne, not lt, le, not gt, ge",
        against_int == [true, false, false, true, false, true],
        &against_int,
    );
    c.check_seen(
        "Token(7) compared with Token(8): not eq, ne, lt, le, not gt, not ge",
        against_token == [false, true, true, true, false, false],
        &against_token,
    );
    drop(eight);

    let value: i64 = seven.getattr("value").await?;
    c.check_seen("Token(7).value is 7", value == 7, value);
    c.check_raises(
        "writing Token.value raises AttributeError",
        seven.setattr("value", 1).await,
        kinds::ATTRIBUTE_ERROR,
    );
    c.check_raises("deleting Token.value raises AttributeError", seven.delattr("value").await, kinds::ATTRIBUTE_ERROR);
    c.check_raises("reading Token._n raises AttributeError", seven.getattr::<i64>("_n").await, kinds::ATTRIBUTE_ERROR);

    let is_token: bool = root.call_method("is_token", (seven.clone(),)).await?;
    let int_is_token: bool = root.call_method("is_token", (7,)).await?;
    c.check_seen("is_token(Token(7)) is true, is_token(7) false", is_token && !int_is_token, (is_token, int_is_token));

    // PICKLE: a stock server refuses it (netref never unpickles what it would get).
    let pickled = seven.obtain::<Value>().await;
    let refused = matches!(&pickled, Err(e) if e.as_remote().is_some_and(|r| r.is(kinds::VALUE_ERROR) && r.message.contains("pickling is disabled")));
    c.check_seen("PICKLE is refused with ValueError(\"pickling is disabled\")", refused, pickled);
    Ok(())
}

async fn token_class(root: &NetRef, peer: &Peer, c: &mut Checks) -> Result<(), netref::Error> {
    // A class is (name, class id, 0), and its instances carry its class id.
    let class: NetRef = root.getattr("Token").await?;
    let nine: NetRef = class.call((9,)).await?;
    let (class_id, nine_id) = (class.id_pack(), nine.id_pack());
    let shape =
        class_id.type_name == "interop.Token" && class_id.instance_id == 0 && nine_id.class_id == class_id.class_id;
    c.check_seen("Token is a class (instance id 0) sharing its instances' class id", shape, (&class_id, &nine_id));
    let repr = nine.repr().await?;
    c.check_seen("Token(9) called on the class: repr \"Token(9)\"", repr == "Token(9)", &repr);
    // isinstance: decided here for the same class id, as a stock client does.
    let is_instance = nine.is_instance(&class).await?;
    c.check("isinstance(Token(9), Token) is true", is_instance);
    drop(nine);
    // Another class id: an INSTANCECHECK request. The stock server answers false, then drops a
    // throw-away proxy it made for the list, which sends this side a DEL for an object it never
    // exported: this side answers it with an exception and carries on.
    let list: NetRef = root.call_method("get_list", ()).await?;
    let is_instance = list.is_instance(&class).await?;
    c.check("isinstance(get_list(), Token) is false (an INSTANCECHECK request)", !is_instance);
    drop((list, class));
    let pong = peer.ping("after the instance check").await?;
    let sum: i64 = root.call_method("add", (20, 22)).await?;
    c.check_seen(
        "after the server's DEL of an object never exported, the connection is usable",
        pong == Value::Str("after the instance check".into()) && sum == 42,
        (&pong, sum),
    );

    let names = root.dir().await?;
    let listed =
        names.iter().any(|n| n == "add" || n == "exposed_add") && names.iter().any(|n| n.ends_with("make_token"));
    c.check_seen("dir(root) lists the service's members", listed, names.len());
    Ok(())
}

async fn tracked(root: &NetRef, peer: &Peer, c: &mut Checks) -> Result<(), netref::Error> {
    // The same object received twice is one netref holding two receipts: dropping it sends one
    // DEL with count 2, after which the server has released it.
    let first: NetRef = root.call_method("tracked", ("s1",)).await?;
    let again: NetRef = root.call_method("tracked_again", ("s1",)).await?;
    let name: String = again.getattr("name").await?;
    c.check_seen(
        "tracked('s1') and tracked_again('s1') are the same netref, named s1",
        first == again && name == "s1",
        (&first, &again, &name),
    );
    drop((first, again));
    peer.ping(()).await?;
    let deadline = Instant::now() + PROMPTLY;
    let released = loop {
        let released: Vec<String> = root.call_method("released", ()).await?;
        if released.iter().any(|n| n == "s1") || Instant::now() >= deadline {
            break released;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    c.check_seen("released() lists s1 once its netref is dropped", released == ["s1"], &released);
    c.check_raises(
        "tracked_again('s1') after the release raises KeyError",
        root.call_method::<NetRef>("tracked_again", ("s1",)).await,
        kinds::KEY_ERROR,
    );
    Ok(())
}
