//! `cronlane`: next fire times and plain-English explanations of cron
//! expressions, on the command line.
//!
//! ```text
//! $ cronlane next --tz Europe/Berlin -n 2 --after 2025-06-13T12:00:00Z '0 9 * * MON-FRI'
//! 2025-06-16T09:00:00+02:00
//! 2025-06-17T09:00:00+02:00
//! $ cronlane explain '0 9 * * MON-FRI'
//! At 09:00, Monday through Friday
//! ```
//!
//! Exit status: 0 success, 2 invalid expression or arguments, 3 never fires.

use std::io::Write;
use std::process::ExitCode;

use chrono::{SecondsFormat, Utc};
use cronlane::cron::CronExpr;

mod args;

use args::Command;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let command = match args::parse(&argv) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("cronlane: {msg}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            println!("{}", args::USAGE);
            ExitCode::SUCCESS
        }
        Command::Explain { expr, dialect } => match CronExpr::parse_with(&expr, dialect) {
            Ok(e) => {
                println!("{}", e.explain());
                ExitCode::SUCCESS
            }
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
            for t in e.iter_after(after, tz).take(count) {
                let line = t
                    .with_timezone(&tz)
                    .to_rfc3339_opts(SecondsFormat::Secs, false);
                if writeln!(out, "{line}").is_err() {
                    return ExitCode::SUCCESS; // e.g. a closed pipe (`| head`)
                }
                printed += 1;
            }
            if printed == 0 && count > 0 {
                eprintln!(
                    "cronlane: `{expr}` never fires after {} in {tz}",
                    after
                        .with_timezone(&tz)
                        .to_rfc3339_opts(SecondsFormat::Secs, false)
                );
                return ExitCode::from(3);
            }
            if printed < count {
                eprintln!("cronlane: no more fire times after the {printed} shown");
            }
            ExitCode::SUCCESS
        }
    }
}
