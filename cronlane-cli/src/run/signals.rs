//! Signals, through a self-pipe: a handler for each of the daemon's
//! signals writes the signal's number, one byte, to a pipe, and the main
//! thread reads the pipe and acts. The handler does nothing else (`write`
//! is async-signal-safe); all the work happens on the main thread.
//!
//! Why not block the signals and `sigwait`: a blocked mask is inherited by
//! every thread *and by every process they spawn*, so each job would start
//! with SIGTERM blocked (and `--timeout` could not stop it) unless each
//! spawn reset the mask in a `pre_exec` hook, which forces `fork` instead of
//! the faster `posix_spawn`. With handlers, exec resets them to the default
//! in the child and the mask stays empty. A handler also makes PID 1
//! receive signals, which it would otherwise ignore at their default.
//!
//! Both ends of the pipe are close-on-exec (jobs do not inherit them) and
//! the write end is non-blocking: a signal storm that fills the pipe drops
//! signals that the main thread has not read yet, never blocks a handler.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signals the daemon acts on.
pub(crate) const SIGNALS: [libc::c_int; 5] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGUSR2,
    libc::SIGQUIT,
];

/// The pipe's write end, for the handler (-1 before `install`).
/// Relaxed is enough: it is stored once, before the handlers are installed
/// (the `sigaction` call orders it before any handler can run).
static WRITE_END: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = WRITE_END.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = sig as u8;
        // SAFETY: write(2) is async-signal-safe; `byte` lives for the call.
        // The result is ignored: a full pipe drops the signal (see above).
        // errno is saved and restored so the interrupted code sees its own.
        unsafe {
            let saved = *libc::__errno_location();
            libc::write(fd, (&byte as *const u8).cast(), 1);
            *libc::__errno_location() = saved;
        }
    }
}

/// The read end of the signal pipe.
#[derive(Debug)]
pub(crate) struct Signals {
    read_end: libc::c_int,
}

/// Creates the pipe and installs the handlers. Call once.
pub(crate) fn install() -> std::io::Result<Signals> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fds[1] is the pipe's write end, just created and owned here.
    unsafe {
        let flags = libc::fcntl(fds[1], libc::F_GETFL);
        libc::fcntl(fds[1], libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    WRITE_END.store(fds[1], Ordering::Relaxed);
    for sig in SIGNALS {
        // SAFETY: an all-zero sigaction is valid (empty mask, no flags);
        // the handler is an `extern "C" fn(c_int)` that only calls
        // async-signal-safe functions.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(Signals { read_end: fds[0] })
}

impl Signals {
    /// Waits for the next signal and returns it.
    pub(crate) fn wait(&self) -> libc::c_int {
        loop {
            let mut byte = 0u8;
            // SAFETY: reads one byte into `byte`, which lives for the call.
            let n = unsafe { libc::read(self.read_end, (&mut byte as *mut u8).cast(), 1) };
            if n == 1 {
                return libc::c_int::from(byte);
            }
            // EINTR (a signal arrived while reading): read again.
        }
    }
}

/// The signal's name, for the log.
pub(crate) fn name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGQUIT => "SIGQUIT",
        _ => "signal",
    }
}
