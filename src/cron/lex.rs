//! Splitting an expression into fields, and the `@` macros.
//!
//! Fields are separated by ASCII spaces and tabs; anything else (including
//! other Unicode whitespace) is part of a field and gets rejected there.

use super::Dialect;

/// The expansion of an `@` macro (matched case-insensitively) in `dialect`.
pub(crate) fn macro_expansion(name: &str, dialect: Dialect) -> Option<&'static str> {
    let vixie = match name.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => return None,
    };
    Some(match dialect {
        Dialect::Vixie => vixie,
        Dialect::Quartz => match vixie {
            "0 0 1 1 *" => "0 0 0 1 1 ?",
            "0 0 1 * *" => "0 0 0 1 * ?",
            "0 0 * * 0" => "0 0 0 ? * 1",
            "0 0 * * *" => "0 0 0 * * ?",
            _ => "0 0 * * * ?",
        },
    })
}

/// Fields with the byte offset where each starts.
pub(crate) fn split_fields(expr: &str) -> Vec<(&str, usize)> {
    let mut out = Vec::with_capacity(7);
    let mut start = None;
    for (i, c) in expr.char_indices() {
        let sep = c == ' ' || c == '\t';
        match (sep, start) {
            (true, Some(s)) => {
                out.push((&expr[s..i], s));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((&expr[s..], s));
    }
    out
}
