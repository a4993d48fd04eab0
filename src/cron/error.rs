//! Typed parse errors: which field, which character, and why.
//!
//! A [`CronError`] keeps the rejected expression so that its `Display` can show
//! it with a caret under the offending character:
//!
//! ```text
//! invalid cron expression: minute: value 60 is out of range 0-59
//!   60 * * * *
//!   ^
//! ```

use std::fmt;

/// A field of a cron expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CronField {
    /// Seconds (6-field Vixie, Quartz).
    Second,
    /// Minutes.
    Minute,
    /// Hours.
    Hour,
    /// Day of month.
    DayOfMonth,
    /// Month.
    Month,
    /// Day of week.
    DayOfWeek,
    /// Year (Quartz, optional 7th field).
    Year,
}

impl CronField {
    /// The field's name as used in messages (`"day-of-month"`).
    pub fn name(self) -> &'static str {
        match self {
            CronField::Second => "second",
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
            CronField::Year => "year",
        }
    }
}

impl fmt::Display for CronField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an expression was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CronErrorKind {
    /// The expression is empty or only whitespace.
    Empty,
    /// Too few fields; `expected` describes the accepted counts.
    MissingFields {
        /// Accepted field counts, e.g. `"5 or 6"`.
        expected: &'static str,
        /// Number of fields found.
        found: usize,
    },
    /// More fields than the dialect accepts.
    ExtraField {
        /// Accepted field counts, e.g. `"5 or 6"`.
        expected: &'static str,
    },
    /// A number outside the field's range.
    OutOfRange {
        /// The value as written.
        value: u32,
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// A step of zero (`*/0`).
    ZeroStep,
    /// A range whose start is after its end (`5-1`).
    ReversedRange {
        /// Start of the range.
        start: u32,
        /// End of the range.
        end: u32,
    },
    /// An empty item in a list (`1,,2`, `1-5,`, `,3`).
    EmptyListItem,
    /// A character that does not belong here.
    UnexpectedChar(char),
    /// The field ended where a value was expected (`1-`, `*/`).
    UnexpectedEnd,
    /// A word that is not a month or weekday name of this field.
    UnknownName(String),
    /// An `@` macro that does not exist (`@every`).
    UnknownMacro(String),
    /// A macro followed by more fields (`@daily 0`).
    MacroWithFields,
    /// `?` used outside the day-of-month / day-of-week fields.
    QuestionMarkNotAllowed,
    /// `?` as one item of a list (`?,5`): it stands alone in its field.
    QuestionMarkInList,
    /// `L` on the end of a weekday range (`MON-FRIL`, `1-5L`): the last
    /// weekday of the month takes one weekday.
    LastOnRange,
    /// The `#` occurrence must be 1 to 5.
    BadOccurrence(u32),
    /// A value too large to read.
    NumberTooLarge,
}

impl fmt::Display for CronErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CronErrorKind::Empty => f.write_str("the expression is empty"),
            CronErrorKind::MissingFields { expected, found } => {
                write!(f, "expected {expected} fields, found {found}")
            }
            CronErrorKind::ExtraField { expected } => {
                write!(f, "unexpected extra field (expected {expected} fields)")
            }
            CronErrorKind::OutOfRange { value, min, max } => {
                write!(f, "value {value} is out of range {min}-{max}")
            }
            CronErrorKind::ZeroStep => f.write_str("a step must be at least 1"),
            CronErrorKind::ReversedRange { start, end } => {
                write!(f, "range {start}-{end} is reversed (start after end)")
            }
            CronErrorKind::EmptyListItem => f.write_str("empty item in list"),
            CronErrorKind::UnexpectedChar(c) => write!(f, "unexpected character {c:?}"),
            CronErrorKind::UnexpectedEnd => f.write_str("unexpected end of field"),
            CronErrorKind::UnknownName(n) => write!(f, "unknown name {n:?}"),
            CronErrorKind::UnknownMacro(m) => write!(f, "unknown macro {m:?}"),
            CronErrorKind::MacroWithFields => f.write_str("a macro stands alone"),
            CronErrorKind::QuestionMarkNotAllowed => {
                f.write_str("`?` is only allowed in day-of-month and day-of-week")
            }
            CronErrorKind::QuestionMarkInList => {
                f.write_str("`?` stands alone in its field; it cannot be part of a list")
            }
            CronErrorKind::LastOnRange => f.write_str(
                "`L` (the last such weekday of the month) takes one weekday, not a range",
            ),
            CronErrorKind::BadOccurrence(k) => {
                write!(f, "occurrence #{k} must be between 1 and 5")
            }
            CronErrorKind::NumberTooLarge => f.write_str("number too large"),
        }
    }
}

/// Why a cron expression was rejected, and where.
///
/// `Display` renders the reason followed by the expression with a caret under
/// the offending character.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct CronError {
    expr: String,
    field: Option<CronField>,
    position: usize,
    kind: CronErrorKind,
}

impl CronError {
    /// Builds an error; `position` is a byte offset into `expr`.
    pub(crate) fn new(
        expr: &str,
        field: Option<CronField>,
        byte_pos: usize,
        kind: CronErrorKind,
    ) -> CronError {
        let position = expr
            .char_indices()
            .take_while(|(i, _)| *i < byte_pos)
            .count();
        CronError {
            expr: expr.to_owned(),
            field,
            position,
            kind,
        }
    }

    /// The field the error is in, if it is in one (not for field-count errors).
    pub fn field(&self) -> Option<CronField> {
        self.field
    }

    /// Position of the offending character, counted in characters from 0.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The reason.
    pub fn kind(&self) -> &CronErrorKind {
        &self.kind
    }

    /// The reason, as a sentence fragment (`"value 60 is out of range 0-59"`).
    pub fn reason(&self) -> String {
        self.kind.to_string()
    }

    /// The rejected expression.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    fn render(&self) -> String {
        let mut out = String::from("invalid cron expression: ");
        if let Some(field) = self.field {
            out.push_str(field.name());
            out.push_str(": ");
        }
        out.push_str(&self.kind.to_string());
        // Show control characters (tabs) as spaces so the caret lines up.
        let shown: String = self
            .expr
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        out.push_str("\n  ");
        out.push_str(&shown);
        out.push_str("\n  ");
        out.push_str(&" ".repeat(self.position));
        out.push('^');
        out
    }
}
