//! Draining on SIGTERM and SIGINT (opt-in: `drain_on_termination`,
//! `ERRSNAP_DRAIN_ON_TERMINATION`).
//!
//! `docker stop`, systemd and Kubernetes stop a service with SIGTERM;
//! with the default disposition the kernel ends the process at once and
//! the queue and the alerts still to send are lost. When the application
//! has not installed a handler of its own, errsnap installs one that only
//! notes the signal (an atomic store and a one-byte `write` to a pipe,
//! both async-signal-safe) and wakes the `errsnap-signal` thread. That
//! thread drains every writer as the exit hook does (commit the queue,
//! deliver the alerts within the exit budget, record the run), restores
//! the default disposition and sends the same signal to the process, which
//! then ends by it (same exit status, same core-dump rules). A second
//! signal while draining ends the process at once.
//!
//! An application that installs its own handler later (tokio's
//! `signal::ctrl_c`, say) replaces errsnap's: it then decides, and the
//! logger's drop or the exit hook drains.

use std::sync::atomic::{AtomicI32, Ordering};

/// The write end of the wake-up pipe (-1: not installed).
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
/// The first signal caught (0: none yet).
static CAUGHT: AtomicI32 = AtomicI32::new(0);

/// The signals errsnap drains on.
const SIGNALS: [libc::c_int; 2] = [libc::SIGTERM, libc::SIGINT];

/// Installs the handler for SIGTERM and SIGINT where the disposition is
/// still the default, once per process. Returns the signals it took.
pub(crate) fn drain_on_termination() -> Vec<libc::c_int> {
    static INSTALLED: std::sync::OnceLock<Vec<libc::c_int>> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(install).clone()
}

fn install() -> Vec<libc::c_int> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        crate::util::internal_log::report("signals", &std::io::Error::last_os_error());
        return Vec::new();
    }
    let (read_end, write_end) = (fds[0], fds[1]);
    let spawned = std::thread::Builder::new()
        .name("errsnap-signal".into())
        .spawn(move || wait_and_drain(read_end));
    if let Err(e) = spawned {
        crate::util::internal_log::report("signals", &e);
        // SAFETY: closing the two descriptors made above, used by nothing.
        unsafe {
            libc::close(read_end);
            libc::close(write_end);
        }
        return Vec::new();
    }
    PIPE_WRITE.store(write_end, Ordering::SeqCst);
    SIGNALS
        .iter()
        .copied()
        .filter(|&sig| take_if_default(sig))
        .collect()
}

/// Installs [`on_signal`] for `sig` when its disposition is the default;
/// `false` when the application (or a parent's `SIG_IGN`) set another.
fn take_if_default(sig: libc::c_int) -> bool {
    // SAFETY: sigaction with a zeroed, then filled struct; reading the
    // current disposition first (a null `act` changes nothing).
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
            return false;
        }
        if old.sa_sigaction != libc::SIG_DFL {
            return false;
        }
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        act.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaction(sig, &act, std::ptr::null_mut()) == 0
    }
}

/// The handler: async-signal-safe only (atomics, `write`, `signal`,
/// `raise`); `errno` is kept for the code it interrupted.
extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: errno is read and restored around the calls below.
    let errno = unsafe { *libc::__errno_location() };
    if CAUGHT
        .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
        .is_err()
    {
        // A second signal while draining: end now, by this signal.
        // SAFETY: signal and raise are async-signal-safe.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
    } else {
        let fd = PIPE_WRITE.load(Ordering::SeqCst);
        if fd >= 0 {
            let byte = 1u8;
            // SAFETY: write is async-signal-safe; one byte from a local.
            unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// The `errsnap-signal` thread: waits for a caught signal, drains, then
/// lets the signal end the process.
fn wait_and_drain(read_end: libc::c_int) {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads one byte into a local.
        let n = unsafe { libc::read(read_end, (&mut byte as *mut u8).cast(), 1) };
        if n == 1 {
            break;
        }
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return;
    }
    let sig = CAUGHT.load(Ordering::SeqCst);
    let _ = std::panic::catch_unwind(super::exit::drain_all);
    // SAFETY: restores the default disposition and ends the process by
    // the signal it was sent; should it survive (the signal blocked in
    // every thread), it exits with the shell's code for that signal.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::kill(libc::getpid(), sig);
        std::thread::sleep(std::time::Duration::from_secs(1));
        libc::_exit(128 + sig);
    }
}
