//! [`CatchError`]: what [`EventLogger::catch`](super::EventLogger::catch) returns.

use std::any::Any;

/// The error returned by [`EventLogger::catch`](crate::EventLogger::catch): what the closure returned,
/// or the panic it raised (both already recorded).
pub enum CatchError<E> {
    /// The closure returned `Err`.
    Err(E),
    /// The closure panicked. Resume it with `std::panic::resume_unwind(payload)`.
    Panic {
        /// The panic message (payload text, or a placeholder).
        message: String,
        /// The original payload.
        payload: Box<dyn Any + Send + 'static>,
    },
}

impl<E: std::fmt::Debug> std::fmt::Debug for CatchError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatchError::Err(e) => f.debug_tuple("Err").field(e).finish(),
            CatchError::Panic { message, .. } => {
                f.debug_struct("Panic").field("message", message).finish()
            }
        }
    }
}

impl<E: std::fmt::Display> std::fmt::Display for CatchError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CatchError::Err(e) => e.fmt(f),
            CatchError::Panic { message, .. } => write!(f, "panicked: {message}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for CatchError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CatchError::Err(e) => e.source(),
            CatchError::Panic { .. } => None,
        }
    }
}
