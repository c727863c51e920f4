//! Guards the JSON ↔ Value mapping end to end: arguments of every kind go through the demo's
//! `echo` method and come back as the same JSON text.

mod common;

use common::{ok, Demo};

#[test]
fn values_of_every_kind_round_trip_through_echo() {
    let demo = Demo::tcp();
    let cases = [
        "null",
        "true",
        "-17",
        "9223372036854775807",
        "123456789012345678901234567890",
        "-98765432109876543210987654321",
        "2.5",
        "1.0",
        "-1e-7",
        "{\"$float\":\"nan\"}",
        "{\"$float\":\"-inf\"}",
        "\"naïve ✓\"",
        "{\"$bytes\":\"AAECA/8=\"}",
        "[1,\"two\",[3.0,null]]",
        "{\"k\":[1,2],\"nested\":{\"deep\":{\"$tuple\":[1,{\"$bytes\":\"\"}]}}}",
        "{\"$tuple\":[]}",
        "{\"$complex\":[1.5,-2.0]}",
        "{\"$frozenset\":[1,2,3]}",
        "{\"$slice\":[1,null,2]}",
        "{\"$map\":[[1,\"one\"],[{\"$tuple\":[2,3]},null]]}",
        "{\"$map\":[[\"$tuple\",1]]}",
        "{\"$ellipsis\":null}",
        "{\"$notimplemented\":null}",
    ];
    for case in cases {
        let expected: serde_json::Value = serde_json::from_str(case).unwrap();
        // `--` ends the options, so `-1e-7` is an argument, not a flag.
        let echoed = ok(&["call", &demo.addr, "echo", "--", case]);
        assert_eq!(echoed.trim(), expected.to_string(), "echo {case}");
    }
}

#[test]
fn big_integers_keep_every_digit() {
    let demo = Demo::tcp();
    let big = "340282366920938463463374607431768211457";
    let doc = ok(&["--json", "call", &demo.addr, "echo", big]);
    assert_eq!(doc.trim(), format!("{{\"ok\":true,\"path\":\"echo\",\"result\":{big}}}"));
}
