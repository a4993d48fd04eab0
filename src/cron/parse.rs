//! The parser: text to [`Schedule`], in either dialect.
//!
//! Ground rules: every rejection is a [`CronError`] naming the field and the
//! byte where the trouble starts (converted to a character position); nothing
//! here panics, whatever the input. Fields are split on ASCII spaces and tabs.

use super::error::{CronError, CronErrorKind, CronField};
use super::field::{DomSpec, DowSpec, Schedule, YearSet, YEAR_MAX, YEAR_MIN};
use super::lex::{macro_expansion, split_fields};
use super::Dialect;

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// How one field is written: its range, names and extensions.
#[derive(Clone, Copy)]
struct FieldDef {
    field: CronField,
    min: u32,
    max: u32,
    /// Names and the value of the first name.
    names: Option<(&'static [&'static str], u32)>,
    /// Value subtracted to get a bit index (1970 for years).
    base: u32,
}

impl FieldDef {
    const fn new(field: CronField, min: u32, max: u32) -> FieldDef {
        FieldDef {
            field,
            min,
            max,
            names: None,
            base: 0,
        }
    }
}

const SECOND: FieldDef = FieldDef::new(CronField::Second, 0, 59);
const MINUTE: FieldDef = FieldDef::new(CronField::Minute, 0, 59);
const HOUR: FieldDef = FieldDef::new(CronField::Hour, 0, 23);
const DOM: FieldDef = FieldDef::new(CronField::DayOfMonth, 1, 31);
const MONTH: FieldDef = FieldDef {
    names: Some((&MONTHS, 1)),
    ..FieldDef::new(CronField::Month, 1, 12)
};
const DOW_VIXIE: FieldDef = FieldDef {
    names: Some((&DAYS, 0)),
    ..FieldDef::new(CronField::DayOfWeek, 0, 7)
};
const DOW_QUARTZ: FieldDef = FieldDef {
    names: Some((&DAYS, 1)),
    ..FieldDef::new(CronField::DayOfWeek, 1, 7)
};
const YEAR: FieldDef = FieldDef {
    base: YEAR_MIN,
    ..FieldDef::new(CronField::Year, YEAR_MIN, YEAR_MAX)
};

/// What one field compiled to.
#[derive(Default)]
struct Parsed {
    bits: [u64; 3],
    dom: DomSpec,
    dow: DowSpec,
    star: bool,
}

/// Parses `expr` in `dialect`.
pub(crate) fn parse(expr: &str, dialect: Dialect) -> Result<Schedule, CronError> {
    let fields = split_fields(expr);
    let Some(&(first, start)) = fields.first() else {
        return Err(CronError::new(expr, None, 0, CronErrorKind::Empty));
    };
    if first.starts_with('@') {
        if fields.len() > 1 {
            let at = fields[1].1;
            return Err(CronError::new(
                expr,
                None,
                at,
                CronErrorKind::MacroWithFields,
            ));
        }
        let Some(expansion) = macro_expansion(first, dialect) else {
            let kind = CronErrorKind::UnknownMacro(first.to_owned());
            return Err(CronError::new(expr, None, start, kind));
        };
        return parse(expansion, dialect);
    }
    let (expected, defs): (&'static str, &[FieldDef]) = match (dialect, fields.len()) {
        (Dialect::Vixie, 5) => ("5 or 6", &[MINUTE, HOUR, DOM, MONTH, DOW_VIXIE]),
        (Dialect::Vixie, _) => ("5 or 6", &[SECOND, MINUTE, HOUR, DOM, MONTH, DOW_VIXIE]),
        (Dialect::Quartz, _) => (
            "6 or 7",
            &[SECOND, MINUTE, HOUR, DOM, MONTH, DOW_QUARTZ, YEAR],
        ),
    };
    let min_fields = if dialect == Dialect::Vixie { 5 } else { 6 };
    if fields.len() < min_fields {
        let kind = CronErrorKind::MissingFields {
            expected,
            found: fields.len(),
        };
        return Err(CronError::new(expr, None, expr.len(), kind));
    }
    if fields.len() > defs.len() {
        let at = fields[defs.len()].1;
        return Err(CronError::new(
            expr,
            None,
            at,
            CronErrorKind::ExtraField { expected },
        ));
    }
    let ctx = Ctx { expr, dialect };
    let mut parsed: Vec<Parsed> = Vec::with_capacity(7);
    for (def, &(text, at)) in defs.iter().zip(&fields) {
        parsed.push(ctx.field(def, text, at)?);
    }
    let seconds_given = defs[0].field == CronField::Second;
    let (sec, rest) = if seconds_given {
        (parsed[0].bits[0], &parsed[1..])
    } else {
        (1, &parsed[..])
    };
    let dow = fold_weekdays(&rest[4], dialect);
    let years = rest
        .get(5)
        .and_then(|y| (!y.star).then_some(YearSet(y.bits)));
    let fixed_time =
        !seconds_given && !fields[0].0.starts_with('*') && !fields[1].0.starts_with('*');
    Ok(Schedule {
        seconds: sec,
        minutes: rest[0].bits[0],
        hours: rest[1].bits[0] as u32,
        dom: DomSpec {
            days: rest[2].bits[0] as u32 | rest[2].dom.days,
            star: rest[2].star,
            ..rest[2].dom
        },
        months: rest[3].bits[0] as u16,
        dow,
        years,
        and_days: dialect == Dialect::Quartz || rest[2].star || rest[4].star,
        fixed_time,
        never: false,
    })
}

