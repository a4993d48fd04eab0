//! Reading a crontab file into [`Entry`] values, or a [`CrontabError`] that
//! names the file, line and column.
//!
//! The grammar, line by line (leading and trailing blanks ignored):
//!
//! * blank lines and `#` comments; `# name: NAME` names the next job;
//! * `NAME=value` (also `NAME = value`, value optionally in `'…'` or
//!   `"…"`): an environment variable for the jobs below it, like cron.
//!   `SHELL` picks the shell, `CRON_TZ` and `TZ` the zone the schedules
//!   below are evaluated in (`TZ` is also passed to the jobs, as any line);
//! * `@reboot COMMAND`: runs once when the daemon starts;
//! * `@hourly COMMAND` (and the other macros of `docs/cron.md`);
//! * `SEC MIN HOUR DOM MON DOW COMMAND` (6 fields, leading seconds) or
//!   `MIN HOUR DOM MON DOW COMMAND` (5 fields, Vixie/Debian semantics).
//!   The 6-field reading is tried first and kept if it is a valid
//!   expression; otherwise the line is read with 5 fields. (`0 * * * * 7z
//!   a x.7z` is a 5-field line: `7z` is not a day of week.)
//!
//! Parsing is pure: no clock, no processes. A file is accepted whole or not
//! at all (the first error is returned).

use std::fmt;
use std::path::Path;

use chrono_tz::Tz;
use cronlane::cron::{CronError, CronExpr};

use crate::zone::parse_zone;

/// When a job runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum When {
    /// A cron expression, evaluated in `tz`.
    Cron {
        /// The parsed expression.
        expr: CronExpr,
        /// The zone from `CRON_TZ=`/`TZ=` above the line (default UTC, or
        /// the daemon's `--tz`).
        tz: Tz,
    },
    /// `@reboot`: once, when the daemon starts.
    Reboot,
}

/// One job line of a crontab, with everything above it that applies.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The 1-based line number.
    pub(crate) line: usize,
    /// The `# name:` comment right above the job, if any.
    pub(crate) name: Option<String>,
    /// The schedule.
    pub(crate) when: When,
    /// The command, as written (given to the shell with `-c`).
    pub(crate) command: String,
    /// The shell (`SHELL=` above the line, default `/bin/sh`).
    pub(crate) shell: String,
    /// The environment lines above the job, in file order (a later line of
    /// the same name wins).
    pub(crate) env: Vec<(String, String)>,
}

impl Entry {
    /// The tag shown in logs and metrics: the `# name:` or `line N`.
    pub(crate) fn tag(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("line{}", self.line),
        }
    }

    /// What makes two entries the same job across a reload: everything but
    /// the line number (a job that only moved keeps its state).
    pub(crate) fn identity(&self) -> String {
        let when = match &self.when {
            When::Cron { expr, tz } => format!("{} {}", expr.as_str(), tz.name()),
            When::Reboot => "@reboot".into(),
        };
        let env: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!(
            "{when}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
            self.name.as_deref().unwrap_or(""),
            self.shell,
            self.command,
            env.join("\u{0}")
        )
    }
}

/// A crontab that cannot be used: where, and why.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CrontabError {
    /// The file as given on the command line.
    pub(crate) file: String,
    /// 1-based line.
    pub(crate) line: usize,
    /// 1-based column (in characters).
    pub(crate) column: usize,
    /// What was wrong.
    pub(crate) kind: CrontabErrorKind,
}

/// The reasons a crontab line is rejected.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CrontabErrorKind {
    /// The file could not be read.
    Read(String),
    /// The schedule did not parse (the crate's error, with its caret).
    Cron(CronError),
    /// A schedule with no command after it.
    MissingCommand,
    /// `CRON_TZ=`/`TZ=` names no zone.
    UnknownZone(String),
    /// A line that is neither a comment, an environment line nor a job.
    NotAJob(String),
    /// A quoted value without its closing quote.
    UnclosedQuote,
    /// `# name:` with nothing after it, or used twice.
    BadName(String),
    /// A schedule that never fires again (`0 0 30 2 *`).
    NeverFires(String),
}

