//! Log lines of failed opens carry no payload or key bytes. In a test binary
//! of its own: `tracing` caches each call site's interest process-wide, and a
//! test running in parallel without a subscriber can make a scoped
//! subscriber miss events.
#![cfg(feature = "seal")]

mod common;
use common::*;
use std::sync::{Arc, Mutex};

/// Collects every field of every event logged while it is the default
/// subscriber (a minimal `tracing::Subscriber`, no extra crates).
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Fields<'a>(&'a mut String);
        impl tracing::field::Visit for Fields<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={:?} ", field.name(), value));
            }
        }
        let mut line = String::new();
        event.record(&mut Fields(&mut line));
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn failed_opens_are_logged_without_the_payload() {
    let capture = Capture::default();
    let lines = capture.0.clone();
    tracing::subscriber::with_default(capture, || {
        let (s, clock) = production(&[1]);
        let _seen = recorder(&s, "job", b"PAYLOAD-MARKER");
        let good = s.__sealed_record("job").unwrap().unwrap();
        // Unknown key, then an altered record.
        s.rotate_keys(ring(&[2]));
        clock.advance(SECOND);
        assert_eq!(s.run_pending().failed, 1);
        s.rotate_keys(ring(&[1]));
        let mut bad = good;
        bad[40] ^= 1;
        s.__replace_sealed_record("job", bad).unwrap();
        clock.advance(SECOND);
        assert_eq!(s.run_pending().failed, 1);
    });
    let lines = lines.lock().unwrap();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].contains("key id 1") && lines[0].contains("job"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("failed authentication"), "{}", lines[1]);
    let hex1: String = "01".repeat(16);
    for line in lines.iter() {
        assert!(!line.contains("PAYLOAD-MARKER"), "{line}");
        assert!(!line.contains(&hex1), "{line}");
    }
}
