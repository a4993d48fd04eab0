//! The options of `cronlane run`, parsed by hand like the other commands.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cronlane::{Delivery, Misfire};

use crate::zone::{parse_after, parse_zone};

/// What `cronlane run` was asked to do.
#[derive(Debug, Clone)]
pub(crate) struct RunOptions {
    /// The crontab file.
    pub(crate) crontab: PathBuf,
    /// `--test`: check and print, run nothing.
    pub(crate) test: bool,
    /// `--json`: one JSON object per log line.
    pub(crate) json: bool,
    /// `--split-logs`: job output on stdout, daemon messages on stderr.
    pub(crate) split_logs: bool,
    /// `--overlapping`: a job may start while its previous run goes on.
    pub(crate) overlapping: bool,
    /// `--timeout`: stop a run that takes longer.
    pub(crate) timeout: Option<Duration>,
    /// `--kill-timeout`: SIGTERM to SIGKILL.
    pub(crate) kill_timeout: Duration,
    /// `--grace`: how long a stop waits for running jobs.
    pub(crate) grace: Duration,
    /// `--metrics ADDR`.
    pub(crate) metrics: Option<String>,
    /// `--tz`: the zone of lines above any `CRON_TZ=`/`TZ=`.
    pub(crate) tz: Tz,
    /// `--max-line`: longest output line kept, in bytes.
    pub(crate) max_line: usize,
    /// `--state FILE`: the embedded durable store.
    pub(crate) state: Option<PathBuf>,
    /// `--postgres URL`: the cluster backend (each fire once across the
    /// daemons sharing the database).
    pub(crate) postgres: Option<String>,
    /// `--pg-schema NAME`: the schema of the cluster tables (default the
    /// backend's, `sched`).
    pub(crate) pg_schema: Option<String>,
    /// `--misfire`: what to do with fires missed while the daemon was
    /// down (with `--state`) or late (a host suspend, a stall).
    pub(crate) misfire: Misfire,
    /// `--delivery`: when a durable job's fire counts as done.
    pub(crate) delivery: Delivery,
    /// Hidden `--now`: pretend the clock reads this at start (tests; not a
    /// stable interface).
    pub(crate) now: Option<DateTime<Utc>>,
}

/// Default `--kill-timeout`.
pub(crate) const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `--grace`.
pub(crate) const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// Default `--catchup-max`.
pub(crate) const DEFAULT_CATCHUP_MAX: u32 = 10;
/// Default `--max-line`.
pub(crate) const DEFAULT_MAX_LINE: usize = 16 * 1024;

/// Parses the words after `run`. `Ok(None)` means `--help` was asked for.
pub(crate) fn parse(rest: &[String]) -> Result<Option<RunOptions>, String> {
    let mut o = RunOptions {
        crontab: PathBuf::new(),
        test: false,
        json: false,
        split_logs: false,
        overlapping: false,
        timeout: None,
        kill_timeout: DEFAULT_KILL_TIMEOUT,
        grace: DEFAULT_GRACE,
        metrics: None,
        tz: Tz::UTC,
        max_line: DEFAULT_MAX_LINE,
        state: None,
        postgres: None,
        pg_schema: None,
        misfire: Misfire::FireOnce,
        delivery: Delivery::AtLeastOnce,
        now: None,
    };
    let mut catchup_max: Option<u32> = None;
    let mut misfire: Option<String> = None;
    let mut files: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let arg = rest[i].as_str();
        i += 1;
        if arg == "--" {
            files.extend(rest[i..].iter().map(String::as_str));
            break;
        }
        if !arg.starts_with('-') || arg == "-" {
            files.push(arg);
            continue;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (arg, None),
        };
        match flag {
            "-h" | "--help" => return Ok(None),
            "--test" | "--json" | "--split-logs" | "--overlapping" => {
                if inline.is_some() {
                    return Err(format!("{flag} takes no value"));
                }
                match flag {
                    "--test" => o.test = true,
                    "--json" => o.json = true,
                    "--split-logs" => o.split_logs = true,
                    _ => o.overlapping = true,
                }
                continue;
            }
            "--timeout" | "--kill-timeout" | "--grace" | "--metrics" | "--tz" | "--max-line"
            | "--now" | "--state" | "--postgres" | "--pg-schema" | "--misfire"
            | "--catchup-max" | "--delivery" => {}
            _ => return Err(format!("unknown option {arg:?}")),
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let v = rest.get(i).ok_or_else(|| format!("{flag} needs a value"))?;
                i += 1;
                v.as_str()
            }
        };
        match flag {
            "--timeout" => o.timeout = Some(duration(flag, value)?),
            "--kill-timeout" => o.kill_timeout = duration(flag, value)?,
            "--grace" => o.grace = duration(flag, value)?,
            "--metrics" => o.metrics = Some(value.to_owned()),
            "--tz" => o.tz = parse_zone(value)?,
            "--max-line" => {
                o.max_line = value
                    .parse()
                    .ok()
                    .filter(|n| (80..=64 * 1024 * 1024).contains(n))
                    .ok_or_else(|| {
                        format!("--max-line {value:?} is not a byte count from 80 to 67108864")
                    })?
            }
            "--now" => {
                o.now = Some(parse_after(value, &o.tz).map_err(|e| e.replace("--after", "--now"))?)
            }
            "--state" => {
                if value.is_empty() {
                    return Err("--state needs a file name".into());
                }
                o.state = Some(PathBuf::from(value))
            }
            "--misfire" => misfire = Some(value.to_owned()),
            "--catchup-max" => {
                catchup_max = Some(
                    value
                        .parse()
                        .ok()
                        .filter(|n| (1..=1_000_000).contains(n))
                        .ok_or_else(|| {
                            format!("--catchup-max {value:?} is not a count from 1 to 1000000")
                        })?,
                )
            }
            "--delivery" => {
                o.delivery = match value {
                    "at-least-once" => Delivery::AtLeastOnce,
                    "at-most-once" => Delivery::AtMostOnce,
                    _ => {
                        return Err(format!(
                            "--delivery {value:?}: use at-least-once (the default) or at-most-once"
                        ))
                    }
                }
            }
            "--postgres" => {
                if value.is_empty() {
                    return Err("--postgres needs a URL (postgres://user@host:5432/db)".into());
                }
                o.postgres = Some(value.to_owned())
            }
            "--pg-schema" => {
                let plain = value
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                    && value.len() <= 48
                    && value
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !plain {
                    return Err(format!(
                        "--pg-schema {value:?} is not a plain lower-case identifier \
                         (a-z, 0-9, _; at most 48 characters)"
                    ));
                }
                o.pg_schema = Some(value.to_owned())
            }
            _ => unreachable!("every option with a value is listed above"),
        }
    }
    if o.state.is_some() && o.postgres.is_some() {
        return Err(
            "--state and --postgres cannot be used together: --state FILE keeps the \
                    jobs of one daemon in a file, --postgres URL shares them between daemons \
                    in PostgreSQL; choose one"
                .into(),
        );
    }
    if o.pg_schema.is_some() && o.postgres.is_none() {
        return Err("--pg-schema goes with --postgres URL".into());
    }
    o.misfire = match (misfire.as_deref(), catchup_max) {
        (None | Some("once"), None) => Misfire::FireOnce,
        (Some("skip"), None) => Misfire::Skip,
        (Some("catchup"), max) => Misfire::CatchUp {
            max: max.unwrap_or(DEFAULT_CATCHUP_MAX),
        },
        (m @ (None | Some("once" | "skip")), Some(_)) => {
            return Err(format!(
                "--catchup-max goes with --misfire catchup (not {})",
                m.unwrap_or("the default, once")
            ))
        }
        (Some(other), _) => {
            return Err(format!(
                "--misfire {other:?}: use skip, once (the default) or catchup"
            ))
        }
    };
    match files.as_slice() {
        [one] => o.crontab = PathBuf::from(one),
        [] => return Err("missing crontab file".into()),
        more => {
            return Err(format!(
                "one crontab file only (got {}: {})",
                more.len(),
                more.join(" ")
            ))
        }
    }
    Ok(Some(o))
}

