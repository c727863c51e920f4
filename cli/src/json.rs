//! The one mapping between JSON and netref's [`Value`], both ways, for every value kind.
//!
//! | `Value`                | JSON                                                          |
//! |------------------------|---------------------------------------------------------------|
//! | `None`                 | `null`                                                        |
//! | `Bool`                 | `true` / `false`                                              |
//! | `Int`, `BigInt`        | a number without fraction or exponent, exact at any size      |
//! | `Float`                | a number with a fraction or exponent (`1.0`, `2.5e-3`); `{"$float": "nan" \| "inf" \| "-inf"}` |
//! | `Str`                  | a string                                                      |
//! | `List`                 | an array                                                      |
//! | `Map` (string keys)    | an object, keys in the peer's order                           |
//! | `Map` (other keys, or a key starting with `$`) | `{"$map": [[key, value], …]}`         |
//! | `Tuple`                | `{"$tuple": [ … ]}`                                           |
//! | `Bytes`                | `{"$bytes": "base64"}` (standard alphabet, padded)            |
//! | `Complex`              | `{"$complex": [re, im]}`                                      |
//! | `FrozenSet`            | `{"$frozenset": [ … ]}`                                       |
//! | `Slice`                | `{"$slice": [start, stop, step]}`                             |
//! | `Ellipsis`             | `{"$ellipsis": null}`                                         |
//! | `NotImplemented`       | `{"$notimplemented": null}`                                   |
//! | `Ref` (a netref)       | `{"$ref": {"type": …, "repr": …, "id_pack": [type, class_id, instance_id]}}` (output only) |
//!
//! An object with exactly one key starting with `$` is a tag; an unknown tag is an error, so a
//! typo never turns silently into a map. A reference cannot be made from JSON: a netref names an
//! object on the peer, and this side has none to offer.
//!
//! This module must never touch a connection: it is plain data (reprs of references are looked
//! up by the caller and handed in).

use std::collections::HashMap;

use base64::{engine::general_purpose::STANDARD, Engine};
use netref::{BigInt, IdPack, NetRef, Value};
use serde_json::{Map, Number, Value as Json};

/// A JSON value that has no `Value` form, with where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsonError(pub(crate) String);

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, JsonError> {
    Err(JsonError(msg.into()))
}

/// Parses JSON text (an argument on the command line) into a `Value`.
pub(crate) fn parse(text: &str) -> Result<Value, JsonError> {
    let json: Json = serde_json::from_str(text).map_err(|e| JsonError(format!("not JSON ({e}): {text}")))?;
    from_json(&json)
}

/// JSON → `Value`, as the table in the module doc says.
pub(crate) fn from_json(json: &Json) -> Result<Value, JsonError> {
    Ok(match json {
        Json::Null => Value::None,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => number(n)?,
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => Value::List(list(items)?),
        Json::Object(map) => match single_tag(map) {
            Some((tag, body)) => tagged(tag, body)?,
            None => Value::Map(
                map.iter()
                    .map(|(k, v)| Ok((Value::Str(k.clone()), from_json(v)?)))
                    .collect::<Result<_, JsonError>>()?,
            ),
        },
    })
}

fn list(items: &[Json]) -> Result<Vec<Value>, JsonError> {
    items.iter().map(from_json).collect()
}

/// A number as its text: integers stay exact (`Int` when they fit in i64, else `BigInt`);
/// anything with a fraction or exponent is a float.
fn number(n: &Number) -> Result<Value, JsonError> {
    let text = n.as_str();
    if text.contains(['.', 'e', 'E']) {
        return text.parse::<f64>().map(Value::Float).or_else(|_| err(format!("not a float: {text}")));
    }
    if let Ok(i) = text.parse::<i64>() {
        return Ok(Value::Int(i));
    }
    BigInt::parse(text).map(Value::BigInt).map_err(|e| JsonError(e.to_string()))
}

fn single_tag(map: &Map<String, Json>) -> Option<(&str, &Json)> {
    match map.iter().next() {
        Some((k, v)) if map.len() == 1 && k.starts_with('$') => Some((k.as_str(), v)),
        _ => None,
    }
}