impl fmt::Display for CrontabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let CrontabErrorKind::Read(e) = &self.kind {
            return write!(f, "{}: cannot read the crontab: {e}", self.file);
        }
        write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        match &self.kind {
            CrontabErrorKind::Read(_) => Ok(()),
            CrontabErrorKind::Cron(e) => write!(f, "{e}"),
            CrontabErrorKind::MissingCommand => f.write_str("a schedule with no command after it"),
            CrontabErrorKind::UnknownZone(z) => write!(
                f,
                "unknown time zone {z:?} (use an IANA name such as Europe/Berlin)"
            ),
            CrontabErrorKind::NotAJob(l) => write!(
                f,
                "not a job, an environment line (NAME=value) or a comment: {l:?}"
            ),
            CrontabErrorKind::UnclosedQuote => f.write_str("a quoted value has no closing quote"),
            CrontabErrorKind::BadName(why) => write!(f, "bad `# name:` comment: {why}"),
            CrontabErrorKind::NeverFires(expr) => {
                write!(f, "`{expr}` never fires again: no date matches it")
            }
        }
    }
}

impl std::error::Error for CrontabError {}

/// The parsed file: its jobs in file order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Crontab {
    pub(crate) entries: Vec<Entry>,
}

/// Reads and parses `path`; `default_tz` applies until a `CRON_TZ=`/`TZ=`.
pub(crate) fn load(path: &Path, default_tz: Tz) -> Result<Crontab, CrontabError> {
    let file = path.display().to_string();
    let text = std::fs::read(path).map_err(|e| CrontabError {
        file: file.clone(),
        line: 0,
        column: 0,
        kind: CrontabErrorKind::Read(e.to_string()),
    })?;
    parse(&file, &String::from_utf8_lossy(&text), default_tz)
}

/// Parses crontab `text`; `file` is used in error messages.
pub(crate) fn parse(file: &str, text: &str, default_tz: Tz) -> Result<Crontab, CrontabError> {
    let mut entries = Vec::new();
    let mut env: Vec<(String, String)> = Vec::new();
    let mut shell = String::from("/bin/sh");
    let mut tz = default_tz;
    let mut pending_name: Option<String> = None;
    let mut names = std::collections::HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let err = |byte_col: usize, kind| CrontabError {
            file: file.to_owned(),
            line: line_no,
            column: raw[..byte_col.min(raw.len())].chars().count() + 1,
            kind,
        };
        let start = raw.len() - raw.trim_start().len();
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            if let Some(name) = comment.trim_start().strip_prefix("name:") {
                let name = name.trim();
                if name.is_empty() || name.chars().any(|c| c.is_control() || c == '"') {
                    return Err(err(
                        start,
                        CrontabErrorKind::BadName(
                            "a name is one or more characters, without quotes".into(),
                        ),
                    ));
                }
                if !names.insert(name.to_owned()) {
                    return Err(err(
                        start,
                        CrontabErrorKind::BadName(format!("{name:?} names another job above")),
                    ));
                }
                pending_name = Some(name.to_owned());
            }
            continue;
        }
        let first = line.as_bytes()[0];
        if first.is_ascii_alphabetic() || first == b'_' {
            let (name, value) = env_line(line).map_err(|(at, kind)| err(start + at, kind))?;
            let value_col = start + line.find('=').map_or(0, |p| p + 1);
            match name.as_str() {
                "SHELL" => shell = value.clone(),
                "CRON_TZ" | "TZ" => {
                    tz = if value.is_empty() {
                        default_tz
                    } else {
                        let v = value.strip_prefix(':').unwrap_or(&value);
                        parse_zone(v).map_err(|_| {
                            let at = value_col
                                + (raw[value_col..].len() - raw[value_col..].trim_start().len());
                            err(at, CrontabErrorKind::UnknownZone(value.clone()))
                        })?
                    }
                }
                _ => {}
            }
            if name != "CRON_TZ" {
                env.retain(|(k, _)| *k != name);
                env.push((name, value));
            }
            continue;
        }
        let (when, command_at) = schedule(line, tz).map_err(|(at, kind)| {
            let mut e = err(start + at, kind);
            if let CrontabErrorKind::Cron(c) = &e.kind {
                // The crate counts characters into the expression, which
                // starts the line.
                e.column += c.position();
            }
            e
        })?;
        let command = line[command_at..].trim().to_owned();
        if command.is_empty() {
            return Err(err(start + line.len(), CrontabErrorKind::MissingCommand));
        }
        entries.push(Entry {
            line: line_no,
            name: pending_name.take(),
            when,
            command,
            shell: shell.clone(),
            env: env.clone(),
        });
    }
    Ok(Crontab { entries })
}

