//! Bench (placeholder).
fn main() {}
