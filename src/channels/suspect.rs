//! The suspect commit a new group's alert names (`suspect`): blamed on the
//! delivery thread, once per event, never on the caller's thread.

use crate::event::{Alert, AlertKind, Frame, Location};
use crate::suspect::{suspects, Repository};
use crate::util::internal_log;

/// The suspect of a new group's alert, in words; `None` for other alerts,
/// or when nothing could be blamed (said in errsnap's own log).
pub(crate) fn of(repo: &Repository, alert: &Alert) -> Option<String> {
    if alert.kind != AlertKind::New {
        return None;
    }
    let location = alert.location.as_deref().and_then(|l| {
        // `file:line:column`
        let (rest, col) = l.rsplit_once(':')?;
        let (file, line) = rest.rsplit_once(':')?;
        Some(Location {
            file: file.to_owned(),
            line: line.parse().ok()?,
            column: col.parse().unwrap_or(0),
        })
    });
    let frames: Vec<Frame> = alert
        .frames
        .iter()
        .filter(|f| f.in_app)
        .filter_map(|f| {
            let (file, line) = f.location.as_deref()?.rsplit_once(':')?;
            Some(Frame::named(
                Some(f.function.clone()),
                Some(file.to_owned()),
                line.parse().ok(),
                true,
            ))
        })
        .collect();
    match suspects(repo, alert.release.as_deref(), location.as_ref(), &frames) {
        Ok(s) => s.suspect.map(|c| {
            let day = crate::util::time::format_utc(c.time.saturating_mul(1000));
            let id: String = c.id.chars().take(10).collect();
            format!(
                "{id} by {}, {}: {}",
                c.author,
                day.get(..10).unwrap_or(&day),
                c.summary
            )
        }),
        Err(e) => {
            internal_log::report("suspect commit", &internal_log::chain(&e));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suspect::tests::Scripted;

    #[test]
    fn a_new_groups_alert_names_its_suspect_and_no_other_does() {
        let r = Scripted::new();
        r.commit("Alice", 1_780_000_000, "src/pay.rs", &[], "pay");
        let head = r.commit(
            "Bob",
            1_780_086_400,
            "src/pay.rs",
            &[(10, "charge()?;")],
            "pay: charge first",
        );
        let repo = Repository::new(r.dir.path());
        let mut alert = crate::channels::format::tests::sample("declined");
        alert.release = Some(format!("shop@1.0+{}", &head[..8]));
        let said = of(&repo, &alert).unwrap();
        assert_eq!(
            said,
            format!("{} by Bob, 2026-05-29: pay: charge first", &head[..10])
        );
        // The frame alone (no location) names it too.
        alert.location = None;
        assert_eq!(of(&repo, &alert).as_deref(), Some(said.as_str()));
        for kind in [AlertKind::Regression, AlertKind::Digest, AlertKind::Test] {
            alert.kind = kind;
            assert_eq!(of(&repo, &alert), None, "{kind:?}");
        }
        alert.kind = AlertKind::New;
        alert.release = Some("1.0".into());
        assert_eq!(of(&repo, &alert), None, "a release naming no commit");
        // Shown by every channel.
        alert.suspect = Some(said.clone());
        let slack = crate::channels::format::slack_payload(&alert).to_string();
        assert!(
            slack.contains("Suspect commit") && slack.contains("pay: charge first"),
            "{slack}"
        );
        let mail = crate::channels::format::email_text(&alert);
        assert!(mail.contains(&format!("Suspect      {said}")), "{mail}");
    }
}
