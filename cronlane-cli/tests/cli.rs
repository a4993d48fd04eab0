//! Runs the `cronlane` binary: output and exit codes.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cronlane"))
        .args(args)
        .output()
        .expect("the cronlane binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn next_prints_rfc3339_in_the_zone() {
    let o = run(&[
        "next",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2025-06-13T12:00:00Z",
        "-n",
        "3",
        "0 9 * * MON-FRI",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "2025-06-16T09:00:00+02:00\n2025-06-17T09:00:00+02:00\n2025-06-18T09:00:00+02:00\n"
    );
}

#[test]
fn next_defaults_to_five_in_utc_and_accepts_words() {
    let o = run(&[
        "next",
        "--after=2025-01-01T00:00:00+00:00",
        "0",
        "0",
        "*",
        "*",
        "*",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0], "2025-01-02T00:00:00+00:00");
    assert_eq!(lines[4], "2025-01-06T00:00:00+00:00");
}

#[test]
fn next_across_dst_shows_both_offsets() {
    let o = run(&[
        "next",
        "--tz",
        "America/New_York",
        "--after",
        "2025-11-02T00:50:00-04:00",
        "-n",
        "3",
        "*/30 * * * *",
    ]);
    assert_eq!(
        stdout(&o),
        "2025-11-02T01:00:00-04:00\n2025-11-02T01:30:00-04:00\n2025-11-02T01:00:00-05:00\n"
    );
}

#[test]
fn quartz_dialect_flag() {
    let o = run(&[
        "next",
        "--dialect",
        "quartz",
        "--after",
        "2025-06-15T00:00:00Z",
        "-n",
        "1",
        "0 0 12 ? * 2",
    ]);
    assert_eq!(stdout(&o), "2025-06-16T12:00:00+00:00\n", "{}", stderr(&o));
}

#[test]
fn invalid_expression_shows_caret_and_exits_2() {
    let o = run(&["next", "0 0 * * 8"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).is_empty());
    let err = stderr(&o);
    assert!(err.contains("day-of-week"), "{err}");
    assert!(err.contains("  0 0 * * 8\n          ^"), "{err}");
}

#[test]
fn never_fires_exits_3() {
    let o = run(&["next", "0 0 30 2 *"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stderr(&o).contains("never fires"), "{}", stderr(&o));
}

#[test]
fn bad_flags_and_zones_exit_2() {
    for args in [
        &["next", "--tz", "Mars/Olympus", "* * * * *"][..],
        &["next", "--after", "yesterday", "* * * * *"],
        &["next", "-n", "lots", "* * * * *"],
        &["next", "--dialect", "unix", "* * * * *"],
        &["next", "--bogus", "* * * * *"],
        &["next"],
        &["frobnicate"],
        &[],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(!stderr(&o).is_empty(), "{args:?}");
    }
}

#[test]
fn explain_prints_plain_english() {
    let o = run(&["explain", "0 9 * * MON-FRI"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).starts_with("At 09:00, Monday through Friday. Fixed-time job: "),
        "{}",
        stdout(&o)
    );
    let o = run(&["explain", "--dialect", "quartz", "0 0 12 ? * 2"]);
    assert!(
        stdout(&o).starts_with("At 12:00, only on Monday. Wall-clock job: "),
        "{}",
        stdout(&o)
    );
    let o = run(&["explain", "61 * * * *"]);
    assert_eq!(o.status.code(), Some(2));
}
