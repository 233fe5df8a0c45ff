//! Attachments on both sides of the queue: capped on the caller's thread
//! (bytes over the per-event cap are never queued), files read on the
//! writer's (never on the caller's; only regular files, never blocking on
//! a FIFO).

use std::io::{Read, Seek, SeekFrom};

use crate::event::{clean_name, Attachment, AttachmentSource, StoredAttachment};

/// On the caller's thread: what fits the per-event cap keeps its bytes;
/// the rest is queued as its name and size.
pub(crate) fn cap(attachments: Vec<Attachment>, cap: u64) -> Vec<Attachment> {
    let mut used = 0u64;
    attachments
        .into_iter()
        .map(|mut a| {
            if let AttachmentSource::Bytes(b) = &a.source {
                let size = b.len() as u64;
                if used.saturating_add(size) > cap {
                    a.source = AttachmentSource::Dropped {
                        size,
                        reason: "over the per-event cap",
                    };
                } else {
                    used += size;
                }
            }
            a
        })
        .collect()
}

/// On the writer: the attachments as stored, files read within what is
/// left of the per-event cap.
pub(crate) fn read(attachments: Vec<Attachment>, cap: u64) -> Vec<StoredAttachment> {
    let mut used = 0u64;
    attachments
        .into_iter()
        .map(|a| {
            let name = clean_name(&a.name);
            match a.source {
                AttachmentSource::Bytes(data) => {
                    let size = data.len() as u64;
                    if used.saturating_add(size) > cap {
                        return StoredAttachment::dropped_as(
                            name,
                            a.content_type,
                            size,
                            "over the per-event cap".into(),
                        );
                    }
                    used += size;
                    StoredAttachment {
                        name,
                        content_type: a.content_type,
                        size,
                        data: Some(data),
                        dropped: None,
                    }
                }
                AttachmentSource::Dropped { size, reason } => {
                    StoredAttachment::dropped_as(name, a.content_type, size, reason.into())
                }
                AttachmentSource::File { path, tail } => {
                    let left = cap.saturating_sub(used);
                    match read_file(&path, tail, left) {
                        Ok(data) => {
                            used += data.len() as u64;
                            StoredAttachment {
                                name,
                                content_type: a.content_type,
                                size: data.len() as u64,
                                data: Some(data),
                                dropped: None,
                            }
                        }
                        Err((size, why)) => {
                            StoredAttachment::dropped_as(name, a.content_type, size, why)
                        }
                    }
                }
            }
        })
        .collect()
}

