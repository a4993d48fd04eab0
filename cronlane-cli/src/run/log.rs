//! The daemon's log: one line per record, as text or JSON (`--json`), on
//! stdout, or with `--split-logs` job output on stdout and daemon messages
//! on stderr.
//!
//! Ground rules: every record is formatted into one `String` first and
//! written with a single `write_all` under the stream's lock, so records
//! from different jobs never interleave inside a line. Write errors (a
//! closed pipe) are ignored: the log must never stop a job.

use std::fmt::Write as _;
use std::io::Write;

use chrono::{SecondsFormat, Utc};

/// How bad a daemon message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// A value in a record's fields.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Str(String),
    Int(i64),
    /// Printed with 3 decimals.
    Float(f64),
    Bool(bool),
}

impl From<&str> for Val {
    fn from(s: &str) -> Val {
        Val::Str(s.to_owned())
    }
}
impl From<String> for Val {
    fn from(s: String) -> Val {
        Val::Str(s)
    }
}
impl From<i64> for Val {
    fn from(n: i64) -> Val {
        Val::Int(n)
    }
}
impl From<u32> for Val {
    fn from(n: u32) -> Val {
        Val::Int(i64::from(n))
    }
}
impl From<u64> for Val {
    fn from(n: u64) -> Val {
        Val::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}
impl From<f64> for Val {
    fn from(n: f64) -> Val {
        Val::Float(n)
    }
}
impl From<bool> for Val {
    fn from(b: bool) -> Val {
        Val::Bool(b)
    }
}

/// Which output stream of a job a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// The log. Shared by reference (`Arc<Log>`) between all threads.
#[derive(Debug)]
pub(crate) struct Log {
    json: bool,
    split: bool,
}

impl Log {
    /// A log in JSON (else text), split (job output on stdout, the rest on
    /// stderr) or not (everything on stdout).
    pub(crate) fn new(json: bool, split: bool) -> Log {
        Log { json, split }
    }

    /// A daemon message: `event` is a short word (`start`, `exit`, `skip`,
    /// `reload`, …), `msg` a sentence for people.
    pub(crate) fn event(
        &self,
        level: Level,
        job: Option<&str>,
        event: &str,
        msg: &str,
        fields: &[(&str, Val)],
    ) {
        let mut out = String::with_capacity(128);
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        if self.json {
            out.push_str("{\"time\":\"");
            out.push_str(&now);
            out.push_str("\",\"level\":\"");
            out.push_str(level.name());
            out.push('"');
            if let Some(job) = job {
                out.push_str(",\"job\":");
                json_str(&mut out, job);
            }
            out.push_str(",\"event\":");
            json_str(&mut out, event);
            out.push_str(",\"msg\":");
            json_str(&mut out, msg);
            for (k, v) in fields {
                out.push(',');
                json_str(&mut out, k);
                out.push(':');
                json_val(&mut out, v);
            }
            out.push_str("}\n");
        } else {
            let _ = write!(out, "{now} {:<5}", level.name().to_ascii_uppercase());
            if let Some(job) = job {
                let _ = write!(out, " [{job}]");
            }
            let _ = write!(out, " {event}: {msg}");
            for (k, v) in fields {
                let _ = write!(out, " {k}=");
                match v {
                    Val::Str(s)
                        if s.is_empty() || s.contains(|c: char| c.is_whitespace() || c == '"') =>
                    {
                        json_str(&mut out, s)
                    }
                    Val::Str(s) => out.push_str(s),
                    other => json_val(&mut out, other),
                }
            }
            out.push('\n');
        }
        self.write(false, &out);
    }

    /// One line of a job's output (without its newline).
    pub(crate) fn output(&self, job: &str, stream: Stream, line: &str, truncated: bool) {
        let mut out = String::with_capacity(line.len() + 64);
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        if self.json {
            out.push_str("{\"time\":\"");
            out.push_str(&now);
            out.push_str("\",\"level\":\"info\",\"job\":");
            json_str(&mut out, job);
            out.push_str(",\"stream\":\"");
            out.push_str(stream.name());
            out.push_str("\",\"line\":");
            json_str(&mut out, line);
            if truncated {
                out.push_str(",\"truncated\":true");
            }
            out.push_str("}\n");
        } else {
            let _ = write!(out, "{now} [{job}] {}: {line}", stream.name());
            if truncated {
                out.push_str(" [cronlane: line truncated]");
            }
            out.push('\n');
        }
        self.write(true, &out);
    }

    fn write(&self, job_output: bool, record: &str) {
        if self.split && !job_output {
            let _ = std::io::stderr().lock().write_all(record.as_bytes());
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(record.as_bytes());
            let _ = out.flush();
        }
    }
}

/// Appends `s` as a JSON string.
pub(crate) fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_val(out: &mut String, v: &Val) {
    match v {
        Val::Str(s) => json_str(out, s),
        Val::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Val::Float(x) if x.is_finite() => {
            let _ = write!(out, "{x:.3}");
        }
        Val::Float(_) => out.push_str("null"),
        Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
    }
}

#[cfg(test)]
mod tests {
    use super::json_str;

    #[test]
    fn json_strings_escape_controls_and_quotes() {
        let mut s = String::new();
        json_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
    }
}
