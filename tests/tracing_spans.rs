//! Tracing: a span per connection (`netref.conn`) and, when DEBUG spans are listened for, one
//! per served request (`netref.request`, with its seq, handle and object); at INFO, none per
//! request. (The connection checks for a listener before building the request span, which
//! otherwise costs every call even when disabled; these tests guard that the check lets the
//! span through when it is wanted.)

mod common;

use std::sync::{Arc, Mutex};

use common::calculator;
use netref::prelude::*;
use tracing::{span, Subscriber};
use tracing_subscriber::{filter::LevelFilter, layer::Context, prelude::*, registry::LookupSpan, Layer};

/// Records the name and fields of every span created.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<(String, String)>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &span::Attributes<'_>, _: &span::Id, _: Context<'_, S>) {
        let fields = attrs.metadata().fields().iter().map(|f| f.name()).collect::<Vec<_>>().join(",");
        self.0.lock().unwrap().push((attrs.metadata().name().to_owned(), fields));
    }
}

/// Runs one call over an in-memory pair with `level` as the subscriber's filter; returns the
/// spans created.
fn spans_at(level: LevelFilter) -> Vec<(String, String)> {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(level).with(spans.clone());
    tracing::subscriber::with_default(subscriber, || {
        actix_rt::System::new().block_on(async {
            let (_server, client) = netref::connect_pair(Service::shared(calculator(Arc::default())), Service::void());
            let sum: i64 = client.root().await.unwrap().call_method("add", (1, 2)).await.unwrap();
            assert_eq!(sum, 3);
        })
    });
    let seen = spans.0.lock().unwrap().clone();
    seen
}

#[test]
fn debug_listeners_get_a_span_per_request() {
    let spans = spans_at(LevelFilter::DEBUG);
    assert!(spans.iter().any(|(name, _)| name == "netref.conn"), "{spans:?}");
    let request = spans.iter().find(|(name, _)| name == "netref.request").unwrap_or_else(|| panic!("{spans:?}"));
    assert_eq!(request.1, "seq,handle,object");
}

#[test]
fn without_debug_listeners_no_request_span_is_built() {
    let spans = spans_at(LevelFilter::INFO);
    assert!(spans.iter().any(|(name, _)| name == "netref.conn"), "{spans:?}");
    assert!(!spans.iter().any(|(name, _)| name == "netref.request"), "{spans:?}");
}

/// Records the message of every event at WARN or above.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl<S: Subscriber> Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if *event.metadata().level() <= tracing::Level::WARN {
            struct Message<'a>(&'a mut String);
            impl tracing::field::Visit for Message<'_> {
                fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                    use std::fmt::Write;
                    let _ = write!(self.0, "{}={:?} ", field.name(), value);
                }
            }
            let mut text = String::new();
            event.record(&mut Message(&mut text));
            self.0.lock().unwrap().push(text);
        }
    }
}

#[test]
fn a_notification_that_cannot_be_sent_is_logged() {
    // Nobody waits for a notification's result, so its failure must be visible somewhere.
    let warnings = Warnings::default();
    let subscriber = tracing_subscriber::registry().with(LevelFilter::WARN).with(warnings.clone());
    tracing::subscriber::with_default(subscriber, || {
        actix_rt::System::new().block_on(async {
            let limits = netref::dev::DecodeLimits { max_values: 100, ..Default::default() };
            let config = Config::default().decode_limits(limits);
            let (_server, client) = netref::connect_pair_with(
                Service::shared(calculator(Arc::default())),
                config.clone(),
                Service::void(),
                config,
            );
            let root = client.root().await.unwrap();
            // 200 plain values: past the limit, refused where the call is made.
            let err = root.notify_method("add", (vec![1i64; 200], 0)).unwrap_err();
            assert!(matches!(err, netref::Error::Protocol(netref::ProtocolError::TooManyValues { max: 100 })), "{err}");
            // The same as a `Value` goes to the connection to be encoded, which refuses it there:
            // the notification's failure can only be logged.
            let list: netref::Value = Value::List(vec![Value::Int(1); 200]);
            root.notify_method("add", (list, 0)).unwrap();
            // A call after it: the notification was handled (in order) by the time it returns.
            let sum: i64 = root.call_method("add", (1, 2)).await.unwrap();
            assert_eq!(sum, 3, "the connection lives on");
        })
    });
    let seen = warnings.0.lock().unwrap().clone();
    assert!(
        seen.iter().any(|w| w.contains("cannot send a notification") && w.contains("more than 100 values")),
        "{seen:?}"
    );
}
