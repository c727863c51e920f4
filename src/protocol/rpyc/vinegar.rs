//! Vinegar, RPyC's exceptions on the wire: `((module, name), args, attrs, traceback_text)`, or
//! the int `1` for StopIteration, read into and written from [`RemoteError`], with Python's
//! `str` and `repr` of the arguments as the message. Pure conversions, like
//! [`values`](super::values); it never touches a connection.

use crate::{
    error::{kinds, traceback_text, ProtocolError, RemoteError},
    protocol::EXC_STOP_ITERATION,
    value::{Data, Value},
};

use super::{
    brine::Brine,
    values::{brine_to_value, describe_items, value_to_brine},
};

/// An exception's `args` (vinegar, not boxed) as a [`RemoteError`].
///
/// * the int `1` (`EXC_STOP_ITERATION`) → [`RemoteError::stop_iteration`];
/// * `((module, name), args, attrs, traceback)` → `kind` `"module.name"`, `args` the exception's
///   args as plain data, `message` what Python's `str(exc)` shows (`""` for no args, the str of
///   a single arg, the repr of the args tuple otherwise: `ValueError("boom", 7)` →
///   `('boom', 7)`), `traceback` the text as sent (`"<traceback denied>"` included). `attrs`
///   must be a tuple and is not kept (stock fills it with `dir()` noise and `_remote_version`);
/// * a bare `str` (stock's legacy string exceptions) → `builtins.Exception` carrying the text.
///
/// Anything else is [`ProtocolError::Malformed`] (another int: [`ProtocolError::UnknownExceptionCode`]).
pub fn decode_exception(args: Brine) -> Result<RemoteError, ProtocolError> {
    let malformed = |found: &str| {
        ProtocolError::Malformed(format!(
            "rpyc exception must be ((module, name), args, attrs, traceback) or 1, found {found}"
        ))
    };
    let items = match args {
        Brine::Int(n) if n == i64::from(EXC_STOP_ITERATION) => return Ok(RemoteError::stop_iteration()),
        Brine::Int(n) => {
            return Err(u32::try_from(n)
                .map(ProtocolError::UnknownExceptionCode)
                .unwrap_or_else(|_| malformed(&format!("the int {n}"))))
        }
        Brine::Str(text) => return Ok(RemoteError::new("builtins.Exception", text)),
        Brine::Tuple(items) => items,
        other => return Err(malformed(other.type_name())),
    };
    let shape = describe_items(&items);
    let [kind, exc_args, attrs, traceback] = <[Brine; 4]>::try_from(items).map_err(|_| malformed(&shape))?;
    let kind = match kind.as_tuple() {
        Some([Brine::Str(module), Brine::Str(name)]) => format!("{module}.{name}"),
        _ => return Err(malformed(&format!("{shape} whose first item is not (str module, str name)"))),
    };
    let Brine::Tuple(exc_args) = exc_args else {
        return Err(malformed(&format!("{shape} whose args are not a tuple")));
    };
    if !matches!(attrs, Brine::Tuple(_)) {
        return Err(malformed(&format!("{shape} whose attrs are not a tuple")));
    }
    let Brine::Str(traceback) = traceback else {
        return Err(malformed(&format!("{shape} whose traceback is not a str")));
    };
    let args: Vec<Data> = exc_args.into_iter().map(brine_to_value).collect();
    let message = python_str_of_exception(&kind, &args);
    Ok(RemoteError { kind, message, args, traceback })
}

/// A [`RemoteError`] as vinegar a stock client accepts.
///
/// * [`RemoteError::is_stop_iteration`] → the int `1`;
/// * otherwise `((module, name), args, (), traceback)`: `kind` split at its last dot (a kind
///   without a dot is taken as a builtin, module `"builtins"`); `args` the error's `args`, or
///   `(message,)` when it has none (`()` for an empty message), each arg brine cannot dump sent
///   as its Python `repr`, as stock does; `attrs` empty (so no `_remote_version` is claimed and
///   no version warning is raised); `traceback` the error's text, generated when empty, and
///   ending with Python's last line (`ValueError: ('boom', 7)`: the message of an error without
///   args, else what Python's `str(exc)` shows for the args), appended when missing, since stock
///   clients look for it.
pub fn encode_exception(error: &RemoteError) -> Brine {
    if error.is_stop_iteration() {
        return Brine::Int(i64::from(EXC_STOP_ITERATION));
    }
    let (module, name) = match error.kind.rsplit_once('.') {
        Some((module, name)) => (module, name),
        None => ("builtins", error.kind.as_str()),
    };
    let message_arg;
    let args: &[Data] = if !error.args.is_empty() {
        &error.args
    } else if error.message.is_empty() {
        &[]
    } else {
        message_arg = [Data::Str(error.message.clone())];
        &message_arg
    };
    let kind = format!("{module}.{name}");
    // The message is already what `str(exc)` shows; explicit args are shown as Python would.
    let shown = if error.args.is_empty() { error.message.clone() } else { python_str_of_exception(&kind, args) };
    let last_line = traceback_text("", &kind, &shown);
    let last_line = last_line.rsplit('\n').next().unwrap_or_default();
    let traceback = if error.traceback.is_empty() {
        traceback_text("raised by a netref peer", &kind, &shown)
    } else if error.traceback.trim_end().ends_with(last_line) {
        error.traceback.clone()
    } else {
        format!("{}\n{last_line}", error.traceback.trim_end())
    };
    let args = args.iter().map(|a| value_to_brine(a).unwrap_or_else(|| Brine::Str(python_repr(a)))).collect();
    Brine::tuple([
        Brine::tuple([Brine::str(module), Brine::str(name)]),
        Brine::Tuple(args),
        Brine::Tuple(Vec::new()),
        Brine::Str(traceback),
    ])
}

