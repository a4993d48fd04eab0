//! `cronlane run --test`: what would run, without running it.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::run::crontab::{Crontab, When};
use crate::zone::format_instant;

/// Fire times printed per job.
pub(crate) const SHOWN: usize = 3;

/// The report of `--test` for a valid crontab, fire times after `now`.
pub(crate) fn report(file: &str, crontab: &Crontab, now: DateTime<Utc>) -> String {
    let mut out = String::new();
    let n = crontab.entries.len();
    let _ = writeln!(
        out,
        "{file}: {n} job{}, no errors",
        if n == 1 { "" } else { "s" }
    );
    for e in &crontab.entries {
        out.push('\n');
        let _ = writeln!(out, "[{}] line {}", e.tag(), e.line);
        match &e.when {
            When::Cron { expr, tz } => {
                let _ = writeln!(out, "  schedule: {} (in {})", expr.as_str(), tz.name());
                let _ = writeln!(out, "  meaning:  {}", expr.explain());
                let times: Vec<String> = expr
                    .iter_after(now, *tz)
                    .take(SHOWN)
                    .filter_map(|t| format_instant(t, tz))
                    .collect();
                for (i, t) in times.iter().enumerate() {
                    let label = if i == 0 { "  next:    " } else { "           " };
                    let _ = writeln!(out, "{label} {t}");
                }
            }
            When::Reboot => {
                let _ = writeln!(out, "  schedule: @reboot");
                let _ = writeln!(
                    out,
                    "  meaning:  once, when the daemon starts (not on a reload)"
                );
            }
        }
        let _ = writeln!(out, "  command:  {}", e.command);
        if e.shell != "/bin/sh" {
            let _ = writeln!(out, "  shell:    {}", e.shell);
        }
    }
    out
}
