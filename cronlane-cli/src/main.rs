//! `cronlane`: next fire times and plain-English explanations of cron
//! expressions, on the command line, and `cronlane run CRONTAB`, a cron
//! daemon for containers on the cronlane engine.
//!
//! ```text
//! $ cronlane next --tz Europe/Berlin -n 2 --after 2025-06-13T12:00:00Z '0 9 * * MON-FRI'
//! 2025-06-16T09:00:00+02:00
//! 2025-06-17T09:00:00+02:00
//! $ cronlane explain '0 9 * * MON-FRI'
//! At 09:00, Monday through Friday. Fixed-time job: where the clocks change, …
//! ```
//!
//! `cronlane --help` lists the commands, `cronlane next --help` and
//! `cronlane explain --help` describe each. Exit status: 0 success, 2
//! invalid expression or arguments, 3 no fire time to print.
//!
//! Modules: `args` (the command line), `help` (the texts), `zone` (zone
//! names, `--tz local`, `--after`, printing instants), `run` (the daemon;
//! its own module doc lists its parts).

use std::io::Write;
use std::process::ExitCode;

use chrono::{SecondsFormat, Utc};
use cronlane::cron::CronExpr;

mod args;
mod help;
mod run;
mod zone;

use args::Command;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let command = match args::parse(&argv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cronlane: {}\n{}", e.message, help::usage_line(e.command));
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help(text) => print(text),
        Command::Version => print(&format!("cronlane {}", env!("CARGO_PKG_VERSION"))),
        Command::Run(o) => run::main(o),
        Command::Explain { expr, dialect } => match CronExpr::parse_with(&expr, dialect) {
            Ok(e) => print(&e.explain()),
            Err(err) => {
                eprintln!("{err}");
                ExitCode::from(2)
            }
        },
        Command::Next {
            expr,
            dialect,
            tz,
            after,
            count,
        } => {
            let e = match CronExpr::parse_with(&expr, dialect) {
                Ok(e) => e,
                Err(err) => {
                    eprintln!("{err}");
                    return ExitCode::from(2);
                }
            };
            let after = after.unwrap_or_else(Utc::now);
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let mut printed = 0;
            let mut past_9999 = false;
            for t in e.iter_after(after, tz).take(count) {
                let Some(line) = zone::format_instant(t, &tz) else {
                    past_9999 = true;
                    break;
                };
                if writeln!(out, "{line}").is_err() {
                    return ExitCode::SUCCESS; // e.g. a closed pipe (`| head`)
                }
                printed += 1;
            }
            let shown_after = zone::format_instant(after, &tz)
                .unwrap_or_else(|| after.to_rfc3339_opts(SecondsFormat::Secs, true));
            if printed == 0 && count > 0 {
                if past_9999 {
                    eprintln!(
                        "cronlane: `{expr}` has no fire time after {shown_after} in {tz} \
                         before year 10000 (the end of what RFC 3339 can write)"
                    );
                } else {
                    eprintln!("cronlane: `{expr}` never fires after {shown_after} in {tz}");
                }
                return ExitCode::from(3);
            }
            if past_9999 {
                eprintln!(
                    "cronlane: stopped after {printed}: the next fire time is past year 9999, \
                     the end of what RFC 3339 can write"
                );
            } else if printed < count {
                eprintln!("cronlane: no more fire times after the {printed} shown");
            }
            ExitCode::SUCCESS
        }
    }
}

/// Prints one line to stdout; a closed pipe (`| head`) is not an error.
fn print(text: &str) -> ExitCode {
    let _ = writeln!(std::io::stdout(), "{text}");
    ExitCode::SUCCESS
}
