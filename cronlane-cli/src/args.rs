//! Hand-rolled argument parsing for the `cronlane` command.
//!
//! Flags may come before, between or after the expression's words, as
//! `--flag value` or `--flag=value`; `--` ends the flags. `--after` is read
//! once all flags are known, because a local date-time is read in `--tz`.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cronlane::cron::Dialect;

use crate::help;
use crate::zone::{parse_after, parse_zone};

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
    /// Print a help text.
    Help(&'static str),
    /// Print the version.
    Version,
    /// Run a crontab (`cronlane run`).
    Run(crate::run::options::RunOptions),
}

/// A bad command line: the message, and the command it was for (to show
/// that command's usage).
#[derive(Debug)]
pub(crate) struct ArgError {
    pub(crate) message: String,
    pub(crate) command: Option<&'static str>,
}

/// Largest `-n` accepted.
const MAX_COUNT: usize = 100_000;

/// Parses the arguments after the program name.
pub(crate) fn parse(args: &[String]) -> Result<Command, ArgError> {
    let fail = |command, message: String| ArgError { message, command };
    let Some((cmd, rest)) = args.split_first() else {
        return Err(fail(None, "missing command".into()));
    };
    let command: &'static str = match cmd.as_str() {
        "next" => "next",
        "explain" => "explain",
        "run" => {
            return match crate::run::options::parse(rest) {
                Ok(Some(o)) => Ok(Command::Run(o)),
                Ok(None) => Ok(Command::Help(help::RUN)),
                Err(message) => Err(fail(Some("run"), message)),
            }
        }
        "-h" | "--help" => return Ok(Command::Help(help::GLOBAL)),
        "help" => {
            return match rest.first().map(String::as_str) {
                None => Ok(Command::Help(help::GLOBAL)),
                Some("next") => Ok(Command::Help(help::NEXT)),
                Some("explain") => Ok(Command::Help(help::EXPLAIN)),
                Some("run") => Ok(Command::Help(help::RUN)),
                Some(other) => Err(fail(None, format!("no help for {other:?}"))),
            }
        }
        "-V" | "--version" | "version" => return Ok(Command::Version),
        other => return Err(fail(None, format!("unknown command {other:?}"))),
    };
    let next = command == "next";
    let fail = |message: String| fail(Some(command), message);
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
        if matches!(arg, "-h" | "--help") {
            return Ok(Command::Help(if next { help::NEXT } else { help::EXPLAIN }));
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (arg, None),
        };
        let is_flag = matches!(flag, "--tz" | "--after" | "-n" | "--count" | "--dialect");
        if !is_flag {
            if arg.starts_with("--") || (arg.starts_with('-') && arg.len() > 1 && words.is_empty())
            {
                return Err(fail(format!("unknown option {arg:?}")));
            }
            words.push(arg);
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let v = rest
                    .get(i)
                    .ok_or_else(|| fail(format!("{flag} needs a value")))?;
                i += 1;
                v.as_str()
            }
        };
        match flag {
            "--dialect" => {
                dialect = match value.to_ascii_lowercase().as_str() {
                    "vixie" => Dialect::Vixie,
                    "quartz" => Dialect::Quartz,
                    _ => return Err(fail(format!("unknown dialect {value:?} (vixie or quartz)"))),
                }
            }
            "--tz" if next => tz = parse_zone(value).map_err(&fail)?,
            "--after" if next => after = Some(value),
            "-n" | "--count" if next => {
                count = value
                    .parse()
                    .ok()
                    .filter(|n| *n <= MAX_COUNT)
                    .ok_or_else(|| {
                        fail(format!("-n {value:?} is not a count from 0 to {MAX_COUNT}"))
                    })?
            }
            _ => return Err(fail(format!("option {flag} does not apply to `{command}`"))),
        }
    }
    if words.is_empty() {
        return Err(fail("missing cron expression".into()));
    }
    let expr = words.join(" ");
    Ok(if next {
        let after = after
            .map(|v| parse_after(v, &tz))
            .transpose()
            .map_err(fail)?;
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