/// Python's `str(exc)` for an exception of `kind` with these args: [`python_str_of_args`],
/// except that a `KeyError` with one argument shows its `repr`, as CPython's `KeyError.__str__`
/// does (`str(KeyError("zz"))` is `'zz'`).
pub fn python_str_of_exception<R>(kind: &str, args: &[Value<R>]) -> String {
    match args {
        [one] if kind == kinds::KEY_ERROR => python_repr(one),
        _ => python_str_of_args(args),
    }
}

/// Python's `str(exc)` for an exception with these args: `""`, the `str` of the single arg, or
/// the `repr` of the args tuple.
pub fn python_str_of_args<R>(args: &[Value<R>]) -> String {
    match args {
        [] => String::new(),
        [Value::Str(s)] => s.clone(),
        [one] => python_repr(one),
        many => repr_seq("(", many, ")"),
    }
}

/// Python's `repr` of a value, as CPython writes it for these types (strings quoted and escaped
/// like CPython, floats in the shortest round-trip form, `frozenset({…})`, `slice(…)`); a list is
/// `[…]`, a map `{k: v}`, a reference `<netref>`. Non-printable characters other than control
/// characters are shown as they are, where CPython would escape some of them.
pub fn python_repr<R>(value: &Value<R>) -> String {
    match value {
        Value::None => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Int(i) => i.to_string(),
        Value::BigInt(b) => b.to_string(),
        Value::Float(x) => float_repr(*x),
        Value::Complex(re, im) => complex_repr(*re, *im),
        Value::Str(s) => str_repr(s),
        Value::Bytes(b) => bytes_repr(b),
        Value::Tuple(items) if items.len() == 1 => format!("({},)", python_repr(&items[0])),
        Value::Tuple(items) => repr_seq("(", items, ")"),
        Value::List(items) => repr_seq("[", items, "]"),
        Value::Map(pairs) => {
            let parts: Vec<String> =
                pairs.iter().map(|(k, v)| format!("{}: {}", python_repr(k), python_repr(v))).collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Ref(_) => "<netref>".into(),
        Value::FrozenSet(items) if items.is_empty() => "frozenset()".into(),
        Value::FrozenSet(items) => format!("frozenset({})", repr_seq("{", items, "}")),
        Value::Slice(parts) => repr_seq("slice(", &parts[..], ")"),
        Value::Ellipsis => "Ellipsis".into(),
        Value::NotImplemented => "NotImplemented".into(),
    }
}

fn repr_seq<R>(open: &str, items: &[Value<R>], close: &str) -> String {
    let parts: Vec<String> = items.iter().map(python_repr).collect();
    format!("{open}{}{close}", parts.join(", "))
}

/// CPython's `float.__repr__`: shortest round-trip digits, positional for exponents `-4..16`,
/// scientific (`1e+16`, `1.5e-05`) otherwise.
fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let text = format!("{x}");
        if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    }
}

/// CPython's `complex.__repr__`: `(2+3j)`, `3j` when the real part is `+0.0`, parts without a
/// trailing `.0`.
fn complex_repr(re: f64, im: f64) -> String {
    let part = |x: f64| {
        let text = float_repr(x);
        text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
    };
    if re == 0.0 && re.is_sign_positive() {
        return format!("{}j", part(im));
    }
    let im_text = part(im);
    let sign = if im_text.starts_with('-') { "" } else { "+" };
    format!("({}{sign}{im_text}j)", part(re))
}

fn quote_for(has_single: bool, has_double: bool) -> char {
    if has_single && !has_double {
        '"'
    } else {
        '\''
    }
}

fn str_repr(s: &str) -> String {
    let quote = quote_for(s.contains('\''), s.contains('"'));
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() && u32::from(c) < 0x100 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn bytes_repr(b: &[u8]) -> String {
    let quote = quote_for(b.contains(&b'\''), b.contains(&b'"'));
    let mut out = String::with_capacity(b.len() + 3);
    out.push('b');
    out.push(quote);
    for &byte in b {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            byte if char::from(byte) == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(char::from(byte)),
            byte => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out.push(quote);
    out
}
