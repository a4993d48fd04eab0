//! Conformance: every case of `tests/data/cron-corpus/public.jsonl`, a copy
//! of the team's corpus kept in the repository so a fresh clone tests green
//! with nothing beside it. This test reads only that copy; keeping it equal
//! to the team's corpus is `scripts/check-corpus.sh`'s job, not a test's.
//!
//! - `error: true`: the expression must be rejected.
//! - `no_next: true`: rejected, or no next fire time.
//! - otherwise the next 5 fire times must equal `next` (compared as instants).
//!
//! One documented exception: when the references disagree on *validity*
//! (`disagree_kind: "validity"`, one reference rejects), a rejection is
//! accepted too if it is one of the rejections cronlane's issue demands
//! (reversed ranges, more fields than the dialect has). Such cases are counted
//! and printed separately.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use cronlane::cron::{CronErrorKind, CronExpr, Dialect};
use serde_json::Value;

#[derive(Default)]
struct Tally {
    pass: usize,
    total: usize,
    rejected_by_policy: usize,
}

fn instant(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("bad instant {s:?} in corpus: {e}"))
        .with_timezone(&Utc)
}

/// Runs one case; `Ok(true)` = rejected under the documented policy.
fn check(case: &Value) -> Result<bool, String> {
    let expr = case["expr"].as_str().ok_or("no expr")?;
    let flag = |k: &str| case[k].as_bool().unwrap_or(false);
    let parsed = CronExpr::parse_with(expr, Dialect::Vixie);
    if flag("error") {
        return match parsed {
            Err(_) => Ok(false),
            Ok(_) => Err("accepted an invalid expression".into()),
        };
    }
    let tz: Tz = case["tz"]
        .as_str()
        .ok_or("no tz")?
        .parse()
        .map_err(|e| format!("zone: {e}"))?;
    let after = instant(case["after"].as_str().ok_or("no after")?);
    let parsed = match parsed {
        Ok(p) => p,
        Err(_) if flag("no_next") => return Ok(false),
        Err(e)
            if case["disagree_kind"] == "validity"
                && matches!(
                    e.kind(),
                    CronErrorKind::ReversedRange { .. } | CronErrorKind::ExtraField { .. }
                ) =>
        {
            return Ok(true)
        }
        Err(e) => return Err(format!("rejected: {e}")),
    };
    let want: Vec<DateTime<Utc>> = case["next"]
        .as_array()
        .ok_or("no next")?
        .iter()
        .map(|v| instant(v.as_str().unwrap_or_default()))
        .collect();
    let got: Vec<DateTime<Utc>> = parsed.iter_after(after, tz).take(5).collect();
    if got == want {
        Ok(false)
    } else {
        let show = |v: &[DateTime<Utc>]| {
            v.iter()
                .map(|t| t.with_timezone(&tz).to_rfc3339())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(format!(
            "\n   want [{}]\n   got  [{}]",
            show(&want),
            show(&got)
        ))
    }
}

#[test]
fn public_corpus() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cron-corpus/public.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the cron corpus at {}: {e}", path.display()));
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut failures = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let case: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: bad JSON: {e}", n + 1));
        let category = case["category"].as_str().unwrap_or("?").to_owned();
        let t = tallies.entry(category).or_default();
        t.total += 1;
        match check(&case) {
            Ok(by_policy) => {
                t.pass += 1;
                t.rejected_by_policy += usize::from(by_policy);
            }
            Err(why) => failures.push(format!(
                "{} `{}` tz={} after={}: {why}",
                case["id"].as_str().unwrap_or("?"),
                case["expr"].as_str().unwrap_or("?"),
                case["tz"].as_str().unwrap_or("-"),
                case["after"].as_str().unwrap_or("-"),
            )),
        }
    }
    let (mut pass, mut total, mut policy) = (0, 0, 0);
    println!("cron corpus: {}", path.display());
    for (cat, t) in &tallies {
        println!(
            "  {cat:<11} {:>3}/{:<3}{}",
            t.pass,
            t.total,
            if t.rejected_by_policy > 0 {
                format!(
                    "  ({} rejected by policy: validity disagreement)",
                    t.rejected_by_policy
                )
            } else {
                String::new()
            }
        );
        pass += t.pass;
        total += t.total;
        policy += t.rejected_by_policy;
    }
    println!("  total       {pass}/{total} ({policy} rejected by policy)");
    for f in &failures {
        println!("FAIL {f}");
    }
    assert!(
        failures.is_empty(),
        "{} corpus cases failed",
        failures.len()
    );
}
