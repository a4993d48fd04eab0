//! Running one fire's process: spawn it in its own process group, stream
//! its output line by line to the log, wait for it (with `--timeout` and
//! `--kill-timeout`), and reap every child, orphans included.
//!
//! # Ground rules
//!
//! * **One reaper.** Exit statuses are collected by a single thread that
//!   waits for *any* child (`waitid(P_ALL, WNOWAIT)`, then `waitpid`), never
//!   by `Child::wait`. That is what PID 1 must do (orphans are re-parented
//!   to it), and it is done the same way when not PID 1, so there is one
//!   code path. The status goes to the fire waiting for that pid through a
//!   channel registered in `children`; a pid nobody waits for is an orphan
//!   and its status is dropped.
//! * **Spawns hold the gate.** A fire holds `gate` for reading while
//!   `Command::spawn` runs and its pid is inserted in `children`; the
//!   reaper holds it for writing while it reaps. So the reaper never reaps a
//!   pid that is not registered yet (nor a child that `spawn` itself reaps
//!   after a failed `exec`), and fires still spawn in parallel.
//! * **Process groups.** Each command runs as the leader of a new process
//!   group (pgid = pid). Timeouts and shutdown signal the whole group, so a
//!   grandchild the command started goes with it. `groups` holds each
//!   group until its leader has exited *and* its output pipes are closed
//!   (a background grandchild may hold them): stopping the daemon
//!   terminates those lingering groups too.
//! * The fire's callback blocks on its process: the engine's overlap policy
//!   (a job whose process is still running is skipped) therefore acts on
//!   the process lifetime. Each fire runs on its own thread (see
//!   `daemon.rs`), so a blocked fire never delays the runner.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use crate::run::crontab::Entry;
use crate::run::log::{Level, Log, Stream, Val};

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

/// What became of one fire's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It ran and ended after `took`; `timed_out` if `--timeout` had to
    /// stop it.
    Ended {
        exit: Exit,
        timed_out: bool,
        took: Duration,
    },
    /// It could not be started (the shell is missing, no more processes…).
    NotStarted(String),
}

impl Outcome {
    /// Exit code 0, not stopped by a timeout.
    pub(crate) fn success(&self) -> bool {
        matches!(
            self,
            Outcome::Ended {
                exit: Exit::Code(0),
                timed_out: false,
                ..
            }
        )
    }
}

/// Limits for every fire.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Stop a process group that runs longer (`--timeout`).
    pub(crate) timeout: Option<Duration>,
    /// After SIGTERM, how long until SIGKILL (`--kill-timeout`).
    pub(crate) kill_timeout: Duration,
    /// Longest line of output kept, in bytes (`--max-line`).
    pub(crate) max_line: usize,
}

/// Spawns, watches and reaps job processes. One per daemon.
pub(crate) struct Supervisor {
    children: Mutex<HashMap<libc::pid_t, Sender<Exit>>>,
    /// Read: a spawn is under way; write: the reaper reaps (ground rules).
    gate: RwLock<()>,
    /// Wakes the reaper when it had no child to wait for.
    spawned: Condvar,
    /// Process groups of fires, by pgid.
    groups: Arc<Groups>,
    /// Fires under way (from [`Supervisor::enter`] to the guard's drop).
    fires: Mutex<usize>,
    fires_done: Condvar,
    log: Arc<Log>,
    limits: Limits,
}

/// Most time, after a process exited, to wait for the rest of its output
/// (a background grandchild may keep the pipes open for ever).
const DRAIN_WAIT: Duration = Duration::from_secs(1);

