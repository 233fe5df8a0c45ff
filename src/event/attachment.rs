//! Attachments: small blobs or files kept with an event (a config file,
//! the last lines of a log), stored in their own table.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A blob or file to keep with an event (see
/// [`EventBuilder::attach`](crate::EventBuilder::attach)).
///
/// Bytes are taken as given; a file is read on the writer thread, never on
/// the caller's (at most the per-event cap; [`file_tail`](Self::file_tail)
/// keeps the end of a file that keeps growing, such as a log). What goes
/// over the per-event cap (`ERRSNAP_ATTACHMENTS_MAX_KB_PER_EVENT`, default
/// 1024) or the database's (`ERRSNAP_ATTACHMENTS_MAX_MB`, default 100) is
/// not stored: its name and size are, with the reason. Attachments are not
/// redacted: attach nothing secret.
///
/// ```
/// let a = errsnap::Attachment::text("order.json", r#"{"id": 42}"#)
///     .content_type("application/json");
/// assert_eq!(a.name(), "order.json");
/// ```
#[derive(Debug, Clone)]
pub struct Attachment {
    pub(crate) name: String,
    pub(crate) content_type: Option<String>,
    pub(crate) source: Source,
}

#[derive(Debug, Clone)]
pub(crate) enum Source {
    Bytes(Vec<u8>),
    File {
        path: PathBuf,
        tail: Option<u64>,
    },
    /// Over a cap before it was queued: only its size is kept.
    Dropped {
        size: u64,
        reason: &'static str,
    },
}

impl Attachment {
    /// Bytes, as given.
    pub fn bytes(name: impl Into<String>, data: impl Into<Vec<u8>>) -> Attachment {
        Attachment {
            name: name.into(),
            content_type: None,
            source: Source::Bytes(data.into()),
        }
    }
    /// Text (`text/plain; charset=utf-8`).
    pub fn text(name: impl Into<String>, text: impl Into<String>) -> Attachment {
        Attachment {
            name: name.into(),
            content_type: Some("text/plain; charset=utf-8".into()),
            source: Source::Bytes(text.into().into_bytes()),
        }
    }
    /// A file, read on the writer thread (up to the per-event cap); named
    /// after the file.
    pub fn file(path: impl Into<PathBuf>) -> Attachment {
        let path = path.into();
        Attachment {
            name: file_name(&path),
            content_type: None,
            source: Source::File { path, tail: None },
        }
    }
    /// The last `max_bytes` of a file (a log), read on the writer thread.
    pub fn file_tail(path: impl Into<PathBuf>, max_bytes: u64) -> Attachment {
        let path = path.into();
        Attachment {
            name: file_name(&path),
            content_type: Some("text/plain; charset=utf-8".into()),
            source: Source::File {
                path,
                tail: Some(max_bytes),
            },
        }
    }
    /// Sets the MIME type.
    #[must_use]
    pub fn content_type(mut self, content_type: impl Into<String>) -> Attachment {
        self.content_type = Some(content_type.into());
        self
    }
    /// Renames it.
    #[must_use]
    pub fn named(mut self, name: impl Into<String>) -> Attachment {
        self.name = name.into();
        self
    }
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Bytes it will hold on the writer at most, under a per-event cap
    /// (a file is read there): what the queue's byte budget counts.
    pub(crate) fn queued_bytes(&self, cap: u64) -> usize {
        let n = match &self.source {
            Source::Bytes(b) => b.len() as u64,
            Source::File { tail, .. } => tail.unwrap_or(cap).min(cap),
            Source::Dropped { .. } => 0,
        };
        usize::try_from(n).unwrap_or(usize::MAX)
    }
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || "attachment".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The name of a native crash's minidump attachment.
pub(crate) const MINIDUMP_NAME: &str = "minidump.dmp";
/// Its MIME type (as Sentry's and Breakpad's tools name it).
pub(crate) const MINIDUMP_TYPE: &str = "application/x-dmp";

/// An attachment as stored: its bytes, or why they were not kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAttachment {
    pub(crate) name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) content_type: Option<String>,
    /// The size of the data (or, when dropped, of what was offered).
    pub(crate) size: u64,
    /// The bytes (base64 in spool files); `None` when dropped.
    #[serde(default, with = "b64", skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<Vec<u8>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dropped: Option<String>,
}

impl StoredAttachment {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its MIME type, when given.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }
    /// The size of its data (or, when dropped, of what was offered, when
    /// known).
    pub fn size(&self) -> u64 {
        self.size
    }
    /// Its bytes (`None`: dropped, or not read in a listing).
    pub fn data(&self) -> Option<&[u8]> {
        self.data.as_deref()
    }
    /// Why its bytes were not kept (a cap, an unreadable file).
    pub fn dropped(&self) -> Option<&str> {
        self.dropped.as_deref()
    }
    /// Whether it is the minidump errsnap made of a native crash
    /// (`minidump.dmp`, `application/x-dmp`): what rust-minidump,
    /// Breakpad's `minidump_stackwalk` and symbolic read.
    pub fn is_minidump(&self) -> bool {
        self.content_type() == Some(MINIDUMP_TYPE)
    }
    pub(crate) fn dropped_as(
        name: String,
        content_type: Option<String>,
        size: u64,
        why: String,
    ) -> Self {
        StoredAttachment {
            name,
            content_type,
            size,
            data: None,
            dropped: Some(why),
        }
    }
}

/// A name safe to show and to use as a file name: no path, no control
/// characters, not empty, at most 200 characters.
pub(crate) fn clean_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !c.is_control()).take(200).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "attachment".to_owned()
    } else {
        cleaned
    }
}

mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(serde::de::Error::custom)
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_json_keeps_the_bytes_as_base64_and_the_context() {
        let mut ev = crate::event::Event::sample("with attachments");
        ev.attachments = vec![
            StoredAttachment {
                name: "a.bin".into(),
                content_type: None,
                size: 3,
                data: Some(vec![0, 255, 7]),
                dropped: None,
            },
            StoredAttachment::dropped_as("b.bin".into(), None, 9, "over the per-event cap".into()),
        ];
        ev.context.transaction = Some("GET /x".into());
        let json = serde_json::to_string(&ev).expect("json");
        assert!(json.contains(r#""data":"AP8H""#), "{json}");
        let back: crate::event::Event = serde_json::from_str(&json).expect("back");
        assert_eq!(back.attachments, ev.attachments);
        assert_eq!(back.context, ev.context);
        let bad = json.replace("AP8H", "%%%");
        assert!(serde_json::from_str::<crate::event::Event>(&bad).is_err());
    }
}