/// A file's bytes (its last `tail` bytes), at most `left`; else its size
/// (when known) and why not.
fn read_file(
    path: &std::path::Path,
    tail: Option<u64>,
    left: u64,
) -> Result<Vec<u8>, (u64, String)> {
    // Only regular files are opened (a device's open may act on it).
    let unreadable = |e: std::io::Error| (0, format!("unreadable: {}", e.kind()));
    if !std::fs::metadata(path).map_err(unreadable)?.is_file() {
        return Err((0, "not a regular file".into()));
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // A FIFO must not block the writer.
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| (0, format!("unreadable: {}", e.kind())))?;
    let meta = f
        .metadata()
        .map_err(|e| (0, format!("unreadable: {}", e.kind())))?;
    if !meta.is_file() {
        return Err((0, "not a regular file".into()));
    }
    let len = meta.len();
    let want = match tail {
        Some(t) => t.min(len),
        None => len,
    };
    if want > left && tail.is_none() {
        return Err((len, "over the per-event cap".into()));
    }
    let want = want.min(left);
    if want == 0 && len > 0 {
        return Err((len, "over the per-event cap".into()));
    }
    if tail.is_some() {
        f.seek(SeekFrom::Start(len - want))
            .map_err(|e| (len, format!("unreadable: {}", e.kind())))?;
    }
    let mut data = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
    f.take(want)
        .read_to_end(&mut data)
        .map_err(|e| (len, format!("unreadable: {}", e.kind())))?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_over_the_cap_are_not_queued_and_files_fit_what_is_left() {
        let dir = tempfile::tempdir().expect("dir");
        let log = dir.path().join("app.log");
        std::fs::write(&log, b"line 1\nline 2\nline 3\n").expect("write");
        let queued = cap(
            vec![
                Attachment::bytes("a.bin", vec![1u8; 10]),
                Attachment::bytes("big.bin", vec![2u8; 20]),
                Attachment::file_tail(&log, 7),
                Attachment::file(&log),
            ],
            16,
        );
        assert_eq!(queued[1].queued_bytes(16), 0, "dropped before the queue");
        assert_eq!(queued[2].queued_bytes(16), 7);
        assert_eq!(queued[3].queued_bytes(16), 16, "a file counts as the cap");
        let stored = read(queued, 16);
        assert_eq!(stored[0].data(), Some(&[1u8; 10][..]));
        assert_eq!(
            (stored[1].data(), stored[1].size(), stored[1].dropped()),
            (None, 20, Some("over the per-event cap"))
        );
        // A tail is cut to what is left of the cap (6 bytes), from its end.
        assert_eq!(stored[2].data(), Some(&b"ine 3\n"[..]));
        // Nothing left: the whole file no longer fits.
        assert_eq!(stored[3].dropped(), Some("over the per-event cap"));
        assert_eq!(stored[3].size(), 21);
    }

    #[test]
    fn the_caps_hold_at_their_exact_edges() {
        let dir = tempfile::tempdir().expect("dir");
        let file = |name: &str, n: usize| {
            let p = dir.path().join(name);
            std::fs::write(&p, vec![b'x'; n]).expect("write");
            p
        };
        let kept = |s: &StoredAttachment| s.data().map(<[u8]>::len);
        // Caller side: exactly the cap fits; what is used counts.
        let q = cap(
            vec![
                Attachment::bytes("a", vec![0; 10]),
                Attachment::bytes("b", vec![0; 6]),
            ],
            10,
        );
        assert_eq!((q[0].queued_bytes(10), q[1].queued_bytes(10)), (10, 0));
        let q = cap(
            vec![
                Attachment::bytes("a", vec![0; 6]),
                Attachment::bytes("b", vec![0; 6]),
            ],
            10,
        );
        assert_eq!((q[0].queued_bytes(10), q[1].queued_bytes(10)), (6, 0));
        // Writer side, bytes: the same edges.
        let s = read(
            vec![
                Attachment::bytes("a", vec![0; 10]),
                Attachment::bytes("b", vec![0; 10]),
            ],
            16,
        );
        assert_eq!((kept(&s[0]), kept(&s[1])), (Some(10), None));
        let s = read(vec![Attachment::bytes("a", vec![0; 16])], 16);
        assert_eq!(kept(&s[0]), Some(16));
        // A file read counts toward the cap.
        let s = read(
            vec![
                Attachment::file(file("eight", 8)),
                Attachment::bytes("b", vec![0; 10]),
            ],
            16,
        );
        assert_eq!((kept(&s[0]), kept(&s[1])), (Some(8), None));
        // A whole file: exactly what is left fits; one byte more does not
        // (never cut: only a tail is).
        let s = read(vec![Attachment::file(file("sixteen", 16))], 16);
        assert_eq!(kept(&s[0]), Some(16));
        let s = read(vec![Attachment::file(file("seventeen", 17))], 16);
        assert_eq!((kept(&s[0]), s[0].size()), (None, 17));
        // A tail with nothing left is dropped; an empty file is kept empty.
        let s = read(
            vec![
                Attachment::bytes("a", vec![0; 16]),
                Attachment::file_tail(file("log", 5), 3),
                Attachment::file(file("empty", 0)),
            ],
            16,
        );
        assert_eq!(s[1].dropped(), Some("over the per-event cap"));
        assert_eq!((kept(&s[2]), s[2].dropped()), (Some(0), None));
    }

    #[test]
    fn missing_files_fifos_and_directories_are_named_not_read() {
        let dir = tempfile::tempdir().expect("dir");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("path");
        // SAFETY: mkfifo on a valid C string path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let stored = read(
            vec![
                Attachment::file(dir.path().join("none")),
                Attachment::file(&fifo),
                Attachment::file(dir.path()),
            ],
            1 << 20,
        );
        assert!(stored[0]
            .dropped()
            .is_some_and(|d| d.starts_with("unreadable")));
        assert_eq!(stored[1].dropped(), Some("not a regular file"));
        assert_eq!(stored[2].dropped(), Some("not a regular file"));
    }

    #[test]
    fn names_lose_paths_and_controls() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("a\u{1b}[31mb.txt"), "a[31mb.txt");
        assert_eq!(clean_name(".."), "attachment");
        assert_eq!(clean_name(".env"), "env");
        assert_eq!(clean_name("C:\\x\\y.log"), "y.log");
    }
}
