//! Guards every inspecting command against the demo calculator, in both output modes: text for
//! people compared with golden output (ports, times and ids masked), and one JSON document per
//! command with `--json`.

mod common;

use common::{mask, ok, run, Demo};
use serde_json::Value as Json;

fn json(args: &[&str]) -> Json {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = ok(&all);
    assert_eq!(out.lines().count(), 1, "one document: {out}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn ping_prints_the_round_trip_time() {
    let demo = Demo::tcp();
    assert_eq!(mask(&ok(&["ping", &demo.addr]), &demo.addr), "pong from ADDR: time=<ms> ms\n");
    assert_eq!(
        mask(&ok(&["--json", "ping", &demo.addr]), &demo.addr),
        "{\"ok\":true,\"addr\":\"ADDR\",\"rtt_ms\":<ms>}\n"
    );
}

#[test]
fn ls_shows_the_root_type_repr_and_members() {
    let demo = Demo::tcp();
    let golden = "\
type  demo.Calculator
repr  <demo.Calculator>

add       method
apply     method
describe  method
div       method
echo      method
memory    attribute
mul       method
stats     attribute
ticks     attribute
version   attribute

exports: not listable: the protocol has no request that lists named exports; reach a known one with --export NAME
";
    assert_eq!(ok(&["ls", &demo.addr]), golden);
    let doc = json(&["ls", &demo.addr]);
    assert_eq!(doc["type"], "demo.Calculator");
    assert_eq!(doc["members"][0], serde_json::json!({"name": "add", "kind": "method"}));
    assert_eq!(doc["exports"], Json::Null);
}

#[test]
fn dir_lists_the_members_of_a_nested_object() {
    let demo = Demo::tcp();
    assert_eq!(ok(&["dir", &demo.addr, "root.stats"]), "calls  attribute\n");
    assert_eq!(ok(&["dir", &demo.addr, "stats"]), "calls  attribute\n");
    let doc = json(&["dir", &demo.addr]);
    assert_eq!(doc["path"], "root");
    assert_eq!(doc["members"].as_array().unwrap().len(), 10);
}

#[test]
fn inspect_shows_methods_and_attribute_values() {
    let demo = Demo::tcp();
    let out = ok(&["inspect", &demo.addr]);
    let masked = mask(&out, &demo.addr);
    let ticks_line = masked.lines().find(|l| l.starts_with("ticks")).unwrap().to_owned();
    let golden = format!(
        "\
type demo.Calculator
repr <demo.Calculator>

add       method     add(…)
apply     method     apply(…)
describe  method     describe(…)
div       method     div(…)
echo      method     echo(…)
memory    attribute  0
mul       method     mul(…)
stats     attribute  {{\"$ref\":{{\"type\":\"demo.Stats\",\"repr\":\"<demo.Stats>\",\"id_pack\":[\"demo.Stats\",<class>,<instance>]}}}}
{ticks_line}
version   attribute  \"{}\"
",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(masked, golden);
    assert!(ticks_line.starts_with("ticks     attribute  "), "{ticks_line}");
    let doc = json(&["inspect", &demo.addr, "stats"]);
    assert_eq!(doc["type"], "demo.Stats");
    assert_eq!(doc["members"][0]["name"], "calls");
}

#[test]
fn get_reads_attributes_along_a_path() {
    let demo = Demo::tcp();
    assert_eq!(ok(&["get", &demo.addr, "memory"]), "0\n");
    assert_eq!(ok(&["get", &demo.addr, "stats.calls"]), "0\n");
    let doc = json(&["get", &demo.addr, "root.version"]);
    assert_eq!(doc, serde_json::json!({"ok": true, "path": "root.version", "value": env!("CARGO_PKG_VERSION")}));
    let out = mask(&ok(&["get", &demo.addr, "stats"]), &demo.addr);
    assert_eq!(out, "{\"$ref\":{\"type\":\"demo.Stats\",\"repr\":\"<demo.Stats>\",\"id_pack\":[\"demo.Stats\",<class>,<instance>]}}\n");
}

#[test]
fn export_starts_paths_at_a_named_export() {
    let demo = Demo::tcp();
    assert_eq!(ok(&["--export", "stats", "dir", &demo.addr]), "calls  attribute\n");
    assert_eq!(ok(&["--export", "stats", "get", &demo.addr, "calls"]), "0\n");
    let out = run(&["--export", "nothing", "get", &demo.addr, "calls"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("looking up export \"nothing\"") && out.stderr.contains("LookupError"), "{out:?}");
}

#[test]
fn call_passes_json_arguments_and_prints_the_result() {
    let demo = Demo::tcp();
    assert_eq!(ok(&["call", &demo.addr, "add", "1", "2"]), "3\n");
    assert_eq!(ok(&["call", &demo.addr, "mul", "-4", "5"]), "-20\n");
    assert_eq!(ok(&["call", &demo.addr, "div", "1", "4"]), "0.25\n");
    assert_eq!(ok(&["get", &demo.addr, "stats.calls"]), "3\n");
    assert_eq!(
        ok(&["call", &demo.addr, "describe", "1", "--kw", "k=[1, 2]", "--kw", "name=\"x\""]),
        "{\"args\":[1],\"kwargs\":{\"k\":[1,2],\"name\":\"x\"}}\n"
    );
    let doc = json(&["call", &demo.addr, "add", "40", "2"]);
    assert_eq!(doc, serde_json::json!({"ok": true, "path": "add", "result": 42}));
}

#[test]
fn watch_prints_one_line_per_change() {
    let demo = Demo::tcp();
    // `ticks` counts tenths of a second, so every read 100 ms apart or more is a change.
    let out = ok(&["watch", &demo.addr, "ticks", "--every", "120ms", "--count", "3"]);
    let values: Vec<u64> = out.lines().map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap()).collect();
    assert_eq!(values.len(), 3, "{out}");
    assert!(values.windows(2).all(|w| w[0] < w[1]), "{out}");
    assert!(out.lines().all(|l| l.starts_with('+') && l.split_whitespace().next().unwrap().ends_with('s')), "{out}");
    // An unchanging value prints once, then nothing until it changes: --count 1 ends at once.
    let out = ok(&["--json", "watch", &demo.addr, "memory", "--every", "50ms", "--count", "1"]);
    let doc: Json = serde_json::from_str(out.trim()).unwrap();
    assert_eq!((doc["path"].as_str(), doc["value"].as_i64()), (Some("memory"), Some(0)));
}

#[test]
fn every_help_page_is_complete() {
    let help = ok(&["--help"]);
    for needle in
        ["Exit codes:", "ping", "ls", "dir", "inspect", "get", "call", "watch", "serve-demo", "--tls", "--rpyc"]
    {
        assert!(help.contains(needle), "{needle} missing from --help:\n{help}");
    }
    assert!(ok(&["call", "--help"]).contains("$bytes"));
    for command in ["ping", "ls", "dir", "inspect", "get", "watch", "serve-demo"] {
        let page = ok(&[command, "--help"]);
        assert!(page.contains("Usage: netref"), "{command}: {page}");
    }
    assert_eq!(run(&["frobnicate"]).code, 2);
}
