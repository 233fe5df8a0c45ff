//! The crate's error type.

use std::fmt;

/// `Result` with errsnap's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error returned by errsnap.
///
/// The cause (an SQLite or I/O error, say) is reachable through
/// [`std::error::Error::source`]; it is never printed by `Display`, so a
/// chain printer shows each layer exactly once.
///
/// ```
/// let err = errsnap::EventLogger::builder()
///     .name("x; DROP TABLE events")
///     .build()
///     .unwrap_err();
/// assert!(matches!(err.kind(), errsnap::ErrorKind::InvalidLoggerName { .. }));
/// assert!(err.to_string().contains("x; DROP TABLE events"));
/// ```
pub struct Error {
    kind: ErrorKind,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    fault: Fault,
}

/// What a storage failure means for the writer, as the store classified it
/// (so that no layer above the store needs its database library's types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Fault {
    /// Nothing particular: retry later.
    #[default]
    Other,
    /// Another connection holds a lock: wait, keep the connection.
    Busy,
    /// The file is damaged or not a database: move it aside.
    Corrupt,
}

/// What went wrong; see [`Error::kind`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The logger (table) name is not an acceptable SQL identifier.
    InvalidLoggerName {
        /// The rejected name, as given.
        name: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A configuration key has a bad value. The value is included only for
    /// keys that are not secrets.
    Config {
        /// The offending key, e.g. `ERRSNAP_DB_PATH`.
        key: String,
        /// What is wrong with it (never a secret's text).
        message: String,
    },
    /// The database could not be opened, migrated, read or written.
    Storage {
        /// What errsnap was doing.
        context: String,
    },
    /// The database was written by a newer errsnap whose schema this build
    /// cannot write; the file is left untouched and events are spooled.
    FutureSchema {
        /// The database file.
        path: String,
        /// The schema version found in the file.
        found: i64,
        /// The oldest schema version whose writer can write this file.
        min_writer: i64,
        /// The newest version this build writes.
        supported: i64,
    },
    /// The file at the database path is not errsnap's (another program's
    /// SQLite database); it is left byte for byte untouched and events are
    /// spooled.
    ForeignDatabase {
        /// The file.
        path: String,
        /// The `PRAGMA application_id` found (errsnap's is `0x45534E50`).
        application_id: i64,
    },
    /// The file carries a schema version errsnap never wrote (for example
    /// -1); it is left untouched and events are spooled.
    UnknownSchema {
        /// The file.
        path: String,
        /// The `PRAGMA user_version` found.
        found: i64,
        /// The newest version this build knows (it knows 1 to this).
        newest: i64,
    },
    /// A file-system operation failed.
    Io {
        /// What errsnap was doing, including the path.
        context: String,
    },
    /// The background writer is no longer running.
    WorkerStopped,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error {
            kind,
            source: None,
            fault: Fault::Other,
        }
    }

    pub(crate) fn with_source(
        kind: ErrorKind,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error {
            kind,
            source: Some(Box::new(source)),
            fault: Fault::Other,
        }
    }

    /// The same error, classified by the store.
    pub(crate) fn with_fault(mut self, fault: Fault) -> Self {
        self.fault = fault;
        self
    }

    pub(crate) fn storage(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::with_source(
            ErrorKind::Storage {
                context: context.into(),
            },
            source,
        )
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::with_source(
            ErrorKind::Io {
                context: context.into(),
            },
            source,
        )
    }

    pub(crate) fn config(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config {
            key: key.into(),
            message: message.into(),
        })
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether errsnap refused the file at the database path (another
    /// program's, an unknown or incompatible schema): it stays untouched
    /// and events go to the spool.
    pub(crate) fn is_refusal(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::FutureSchema { .. }
                | ErrorKind::ForeignDatabase { .. }
                | ErrorKind::UnknownSchema { .. }
        )
    }

    /// Whether another connection held the database locked.
    pub(crate) fn is_busy(&self) -> bool {
        self.fault == Fault::Busy
    }

    /// Whether the database file is damaged or not a database at all.
    pub(crate) fn is_corrupt(&self) -> bool {
        self.fault == Fault::Corrupt
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::InvalidLoggerName { name, reason } => {
                write!(f, "invalid logger name {name:?}: {reason}")
            }
            ErrorKind::Config { key, message } => write!(f, "invalid {key}: {message}"),
            ErrorKind::Storage { context } => write!(f, "storage error while {context}"),
            ErrorKind::FutureSchema {
                path,
                found,
                min_writer,
                supported,
            } => write!(
                f,
                "{path} has schema version {found}, written by a newer errsnap; it needs a writer \
                 of schema {min_writer} or newer and this errsnap writes {supported}: the file was \
                 left untouched"
            ),
            ErrorKind::ForeignDatabase {
                path,
                application_id,
            } => write!(
                f,
                "{path} is not an errsnap database (application_id {application_id:#x}, not \
                 errsnap's): the file was left untouched; point ERRSNAP_DB_PATH at a file of its own"
            ),
            ErrorKind::UnknownSchema {
                path,
                found,
                newest,
            } => write!(
                f,
                "{path} has schema version {found}, which errsnap never wrote (it knows versions \
                 1 to {newest}): the file was left untouched"
            ),
            ErrorKind::Io { context } => write!(f, "i/o error while {context}"),
            ErrorKind::WorkerStopped => f.write_str("the errsnap writer thread has stopped"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}
