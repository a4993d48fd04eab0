//! Runs the `cronlane` binary: output and exit codes.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    run_with_tz(args, None)
}

/// Runs with `TZ` set to `tz`, or removed.
fn run_with_tz(args: &[&str], tz: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cronlane"));
    cmd.args(args);
    match tz {
        Some(tz) => cmd.env("TZ", tz),
        None => cmd.env_remove("TZ"),
    };
    cmd.output().expect("the cronlane binary runs")
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

#[test]
fn version_flags() {
    for flag in ["--version", "-V", "version"] {
        let o = run(&[flag]);
        assert_eq!(o.status.code(), Some(0), "{flag}: {}", stderr(&o));
        assert_eq!(
            stdout(&o),
            format!("cronlane {}\n", env!("CARGO_PKG_VERSION"))
        );
    }
}

#[test]
fn each_command_has_its_own_help() {
    let global = stdout(&run(&["--help"]));
    assert!(global.contains("cronlane next [OPTIONS] EXPR"), "{global}");
    assert!(
        global.contains("cronlane explain [OPTIONS] EXPR"),
        "{global}"
    );
    assert!(global.contains("--version"), "{global}");
    assert_eq!(stdout(&run(&["help"])), global);
    assert_eq!(stdout(&run(&["-h"])), global);

    let next = run(&["next", "--help"]);
    assert_eq!(next.status.code(), Some(0));
    let next = stdout(&next);
    assert!(next.starts_with("cronlane next: "), "{next}");
    for needle in [
        "--tz ZONE",
        "Default: UTC",
        "local",
        "--after TIME",
        "2025-06-13 09:00",
        "-n, --count N",
        "--dialect",
        "examples:",
        "exit status:",
        "  3  ",
    ] {
        assert!(
            next.contains(needle),
            "next --help lacks {needle:?}:\n{next}"
        );
    }
    assert_ne!(next, global);
    assert_eq!(stdout(&run(&["help", "next"])), next);
    assert_eq!(stdout(&run(&["next", "-h"])), next);
    assert_eq!(stdout(&run(&["next", "0 9 * * *", "--help"])), next);

    let explain = stdout(&run(&["explain", "--help"]));
    assert!(explain.starts_with("cronlane explain: "), "{explain}");
    for needle in ["--dialect", "daylight saving", "examples:", "exit status:"] {
        assert!(explain.contains(needle), "explain --help lacks {needle:?}");
    }
    assert_eq!(stdout(&run(&["help", "explain"])), explain);
}

#[test]
fn after_accepts_dates_and_local_date_times_in_the_zone() {
    let first = |args: &[&str]| {
        let o = run(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        stdout(&o).lines().next().unwrap_or_default().to_owned()
    };
    let hourly = |after: &str, tz: &str| {
        first(&["next", "--tz", tz, "--after", after, "-n", "1", "0 * * * *"])
    };
    assert_eq!(hourly("2025-01-01", "UTC"), "2025-01-01T01:00:00+00:00");
    assert_eq!(
        hourly("2025-01-01 09:00", "Europe/Berlin"),
        "2025-01-01T10:00:00+01:00"
    );
    assert_eq!(
        hourly("2025-01-01T09:00", "Europe/Berlin"),
        "2025-01-01T10:00:00+01:00"
    );
    assert_eq!(
        hourly("2025-01-01T09:00:30", "Europe/Berlin"),
        "2025-01-01T10:00:00+01:00"
    );
    assert_eq!(
        hourly("2025-01-01 09:00:30", "Europe/Berlin"),
        "2025-01-01T10:00:00+01:00"
    );
    // RFC 3339 still works, and --after may come before --tz.
    assert_eq!(
        first(&[
            "next",
            "--after",
            "2025-01-01 09:00",
            "--tz",
            "Asia/Tokyo",
            "-n",
            "1",
            "0 * * * *"
        ]),
        "2025-01-01T10:00:00+09:00"
    );
    assert_eq!(
        hourly("2025-01-01T09:00:00Z", "Europe/Berlin"),
        "2025-01-01T11:00:00+01:00"
    );
    let o = run(&["next", "--after", "2025-01-01 9am", "* * * * *"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("local date-time"), "{}", stderr(&o));
}

#[test]
fn zone_names_in_any_case_and_local() {
    let o = run(&[
        "next",
        "--tz",
        "europe/berlin",
        "--after",
        "2025-06-13T12:00:00Z",
        "-n",
        "1",
        "0 9 * * *",
    ]);
    assert_eq!(stdout(&o), "2025-06-14T09:00:00+02:00\n", "{}", stderr(&o));
    let o = run_with_tz(
        &[
            "next",
            "--tz",
            "local",
            "--after",
            "2025-06-13",
            "-n",
            "1",
            "0 9 * * *",
        ],
        Some("America/New_York"),
    );
    assert_eq!(stdout(&o), "2025-06-13T09:00:00-04:00\n", "{}", stderr(&o));
    let o = run_with_tz(
        &["next", "--tz", "LOCAL", "-n", "1", "* * * * *"],
        Some("Nowhere/Atlantis"),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not an IANA zone name"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn years_past_9999_stop_with_a_message() {
    let o = run(&[
        "next",
        "--after",
        "9999-12-28T00:00:00Z",
        "-n",
        "5",
        "0 0 * * *",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        "9999-12-29T00:00:00+00:00\n9999-12-30T00:00:00+00:00\n9999-12-31T00:00:00+00:00\n"
    );
    assert!(stderr(&o).contains("past year 9999"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("10000"));
    let o = run(&["next", "--after", "9999-12-31T12:00:00Z", "0 0 * * *"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).is_empty());
    assert!(stderr(&o).contains("before year 10000"), "{}", stderr(&o));
}

#[test]
fn explain_fixes_of_issue_19() {
    let explain = |args: &[&str]| {
        let o = run(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    assert!(explain(&["explain", "--dialect", "quartz", "0 0 12 ? * L"])
        .starts_with("At 12:00, only on Saturday. "));
    assert!(explain(&["explain", "0 0 1,15 * FRI"])
        .starts_with("At 00:00, on days 1 and 15 of the month, or on Friday. "));
    assert!(
        explain(&["explain", "0 0 * * 0,6"]).starts_with("At 00:00, only on Saturday and Sunday. ")
    );
    assert!(explain(&["explain", "0 0 30 2 *"]).contains("never fires"));
    let fixed = explain(&["explain", "30 2 * * *"]);
    let wall = explain(&["explain", "0 30 2 * * *"]);
    assert!(fixed.contains("Fixed-time job"), "{fixed}");
    assert!(wall.contains("Wall-clock job"), "{wall}");
    for bad in ["0 0 ?,5 * *", "0 0 * * MON-FRIL"] {
        let o = run(&["explain", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(stderr(&o).contains('^'), "{bad}: {}", stderr(&o));
    }
}

#[test]
fn next_past_2099_prints_the_zones_summer_offset() {
    let o = run(&[
        "next",
        "--tz",
        "Europe/Berlin",
        "--after",
        "2099-12-31T12:00:00+01:00",
        "-n",
        "1",
        "0 12 1 7 *",
    ]);
    assert_eq!(stdout(&o), "2100-07-01T12:00:00+02:00\n", "{}", stderr(&o));
}