/// `NAME=value` → `(NAME, value)`; errors carry a byte offset into `line`.
fn env_line(line: &str) -> Result<(String, String), (usize, CrontabErrorKind)> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(line.len());
    let rest = line[name_end..].trim_start();
    let Some(value) = rest.strip_prefix('=') else {
        return Err((0, CrontabErrorKind::NotAJob(line.to_owned())));
    };
    let value = value.trim();
    let value = match value.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let inner = &value[1..];
            match inner.rfind(q) {
                Some(end) if inner[end + 1..].trim().is_empty() => inner[..end].to_owned(),
                _ => {
                    let at = line.len() - value.len();
                    return Err((at, CrontabErrorKind::UnclosedQuote));
                }
            }
        }
        _ => value.to_owned(),
    };
    Ok((line[..name_end].to_owned(), value))
}

/// The schedule at the start of `line` and the byte offset where the
/// command starts.
fn schedule(line: &str, tz: Tz) -> Result<(When, usize), (usize, CrontabErrorKind)> {
    // Byte ranges of the first 7 whitespace-separated words.
    let mut words = Vec::new();
    let mut rest = 0;
    while words.len() < 7 {
        let tail = &line[rest..];
        let skip = tail.len() - tail.trim_start().len();
        let from = rest + skip;
        if from >= line.len() {
            break;
        }
        let len = line[from..]
            .find(char::is_whitespace)
            .unwrap_or(line.len() - from);
        words.push((from, from + len));
        rest = from + len;
    }
    let (w0s, w0e) = words[0];
    if line[w0s..w0e].eq_ignore_ascii_case("@reboot") {
        return Ok((When::Reboot, w0e));
    }
    let cron = |n: usize| -> Option<Result<(When, usize), CronError>> {
        let &(_, end) = words.get(n - 1)?;
        Some(CronExpr::parse(&line[..end]).map(|expr| (When::Cron { expr, tz }, end)))
    };
    if line.starts_with('@') {
        return match cron(1) {
            Some(Ok(found)) => Ok(found),
            Some(Err(e)) => Err((0, CrontabErrorKind::Cron(e))),
            None => Err((line.len(), CrontabErrorKind::MissingCommand)),
        };
    }
    if words.len() >= 7 {
        if let Some(Ok(found)) = cron(6) {
            return Ok(found);
        }
    }
    match cron(5) {
        Some(Ok(found)) if words.len() > 5 => Ok(found),
        Some(Ok(_)) => Err((line.len(), CrontabErrorKind::MissingCommand)),
        Some(Err(e)) => Err((0, CrontabErrorKind::Cron(e))),
        // Fewer than 5 words: let the crate say which field is missing.
        None => match CronExpr::parse(line) {
            Err(e) => Err((0, CrontabErrorKind::Cron(e))),
            Ok(_) => Err((line.len(), CrontabErrorKind::MissingCommand)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<Entry> {
        parse("crontab", text, Tz::UTC).unwrap().entries
    }

    fn bad(text: &str) -> CrontabError {
        parse("crontab", text, Tz::UTC).unwrap_err()
    }

    #[test]
    fn comments_env_names_and_fields() {
        let e = ok("# hello\n\nFOO=bar\n# name: five\n*/5 * * * * echo $FOO\n\
                    BAZ = 'a b'\nSHELL=/bin/bash\n*/2 * * * * * echo six\n@hourly  date\n@reboot echo up\n");
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].name.as_deref(), Some("five"));
        assert_eq!(e[0].tag(), "five");
        assert_eq!(e[0].command, "echo $FOO");
        assert_eq!(e[0].shell, "/bin/sh");
        assert_eq!(e[0].env, vec![("FOO".into(), "bar".into())]);
        assert_eq!(e[1].tag(), "line8");
        assert_eq!(e[1].command, "echo six");
        assert_eq!(e[1].shell, "/bin/bash");
        assert!(e[1].env.contains(&("BAZ".into(), "a b".into())));
        match &e[1].when {
            When::Cron { expr, .. } => assert_eq!(expr.as_str(), "*/2 * * * * *"),
            other => panic!("{other:?}"),
        }
        assert_eq!(e[2].command, "date");
        assert_eq!(e[3].when, When::Reboot);
        assert_eq!(e[3].command, "echo up");
    }

    #[test]
    fn five_fields_when_the_sixth_word_is_not_a_weekday() {
        let e = ok("0 * * * * 7z a x.7z\n0 0 * * * 1 echo six-field\n");
        assert_eq!(e[0].command, "7z a x.7z");
        assert_eq!(e[1].command, "echo six-field");
    }

    #[test]
    fn cron_tz_applies_below() {
        let e = ok("* * * * * a\nCRON_TZ=europe/berlin\n* * * * * b\nTZ=Asia/Tokyo\n* * * * * c\n");
        let tz = |i: usize| match &e[i].when {
            When::Cron { tz, .. } => *tz,
            When::Reboot => Tz::UTC,
        };
        assert_eq!(tz(0), Tz::UTC);
        assert_eq!(tz(1), chrono_tz::Europe::Berlin);
        assert_eq!(tz(2), chrono_tz::Asia::Tokyo);
        assert!(!e[1].env.iter().any(|(k, _)| k == "CRON_TZ"));
        assert!(e[2].env.contains(&("TZ".into(), "Asia/Tokyo".into())));
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = bad("# ok\n  60 * * * * echo\n");
        assert_eq!((e.line, e.column), (2, 3), "{e}");
        let shown = e.to_string();
        assert!(
            shown.starts_with("crontab:2:3: invalid cron expression: minute"),
            "{shown}"
        );
        assert!(shown.contains('^'), "{shown}");
        let e = bad("* * * * 8 echo\n");
        assert_eq!((e.line, e.column), (1, 9), "{e}");
        let e = bad("* * * * *\n");
        assert_eq!(e.kind, CrontabErrorKind::MissingCommand);
        let e = bad("CRON_TZ=Mars/Base\n");
        assert_eq!((e.line, e.column), (1, 9));
        let e = bad("hello world\n");
        assert!(matches!(e.kind, CrontabErrorKind::NotAJob(_)));
        let e = bad("@every 5m echo\n");
        assert!(matches!(e.kind, CrontabErrorKind::Cron(_)));
        let e = bad("X='abc\n");
        assert_eq!(e.kind, CrontabErrorKind::UnclosedQuote);
        let e = bad("* *\n");
        assert!(matches!(e.kind, CrontabErrorKind::Cron(_)), "{e}");
        let e = bad("# name: a\n* * * * * x\n# name: a\n* * * * * y\n");
        assert!(matches!(e.kind, CrontabErrorKind::BadName(_)));
    }

    #[test]
    fn identity_ignores_the_line_number() {
        let a = ok("* * * * * echo\n");
        let b = ok("\n\n* * * * * echo\n");
        assert_eq!(a[0].identity(), b[0].identity());
        let c = ok("X=1\n* * * * * echo\n");
        assert_ne!(a[0].identity(), c[0].identity());
    }
}
