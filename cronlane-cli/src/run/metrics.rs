//! `--metrics ADDR`: a tiny HTTP/1.0-style server on `std::net` with two
//! pages, `/metrics` (Prometheus text format 0.0.4) and `/healthz`.
//!
//! One thread accepts and answers connections one at a time (a scrape is a
//! few kilobytes); each request must arrive within 2 s. Only `GET` (and
//! `HEAD`) of those two paths are answered; everything else is a 404 or 405.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::run::jobs::Live;

/// Daemon-wide counters shown on `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct DaemonCounters {
    /// Reloads applied.
    pub(crate) reloads: AtomicU64,
    /// Reloads refused (a file with errors).
    pub(crate) reload_failures: AtomicU64,
}

/// Binds `addr` and serves in a background thread.
pub(crate) fn serve(
    addr: &str,
    live: Live,
    counters: Arc<DaemonCounters>,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("cronlane-metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = answer(stream, &live, &counters);
            }
        })?;
    Ok(local)
}

fn answer(mut stream: TcpStream, live: &Live, counters: &DaemonCounters) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    while len < buf.len() {
        let n = stream.read(&mut buf[len..])?;
        if n == 0 {
            break;
        }
        len += n;
        if buf[..len].windows(4).any(|w| w == b"\r\n\r\n")
            || buf[..len].windows(2).any(|w| w == b"\n\n")
        {
            break;
        }
    }
    let request = String::from_utf8_lossy(&buf[..len]);
    let mut words = request.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            render(live, counters),
        ),
        ("GET" | "HEAD", "/healthz") => ("200 OK", "text/plain; charset=utf-8", "ok\n".into()),
        (_, "/metrics" | "/healthz") => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "GET only\n".into(),
        ),
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: try /metrics or /healthz\n".into(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if method != "HEAD" {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()
}

/// A label value in the exposition format's escaping.
fn label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// The `/metrics` page.
pub(crate) fn render(live: &Live, counters: &DaemonCounters) -> String {
    let mut jobs: Vec<(String, crate::run::jobs::JobStats)> = live
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .values()
        .map(|j| (j.tag().to_string(), j.stats()))
        .collect();
    jobs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    type Get = fn(&crate::run::jobs::JobStats) -> Option<f64>;
    let families: [(&str, &str, &str, Get); 11] = [
        (
            "cronlane_job_runs_total",
            "counter",
            "Fires whose process was started (or tried to be).",
            |s| Some(s.runs as f64),
        ),
        (
            "cronlane_job_failures_total",
            "counter",
            "Runs that did not exit 0 (timeouts, failed starts).",
            |s| Some(s.failures as f64),
        ),
        (
            "cronlane_job_skips_total",
            "counter",
            "Fires skipped (previous run still going, or late).",
            |s| Some(s.skips as f64),
        ),
        (
            "cronlane_job_duration_seconds_sum",
            "counter",
            "Run time of the job's processes.",
            |s| Some(s.duration_sum),
        ),
        (
            "cronlane_job_duration_seconds_count",
            "counter",
            "Runs that ended.",
            |s| Some(s.runs.saturating_sub(s.running) as f64),
        ),
        (
            "cronlane_job_last_duration_seconds",
            "gauge",
            "Run time of the last run that ended.",
            |s| Some(s.duration_last),
        ),
        (
            "cronlane_job_lag_seconds_sum",
            "counter",
            "Start lag after the scheduled instant.",
            |s| Some(s.lag_sum),
        ),
        ("cronlane_job_lag_seconds_count", "counter", "", |s| {
            Some(s.runs as f64)
        }),
        (
            "cronlane_job_last_lag_seconds",
            "gauge",
            "Start lag of the last run.",
            |s| Some(s.lag_last),
        ),
        (
            "cronlane_job_last_success_timestamp_seconds",
            "gauge",
            "Unix time the last successful run ended.",
            |s| s.last_success.map(|t| t.timestamp_millis() as f64 / 1000.0),
        ),
        (
            "cronlane_job_running",
            "gauge",
            "Processes of the job running now.",
            |s| Some(s.running as f64),
        ),
    ];
    for (name, kind, help, get) in families {
        // `_sum` and `_count` are the two series of one summary.
        if let Some(base) = name.strip_suffix("_sum") {
            let _ = writeln!(out, "# HELP {base} {help}\n# TYPE {base} summary");
        } else if !name.ends_with("_count") {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        }
        for (tag, st) in &jobs {
            if let Some(v) = get(st) {
                out.push_str(name);
                out.push_str("{job=\"");
                label(&mut out, tag);
                let _ = writeln!(out, "\"}} {v}");
            }
        }
    }
    let _ = writeln!(
        out,
        "# HELP cronlane_jobs Jobs scheduled.\n# TYPE cronlane_jobs gauge\ncronlane_jobs {}",
        jobs.len()
    );
    let _ = writeln!(
        out,
        "# HELP cronlane_reloads_total Reloads applied.\n# TYPE cronlane_reloads_total counter\ncronlane_reloads_total {}",
        counters.reloads.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP cronlane_reload_failures_total Reloads refused (file with errors).\n# TYPE cronlane_reload_failures_total counter\ncronlane_reload_failures_total {}",
        counters.reload_failures.load(Ordering::Relaxed)
    );
    out
}
