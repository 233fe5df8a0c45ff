//! What a batch's new events do to a resolved group, the same for every
//! store: a group resolved in the next release stays quiet (counted, not
//! reopened, no alert) while every new event comes from the release it was
//! resolved in; otherwise a resolved group reopens, regressed in the first
//! new event's release (resolved in the next release: the first from
//! another release).

/// `(quiet, regressed_in)` for a group whose stored state is `status`,
/// `next` (resolved in the next release) and `resolved_release`, given the
/// releases of the batch's new events of the group in their order.
pub(crate) fn reopening<'a>(
    status: &str,
    next: bool,
    resolved_release: Option<&str>,
    releases: impl IntoIterator<Item = Option<&'a str>>,
) -> (bool, Option<&'a str>) {
    let mut releases = releases.into_iter().peekable();
    let first = releases.peek().copied().flatten();
    if status != "resolved" || !next {
        return (false, first);
    }
    match releases.find(|r| *r != resolved_release) {
        None => (true, None),
        Some(other) => (false, other),
    }
}

#[cfg(test)]
mod tests {
    use super::reopening;

    #[test]
    fn quiet_only_while_every_event_is_from_the_resolved_release() {
        let r = |s, n, rel, evs: &[Option<&'static str>]| reopening(s, n, rel, evs.iter().copied());
        assert_eq!(
            r("resolved", true, Some("1.0"), &[Some("1.0"), Some("1.0")]),
            (true, None)
        );
        assert_eq!(
            r("resolved", true, Some("1.0"), &[Some("1.0"), Some("1.1")]),
            (false, Some("1.1"))
        );
        assert_eq!(
            r("resolved", true, Some("1.0"), &[Some("1.1"), Some("1.0")]),
            (false, Some("1.1"))
        );
        assert_eq!(r("resolved", true, Some("1.0"), &[None]), (false, None));
        assert_eq!(r("resolved", true, None, &[None]), (true, None));
        assert_eq!(
            r("resolved", false, Some("1.0"), &[Some("1.0")]),
            (false, Some("1.0"))
        );
        assert_eq!(
            r("open", true, Some("1.0"), &[Some("1.0")]),
            (false, Some("1.0"))
        );
        assert_eq!(
            r("muted", false, None, &[Some("2.0")]),
            (false, Some("2.0"))
        );
    }
}