fn array<'a>(tag: &str, body: &'a Json) -> Result<&'a [Json], JsonError> {
    match body {
        Json::Array(items) => Ok(items),
        other => err(format!("{tag} takes an array, not {other}")),
    }
}

fn float_of(tag: &str, json: &Json) -> Result<f64, JsonError> {
    match from_json(json)? {
        Value::Float(x) => Ok(x),
        Value::Int(i) => Ok(i as f64),
        _ => err(format!("{tag} takes numbers, not {json}")),
    }
}

fn tagged(tag: &str, body: &Json) -> Result<Value, JsonError> {
    Ok(match tag {
        "$tuple" => Value::Tuple(list(array(tag, body)?)?),
        "$frozenset" => Value::FrozenSet(list(array(tag, body)?)?),
        "$bytes" => match body {
            Json::String(b64) => {
                Value::Bytes(STANDARD.decode(b64).map_err(|e| JsonError(format!("$bytes: not base64 ({e})")))?.into())
            }
            other => return err(format!("$bytes takes a base64 string, not {other}")),
        },
        "$complex" => match array(tag, body)? {
            [re, im] => Value::Complex(float_of(tag, re)?, float_of(tag, im)?),
            _ => return err("$complex takes [re, im]"),
        },
        "$slice" => match array(tag, body)? {
            [start, stop, step] => Value::Slice(Box::new([from_json(start)?, from_json(stop)?, from_json(step)?])),
            _ => return err("$slice takes [start, stop, step]"),
        },
        "$map" => Value::Map(
            array(tag, body)?
                .iter()
                .map(|pair| match pair {
                    Json::Array(kv) if kv.len() == 2 => Ok((from_json(&kv[0])?, from_json(&kv[1])?)),
                    other => err(format!("$map takes [key, value] pairs, not {other}")),
                })
                .collect::<Result<_, JsonError>>()?,
        ),
        "$float" => match body.as_str() {
            Some("nan") => Value::Float(f64::NAN),
            Some("inf") => Value::Float(f64::INFINITY),
            Some("-inf") => Value::Float(f64::NEG_INFINITY),
            _ => return err(format!("$float takes \"nan\", \"inf\" or \"-inf\", not {body}")),
        },
        "$ellipsis" => Value::Ellipsis,
        "$notimplemented" => Value::NotImplemented,
        "$ref" => return err("$ref cannot be sent: a netref names an object on the peer, not one this side can make"),
        other => {
            return err(format!(
                "unknown tag {other:?} (tags: $tuple $bytes $complex $frozenset $slice $map $float $ellipsis \
                 $notimplemented; a map whose only key starts with '$' is written {{\"$map\": [[key, value]]}})"
            ))
        }
    })
}

/// What the output shows for each reference: its repr, fetched by the caller.
pub(crate) type Reprs = HashMap<IdPack, String>;

/// Every reference inside `value`, for the caller to fetch their reprs.
pub(crate) fn refs_in(value: &Value, out: &mut Vec<NetRef>) {
    match value {
        Value::Ref(r) => out.push(r.clone()),
        Value::Tuple(items) | Value::List(items) | Value::FrozenSet(items) => {
            items.iter().for_each(|v| refs_in(v, out))
        }
        Value::Slice(parts) => parts.iter().for_each(|v| refs_in(v, out)),
        Value::Map(pairs) => pairs.iter().for_each(|(k, v)| {
            refs_in(k, out);
            refs_in(v, out)
        }),
        _ => {}
    }
}

fn tag(name: &str, body: Json) -> Json {
    let mut map = Map::new();
    map.insert(name.to_owned(), body);
    Json::Object(map)
}

fn number_text(text: &str) -> Json {
    // The text is a canonical integer or a finite float's `Display`, both valid JSON numbers.
    Json::Number(serde_json::from_str::<Number>(text).expect("a canonical number is valid JSON"))
}

