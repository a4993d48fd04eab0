//! Plain-English descriptions of expressions.

use super::Dialect;

/// Describes `expr` (already known to parse in `dialect`).
pub(crate) fn explain(expr: &str, _dialect: Dialect) -> String {
    expr.to_owned()
}
