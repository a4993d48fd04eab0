//! Signals, taken synchronously: the daemon's signals are blocked in every
//! thread (the mask is set before the first thread starts, and threads
//! inherit it) and the main thread takes them one at a time with
//! `sigwait`. No async-signal handler logic, no self-pipe.
//!
//! A no-op handler is installed as well: PID 1 does not receive signals
//! left at their default action, and a handler makes that moot. Child
//! processes get an empty mask and default actions (the standard library
//! resets both before `exec`).

/// The signals the daemon acts on.
pub(crate) const SIGNALS: [libc::c_int; 5] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGUSR2,
    libc::SIGQUIT,
];

extern "C" fn ignore(_: libc::c_int) {}

/// Blocks [`SIGNALS`] in the calling thread (and the threads it starts).
/// Call before starting any thread.
pub(crate) fn block() -> std::io::Result<libc::sigset_t> {
    // SAFETY: an all-zero sigset_t is a valid value; sigemptyset then
    // initialises it as the platform requires.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t owned by this frame; the handler is
    // an `extern "C"` function that does nothing (async-signal-safe).
    unsafe {
        libc::sigemptyset(&mut set);
        for s in SIGNALS {
            libc::sigaddset(&mut set, s);
            libc::signal(
                s,
                ignore as extern "C" fn(libc::c_int) as libc::sighandler_t,
            );
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(set)
}

/// Waits for one of the signals in `set` and returns it.
pub(crate) fn wait(set: &libc::sigset_t) -> libc::c_int {
    loop {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` was built by `block`; `sig` is a valid out-pointer.
        if unsafe { libc::sigwait(set, &mut sig) } == 0 {
            return sig;
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