/// Stack of the threads that read job output.
const READER_STACK: usize = 64 * 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Supervisor {
    /// A supervisor and its reaper thread.
    pub(crate) fn start(log: Arc<Log>, limits: Limits) -> std::io::Result<Arc<Supervisor>> {
        let sup = Arc::new(Supervisor {
            children: Mutex::new(HashMap::new()),
            gate: RwLock::new(()),
            spawned: Condvar::new(),
            groups: Arc::new(Groups::default()),
            fires: Mutex::new(0),
            fires_done: Condvar::new(),
            log,
            limits,
        });
        let s = sup.clone();
        std::thread::Builder::new()
            .name("cronlane-reaper".into())
            .spawn(move || s.reap_forever())?;
        Ok(sup)
    }

    fn reap_forever(&self) {
        loop {
            // SAFETY: an all-zero siginfo_t is a valid value of this plain C
            // struct; waitid only writes to it.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: `info` is a valid, writable siginfo_t; WNOWAIT leaves
            // the child waitable, so nothing is reaped before we hold the
            // lock below.
            let r =
                unsafe { libc::waitid(libc::P_ALL, 0, &mut info, libc::WEXITED | libc::WNOWAIT) };
            if r == -1 {
                let err = std::io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::ECHILD) {
                    // Sleep until a fire registers a child; checked under
                    // the lock, so a registration cannot slip in between.
                    // Re-checked every second: an orphan may be re-parented
                    // to us (PID 1) at any time.
                    let children = lock(&self.children);
                    if children.is_empty() {
                        let _ = self.spawned.wait_timeout(children, Duration::from_secs(1));
                    }
                }
                continue;
            }
            // SAFETY: waitid succeeded with WEXITED, so `info` describes a
            // child and si_pid is the field the kernel filled in.
            let pid = unsafe { info.si_pid() };
            let _gate = self
                .gate
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut status = 0;
            // SAFETY: `status` is a valid out-pointer; WNOHANG: the child
            // may have been reaped by `spawn` meanwhile (failed exec).
            let reaped = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if reaped != pid {
                continue;
            }
            let exit = if libc::WIFSIGNALED(status) {
                Exit::Signal(libc::WTERMSIG(status))
            } else {
                Exit::Code(libc::WEXITSTATUS(status))
            };
            if let Some(tx) = lock(&self.children).remove(&pid) {
                let _ = tx.send(exit);
            }
        }
    }

    /// Runs one fire of `entry` (tagged `tag` in the log) to its end.
    /// `start` fields are added to the `start` record (scheduled instant, lag).
    pub(crate) fn run(&self, entry: &Entry, tag: &Arc<str>, start: &[(&str, Val)]) -> Outcome {
        let mut cmd = Command::new(&entry.shell);
        cmd.arg("-c")
            .arg(&entry.command)
            .envs(entry.env.iter().map(|(k, v)| (k, v)))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let (tx, rx) = channel();
        let t0 = Instant::now();
        let mut child = {
            let _gate = self
                .gate
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match cmd.spawn() {
                Ok(child) => {
                    lock(&self.children).insert(child.id() as libc::pid_t, tx);
                    self.spawned.notify_one();
                    child
                }
                Err(e) => {
                    return Outcome::NotStarted(format!("cannot start {:?}: {e}", entry.shell))
                }
            }
        };
        let pid = child.id() as libc::pid_t;
        self.groups.started(pid);
        // Logged before the output readers start, so it comes first.
        let mut fields = vec![("pid", Val::from(i64::from(pid)))];
        fields.extend(start.iter().cloned());
        self.log.event(
            Level::Info,
            Some(tag),
            "start",
            &short(&entry.command),
            &fields,
        );
        let (done_tx, done_rx) = channel::<()>();
        let mut readers = 0;
        let max = self.limits.max_line;
        let pipes: [(Option<Box<dyn Read + Send>>, Stream); 2] = [
            (
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
                Stream::Stdout,
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
                Stream::Stderr,
            ),
        ];
        for (pipe, stream) in pipes {
            let Some(pipe) = pipe else { continue };
            let (log, jtag, done) = (self.log.clone(), tag.clone(), done_tx.clone());
            let groups = self.groups.clone();
            groups.pipe_opened(pid);
            let spawned = std::thread::Builder::new()
                .name(format!("cronlane-{}", stream.name()))
                .stack_size(READER_STACK)
                .spawn(move || {
                    pump(pipe, max, |line, cut| log.output(&jtag, stream, line, cut));
                    groups.pipe_closed(pid);
                    let _ = done.send(());
                });
            if spawned.is_ok() {
                readers += 1;
            } else {
                self.groups.pipe_closed(pid);
                self.log.event(
                    Level::Warn,
                    Some(tag),
                    "output",
                    "cannot start a thread to read the job's output; it is dropped",
                    &[("stream", stream.name().into())],
                );
            }
        }
        drop(done_tx);
        let (exit, timed_out) = self.wait(&rx, pid, tag);
        let took = t0.elapsed();
        self.groups.leader_exited(pid);
        let deadline = Instant::now() + DRAIN_WAIT;
        for _ in 0..readers {
            let left = deadline.saturating_duration_since(Instant::now());
            if done_rx.recv_timeout(left).is_err() {
                break;
            }
        }
        Outcome::Ended {
            exit,
            timed_out,
            took,
        }
    }

    /// Waits for `pid`, enforcing the timeout on its process group.
    fn wait(
        &self,
        rx: &std::sync::mpsc::Receiver<Exit>,
        pid: libc::pid_t,
        tag: &str,
    ) -> (Exit, bool) {
        let lost = Exit::Signal(libc::SIGKILL);
        let Some(timeout) = self.limits.timeout else {
            return (rx.recv().unwrap_or(lost), false);
        };
        match rx.recv_timeout(timeout) {
            Ok(exit) => return (exit, false),
            Err(RecvTimeoutError::Disconnected) => return (lost, false),
            Err(RecvTimeoutError::Timeout) => {}
        }
        self.log.event(
            Level::Warn,
            Some(tag),
            "timeout",
            "still running after --timeout: sending SIGTERM to its process group",
            &[
                ("pid", i64::from(pid).into()),
                ("timeout_s", timeout.as_secs_f64().into()),
            ],
        );
        signal_group(pid, libc::SIGTERM);
        let deadline = Instant::now() + self.limits.kill_timeout;
        let exit = match rx.recv_timeout(self.limits.kill_timeout) {
            Ok(exit) => {
                // The leader is gone; the rest of its group gets what is
                // left of --kill-timeout too.
                while group_alive(pid) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if !group_alive(pid) {
                    return (exit, true);
                }
                Some(exit)
            }
            Err(RecvTimeoutError::Disconnected) => return (lost, true),
            Err(RecvTimeoutError::Timeout) => None,
        };
        self.log.event(
            Level::Warn,
            Some(tag),
            "kill",
            "still running after --kill-timeout: sending SIGKILL to its process group",
            &[("pgid", i64::from(pid).into())],
        );
        signal_group(pid, libc::SIGKILL);
        match exit {
            Some(exit) => (exit, true),
            None => (rx.recv().unwrap_or(lost), true),
        }
    }

    /// Marks a fire under way until the guard is dropped (after its exit
    /// is logged).
    pub(crate) fn enter(&self) -> FireGuard<'_> {
        *lock(&self.fires) += 1;
        FireGuard { sup: self }
    }

    /// Waits up to `timeout` for the fires under way to finish.
    pub(crate) fn wait_fires(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut n = lock(&self.fires);
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            n = match self.fires_done.wait_timeout(n, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }

    /// How many fires' processes are running (leaders not yet exited).
    pub(crate) fn running(&self) -> usize {
        lock(&self.groups.map).values().filter(|g| g.leader).count()
    }

    /// Waits until no leader runs (`all`: until no group is left at all),
    /// or `timeout` passed; true if so.
    pub(crate) fn wait_idle(&self, timeout: Duration, all: bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut map = lock(&self.groups.map);
        while map.values().any(|g| all || g.leader) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            map = match self.groups.changed.wait_timeout(map, left) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }

    /// Sends `sig` to every process group left; returns how many.
    pub(crate) fn signal_all(&self, sig: libc::c_int) -> usize {
        let groups: Vec<libc::pid_t> = lock(&self.groups.map).keys().copied().collect();
        for &g in &groups {
            signal_group(g, sig);
        }
        groups.len()
    }
}

