//! Time zones and instants on the command line: zone names in any case,
//! `--tz local`, `--after` in RFC 3339 or as a local date(-time), and
//! printing fire times with the offset cronlane's evaluator uses.
//!
//! Offsets come from `cronlane::cron::utc_offset`, not from chrono-tz
//! directly: chrono-tz's tables end in 2099 and would print later summer
//! times an hour off.

use std::ffi::OsString;
use std::path::Path;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, SecondsFormat, Utc};
use chrono_tz::{Tz, TZ_VARIANTS};
use cronlane::cron::utc_offset;

/// The zone called `name`, in any case (`europe/berlin`), or `local`.
pub(crate) fn parse_zone(name: &str) -> Result<Tz, String> {
    if name.eq_ignore_ascii_case("local") {
        return local_zone();
    }
    by_name(name).ok_or_else(|| {
        format!("unknown time zone {name:?} (use an IANA name such as Europe/Berlin, or local)")
    })
}

fn by_name(name: &str) -> Option<Tz> {
    name.parse().ok().or_else(|| {
        TZ_VARIANTS
            .iter()
            .find(|tz| tz.name().eq_ignore_ascii_case(name))
            .copied()
    })
}

/// This system's zone: `TZ`, else the target of the `/etc/localtime` link,
/// else `/etc/timezone`.
fn local_zone() -> Result<Tz, String> {
    detect_local(
        std::env::var_os("TZ"),
        Path::new("/etc/localtime"),
        Path::new("/etc/timezone"),
    )
}

/// [`local_zone`] with its sources passed in (for tests).
pub(crate) fn detect_local(
    tz_env: Option<OsString>,
    localtime: &Path,
    timezone_file: &Path,
) -> Result<Tz, String> {
    if let Some(value) = tz_env {
        let value = value.to_string_lossy();
        // POSIX: a leading ':' is implementation-defined (a file name here);
        // an empty TZ means UTC.
        let name = value.strip_prefix(':').unwrap_or(&value);
        if name.is_empty() {
            return Ok(Tz::UTC);
        }
        let name = zone_from_path(name).unwrap_or(name);
        return by_name(name).ok_or_else(|| {
            format!("TZ={value:?} is not an IANA zone name (set TZ to one, such as Europe/Berlin, or pass --tz ZONE)")
        });
    }
    if let Ok(target) = std::fs::read_link(localtime) {
        let target = target.to_string_lossy();
        if let Some(tz) = zone_from_path(&target).and_then(by_name) {
            return Ok(tz);
        }
    }
    if let Ok(text) = std::fs::read_to_string(timezone_file) {
        if let Some(tz) = text.lines().next().map(str::trim).and_then(by_name) {
            return Ok(tz);
        }
    }
    Err(format!(
        "cannot tell this system's time zone: TZ is not set, {} is not a link into a \
         zoneinfo directory and {} names no zone; pass --tz ZONE",
        localtime.display(),
        timezone_file.display()
    ))
}

/// `Europe/Berlin` from `/usr/share/zoneinfo/Europe/Berlin` (also under
/// `zoneinfo/posix/` or `zoneinfo/right/`).
fn zone_from_path(path: &str) -> Option<&str> {
    let (_, rest) = path.rsplit_once("zoneinfo/")?;
    let rest = rest
        .strip_prefix("posix/")
        .or_else(|| rest.strip_prefix("right/"))
        .unwrap_or(rest);
    (!rest.is_empty()).then_some(rest)
}

/// `--after`: RFC 3339, or a date or local date-time read in `tz`.
pub(crate) fn parse_after(value: &str, tz: &Tz) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(value, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    });
    let bad = || {
        format!(
            "--after {value:?} is not a time: use RFC 3339 (2025-06-13T12:00:00Z), a date \
             (2025-06-13) or a local date-time (2025-06-13 09:00, 2025-06-13T09:00:30) read in --tz"
        )
    };
    local.and_then(|w| from_local(tz, w)).ok_or_else(bad)
}

