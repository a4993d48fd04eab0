//! Chaos run (placeholder).
fn main() {}
