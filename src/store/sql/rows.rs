//! Rows mapped to errsnap's types, once for every backend. A stored name
//! this build does not know (a newer writer's) is an error naming it, never
//! a quiet default.

use super::Row;
use crate::error::{Error, ErrorKind, Result};
use crate::event::EventKind;
use crate::level::Level;
use crate::store::read::{EventRow, GroupRow, GroupStatus};

/// The columns [`group_row`] reads, `status` being the expression of a
/// group's status as [`GroupStatus`] names it.
pub(crate) fn group_columns(
    status: &str,
    first_release: &str,
    regressed: [&str; 2],
    merged_into: &str,
) -> String {
    format!(
        "g.id, g.fingerprint, l.name, g.level, g.kind, g.title, g.culprit,
         g.first_seen, g.last_seen, g.count, {status},
         g.last_event_uid, {first_release}, {}, {}, {merged_into}",
        regressed[0], regressed[1]
    )
}

pub(crate) fn group_row(r: &Row) -> Result<GroupRow> {
    Ok(GroupRow {
        id: r.get(0)?,
        fingerprint: r.get(1)?,
        logger: r.get(2)?,
        level: level(r, 3)?,
        kind: named(r, 4, EventKind::from_name)?,
        title: r.get(5)?,
        culprit: r.get(6)?,
        first_seen: r.get(7)?,
        last_seen: r.get(8)?,
        count: r.get(9)?,
        status: named(r, 10, GroupStatus::from_name)?,
        last_event: r.get(11)?,
        first_release: r.get(12)?,
        regressed_in: r.get(13)?,
        regressed_at: r.get(14)?,
        merged_into: r.get(15)?,
    })
}

/// The columns [`event_row`] reads (of `events e JOIN loggers l`).
pub(crate) const EVENT_COLUMNS: &str = "e.id, e.uid, e.ts, l.name, e.level, e.kind, e.message, \
     e.file, e.line, e.group_id, e.thread_name, e.pid";

pub(crate) fn event_row(r: &Row) -> Result<EventRow> {
    Ok(EventRow {
        row: r.get(0)?,
        id: r.get(1)?,
        ts: r.get(2)?,
        logger: r.get(3)?,
        level: level(r, 4)?,
        kind: named(r, 5, EventKind::from_name)?,
        message: r.get(6)?,
        file: r.get(7)?,
        line: r.get(8)?,
        group: r.get(9)?,
        thread: r.get(10)?,
        pid: r.get(11)?,
    })
}

/// A stored name read back as its enum.
pub(crate) fn named<T>(r: &Row, i: usize, parse: fn(&str) -> Option<T>) -> Result<T> {
    let s: String = r.get(i)?;
    parse(&s).ok_or_else(|| {
        Error::new(ErrorKind::Storage {
            context: format!(
                "reading column {i}: unknown value {s:?} (written by a newer errsnap?)"
            ),
        })
    })
}

/// A stored level (unknown numbers read as errors, the level of a
/// failure).
pub(crate) fn level(r: &Row, i: usize) -> Result<Level> {
    Ok(Level::from_i64(r.get(i)?).unwrap_or(Level::Error))
}

/// A JSON column parsed (`None` for NULL or what does not parse).
pub(crate) fn json<T: serde::de::DeserializeOwned>(r: &Row, i: usize) -> Result<Option<T>> {
    Ok(r.get::<Option<String>>(i)?
        .and_then(|j| serde_json::from_str(&j).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sql::Value;

    #[test]
    fn unknown_names_are_errors_that_name_them() {
        let r = Row(vec![Value::Text("later".into())]);
        let e = named(&r, 0, GroupStatus::from_name)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"later\""), "{e}");
        let r = Row(vec![Value::Text("resolved-next".into())]);
        assert_eq!(
            named(&r, 0, GroupStatus::from_name).unwrap(),
            GroupStatus::ResolvedInNextRelease
        );
        let r = Row(vec![
            Value::Int(99),
            Value::Text("{\"a\":1}".into()),
            Value::Null,
        ]);
        assert_eq!(level(&r, 0).unwrap(), Level::Error);
        let v: Option<serde_json::Value> = json(&r, 1).unwrap();
        assert_eq!(v.unwrap()["a"], 1);
        assert_eq!(json::<serde_json::Value>(&r, 2).unwrap(), None);
    }
}
