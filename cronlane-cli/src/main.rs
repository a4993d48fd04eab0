//! `cronlane` command-line tool (placeholder).
fn main() {}
