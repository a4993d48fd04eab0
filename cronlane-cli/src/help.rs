//! The help texts: one for the program, one per command.

/// `cronlane --help`: the commands.
pub(crate) const GLOBAL: &str = "\
cronlane: next fire times and plain-English explanations of cron expressions

usage:
  cronlane next [OPTIONS] EXPR      print the next fire times
  cronlane explain [OPTIONS] EXPR   describe the expression in plain English
  cronlane help [COMMAND]           this help, or a command's (also: COMMAND --help)
  cronlane --version                print the version (also: -V)

EXPR is one quoted argument, or several words (cronlane next 0 9 '*' '*' MON-FRI).
Times are evaluated and printed in UTC unless --tz says otherwise.
The rules (dialects, daylight saving, errors) are in docs/cron.md.

examples:
  cronlane next --tz Europe/Berlin -n 3 '0 9 * * MON-FRI'
  cronlane explain '*/15 9-17 * * 1-5'

exit status: 0 ok; 2 invalid expression or arguments; 3 no fire time to print";

/// `cronlane next --help`.
pub(crate) const NEXT: &str = "\
cronlane next: print the next fire times of a cron expression

usage: cronlane next [--tz ZONE] [--after TIME] [-n N] [--dialect vixie|quartz] EXPR

options:
  --tz ZONE        the IANA zone to evaluate in and print with, in any case
                   (Europe/Berlin, europe/berlin); `local` for this system's zone
                   (TZ, else the /etc/localtime link, else /etc/timezone).
                   Default: UTC.
  --after TIME     print fire times strictly after TIME. Default: now.
                   RFC 3339 (2025-06-13T12:00:00Z, 2025-06-13T14:00:00+02:00), or a
                   date or local date-time read in --tz: 2025-06-13 (midnight),
                   '2025-06-13 09:00', 2025-06-13T09:00, 2025-06-13T09:00:30.
                   A local time the clocks skip means the moment they jump;
                   one they repeat, its first pass.
  -n, --count N    how many fire times to print (default 5, at most 100000)
  --dialect D      vixie (default: 5 fields, or 6 with leading seconds) or
                   quartz (6 or 7 fields, seconds first, day of week 1 = Sunday)
  -h, --help       this help

Fire times are printed one per line, in RFC 3339 with the zone's offset, up
to the end of year 9999 (the last RFC 3339 can write).

examples:
  cronlane next '0 9 * * MON-FRI'
  cronlane next --tz Europe/Berlin --after 2025-03-29 -n 3 '30 2 * * *'
  cronlane next --tz local -n 1 @daily
  cronlane next --dialect quartz --after '2025-06-13 12:00' '0 0 12 ? * MON-FRI'

exit status:
  0  fire times printed (fewer than N, with a note on stderr, if the
     expression stops firing or reaches year 9999)
  2  invalid expression (shown with a caret under the offending character),
     unknown zone, unreadable --after, or other bad arguments
  3  no fire time to print: the expression never fires after --after, or
     not before year 10000";

/// `cronlane explain --help`.
pub(crate) const EXPLAIN: &str = "\
cronlane explain: describe a cron expression in plain English

usage: cronlane explain [--dialect vixie|quartz] EXPR

The description gives the times and days, then how daylight saving treats
the job: a fixed-time job (5 fields, minute and hour not starting with *)
fires once right after a skipped time and once in a repeated hour; every
other job follows the wall clock. An expression that matches no date says
that it never fires.

options:
  --dialect D   vixie (default) or quartz
  -h, --help    this help

examples:
  cronlane explain '0 9 * * MON-FRI'
  cronlane explain '0 0 1,15 * FRI'
  cronlane explain --dialect quartz '0 0 12 ? * L'

exit status: 0 described; 2 invalid expression (with a caret) or bad arguments";

/// The one-line usage of a command, shown under an argument error.
pub(crate) fn usage_line(command: Option<&str>) -> &'static str {
    match command {
        Some("next") => {
            "usage: cronlane next [--tz ZONE] [--after TIME] [-n N] [--dialect vixie|quartz] EXPR\n\
             (cronlane next --help for the options)"
        }
        Some("explain") => {
            "usage: cronlane explain [--dialect vixie|quartz] EXPR\n\
             (cronlane explain --help for more)"
        }
        _ => "usage: cronlane next|explain [OPTIONS] EXPR (cronlane --help for more)",
    }
}
