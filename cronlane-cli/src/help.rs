//! The help texts: one for the program, one per command.

/// `cronlane --help`: the commands.
pub(crate) const GLOBAL: &str = "\
cronlane: next fire times and plain-English explanations of cron expressions,
and a cron daemon for containers

usage:
  cronlane next [OPTIONS] EXPR      print the next fire times
  cronlane explain [OPTIONS] EXPR   describe the expression in plain English
  cronlane run [OPTIONS] CRONTAB    run the jobs of a crontab file (until SIGTERM)
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

/// `cronlane run --help`.
pub(crate) const RUN: &str = "\
cronlane run: run the jobs of a crontab file, logging to stdout (cron for containers)

usage: cronlane run [OPTIONS] CRONTAB

The file: comments, blank lines, NAME=value environment lines (for the jobs
below them; SHELL= picks the shell, CRON_TZ= or TZ= the zone of the
schedules below), `# name: NAME` naming the next job, and job lines:
  SEC MIN HOUR DOM MON DOW COMMAND   6 fields, leading seconds
  MIN HOUR DOM MON DOW COMMAND       5 fields, Vixie/Debian semantics
  @hourly COMMAND                    macros (@daily, @weekly, ...); @reboot: once at start
Each fire runs `$SHELL -c COMMAND` (default /bin/sh) in its own process
group, with the daemon's environment plus the file's; its stdout and stderr
are logged line by line, tagged with the job (its # name: or lineN).

options:
  --test             check the file, print each job with its next 3 fire times
                     and its meaning in English, run nothing
  --json             log one JSON object per line (default: text)
  --split-logs       job output on stdout, daemon messages on stderr
                     (default: everything on stdout)
  --overlapping      let a job start while its previous run still goes on
                     (default: that fire is skipped, with a warning at most
                     once a minute per job)
  --timeout DUR      stop a run that takes longer: SIGTERM to its process
                     group, then SIGKILL after --kill-timeout (default: none)
  --kill-timeout DUR SIGTERM to SIGKILL, for --timeout and stopping (default 10s)
  --grace DUR        on SIGTERM or SIGINT, how long to wait for running jobs
                     before terminating them (default 30s)
  --metrics ADDR     serve Prometheus /metrics and /healthz on ADDR
                     (127.0.0.1:9746, 0.0.0.0:9746, [::]:9746)
  --tz ZONE          zone of the schedules above any CRON_TZ= (default UTC;
                     `local` for this system's zone)
  --max-line BYTES   longest output line logged; longer ones are cut with a
                     marker (default 16384)
  --state FILE       remember each job's last fire in FILE (an embedded redb
                     store), so fires missed while the daemon was down run
                     after a restart, per --misfire; one daemon per FILE
  --misfire POLICY   fires missed (daemon down, host suspended, stalled):
                     once (default: the latest of them runs once), skip
                     (none runs), catchup (each runs, oldest first)
  --catchup-max N    with --misfire catchup: at most N missed fires in a row
                     (default 10)
  --delivery D       with --state or --postgres: at-least-once (default: a
                     run interrupted by a crash runs again, after restart or
                     on another replica) or at-most-once (it never runs again)
  --postgres URL     cluster mode: the daemons sharing this PostgreSQL
                     database run the same crontab and start each fire once
                     across them (not with --state)
  --pg-schema NAME   with --postgres: the schema of its tables (default sched)
  -h, --help         this help
DUR: 30s, 5m, 1h30m, 250ms, or a number of seconds.

signals: SIGTERM, SIGINT: stop (see --grace), exit 0. SIGHUP, SIGUSR2:
reload the file; unchanged jobs keep running, a file with errors is refused
and the jobs loaded before keep running.

examples:
  cronlane run --test crontab
  cronlane run --json --metrics 0.0.0.0:9746 crontab
  cronlane run --state /var/lib/cronlane/state.db --misfire catchup crontab
  cronlane run --json --postgres postgres://cron@db:5432/app crontab

exit status: 0 stopped by a signal, or --test found no error; 1 cannot run
(unreadable file, address in use, database unreachable); 2 the file has an
error (file:line:column and a caret on stderr; nothing runs) or bad options";

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
        Some("run") => {
            "usage: cronlane run [OPTIONS] CRONTAB (cronlane run --help for the options)"
        }
        _ => "usage: cronlane next|explain [OPTIONS] EXPR, or cronlane run [OPTIONS] CRONTAB (cronlane --help for more)",
    }
}
