//! Resolving stored raw frames later (`errsnap symbolicate`, `errsnap show
//! --binary`): each frame kept its module, module offset and build-id, so
//! it can be resolved against the matching binary, found by build-id,
//! whenever that binary is at hand.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use crate::event::Frame;
use crate::pipeline::redact::Redactor;
use crate::pipeline::symbolize::{is_in_app, trim_internal};
use crate::pipeline::symbols::{build_id_of_file, SymbolTables};

/// Binaries offered for resolution, with their build-ids read once.
#[derive(Debug, Default)]
pub(crate) struct Binaries {
    files: Vec<(Arc<str>, Option<String>)>,
}

impl Binaries {
    /// Reads the build-id of each file.
    ///
    /// # Errors
    /// A file that cannot be read, naming it.
    pub(crate) fn read(paths: &[PathBuf]) -> crate::error::Result<Binaries> {
        let mut files = Vec::with_capacity(paths.len());
        for p in paths {
            let id = build_id_of_file(p).map_err(|e| {
                crate::error::Error::config("--binary", format!("{}: {e}", p.display()))
            })?;
            files.push((Arc::from(p.to_string_lossy().as_ref()), id));
        }
        Ok(Binaries { files })
    }

    /// The file to resolve a frame of `module` (build-id `build_id`) with,
    /// and whether the user named it: an offered binary with that
    /// build-id; with no build-id recorded, an offered binary of the same
    /// file name; else the module's own path, which is used only if its
    /// build-id is the recorded one (a path read from a database is never
    /// trusted on its own: a forged row could name any file).
    fn for_module(&self, module: &str, build_id: Option<&str>) -> (Arc<str>, bool) {
        let name = |p: &str| p.rsplit('/').next().unwrap_or(p).to_owned();
        let offered = self.files.iter().find(|(path, id)| match build_id {
            Some(want) => id.as_deref() == Some(want),
            None => name(path) == name(module),
        });
        match offered {
            Some((path, _)) => (path.clone(), true),
            None => (Arc::from(module), false),
        }
    }
}

/// What resolving a stack did.
#[derive(Debug, Default)]
pub(crate) struct Resolution {
    /// The stack with every frame that could be resolved named (inlined
    /// functions expanded, errsnap's and std's own top frames trimmed).
    pub(crate) frames: Vec<Frame>,
    /// Raw frames that got a name.
    pub(crate) resolved: usize,
    /// Raw frames still without one.
    pub(crate) unresolved: usize,
    /// The modules (path, build-id) of the frames still without one.
    pub(crate) missing: BTreeSet<(String, Option<String>)>,
}

/// Whether a frame still needs resolving: no function, but a module offset.
pub(crate) fn is_raw(f: &Frame) -> bool {
    f.function.is_none() && f.module_offset.is_some() && f.module.is_some()
}

/// Resolves the raw frames of one stack. Frames that already have names
/// are kept as they are.
pub(crate) fn resolve_stack(
    frames: &[Frame],
    binaries: &Binaries,
    tables: &mut SymbolTables,
    redactor: &Redactor,
) -> Resolution {
    let mut r = Resolution::default();
    let mut out = Vec::with_capacity(frames.len());
    for (i, f) in frames.iter().enumerate() {
        let (Some(module), Some(offset), true) = (f.module.as_deref(), f.module_offset, is_raw(f))
        else {
            out.push(f.clone());
            continue;
        };
        let (file, named) = binaries.for_module(module, f.build_id.as_deref());
        // Stored stacks are trimmed only once named: the innermost raw
        // frame is the faulting instruction only when it is the walk's
        // first, which a raw stack keeps at index 0. A stored path without
        // a recorded build-id is never opened (nothing could vouch for it).
        let syms = if named || f.build_id.is_some() {
            tables.lookup(&file, f.build_id.as_deref(), offset, i == 0)
        } else {
            Vec::new()
        };
        if syms
            .iter()
            .all(|s| s.function.is_none() && s.file.is_none())
        {
            r.unresolved += 1;
            r.missing.insert((module.to_owned(), f.build_id.clone()));
            out.push(f.clone());
            continue;
        }
        r.resolved += 1;
        for s in syms {
            out.push(Frame {
                in_app: is_in_app(s.function.as_deref(), s.file.as_deref()),
                function: s.function,
                file: s.file,
                line: s.line,
                column: s.column,
                ..f.clone()
            });
        }
    }
    let mut out = trim_internal(out);
    redactor.frames(&mut out);
    r.frames = out;
    r
}
