//! Hand-rolled argument parsing for the `cronlane` command.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cronlane::cron::Dialect;

/// What the user asked for.
#[derive(Debug)]
pub(crate) enum Command {
    /// Print the next fire times.
    Next {
        expr: String,
        dialect: Dialect,
        tz: Tz,
        after: Option<DateTime<Utc>>,
        count: usize,
    },
    /// Print the expression in plain English.
    Explain { expr: String, dialect: Dialect },
    /// Print usage.
    Help,
}

pub(crate) const USAGE: &str = "\
usage:
  cronlane next [--tz ZONE] [--after RFC3339] [-n N] [--dialect vixie|quartz] EXPR
  cronlane explain [--dialect vixie|quartz] EXPR

  EXPR may be one quoted argument or several words (`cronlane next 0 9 '*' '*' MON-FRI`).

next prints N fire times (default 5) strictly after --after (default: now), in
RFC 3339 with the zone's offset (--tz, default UTC), one per line.
exit status: 0 ok, 2 invalid expression or arguments, 3 the expression never fires";

/// Largest `-n` accepted.
const MAX_COUNT: usize = 100_000;

/// Parses the arguments after the program name.
pub(crate) fn parse(args: &[String]) -> Result<Command, String> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err("missing command".into());
    };
    let next = match cmd.as_str() {
        "next" => true,
        "explain" => false,
        "help" | "-h" | "--help" => return Ok(Command::Help),
        other => return Err(format!("unknown command {other:?}")),
    };
    let mut dialect = Dialect::Vixie;
    let mut tz = Tz::UTC;
    let mut after = None;
    let mut count = 5;
    let mut words: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let arg = rest[i].as_str();
        i += 1;
        if arg == "--" {
            words.extend(rest[i..].iter().map(String::as_str));
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (arg, None),
        };
        let is_flag = matches!(flag, "--tz" | "--after" | "-n" | "--count" | "--dialect");
        if !is_flag {
            if arg.starts_with("--") || (arg.starts_with('-') && arg.len() > 1 && words.is_empty())
            {
                if matches!(arg, "-h" | "--help") {
                    return Ok(Command::Help);
                }
                return Err(format!("unknown option {arg:?}"));
            }
            words.push(arg);
            continue;
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
            "--dialect" => {
                dialect = match value.to_ascii_lowercase().as_str() {
                    "vixie" => Dialect::Vixie,
                    "quartz" => Dialect::Quartz,
                    _ => return Err(format!("unknown dialect {value:?} (vixie or quartz)")),
                }
            }
            "--tz" if next => {
                tz = value.parse().map_err(|_| {
                    format!("unknown time zone {value:?} (use an IANA name such as Europe/Berlin)")
                })?
            }
            "--after" if next => {
                after = Some(
                    DateTime::parse_from_rfc3339(value)
                        .map_err(|e| format!("--after {value:?} is not RFC 3339: {e}"))?
                        .with_timezone(&Utc),
                )
            }
            "-n" | "--count" if next => {
                count = value
                    .parse()
                    .ok()
                    .filter(|n| *n <= MAX_COUNT)
                    .ok_or_else(|| format!("-n {value:?} is not a count from 0 to {MAX_COUNT}"))?
            }
            _ => return Err(format!("option {flag} does not apply to `{cmd}`")),
        }
    }
    if words.is_empty() {
        return Err("missing cron expression".into());
    }
    let expr = words.join(" ");
    Ok(if next {
        Command::Next {
            expr,
            dialect,
            tz,
            after,
            count,
        }
    } else {
        Command::Explain { expr, dialect }
    })
}