/// A fire under way; see [`Supervisor::enter`].
pub(crate) struct FireGuard<'a> {
    sup: &'a Supervisor,
}

impl Drop for FireGuard<'_> {
    fn drop(&mut self) {
        let mut n = lock(&self.sup.fires);
        *n = n.saturating_sub(1);
        self.sup.fires_done.notify_all();
    }
}

/// One fire's process group: is its leader running, how many of its output
/// pipes are open.
#[derive(Debug, Default, Clone, Copy)]
struct Group {
    leader: bool,
    pipes: usize,
}

/// The process groups of fires; a group leaves when its leader exited and
/// its pipes closed.
#[derive(Debug, Default)]
struct Groups {
    map: Mutex<HashMap<libc::pid_t, Group>>,
    changed: Condvar,
}

impl Groups {
    fn started(&self, pgid: libc::pid_t) {
        lock(&self.map).insert(
            pgid,
            Group {
                leader: true,
                pipes: 0,
            },
        );
    }

    fn pipe_opened(&self, pgid: libc::pid_t) {
        if let Some(g) = lock(&self.map).get_mut(&pgid) {
            g.pipes += 1;
        }
    }

    fn update(&self, pgid: libc::pid_t, f: impl FnOnce(&mut Group)) {
        let mut map = lock(&self.map);
        if let Some(g) = map.get_mut(&pgid) {
            f(g);
            if !g.leader && g.pipes == 0 {
                map.remove(&pgid);
            }
        }
        self.changed.notify_all();
    }