fn float(x: f64) -> Json {
    if x.is_nan() {
        tag("$float", Json::from("nan"))
    } else if x.is_infinite() {
        tag("$float", Json::from(if x > 0.0 { "inf" } else { "-inf" }))
    } else {
        // `{:?}` keeps a fraction on whole floats (`1.0`), so they read back as floats.
        number_text(&format!("{x:?}"))
    }
}

/// `Value` → JSON, as the table in the module doc says; `reprs` gives references their repr.
pub(crate) fn to_json(value: &Value, reprs: &Reprs) -> Json {
    let items = |items: &[Value]| Json::Array(items.iter().map(|v| to_json(v, reprs)).collect());
    match value {
        Value::None => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::BigInt(b) => number_text(b.as_str()),
        Value::Float(x) => float(*x),
        Value::Complex(re, im) => tag("$complex", Json::Array(vec![float(*re), float(*im)])),
        Value::Str(s) => Json::String(s.clone()),
        Value::Bytes(b) => tag("$bytes", Json::String(STANDARD.encode(b))),
        Value::Tuple(v) => tag("$tuple", items(v)),
        Value::List(v) => items(v),
        Value::FrozenSet(v) => tag("$frozenset", items(v)),
        Value::Slice(parts) => tag("$slice", items(&parts[..])),
        Value::Map(pairs) => {
            let plain = pairs.iter().all(|(k, _)| matches!(k, Value::Str(s) if !s.starts_with('$')));
            if plain {
                let mut map = Map::new();
                for (k, v) in pairs {
                    if let Value::Str(k) = k {
                        map.insert(k.clone(), to_json(v, reprs));
                    }
                }
                Json::Object(map)
            } else {
                let pairs = pairs.iter().map(|(k, v)| Json::Array(vec![to_json(k, reprs), to_json(v, reprs)]));
                tag("$map", Json::Array(pairs.collect()))
            }
        }
        Value::Ref(r) => {
            let id = r.id_pack();
            let mut body = Map::new();
            body.insert("type".into(), Json::from(id.type_name.clone()));
            if let Some(repr) = reprs.get(&id) {
                body.insert("repr".into(), Json::from(repr.clone()));
            }
            body.insert(
                "id_pack".into(),
                Json::Array(vec![Json::from(id.type_name), Json::from(id.class_id), Json::from(id.instance_id)]),
            );
            tag("$ref", Json::Object(body))
        }
        Value::Ellipsis => tag("$ellipsis", Json::Null),
        Value::NotImplemented => tag("$notimplemented", Json::Null),
        // `Value` is non-exhaustive: a kind added later shows as its name rather than failing.
        other => tag("$unknown", Json::from(other.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> Value {
        let value = parse(text).unwrap();
        let back = to_json(&value, &Reprs::new());
        assert_eq!(back.to_string(), serde_json::from_str::<Json>(text).unwrap().to_string(), "{text}");
        value
    }

    #[test]
    fn scalars_map_to_their_kinds_and_back() {
        assert_eq!(round_trip("null"), Value::None);
        assert_eq!(round_trip("true"), Value::Bool(true));
        assert_eq!(round_trip("-7"), Value::Int(-7));
        assert_eq!(round_trip("\"héllo\""), Value::Str("héllo".into()));
        assert_eq!(round_trip("1.5"), Value::Float(1.5));
        assert_eq!(round_trip("1.0"), Value::Float(1.0));
    }

    #[test]
    fn integers_beyond_i64_stay_exact() {
        let big = "123456789012345678901234567890123456789";
        assert_eq!(round_trip(big), Value::BigInt(BigInt::parse(big).unwrap()));
        assert_eq!(round_trip("-9223372036854775809"), Value::BigInt(BigInt::parse("-9223372036854775809").unwrap()));
        assert_eq!(round_trip("9223372036854775807"), Value::Int(i64::MAX));
    }

    #[test]
    fn floats_in_exponent_form_and_non_finite_floats() {
        assert_eq!(parse("2.5e-3").unwrap(), Value::Float(0.0025));
        assert_eq!(parse("1e3").unwrap(), Value::Float(1000.0));
        assert_eq!(round_trip(r#"{"$float":"nan"}"#), Value::Float(f64::NAN));
        assert_eq!(round_trip(r#"{"$float":"-inf"}"#), Value::Float(f64::NEG_INFINITY));
        assert!(parse(r#"{"$float":"huge"}"#).is_err());
    }

    #[test]
    fn lists_maps_and_nesting() {
        assert_eq!(round_trip("[1,[2,\"x\"]]"), Value::List(vec![1.into(), Value::List(vec![2.into(), "x".into()])]));
        assert_eq!(
            round_trip(r#"{"b":1,"a":[null]}"#),
            Value::Map(vec![("b".into(), 1.into()), ("a".into(), Value::List(vec![Value::None]))])
        );
    }

    #[test]
    fn maps_with_non_string_or_dollar_keys_use_the_map_tag() {
        assert_eq!(round_trip(r#"{"$map":[[1,"one"],[[2],null]]}"#).kind(), "map");
        assert_eq!(round_trip(r#"{"$map":[["$tuple",1]]}"#), Value::Map(vec![("$tuple".into(), 1.into())]));
        assert!(parse(r#"{"$map":[[1]]}"#).is_err());
    }

    #[test]
    fn tagged_kinds_round_trip() {
        assert_eq!(round_trip(r#"{"$tuple":[1,"a"]}"#), Value::Tuple(vec![1.into(), "a".into()]));
        assert_eq!(round_trip(r#"{"$bytes":"AAH/"}"#), Value::Bytes(vec![0u8, 1, 255].into()));
        assert_eq!(round_trip(r#"{"$complex":[1.0,-2.5]}"#), Value::Complex(1.0, -2.5));
        assert_eq!(round_trip(r#"{"$frozenset":[1,2]}"#), Value::FrozenSet(vec![1.into(), 2.into()]));
        assert_eq!(round_trip(r#"{"$slice":[1,null,2]}"#), Value::Slice(Box::new([1.into(), Value::None, 2.into()])));
        assert_eq!(round_trip(r#"{"$ellipsis":null}"#), Value::Ellipsis);
        assert_eq!(round_trip(r#"{"$notimplemented":null}"#), Value::NotImplemented);
    }

    #[test]
    fn complex_accepts_integer_parts() {
        assert_eq!(parse(r#"{"$complex":[1,2]}"#).unwrap(), Value::Complex(1.0, 2.0));
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        assert!(parse("{").unwrap_err().0.contains("not JSON"));
        assert!(parse(r#"{"$tupel":[]}"#).unwrap_err().0.contains("unknown tag"));
        assert!(parse(r#"{"$bytes":"***"}"#).unwrap_err().0.contains("base64"));
        assert!(parse(r#"{"$ref":{}}"#).unwrap_err().0.contains("cannot be sent"));
        assert!(parse(r#"{"$slice":[1]}"#).is_err());
        assert!(parse(r#"{"$complex":["a","b"]}"#).is_err());
    }

    #[test]
    fn a_map_with_two_keys_starting_with_dollar_is_a_plain_map() {
        let v = parse(r#"{"$a":1,"$b":2}"#).unwrap();
        assert_eq!(v.kind(), "map");
        // Output escapes it with the map tag so it reads back the same.
        assert_eq!(from_json(&to_json(&v, &Reprs::new())).unwrap(), v);
    }

    #[test]
    fn a_reference_shows_its_type_repr_and_id_pack() {
        let object = netref::Object::builder("demo.Thing").build();
        let id = object.id_pack();
        let value = Value::List(vec![Value::Ref(NetRef::from(object))]);
        let mut found = Vec::new();
        refs_in(&value, &mut found);
        assert_eq!(found.len(), 1);
        let reprs = Reprs::from([(id.clone(), "<demo.Thing>".to_owned())]);
        let json = to_json(&value, &reprs);
        assert_eq!(json[0]["$ref"]["repr"], "<demo.Thing>");
        assert_eq!(json[0]["$ref"]["type"], "demo.Thing");
        assert_eq!(json[0]["$ref"]["id_pack"][2], Json::from(id.instance_id));
    }
}
