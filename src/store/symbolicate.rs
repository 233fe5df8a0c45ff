//! [`Database::symbolicate`]: names for stored raw frames, resolved against
//! the binaries that recorded them (matched by GNU build-id).

use std::path::PathBuf;

use super::database::Database;
use crate::error::Result;
use crate::event::Frame;
use crate::pipeline::redact::Redactor;
use crate::pipeline::symbolicate::{resolve_stack, Binaries};
use crate::pipeline::symbols::SymbolTables;

/// What [`Database::symbolicate`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SymbolicateReport {
    /// Stored stacks that had raw frames.
    pub stacks: usize,
    /// Stacks rewritten with names.
    pub stacks_updated: usize,
    /// Raw frames that got a function, file and line.
    pub frames_resolved: usize,
    /// Raw frames still without one.
    pub frames_unresolved: usize,
    /// The binaries still needed: module path and build-id of every raw
    /// frame left (give the matching file with `--binary`).
    pub missing: Vec<MissingModule>,
}

/// A module whose frames could not be resolved: no file with its build-id
/// was given, and the file at its path is gone or is another build.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[non_exhaustive]
pub struct MissingModule {
    /// The module's path in the process that recorded the frames.
    pub module: String,
    /// Its GNU build-id, when it had one.
    pub build_id: Option<String>,
}

const PAGE: usize = 256;

impl Database {
    /// Resolves the stored frames that have an address but no name yet
    /// (the writer ran out of time, the binary was stripped, or the panic
    /// hook stored its raw stack first) and writes the names into the file.
    ///
    /// Each frame is resolved against a file from `binaries` with the
    /// frame's build-id (or, for a frame recorded without one, the same
    /// file name); without one, against the module's own path when the
    /// file there still has the build-id that ran. A file with another
    /// build-id is never used: its addresses mean other code.
    ///
    /// # Errors
    /// A file of `binaries` that cannot be read, or the database failing.
    pub fn symbolicate(&mut self, binaries: &[PathBuf]) -> Result<SymbolicateReport> {
        let binaries = Binaries::read(binaries)?;
        let redactor = Redactor::new(false, &[], "redaction")?;
        let mut tables = SymbolTables::default();
        let mut report = SymbolicateReport::default();
        let mut missing = std::collections::BTreeSet::new();
        let mut after = 0;
        loop {
            let page = self.reader.raw_backtraces(after, PAGE)?;
            let Some((last, _)) = page.last() else { break };
            after = *last;
            for (id, frames) in page {
                report.stacks += 1;
                let r = resolve_stack(&frames, &binaries, &mut tables, &redactor);
                report.frames_resolved += r.resolved;
                report.frames_unresolved += r.unresolved;
                missing.extend(r.missing);
                if r.resolved > 0 {
                    self.reader.replace_frames(id, &r.frames)?;
                    report.stacks_updated += 1;
                }
            }
        }
        report.missing = missing
            .into_iter()
            .map(|(module, build_id)| MissingModule { module, build_id })
            .collect();
        Ok(report)
    }

    /// Resolves raw frames like [`symbolicate`](Self::symbolicate) without
    /// writing them: for showing one event's stack against `binaries`.
    ///
    /// # Errors
    /// A file of `binaries` that cannot be read.
    pub fn resolve_frames(frames: &[Frame], binaries: &[PathBuf]) -> Result<Vec<Frame>> {
        let binaries = Binaries::read(binaries)?;
        let redactor = Redactor::new(false, &[], "redaction")?;
        let mut tables = SymbolTables::default();
        Ok(resolve_stack(frames, &binaries, &mut tables, &redactor).frames)
    }
}