/// Weekday bits as written (Vixie 0-7, Quartz 1-7) to 0-6 with 0 = Sunday.
fn fold_weekdays(p: &Parsed, dialect: Dialect) -> DowSpec {
    let fold = |bits: u64| -> u8 {
        match dialect {
            Dialect::Vixie => ((bits | bits >> 7) & 0x7f) as u8,
            Dialect::Quartz => ((bits >> 1) & 0x7f) as u8,
        }
    };
    let mut nth = [0u8; 5];
    for (n, &k) in nth.iter_mut().zip(&p.dow.nth) {
        *n = fold(u64::from(k));
    }
    DowSpec {
        days: fold(p.bits[0]),
        last: fold(u64::from(p.dow.last)),
        nth,
        star: p.star,
    }
}

struct Ctx<'a> {
    expr: &'a str,
    dialect: Dialect,
}

/// A value as written: the number and whether it was a name.
struct Value {
    n: u32,
    named: bool,
    /// A weekday name ran straight into `L` (`FRIL`).
    trailing_l: bool,
}

impl Ctx<'_> {
    fn err(&self, def: &FieldDef, at: usize, kind: CronErrorKind) -> CronError {
        CronError::new(self.expr, Some(def.field), at, kind)
    }

    fn unexpected(&self, def: &FieldDef, text: &str, i: usize, at: usize) -> CronError {
        match text[i..].chars().next() {
            Some(c) => self.err(def, at + i, CronErrorKind::UnexpectedChar(c)),
            None => self.err(def, at + i, CronErrorKind::UnexpectedEnd),
        }
    }

    fn field(&self, def: &FieldDef, text: &str, at: usize) -> Result<Parsed, CronError> {
        let mut p = Parsed {
            star: text.starts_with('*') || text.starts_with('?'),
            ..Parsed::default()
        };
        let mut item_start = 0;
        for item in text.split(',') {
            if item.is_empty() {
                let pos = if item_start == text.len() && item_start > 0 {
                    item_start - 1
                } else {
                    item_start
                };
                return Err(self.err(def, at + pos, CronErrorKind::EmptyListItem));
            }
            let is_day = matches!(def.field, CronField::DayOfMonth | CronField::DayOfWeek);
            if item == "?" && is_day && item.len() != text.len() {
                let kind = CronErrorKind::QuestionMarkInList;
                return Err(self.err(def, at + item_start, kind));
            }
            self.item(def, item, at + item_start, &mut p)?;
            item_start += item.len() + 1;
        }
        Ok(p)
    }

    fn item(&self, def: &FieldDef, s: &str, at: usize, p: &mut Parsed) -> Result<(), CronError> {
        let is_dom = def.field == CronField::DayOfMonth;
        let is_dow = def.field == CronField::DayOfWeek;
        let quartz = self.dialect == Dialect::Quartz;
        let b = s.as_bytes();
        if s == "?" {
            if !(is_dom || is_dow) {
                return Err(self.err(def, at, CronErrorKind::QuestionMarkNotAllowed));
            }
            set_range(&mut p.bits, def.min - def.base, def.max - def.base, 1);
            return Ok(());
        }
        if is_dom {
            let up = s.to_ascii_uppercase();
            if up == "L" {
                p.dom.from_last |= 1;
                return Ok(());
            }
            if up == "LW" {
                p.dom.last_weekday = true;
                return Ok(());
            }
            if quartz && up.starts_with("L-") {
                let (n, end) = self.number(def, s, 2, at)?;
                if end != s.len() {
                    return Err(self.unexpected(def, s, end, at));
                }
                if n > 30 {
                    let kind = CronErrorKind::OutOfRange {
                        value: n,
                        min: 0,
                        max: 30,
                    };
                    return Err(self.err(def, at + 2, kind));
                }
                p.dom.from_last |= 1 << n;
                return Ok(());
            }
            if !quartz && (b[0] == b'W' || b[0] == b'w') && b.len() > 1 {
                let (n, end) = self.number(def, s, 1, at)?;
                if end != s.len() {
                    return Err(self.unexpected(def, s, end, at));
                }
                self.check(def, n, at + 1)?;
                p.dom.nearest |= 1 << n;
                return Ok(());
            }
        }
        if is_dow && quartz && (s == "L" || s == "l") {
            // Quartz `L` alone: the last day of the week, 7 = Saturday.
            p.bits[0] |= 1 << 7;
            return Ok(());
        }
        let (lo, hi, mut i, lo_named, hi_named) = if b[0] == b'*' {
            (def.min, def.max, 1, false, false)
        } else {
            let v = self.value(def, s, 0, at)?;
            let mut i = v.end;
            self.check(def, v.value.n, at)?;
            let lo = v.value.n;
            if v.value.trailing_l || (is_dow && matches!(b.get(i), Some(b'L' | b'l'))) {
                if !v.value.trailing_l {
                    i += 1;
                }
                if i != s.len() {
                    return Err(self.unexpected(def, s, i, at));
                }
                p.dow.last |= 1 << lo;
                return Ok(());
            }
            if is_dom && matches!(b.get(i), Some(b'W' | b'w')) {
                if i + 1 != s.len() {
                    return Err(self.unexpected(def, s, i + 1, at));
                }
                p.dom.nearest |= 1 << lo;
                return Ok(());
            }
            if is_dow && b.get(i) == Some(&b'#') {
                return self.nth(def, s, i, at, lo, lo, p);
            }
            if b.get(i) == Some(&b'-') {
                let hi_at = i + 1;
                let h = self.value(def, s, hi_at, at)?;
                if h.value.trailing_l || (is_dow && matches!(b.get(h.end), Some(b'L' | b'l'))) {
                    let l_at = if h.value.trailing_l { h.end - 1 } else { h.end };
                    return Err(self.err(def, at + l_at, CronErrorKind::LastOnRange));
                }
                self.check(def, h.value.n, at + hi_at)?;
                if h.value.n < lo {
                    let kind = CronErrorKind::ReversedRange {
                        start: lo,
                        end: h.value.n,
                    };
                    return Err(self.err(def, at, kind));
                }
                i = h.end;
                (lo, h.value.n, i, v.value.named, h.value.named)
            } else if b.get(i) == Some(&b'/') {
                (lo, def.max, i, false, false)
            } else {
                (lo, lo, i, false, false)
            }
        };
        if is_dow && !quartz && lo_named && hi_named && b.get(i) == Some(&b'#') {
            // `MON-FRI#2`: the k-th occurrence of each weekday in the range.
            return self.nth(def, s, i, at, lo, hi, p);
        }
        let mut step = 1;
        if b.get(i) == Some(&b'/') {
            let (n, end) = self.number(def, s, i + 1, at)?;
            if n == 0 {
                return Err(self.err(def, at + i + 1, CronErrorKind::ZeroStep));
            }
            step = n;
            i = end;
        }
        if i != s.len() {
            return Err(self.unexpected(def, s, i, at));
        }
        set_range(&mut p.bits, lo - def.base, hi - def.base, step);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn nth(
        &self,
        def: &FieldDef,
        s: &str,
        hash: usize,
        at: usize,
        lo: u32,
        hi: u32,
        p: &mut Parsed,
    ) -> Result<(), CronError> {
        let (k, end) = self.number(def, s, hash + 1, at)?;
        if end != s.len() {
            return Err(self.unexpected(def, s, end, at));
        }
        if !(1..=5).contains(&k) {
            return Err(self.err(def, at + hash + 1, CronErrorKind::BadOccurrence(k)));
        }
        for d in lo..=hi {
            p.dow.nth[k as usize - 1] |= 1 << d;
        }
        Ok(())
    }

    fn check(&self, def: &FieldDef, n: u32, at: usize) -> Result<(), CronError> {
        if n < def.min || n > def.max {
            let kind = CronErrorKind::OutOfRange {
                value: n,
                min: def.min,
                max: def.max,
            };
            return Err(self.err(def, at, kind));
        }
        Ok(())
    }

    /// A decimal number starting at byte `i`; returns it and the end index.
    fn number(
        &self,
        def: &FieldDef,
        s: &str,
        i: usize,
        at: usize,
    ) -> Result<(u32, usize), CronError> {
        let digits = s.as_bytes()[i.min(s.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return Err(self.unexpected(def, s, i.min(s.len()), at));
        }
        let mut n = 0u32;
        for c in &s.as_bytes()[i..i + digits] {
            n = n.saturating_mul(10).saturating_add(u32::from(c - b'0'));
        }
        if n > 999_999 {
            return Err(self.err(def, at + i, CronErrorKind::NumberTooLarge));
        }
        Ok((n, i + digits))
    }

    /// A number or a name starting at byte `i`.
    fn value(&self, def: &FieldDef, s: &str, i: usize, at: usize) -> Result<Spanned, CronError> {
        let rest = &s.as_bytes()[i.min(s.len())..];
        if rest.first().is_some_and(u8::is_ascii_digit) {
            let (n, end) = self.number(def, s, i, at)?;
            let value = Value {
                n,
                named: false,
                trailing_l: false,
            };
            return Ok(Spanned { value, end });
        }
        let letters = rest.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        let Some((names, first)) = def.names.filter(|_| letters > 0) else {
            return Err(self.unexpected(def, s, i.min(s.len()), at));
        };
        let word = &s[i..i + letters];
        let lookup = |w: &str| {
            names
                .iter()
                .position(|n| n.eq_ignore_ascii_case(w))
                .map(|p| p as u32 + first)
        };
        if let Some(n) = lookup(word) {
            let value = Value {
                n,
                named: true,
                trailing_l: false,
            };
            return Ok(Spanned {
                value,
                end: i + letters,
            });
        }
        if def.field == CronField::DayOfWeek && letters == 4 && word[3..].eq_ignore_ascii_case("L")
        {
            if let Some(n) = lookup(&word[..3]) {
                let value = Value {
                    n,
                    named: true,
                    trailing_l: true,
                };
                return Ok(Spanned {
                    value,
                    end: i + letters,
                });
            }
        }
        Err(self.err(def, at + i, CronErrorKind::UnknownName(word.to_owned())))
    }
}

struct Spanned {
    value: Value,
    end: usize,
}

fn set_range(bits: &mut [u64; 3], lo: u32, hi: u32, step: u32) {
    let mut v = lo;
    while v <= hi {
        bits[(v / 64) as usize] |= 1 << (v % 64);
        match v.checked_add(step) {
            Some(n) => v = n,
            None => break,
        }
    }
}