/// `30s`, `5m`, `1h`, `250ms`, `1h30m`, or a plain number of seconds.
pub(crate) fn duration(flag: &str, value: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{flag} {value:?} is not a duration (examples: 30s, 5m, 1h30m, 250ms, or seconds: 10)"
        )
    };
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = value;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(n * scale).map_err(|_| bad())?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn durations() {
        assert_eq!(duration("--t", "30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("--t", "1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("--t", "250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("--t", "2.5"), Ok(Duration::from_millis(2500)));
        for bad in ["", "5x", "s", "-1", "1h-"] {
            assert!(duration("--t", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn flags_and_the_file() {
        let o = parse(&args(
            "--json --timeout=5s crontab --grace 1m --overlapping",
        ))
        .unwrap()
        .unwrap();
        assert!(o.json && o.overlapping && !o.test);
        assert_eq!(o.timeout, Some(Duration::from_secs(5)));
        assert_eq!(o.grace, Duration::from_secs(60));
        assert_eq!(o.crontab, PathBuf::from("crontab"));
        let o = parse(&args("--state x.db --misfire catchup crontab"))
            .unwrap()
            .unwrap();
        assert_eq!(o.state, Some(PathBuf::from("x.db")));
        assert_eq!(o.misfire, Misfire::CatchUp { max: 10 });
        let o = parse(&args(
            "--misfire=catchup --catchup-max 3 --delivery at-most-once c",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(o.misfire, Misfire::CatchUp { max: 3 });
        assert_eq!(o.delivery, Delivery::AtMostOnce);
        assert_eq!(
            parse(&args("c")).unwrap().unwrap().misfire,
            Misfire::FireOnce
        );
        assert_eq!(
            parse(&args("--misfire skip c")).unwrap().unwrap().misfire,
            Misfire::Skip
        );
        assert!(parse(&args("--misfire never c")).is_err());
        assert!(parse(&args("--catchup-max 3 c")).is_err());
        assert!(parse(&args("--catchup-max 0 --misfire catchup c")).is_err());
        assert!(parse(&args("--delivery twice c")).is_err());
        let o = parse(&args("--postgres pg://x --pg-schema=jobs_1 crontab"))
            .unwrap()
            .unwrap();
        assert_eq!(o.postgres.as_deref(), Some("pg://x"));
        assert_eq!(o.pg_schema.as_deref(), Some("jobs_1"));
        assert!(parse(&args("--postgres pg://x --state s crontab"))
            .unwrap_err()
            .contains("cannot be used together"));
        assert!(parse(&args("--pg-schema s crontab"))
            .unwrap_err()
            .contains("goes with --postgres"));
        for bad in ["Jobs", "1x", "a-b", ""] {
            assert!(parse(&[
                "--postgres".into(),
                "pg://x".into(),
                "--pg-schema".into(),
                bad.into(),
                "c".into()
            ])
            .is_err());
        }
        assert!(parse(&args("a b")).unwrap_err().contains("one crontab"));
        assert!(parse(&args("--bogus a"))
            .unwrap_err()
            .contains("unknown option"));
        assert!(parse(&args("--json=1 a")).is_err());
        assert!(parse(&args("--help")).unwrap().is_none());
    }
}
