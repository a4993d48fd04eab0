//! Cron expressions: parsing and next-fire evaluation (placeholder; being replaced).
//!
//! The API here is the contract the engine relies on.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// Which cron dialect an expression is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// Vixie/Debian crontab: 5 fields, or 6 with leading seconds.
    #[default]
    Vixie,
    /// Quartz / `cron` crate: 6 or 7 fields, seconds first, optional year.
    Quartz,
}

/// A compiled cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr {
    source: String,
}

/// Why a cron expression was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression `{expr}`: {reason}")]
pub struct CronError {
    expr: String,
    reason: String,
}

impl CronExpr {
    /// Parses a Vixie-dialect expression.
    pub fn parse(expr: &str) -> Result<CronExpr, CronError> {
        Self::parse_with(expr, Dialect::Vixie)
    }

    /// Parses an expression in the given dialect.
    pub fn parse_with(expr: &str, _dialect: Dialect) -> Result<CronExpr, CronError> {
        Err(CronError {
            expr: expr.to_owned(),
            reason: "not implemented yet".into(),
        })
    }

    /// The next fire instant strictly after `after`, evaluated in `tz`.
    pub fn next_after(&self, _after: DateTime<Utc>, _tz: &Tz) -> Option<DateTime<Utc>> {
        None
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}
