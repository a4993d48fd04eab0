//! `cronlane run` end to end: a real crontab file, the real binary, real
//! processes. Jobs use the seconds field, so each test takes seconds.
//!
//! The machine these run on is small and shared: tests wait for log
//! records with generous deadlines rather than sleeping a fixed time, and
//! assert on order and counts, not on tight timing.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_cronlane");
/// How long any single expected record may take to show up.
const DEADLINE: Duration = Duration::from_secs(30);

/// A scratch directory, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("cronlane-run-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Default)]
struct Lines {
    lines: Vec<String>,
    closed: bool,
}

/// A running `cronlane run --json …`, its stdout collected line by line.
struct Daemon {
    child: Child,
    /// The daemon's pid (the child's, or under a wrapper the wrapper's child).
    pid: libc::pid_t,
    out: Arc<(Mutex<Lines>, Condvar)>,
    stderr: Arc<Mutex<String>>,
}

impl Daemon {
    fn start(args: &[&str], crontab: &Path) -> Daemon {
        Daemon::start_under(&[], args, crontab)
    }

    /// Runs the daemon under `wrapper` (a command and its arguments, to
    /// which the daemon's command line is appended), if any.
    fn start_under(wrapper: &[&str], args: &[&str], crontab: &Path) -> Daemon {
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let mut child = cmd
            .arg("run")
            .arg("--json")
            .args(args)
            .arg(crontab)
            .current_dir(crontab.parent().unwrap())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the cronlane binary starts");
        let out = Arc::new((Mutex::new(Lines::default()), Condvar::new()));
        let stdout = child.stdout.take().unwrap();
        let o = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                o.0.lock().unwrap().lines.push(line);
                o.1.notify_all();
            }
            o.0.lock().unwrap().closed = true;
            o.1.notify_all();
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let e = stderr.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            e.lock().unwrap().push_str(&s);
        });
        let pid = child.id() as libc::pid_t;
        let mut d = Daemon {
            child,
            pid,
            out,
            stderr,
        };
        d.wait_for("ready", |r| r["event"] == "ready");
        if !wrapper.is_empty() {
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            if let Some(p) = children
                .split_whitespace()
                .next()
                .and_then(|p| p.parse().ok())
            {
                d.pid = p;
            }
        }
        d
    }

    fn records(&self) -> Vec<Value> {
        let lines = self.out.0.lock().unwrap();
        lines
            .lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// Waits until `n` records match `pred`; returns all records then.
    fn wait_n(&self, what: &str, n: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + DEADLINE;
        let (lock, cv) = &*self.out;
        let mut g = lock.lock().unwrap();
        loop {
            let recs: Vec<Value> = g
                .lines
                .iter()
                .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
                .collect();
            if recs.iter().filter(|r| pred(r)).count() >= n {
                return recs;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || g.closed {
                let log = g.lines.join("\n");
                drop(g);
                panic!(
                    "waited for {n} × {what}; log:\n{log}\nstderr:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
            g = cv
                .wait_timeout(g, left.min(Duration::from_millis(500)))
                .unwrap()
                .0;
        }
    }

    fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.wait_n(what, 1, pred)
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(self.pid, sig);
        }
    }

    /// Waits for the daemon to exit; its status code.
    fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the reader see the last lines.
                let (lock, cv) = &*self.out;
                let mut g = lock.lock().unwrap();
                while !g.closed {
                    g = cv.wait_timeout(g, Duration::from_secs(5)).unwrap().0;
                }
                return st.code();
            }
            assert!(Instant::now() < deadline, "the daemon did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal(libc::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(15);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn is(r: &Value, job: &str, event: &str) -> bool {
    r["job"] == job && r["event"] == event
}

fn output(r: &Value, job: &str, line: &str) -> bool {
    r["job"] == job && r["line"] == line
}

/// Whether process `pid` is gone (no such process, or a zombie nobody
/// reaps: it runs no more).
fn gone(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

fn read_pid(path: &Path) -> i64 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if let Ok(n) = s.trim().parse() {
                return n;
            }
        }
        assert!(Instant::now() < deadline, "no pid in {}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn run_cli(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).output().unwrap()
}

#[test]
fn environment_lines_apply_to_the_jobs_below_them() {
    let s = Scratch::new("env");
    let ct = s.write(
        "crontab",
        "# before any variable\n\
         @reboot echo \"first:[$GREETING]\"\n\
         GREETING = 'hello  world'\n\
         PATH_EXTRA=\"/opt/x\"\n\
         # name: second\n\
         @reboot echo \"second:[$GREETING][$PATH_EXTRA][$INHERITED]\"\n\
         GREETING=bye\n\
         SHELL=/bin/sh\n\
         @reboot echo \"third:[$GREETING]\"; echo \"shell:$0\"\n",
    );
    let d = {
        std::env::set_var("INHERITED", "from-daemon");
        Daemon::start(&[], &ct)
    };
    let recs = d.wait_n("three outputs", 4, |r| r["stream"] == "stdout");
    let lines: Vec<(&str, &str)> = recs
        .iter()
        .filter(|r| r["stream"] == "stdout")
        .map(|r| (r["job"].as_str().unwrap(), r["line"].as_str().unwrap()))
        .collect();
    assert!(lines.contains(&("line2", "first:[]")), "{lines:?}");
    assert!(
        lines.contains(&("second", "second:[hello  world][/opt/x][from-daemon]")),
        "{lines:?}"
    );
    assert!(lines.contains(&("line9", "third:[bye]")), "{lines:?}");
    assert!(lines.contains(&("line9", "shell:/bin/sh")), "{lines:?}");
}

#[test]
fn dst_fixed_time_job_fires_once_at_the_spring_forward_jump() {
    // Berlin jumps from 02:00 CET to 03:00 CEST at 2025-03-30T01:00:00Z.
    let s = Scratch::new("dst");
    let ct = s.write(
        "crontab",
        "CRON_TZ=Europe/Berlin\n\
         # name: fixed\n\
         30 2 * * * echo fixed\n\
         # name: wall\n\
         0 30 2 * * * echo wall\n\
         # name: hourly\n\
         30 * * * * echo hourly\n",
    );
    let o = run_cli(&[
        "run",
        "--test",
        "--now",
        "2025-03-29T12:00:00Z",
        ct.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{text}");
    // The fixed-time job fires at the jump; the 6-field one skips the day;
    // the hourly one skips 02:30.
    let fixed = text.split("[wall]").next().unwrap();
    assert!(fixed.contains("2025-03-30T03:00:00+02:00"), "{text}");
    assert!(fixed.contains("2025-03-31T02:30:00+02:00"), "{text}");
    let wall = text
        .split("[wall]")
        .nth(1)
        .unwrap()
        .split("[hourly]")
        .next()
        .unwrap();
    assert!(
        wall.contains("2025-03-29T02:30:00+01:00") || wall.contains("2025-03-31T02:30:00+02:00"),
        "{text}"
    );
    assert!(!wall.contains("2025-03-30"), "{text}");
    assert!(text.contains("Fixed-time job"), "{text}");
    // Run it, with the clock set 3 s before the jump: `fixed` fires at the
    // jump (01:00:00Z), `wall` does not fire that day.
    let d = Daemon::start(&["--now", "2025-03-30T00:59:57Z"], &ct);
    let recs = d.wait_for("fixed's start", |r| is(r, "fixed", "start"));
    let start = recs.iter().find(|r| is(r, "fixed", "start")).unwrap();
    assert_eq!(start["scheduled"], "2025-03-30T01:00:00.000Z");
    d.wait_for("fixed's output", |r| output(r, "fixed", "fixed"));
    assert!(!d.records().iter().any(|r| r["job"] == "wall"));
}

#[test]
fn overlapping_fire_is_skipped_with_one_warning() {
    let s = Scratch::new("skip");
    let ct = s.write("crontab", "# name: slow\n* * * * * * sleep 2.5\n");
    let d = Daemon::start(&["--grace", "0s", "--kill-timeout", "1s"], &ct);
    let recs = d.wait_n("3 starts", 3, |r| is(r, "slow", "start"));
    // Starts and exits alternate: never two processes of the job at once.
    let seq: Vec<&str> = recs
        .iter()
        .filter(|r| r["job"] == "slow" && (r["event"] == "start" || r["event"] == "exit"))
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    for pair in seq.windows(2) {
        assert_ne!(pair[0], pair[1], "{seq:?}");
    }
    let skips: Vec<&Value> = recs.iter().filter(|r| is(r, "slow", "skip")).collect();
    assert_eq!(
        skips.len(),
        1,
        "rate-limited to one warning a minute: {skips:?}"
    );
    assert!(skips[0]["count"].as_u64().unwrap() >= 1);
}

#[test]
fn overlapping_flag_allows_concurrent_runs() {
    let s = Scratch::new("allow");
    let ct = s.write("crontab", "# name: slow\n* * * * * * sleep 3\n");
    let d = Daemon::start(
        &["--overlapping", "--grace", "0s", "--kill-timeout", "1s"],
        &ct,
    );
    let recs = d.wait_n("3 starts", 3, |r| is(r, "slow", "start"));
    let seq: Vec<&str> = recs
        .iter()
        .filter(|r| r["job"] == "slow" && (r["event"] == "start" || r["event"] == "exit"))
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    assert!(
        seq.windows(2).any(|p| p == ["start", "start"]),
        "two starts without an exit between: {seq:?}"
    );
    assert!(!recs.iter().any(|r| is(r, "slow", "skip")));
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let s = Scratch::new("timeout");
    // The grandchild ignores SIGTERM: only the SIGKILL after
    // --kill-timeout stops it.
    let ct = s.write(
        "crontab",
        "# name: stuck\n\
         @reboot sh -c \"trap '' TERM; echo \\$\\$ > gc.pid; exec sleep 300\" & echo $$ > sh.pid; wait\n",
    );
    let d = Daemon::start(&["--timeout", "1s", "--kill-timeout", "1s"], &ct);
    let recs = d.wait_for("stuck's exit", |r| is(r, "stuck", "exit"));
    let exit = recs.iter().find(|r| is(r, "stuck", "exit")).unwrap();
    assert_eq!(exit["timed_out"], true, "{exit}");
    assert!(recs.iter().any(|r| is(r, "stuck", "timeout")));
    let (sh, gc) = (read_pid(&s.path("sh.pid")), read_pid(&s.path("gc.pid")));
    let deadline = Instant::now() + DEADLINE;
    while !(gone(sh) && gone(gc)) {
        assert!(
            Instant::now() < deadline,
            "sh {sh} or grandchild {gc} still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SIGTERM was not enough for the grandchild: the kill stage ran.
    assert!(recs.iter().any(|r| is(r, "stuck", "kill")), "{recs:?}");
}

#[test]
fn sigterm_waits_for_running_jobs_within_the_grace() {
    let s = Scratch::new("grace");
    let ct = s.write(
        "crontab",
        "# name: finishing\n@reboot echo begun; sleep 2; echo finished\n",
    );
    let mut d = Daemon::start(&["--grace", "20s"], &ct);
    d.wait_for("begun", |r| output(r, "finishing", "begun"));
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(), Some(0));
    let recs = d.records();
    assert!(recs.iter().any(|r| output(r, "finishing", "finished")));
    let exit = recs.iter().find(|r| is(r, "finishing", "exit")).unwrap();
    assert_eq!(exit["code"], 0);
    assert_eq!(recs.last().unwrap()["event"], "stopped");
    assert!(!recs.iter().any(|r| r["event"] == "terminate"));
}

#[test]
fn sigterm_terminates_jobs_past_the_grace() {
    let s = Scratch::new("grace-over");
    let ct = s.write(
        "crontab",
        "# name: long\n@reboot trap 'echo got-term; exit 7' TERM; echo begun; sleep 300 & wait\n",
    );
    let mut d = Daemon::start(&["--grace", "1s", "--kill-timeout", "10s"], &ct);
    d.wait_for("begun", |r| output(r, "long", "begun"));
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(), Some(0));
    let recs = d.records();
    assert!(recs.iter().any(|r| r["event"] == "terminate"), "{recs:?}");
    assert!(
        recs.iter().any(|r| output(r, "long", "got-term")),
        "{recs:?}"
    );
    let exit = recs.iter().find(|r| is(r, "long", "exit")).unwrap();
    assert_eq!(exit["code"], 7);
}

#[test]
fn sighup_reload_keeps_running_jobs_and_refuses_a_broken_file() {
    let s = Scratch::new("reload");
    let v1 = "# name: long\n* * * * * * echo long-start; sleep 3; echo long-done\n\
              # name: gone\n* * * * * * echo gone\n";
    let ct = s.write("crontab", v1);
    let d = Daemon::start(&["--grace", "0s", "--kill-timeout", "1s"], &ct);
    let recs = d.wait_for("long's start", |r| output(r, "long", "long-start"));
    let running = recs.iter().rev().find(|r| is(r, "long", "start")).unwrap()["scheduled"].clone();
    // v2: long unchanged but moved down, gone removed, new added.
    s.write(
        "crontab",
        "# a comment that moves the lines\n\n# name: long\n\
         * * * * * * echo long-start; sleep 3; echo long-done\n\
         # name: new\n* * * * * * echo new\n",
    );
    d.signal(libc::SIGHUP);
    let recs = d.wait_for("reload", |r| r["event"] == "reload");
    let reload = recs.iter().find(|r| r["event"] == "reload").unwrap();
    assert_eq!(
        (
            reload["kept"].as_u64(),
            reload["added"].as_u64(),
            reload["removed"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "{reload}"
    );
    let reload_at = recs.iter().position(|r| r["event"] == "reload").unwrap();
    d.wait_for("new's output", |r| output(r, "new", "new"));
    // The run of `long` that was going when the reload came ends normally.
    let recs = d.wait_for("long's exit", |r| {
        is(r, "long", "exit") && r["scheduled"] == running
    });
    let exit = recs
        .iter()
        .find(|r| is(r, "long", "exit") && r["scheduled"] == running)
        .unwrap();
    assert_eq!(exit["code"], 0, "{exit}");
    assert!(recs.iter().any(|r| output(r, "long", "long-done")));
    // `gone` starts nothing scheduled after the reload.
    let reload_time = reload["time"].as_str().unwrap().to_owned();
    for r in &recs[reload_at..] {
        if is(r, "gone", "start") {
            assert!(
                r["scheduled"].as_str().unwrap() < reload_time.as_str(),
                "{r}"
            );
        }
    }
    // A broken file is refused, and the jobs keep running.
    s.write(
        "crontab",
        "# name: long\n* * * * * * echo ok\n* * 99 * * echo bad\n",
    );
    d.signal(libc::SIGUSR2);
    let recs = d.wait_for("refusal", |r| r["event"] == "reload_refused");
    let refused = recs
        .iter()
        .find(|r| r["event"] == "reload_refused")
        .unwrap();
    let err = refused["error"].as_str().unwrap();
    assert!(err.contains("crontab:3:5:"), "{err}");
    assert!(err.contains("day-of-month"), "{err}");
    let n_new = recs.iter().filter(|r| output(r, "new", "new")).count();
    d.wait_n("new still running", n_new + 2, |r| output(r, "new", "new"));
}

#[test]
fn malformed_file_names_line_and_column_and_runs_nothing() {
    let s = Scratch::new("malformed");
    let ct = s.write(
        "crontab",
        "@reboot touch ran\nFOO=1\n*/5 *  60 * * echo x\n",
    );
    let o = Command::new(BIN)
        .args(["run", "crontab"])
        .current_dir(&s.0)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "crontab:3:8: invalid cron expression: day-of-month: value 60 is out of range 1-31"
        ),
        "{err}"
    );
    assert!(err.contains("\n  */5 *  60 * *\n         ^"), "{err}");
    assert!(err.contains("nothing runs"), "{err}");
    assert!(!s.path("ran").exists());
    let o = run_cli(&["run", "--test", ct.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    // A schedule that never fires is an error too.
    let ct = s.write("never", "0 0 30 2 * echo never\n");
    let o = run_cli(&["run", "--test", ct.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("never fires"));
    let o = run_cli(&["run", "/no/such/crontab"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read the crontab"));
}

#[test]
fn commands_that_cannot_start_are_logged_and_the_daemon_goes_on() {
    let s = Scratch::new("nostart");
    let ct = s.write(
        "crontab",
        "# name: missing-cmd\n@reboot /no/such/command\n\
         SHELL=/no/such/shell\n# name: missing-shell\n@reboot echo hi\n\
         SHELL=/bin/sh\n# name: fine\n* * * * * * echo fine\n",
    );
    let d = Daemon::start(&[], &ct);
    let recs = d.wait_for("not_started", |r| is(r, "missing-shell", "not_started"));
    let ns = recs
        .iter()
        .find(|r| is(r, "missing-shell", "not_started"))
        .unwrap();
    assert!(
        ns["msg"].as_str().unwrap().contains("/no/such/shell"),
        "{ns}"
    );
    assert_eq!(ns["level"], "error");
    let recs = d.wait_for("missing-cmd's exit", |r| is(r, "missing-cmd", "exit"));
    let exit = recs.iter().find(|r| is(r, "missing-cmd", "exit")).unwrap();
    assert_eq!(exit["code"], 127, "{exit}");
    assert!(recs
        .iter()
        .any(|r| r["job"] == "missing-cmd" && r["stream"] == "stderr"));
    d.wait_n("fine twice", 2, |r| output(r, "fine", "fine"));
}

#[test]
fn output_without_newline_and_very_long_lines() {
    let s = Scratch::new("output");
    let ct = s.write(
        "crontab",
        "# name: partial\n@reboot printf 'no newline at the end'\n\
         # name: long\n@reboot head -c 5000000 /dev/zero | tr '\\000' x; echo; echo after; printf 'é%.0s' $(seq 700) >&2\n",
    );
    let d = Daemon::start(&["--max-line", "1000"], &ct);
    d.wait_for("partial", |r| output(r, "partial", "no newline at the end"));
    let recs = d.wait_for("long's exit", |r| is(r, "long", "exit"));
    let long: Vec<&Value> = recs
        .iter()
        .filter(|r| r["job"] == "long" && r["stream"] == "stdout")
        .collect();
    assert_eq!(long.len(), 2, "one cut line, then `after`");
    assert_eq!(long[0]["line"].as_str().unwrap(), "x".repeat(1000));
    assert_eq!(long[0]["truncated"], true);
    assert_eq!(long[1]["line"], "after");
    // 700 two-byte characters, no newline, cut at a character boundary.
    let err = recs
        .iter()
        .find(|r| r["job"] == "long" && r["stream"] == "stderr")
        .unwrap();
    assert_eq!(err["line"].as_str().unwrap(), "é".repeat(500));
    assert_eq!(err["truncated"], true);
    assert_eq!(
        recs.iter().find(|r| is(r, "long", "exit")).unwrap()["code"],
        0
    );
}

#[test]
fn hundred_jobs_every_second_start_once_per_second() {
    let seconds: u64 = std::env::var("CRONLANE_E2E_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let s = Scratch::new("hundred");
    let mut text = String::new();
    for i in 0..100 {
        text.push_str(&format!("# name: j{i}\n* * * * * * :\n"));
    }
    let ct = s.write("crontab", &text);
    let mut d = Daemon::start(&[], &ct);
    std::thread::sleep(Duration::from_secs(seconds));
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(), Some(0));
    let recs = d.records();
    let mut by_job: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for r in recs.iter().filter(|r| r["event"] == "start") {
        by_job
            .entry(r["job"].as_str().unwrap().to_owned())
            .or_default()
            .push(r["scheduled"].as_str().unwrap().to_owned());
    }
    assert_eq!(by_job.len(), 100);
    // Every second from the first to the last instant any job ran.
    let all: std::collections::BTreeSet<&String> = by_job.values().flatten().collect();
    let (first, last) = (all.iter().next().unwrap(), all.iter().next_back().unwrap());
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
    let span = (parse(last) - parse(first)).num_seconds();
    assert!(
        span as u64 + 3 >= seconds,
        "fires over {span} s of {seconds}"
    );
    let mut problems = Vec::new();
    for (job, times) in &by_job {
        let set: std::collections::BTreeSet<&String> = times.iter().collect();
        if set.len() != times.len() {
            problems.push(format!("{job}: a doubled start"));
        }
        // The first and last second may be cut by start-up and stop.
        let inner: Vec<&&String> = all
            .iter()
            .skip(1)
            .take(all.len().saturating_sub(2))
            .collect();
        for t in inner {
            if !set.contains(t) {
                problems.push(format!("{job}: no start for {t}"));
            }
        }
    }
    let skips = recs
        .iter()
        .filter(|r| r["event"] == "skip" || r["event"] == "misfire")
        .count();
    let lags: Vec<f64> = recs
        .iter()
        .filter(|r| r["event"] == "start")
        .filter_map(|r| r["lag_ms"].as_f64())
        .collect();
    let max_lag = lags.iter().copied().fold(0.0, f64::max);
    eprintln!(
        "{} starts of 100 jobs over {} instants; {} problems; engine start lag max {max_lag:.1} ms",
        lags.len(),
        all.len(),
        problems.len()
    );
    assert!(
        problems.is_empty(),
        "{} problems ({skips} skip/misfire records): {:?}",
        problems.len(),
        &problems[..problems.len().min(20)]
    );
    let failures = recs
        .iter()
        .filter(|r| r["event"] == "exit" && r["code"] != 0)
        .count();
    assert_eq!(failures, 0);
}

#[test]
fn test_flag_prints_jobs_next_times_and_english() {
    let s = Scratch::new("test-flag");
    let ct = s.write(
        "crontab",
        "# name: weekday\n0 9 * * MON-FRI echo hi\n@reboot echo up\n*/10 * * * * * echo ten\n",
    );
    let o = run_cli(&[
        "run",
        "--test",
        "--now",
        "2025-06-13T12:00:00Z",
        ct.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("3 jobs, no errors"), "{text}");
    assert!(text.contains("[weekday] line 2"), "{text}");
    assert!(text.contains("At 09:00, Monday through Friday."), "{text}");
    for t in [
        "2025-06-16T09:00:00+00:00",
        "2025-06-17T09:00:00+00:00",
        "2025-06-18T09:00:00+00:00",
    ] {
        assert!(text.contains(t), "{text}");
    }
    assert!(
        !text.contains("2025-06-19T09:00"),
        "three times only: {text}"
    );
    assert!(
        text.contains("[line3] line 3\n  schedule: @reboot"),
        "{text}"
    );
    assert!(text.contains("2025-06-13T12:00:10+00:00"), "{text}");
}

#[test]
fn state_with_postgres_and_bad_options_exit_2() {
    let o = run_cli(&[
        "run",
        "--state",
        "s.db",
        "--postgres",
        "postgres://db",
        "crontab",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--state and --postgres cannot be used together"),
        "{err}"
    );
    for args in [
        &["run", "--misfire", "twice", "crontab"][..],
        &["run", "--catchup-max", "3", "crontab"],
        &["run", "--pg-schema", "x", "crontab"],
        &[
            "run",
            "--postgres",
            "postgres://db",
            "--pg-schema",
            "Bad-Name",
            "c",
        ],
    ] {
        let o = run_cli(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}

/// `CRONLANE_PG_URL`, or the default test server.
fn pg_url() -> String {
    std::env::var("CRONLANE_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Whether the server of `url` accepts TCP connections; `Err(why)` if not.
fn pg_reachable(url: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let host_port = rest.split(['/', '?']).next().unwrap_or("");
    let addr = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .collect();
    for a in &addrs {
        if std::net::TcpStream::connect_timeout(a, Duration::from_secs(2)).is_ok() {
            return Ok(());
        }
    }
    Err(format!("nothing accepts connections at {addr}"))
}

/// The cluster test needs a server: without one it says so and passes,
/// except under `CI=true`, where that is a failure.
fn pg_or_skip(test: &str) -> Option<String> {
    let url = pg_url();
    match pg_reachable(&url) {
        Ok(()) => Some(url),
        Err(why) => {
            let msg = format!(
                "{test}: no PostgreSQL server ({why}); set CRONLANE_PG_URL=postgres://user@host:port/db \
                 to point the test at one (default postgres://postgres@127.0.0.1:5432/test)"
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg} (CI=true: a server is required)");
            }
            eprintln!("SKIPPED {msg}");
            None
        }
    }
}

/// Drops the test's schema at the end (kept after a failure, to look at).
struct DropSchema {
    url: String,
    schema: String,
}

impl Drop for DropSchema {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("schema {} kept for inspection", self.schema);
            return;
        }
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema);
        rt.block_on(async {
            use cronlane_pg::tokio_postgres;
            if let Ok((client, conn)) =
                tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await
            {
                tokio::spawn(conn);
                let _ = client.execute(sql.as_str(), &[]).await;
            }
        });
    }
}

#[test]
fn postgres_two_daemons_run_each_fire_once_between_them() {
    let Some(url) = pg_or_skip("postgres_two_daemons_run_each_fire_once_between_them") else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let schema = format!(
        "cronlane_cli_test_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000
    );
    // Declared before the daemons: dropped after they have stopped.
    let _cleanup = DropSchema {
        url: url.clone(),
        schema: schema.clone(),
    };
    let s = Scratch::new("postgres-two");
    // Enough jobs that each daemon is rank 0 (claims at the instant) for
    // some of them, whatever the two node ids.
    const JOBS: usize = 16;
    let mut text = String::new();
    for i in 0..JOBS {
        text.push_str(&format!("# name: p{i}\n* * * * * * :\n"));
    }
    let ct = s.write("crontab", &text);
    // catchup: a fire late on this busy machine still runs (once), so
    // every instant of the window must have exactly one start.
    let args = [
        "--postgres",
        url.as_str(),
        "--pg-schema",
        schema.as_str(),
        "--misfire",
        "catchup",
    ];
    let mut a = Daemon::start(&args, &ct);
    let mut b = Daemon::start(&args, &ct);
    let both_ready = chrono::Utc::now();
    std::thread::sleep(Duration::from_secs(8));
    let stop_at = chrono::Utc::now();
    a.signal(libc::SIGTERM);
    b.signal(libc::SIGTERM);
    assert_eq!(a.wait_exit(), Some(0), "{}", a.stderr.lock().unwrap());
    assert_eq!(b.wait_exit(), Some(0), "{}", b.stderr.lock().unwrap());
    let (ra, rb) = (a.records(), b.records());
    for recs in [&ra, &rb] {
        assert!(
            recs.iter()
                .any(|r| r["event"] == "cluster" && r["schema"] == schema.as_str()),
            "{recs:?}"
        );
    }
    let mut seen: std::collections::BTreeMap<(String, String), Vec<&str>> = Default::default();
    for (who, recs) in [("a", &ra), ("b", &rb)] {
        for r in recs.iter().filter(|r| r["event"] == "start") {
            seen.entry((
                r["job"].as_str().unwrap().to_owned(),
                r["scheduled"].as_str().unwrap().to_owned(),
            ))
            .or_default()
            .push(who);
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, w)| w.len() > 1).collect();
    assert!(twice.is_empty(), "started more than once: {twice:?}");
    // Every instant of the window both daemons ran through (cut by a
    // second at each end: joining and leaving), for every job.
    let from = both_ready + chrono::Duration::seconds(1);
    let to = stop_at - chrono::Duration::milliseconds(1500);
    let mut missing = Vec::new();
    let mut t = from.timestamp() + 1;
    let mut instants = 0;
    while t <= to.timestamp() {
        instants += 1;
        let at = chrono::DateTime::from_timestamp(t, 0).unwrap();
        let key = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for i in 0..JOBS {
            if !seen.contains_key(&(format!("p{i}"), key.clone())) {
                missing.push(format!("p{i}@{key}"));
            }
        }
        t += 1;
    }
    assert!(instants >= 4, "a window of {instants} instants only");
    assert!(missing.is_empty(), "no start for: {missing:?}");
    let by = |w: &str| seen.values().filter(|v| v.contains(&w)).count();
    let (na, nb) = (by("a"), by("b"));
    eprintln!(
        "{} fires started once each: {na} by a, {nb} by b; {instants} instants checked × {JOBS} jobs",
        seen.len()
    );
    assert!(na > 0 && nb > 0, "a ran {na}, b ran {nb}");
    let failures = ra
        .iter()
        .chain(&rb)
        .filter(|r| r["event"] == "exit" && r["code"] != 0)
        .count();
    assert_eq!(failures, 0);
}

/// The `scheduled` instants of `job`'s start records.
fn starts(recs: &[Value], job: &str) -> Vec<String> {
    recs.iter()
        .filter(|r| is(r, job, "start"))
        .filter_map(|r| r["scheduled"].as_str().map(str::to_owned))
        .collect()
}

fn parse_time(s: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap()
}

/// Runs `job` (every second) under `--state`, kills the daemon with
/// SIGKILL right after a run's exit record, waits `down` of real time and
/// starts it again with `args`. Both runs' records and the instant of the
/// exit waited for.
fn kill_and_restart(
    s: &Scratch,
    args: &[&str],
    down: Duration,
) -> (
    Vec<Value>,
    Vec<Value>,
    chrono::DateTime<chrono::FixedOffset>,
) {
    let ct = s.write("crontab", "# name: tick\n* * * * * * echo tock\n");
    let state = s.path("state.db");
    let mut all: Vec<&str> = vec!["--state", state.to_str().unwrap()];
    all.extend_from_slice(args);
    let mut d = Daemon::start(&all, &ct);
    let recs = d.wait_n("2 exits of tick", 2, |r| is(r, "tick", "exit"));
    let last_exit = recs
        .iter()
        .filter(|r| is(r, "tick", "exit"))
        .filter_map(|r| r["scheduled"].as_str())
        .map(parse_time)
        .max()
        .unwrap();
    d.signal(libc::SIGKILL);
    assert_eq!(d.wait_exit(), None, "killed by a signal");
    let first = d.records();
    drop(d);
    // Real time must pass for fires to be missed.
    std::thread::sleep(down);
    let d = Daemon::start(&all, &ct);
    let state_rec = d.wait_for("state", |r| r["event"] == "state");
    assert!(
        state_rec
            .iter()
            .any(|r| r["event"] == "state" && r["stored_before"] == 1),
        "{state_rec:?}"
    );
    // Two on-time runs after the restart: whatever was missed is done.
    let second = d.wait_n("2 on-time starts", 2, |r| {
        is(r, "tick", "start") && r["lag_ms"].as_f64().is_some_and(|l| l < 900.0)
    });
    (first, second, last_exit)
}

#[test]
fn state_catches_up_missed_fires_after_kill_9() {
    let s = Scratch::new("state-catchup");
    let (first, second, last_exit) = kill_and_restart(
        &s,
        &["--misfire", "catchup", "--catchup-max", "100"],
        Duration::from_secs(4),
    );
    let (a, b) = (starts(&first, "tick"), starts(&second, "tick"));
    let set_b: std::collections::BTreeSet<&String> = b.iter().collect();
    assert_eq!(
        set_b.len(),
        b.len(),
        "an instant started twice after the restart: {b:?}"
    );
    // At least once: a run of the first daemon may start again only if the
    // kill could have caught it before its progress was written (the exit
    // waited for, or a later start); nothing older.
    for t in a.iter().filter(|t| set_b.contains(t)) {
        assert!(
            parse_time(t) >= last_exit,
            "{t} ran to its end before the kill and ran again: {a:?} / {b:?}"
        );
    }
    // Every second from the first daemon's last start to the second
    // daemon's first on-time start ran once across the two.
    let on_time = second
        .iter()
        .filter(|r| is(r, "tick", "start") && r["lag_ms"].as_f64().is_some_and(|l| l < 900.0))
        .filter_map(|r| r["scheduled"].as_str())
        .map(parse_time)
        .min()
        .unwrap();
    let union: std::collections::BTreeSet<chrono::DateTime<chrono::FixedOffset>> =
        a.iter().chain(&b).map(|t| parse_time(t)).collect();
    let mut t = last_exit;
    let mut missed = 0;
    while t <= on_time {
        assert!(union.contains(&t), "{t} never ran: {a:?} / {b:?}");
        if !a.iter().any(|x| parse_time(x) == t) {
            missed += 1;
        }
        t += chrono::Duration::seconds(1);
    }
    assert!(
        missed >= 3,
        "the daemon was down 4 s: {missed} missed fires ran"
    );
    let late = second.iter().filter(|r| r["event"] == "misfire").count();
    assert!(late >= 3, "{late} misfire records");
}

#[test]
fn state_with_misfire_skip_runs_none_of_the_missed_fires() {
    let s = Scratch::new("state-skip");
    let (first, second, _) = kill_and_restart(
        &s,
        &["--misfire", "skip", "--delivery", "at-most-once"],
        Duration::from_secs(4),
    );
    let (a, b) = (starts(&first, "tick"), starts(&second, "tick"));
    // At most once: no instant of the first run starts again, whatever the
    // kill interrupted.
    for t in &b {
        assert!(!a.contains(t), "{t} started in both runs");
    }
    // Skip: nothing late after the restart, only on-time starts.
    for r in second.iter().filter(|r| is(r, "tick", "start")) {
        let lag = r["lag_ms"].as_f64().unwrap();
        assert!(lag < 900.0, "a missed fire ran: {r}");
    }
    assert!(
        second.iter().any(|r| is(r, "tick", "skip")),
        "the missed fires are reported as skipped"
    );
}

#[test]
fn state_reload_that_removes_a_job_removes_it_from_the_state_file() {
    let s = Scratch::new("state-reload");
    let both = "# name: keep\n* * * * * * echo k\n# name: drop\n* * * * * * echo d\n";
    let ct = s.write("crontab", both);
    let state = s.path("state.db");
    let args = ["--state", state.to_str().unwrap()];
    let mut d = Daemon::start(&args, &ct);
    d.wait_for("a start of drop", |r| is(r, "drop", "start"));
    s.write("crontab", "# name: keep\n* * * * * * echo k\n");
    d.signal(libc::SIGHUP);
    let recs = d.wait_for("reload", |r| r["event"] == "reload");
    let reload = recs.iter().find(|r| r["event"] == "reload").unwrap();
    assert_eq!(reload["removed"], 1, "{reload}");
    assert_eq!(reload["kept"], 1, "{reload}");
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(), Some(0));
    drop(d);
    // Restart with the full file's jobs gone from it but for `keep`: the
    // store holds `keep` only (nothing to forget), and `drop` never runs.
    let d = Daemon::start(&args, &ct);
    let recs = d.wait_n("2 starts of keep", 2, |r| is(r, "keep", "start"));
    let st = recs.iter().find(|r| r["event"] == "state").unwrap();
    assert_eq!(st["stored_before"], 1, "{st}");
    assert!(!recs.iter().any(|r| r["event"] == "forgotten"), "{recs:?}");
    assert!(!recs.iter().any(|r| r["job"] == "drop"), "{recs:?}");
    drop(d);
    // And a start with a file that no longer has `keep` forgets it.
    s.write("crontab", "# name: other\n* * * * * * echo o\n");
    let d = Daemon::start(&args, &ct);
    let recs = d.wait_for("forgotten", |r| r["event"] == "forgotten");
    assert!(
        recs.iter()
            .any(|r| r["event"] == "forgotten" && r["name"] == "keep"),
        "{recs:?}"
    );
}

fn http_get(addr: &str, path: &str) -> String {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut s = String::new();
    c.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn metrics_endpoint_counts_runs_failures_and_skips() {
    let s = Scratch::new("metrics");
    let ct = s.write(
        "crontab",
        "# name: ok\n* * * * * * true\n# name: bad\n* * * * * * false\n# name: slow\n* * * * * * sleep 2.5\n",
    );
    let d = Daemon::start(
        &[
            "--metrics",
            "127.0.0.1:0",
            "--grace",
            "0s",
            "--kill-timeout",
            "1s",
        ],
        &ct,
    );
    let recs = d.wait_for("metrics address", |r| r["event"] == "metrics");
    let addr = recs.iter().find(|r| r["event"] == "metrics").unwrap()["addr"]
        .as_str()
        .unwrap()
        .to_owned();
    d.wait_for("a skip", |r| is(r, "slow", "skip"));
    d.wait_n("bad twice", 2, |r| is(r, "bad", "exit"));
    let page = http_get(&addr, "/metrics");
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("text/plain; version=0.0.4"), "{page}");
    let value = |series: &str| -> f64 {
        page.lines()
            .find_map(|l| l.strip_prefix(series).map(|v| v.trim().parse().unwrap()))
            .unwrap_or_else(|| panic!("no {series} in {page}"))
    };
    assert!(value("cronlane_job_runs_total{job=\"ok\"}") >= 2.0);
    assert_eq!(value("cronlane_job_failures_total{job=\"ok\"}"), 0.0);
    assert!(value("cronlane_job_failures_total{job=\"bad\"}") >= 2.0);
    assert!(value("cronlane_job_skips_total{job=\"slow\"}") >= 1.0);
    assert!(value("cronlane_job_last_success_timestamp_seconds{job=\"ok\"}") > 1.7e9);
    assert!(
        page.contains("# TYPE cronlane_job_duration_seconds summary"),
        "{page}"
    );
    assert!(
        page.contains("cronlane_job_lag_seconds_count{job=\"ok\"}"),
        "{page}"
    );
    assert_eq!(value("cronlane_jobs"), 3.0);
    let health = http_get(&addr, "/healthz");
    assert!(
        health.starts_with("HTTP/1.1 200 OK") && health.ends_with("ok\n"),
        "{health}"
    );
    assert!(http_get(&addr, "/nope").starts_with("HTTP/1.1 404"));
}

#[test]
fn as_pid_1_orphans_are_reaped() {
    // A new PID namespace makes the daemon PID 1 in it (needs unshare and
    // the right to use it; skipped, with a note, where that is missing).
    let probe = Command::new("unshare")
        .args(["-pf", "--mount-proc", "true"])
        .output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        eprintln!("skipped: `unshare -pf --mount-proc` is not available here");
        return;
    }
    let s = Scratch::new("pid1");
    let ct = s.write(
        "crontab",
        "# name: orphan-maker\n@reboot (sleep 1; touch orphan-done) & echo spawned\n\
         # name: zombies\n* * * * * * [ -e orphan-done ] && echo \"zombies=$(grep -s '^State:.*Z' /proc/[0-9]*/status | wc -l) pid1=$(cat /proc/1/comm)\"; true\n",
    );
    let d = Daemon::start_under(
        &["unshare", "-pf", "--mount-proc", "--kill-child=SIGTERM"],
        &[],
        &ct,
    );
    d.wait_for("spawned", |r| output(r, "orphan-maker", "spawned"));
    // The orphan (re-parented to PID 1, the daemon) exits after 1 s; the
    // daemon must reap it: a later check sees no zombie.
    let recs = d.wait_for("no zombie", |r| {
        output(r, "zombies", "zombies=0 pid1=cronlane")
    });
    assert!(recs.iter().any(|r| r["job"] == "zombies"));
}

#[test]
fn split_logs_puts_job_output_on_stdout_and_the_rest_on_stderr() {
    let s = Scratch::new("split");
    let ct = s.write(
        "crontab",
        "# name: talker\n@reboot echo out-line; echo err-line >&2\n",
    );
    let mut child = Command::new(BIN)
        .args(["run", "--split-logs"])
        .arg(&ct)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    // Text format: both lines of the job's output arrive on stdout.
    while lines.len() < 2 {
        let mut l = String::new();
        assert!(
            stdout.read_line(&mut l).unwrap() > 0,
            "stdout closed early: {lines:?}"
        );
        lines.push(l);
    }
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let out = lines.concat() + &rest;
    assert!(out.contains("[talker] stdout: out-line\n"), "{out}");
    assert!(out.contains("[talker] stderr: err-line\n"), "{out}");
    assert!(
        !out.contains("INFO"),
        "daemon messages stay off stdout: {out}"
    );
    assert!(err.contains("INFO  ready: "), "{err}");
    assert!(err.contains("INFO  [talker] start: echo out-line"), "{err}");
    assert!(err.contains("INFO  [talker] exit: exit 0"), "{err}");
    assert!(err.contains("stopped"), "{err}");
}
