//! The stack walk on the caller's thread: instruction pointers only, no
//! symbols (the writer resolves them).

/// The most frames captured per event.
pub(crate) const MAX_FRAMES: usize = 128;

/// A stack walk without symbols: instruction pointers only.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawBacktrace {
    pub(crate) ips: Vec<usize>,
}

impl RawBacktrace {
    /// Walks the current stack (a few microseconds for ~30 frames).
    #[inline(never)]
    pub(crate) fn capture() -> RawBacktrace {
        let mut ips = Vec::with_capacity(48);
        backtrace::trace(|frame| {
            let ip = frame.ip() as usize;
            if ip != 0 {
                ips.push(ip);
            }
            ips.len() < MAX_FRAMES
        });
        RawBacktrace { ips }
    }
}