    fn pipe_closed(&self, pgid: libc::pid_t) {
        self.update(pgid, |g| g.pipes = g.pipes.saturating_sub(1));
    }

    fn leader_exited(&self, pgid: libc::pid_t) {
        self.update(pgid, |g| g.leader = false);
    }
}

/// Whether any process of group `pgid` is left (zombies included).
fn group_alive(pgid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks for existence; no memory is involved.
    unsafe { libc::killpg(pgid, 0) == 0 }
}

fn signal_group(pgid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: killpg has no memory-safety preconditions; a group that is
    // already gone gives ESRCH, which is fine.
    unsafe {
        libc::killpg(pgid, sig);
    }
}

/// Reads `input` to its end and calls `emit(line, truncated)` for each line
/// (without its `\n`, and without a `\r` before it). A line longer than
/// `max` bytes is cut at `max` (on a character boundary, lossy UTF-8), emitted
/// with `truncated = true`, and the rest of it skipped. A last line without
/// a newline is emitted too. Memory stays within `max` plus the buffer.
pub(crate) fn pump(input: impl Read, max: usize, mut emit: impl FnMut(&str, bool)) {
    let mut reader = BufReader::with_capacity(16 * 1024, input);
    let mut line: Vec<u8> = Vec::new();
    let mut dropping = false;
    let mut flush = |line: &mut Vec<u8>, cut: bool| {
        if !cut && line.last() == Some(&b'\r') {
            line.pop();
        }
        let text = String::from_utf8_lossy(line);
        let text = if cut && text.ends_with('\u{fffd}') {
            // A character cut in half at the cap: drop the stub.
            text.trim_end_matches('\u{fffd}')
        } else {
            &text
        };
        emit(text, cut);
        line.clear();
    };
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        if buf.is_empty() {
            if !line.is_empty() && !dropping {
                flush(&mut line, false);
            }
            break;
        }
        let (chunk, newline) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        let used = chunk.len() + usize::from(newline);
        if !dropping {
            let room = max.saturating_sub(line.len());
            if chunk.len() > room {
                line.extend_from_slice(&chunk[..room]);
                flush(&mut line, true);
                dropping = true;
            } else {
                line.extend_from_slice(chunk);
            }
        }
        if newline {
            if !dropping {
                flush(&mut line, false);
            }
            dropping = false;
            line.clear();
        }
        reader.consume(used);
    }
}

/// A status for the log: (`exit 3` or `killed by signal 9`, the shell's
/// `$?` for it, the signal).
pub(crate) fn describe(exit: Exit) -> (String, i64, Option<i64>) {
    match exit {
        Exit::Code(c) => (format!("exit {c}"), i64::from(c), None),
        Exit::Signal(s) => (
            format!("killed by signal {s}"),
            i64::from(128 + s),
            Some(i64::from(s)),
        ),
    }
}

/// The command for a log line, cut to 200 characters.
fn short(command: &str) -> String {
    match command.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &command[..i]),
        None => command.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::pump;

    fn lines(input: &[u8], max: usize) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        pump(input, max, |l, cut| out.push((l.to_owned(), cut)));
        out
    }

    #[test]
    fn lines_without_newline_crlf_and_caps() {
        assert_eq!(
            lines(b"a\r\nb\n\nlast", 10),
            vec![
                ("a".into(), false),
                ("b".into(), false),
                (String::new(), false),
                ("last".into(), false)
            ]
        );
        assert_eq!(
            lines(b"0123456789abc\nok\n0123456789", 10),
            vec![
                ("0123456789".into(), true),
                ("ok".into(), false),
                ("0123456789".into(), false)
            ]
        );
        let long = vec![b'x'; 1_000_000];
        let got = lines(&long, 100);
        assert_eq!(got, vec![("x".repeat(100), true)]);
        // A multi-byte character cut in two at the cap is dropped, not mangled.
        assert_eq!(lines("aé\n".as_bytes(), 2), vec![("a".into(), true)]);
    }
}