/// The instant of wall time `wall` in `tz`: its first pass if the clocks
/// repeat it, the moment they jump if they skip it.
fn from_local(tz: &Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    let naive_utc = wall.and_utc();
    let offset = |t: DateTime<Utc>| utc_offset(tz, t).map(|o| i64::from(o.local_minus_utc()));
    let around = [
        offset(naive_utc - Duration::hours(36))?,
        offset(naive_utc + Duration::hours(36))?,
    ];
    let passes = around.iter().filter_map(|&o| {
        let t = naive_utc - Duration::seconds(o);
        (offset(t) == Some(o)).then_some(t)
    });
    if let Some(first) = passes.min() {
        return Some(first);
    }
    // A gap: the jump is the first instant with the later, larger offset.
    let (before, after) = (around[0], around[1]);
    let (mut lo, mut hi) = (
        naive_utc - Duration::seconds(after),
        naive_utc - Duration::seconds(before),
    );
    while hi - lo > Duration::seconds(1) {
        let mid = lo + (hi - lo) / 2;
        if offset(mid)? == after {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

/// `t` in RFC 3339 with `tz`'s offset, or `None` past year 9999 (which RFC
/// 3339 cannot write).
pub(crate) fn format_instant(t: DateTime<Utc>, tz: &Tz) -> Option<String> {
    let local = t.with_timezone(&utc_offset(tz, t)?);
    (local.year() <= 9999).then(|| local.to_rfc3339_opts(SecondsFormat::Secs, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cronlane-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn zone_names_in_any_case() {
        assert_eq!(parse_zone("europe/berlin"), Ok(chrono_tz::Europe::Berlin));
        assert_eq!(
            parse_zone("AMERICA/NEW_YORK"),
            Ok(chrono_tz::America::New_York)
        );
        assert_eq!(parse_zone("utc"), Ok(Tz::UTC));
        assert!(parse_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn local_zone_from_tz_then_localtime_link_then_timezone_file() {
        let dir = scratch("local");
        let (link, file) = (dir.join("localtime"), dir.join("timezone"));
        let env = |s: &str| Some(OsString::from(s));
        // TZ wins, with or without ':' or a zoneinfo path; empty is UTC.
        let berlin = Ok(chrono_tz::Europe::Berlin);
        assert_eq!(detect_local(env("Europe/Berlin"), &link, &file), berlin);
        assert_eq!(detect_local(env(":europe/berlin"), &link, &file), berlin);
        assert_eq!(
            detect_local(env("/usr/share/zoneinfo/Europe/Berlin"), &link, &file),
            berlin
        );
        assert_eq!(detect_local(env(""), &link, &file), Ok(Tz::UTC));
        let e = detect_local(env("CET-1CEST,M3.5.0,M10.5.0/3"), &link, &file).unwrap_err();
        assert!(e.contains("not an IANA zone name"), "{e}");
        // Nothing to go on: a clear error.
        let e = detect_local(None, &link, &file).unwrap_err();
        assert!(e.contains("cannot tell this system's time zone"), "{e}");
        assert!(e.contains("--tz ZONE"), "{e}");
        // /etc/timezone.
        std::fs::write(&file, "Asia/Tokyo\n").unwrap();
        assert_eq!(detect_local(None, &link, &file), Ok(chrono_tz::Asia::Tokyo));
        // The /etc/localtime link comes first (its target need not exist).
        std::os::unix::fs::symlink("/usr/share/zoneinfo/posix/America/Havana", &link).unwrap();
        assert_eq!(
            detect_local(None, &link, &file),
            Ok(chrono_tz::America::Havana)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn after_accepts_rfc3339_dates_and_local_date_times() {
        let berlin = chrono_tz::Europe::Berlin;
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        for (value, want) in [
            ("2025-01-01T09:00:00Z", "2025-01-01T09:00:00Z"),
            ("2025-01-01T09:00:00+05:00", "2025-01-01T04:00:00Z"),
            ("2025-01-01", "2025-01-01T00:00:00+01:00"),
            ("2025-01-01 09:00", "2025-01-01T09:00:00+01:00"),
            ("2025-01-01T09:00", "2025-01-01T09:00:00+01:00"),
            ("2025-07-01 09:00:30", "2025-07-01T09:00:30+02:00"),
            ("2025-07-01T09:00:30", "2025-07-01T09:00:30+02:00"),
            // Skipped by the jump: the jump; repeated: the first pass.
            ("2025-03-30 02:30", "2025-03-30T03:00:00+02:00"),
            ("2025-10-26 02:30", "2025-10-26T02:30:00+02:00"),
            // Past chrono-tz's tables: the zone's ongoing rule.
            ("2100-07-01 12:00", "2100-07-01T12:00:00+02:00"),
        ] {
            assert_eq!(parse_after(value, &berlin), Ok(at(want)), "{value}");
        }
        for bad in ["yesterday", "2025-13-01", "2025-01-01 25:00", "01/02/2025"] {
            assert!(parse_after(bad, &berlin).is_err(), "{bad}");
        }
    }

    #[test]
    fn printing_stops_at_year_9999() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            format_instant(t("9999-12-31T23:00:00Z"), &Tz::UTC).as_deref(),
            Some("9999-12-31T23:00:00+00:00")
        );
        let later = t("9999-12-31T23:00:00Z") + Duration::hours(2);
        assert_eq!(format_instant(later, &Tz::UTC), None);
        assert_eq!(
            format_instant(t("2100-07-01T10:00:00Z"), &chrono_tz::Europe::Berlin).as_deref(),
            Some("2100-07-01T12:00:00+02:00")
        );
    }
}
