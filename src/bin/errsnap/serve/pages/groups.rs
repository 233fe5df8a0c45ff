//! The groups page (`/`): filters, sort, sparklines of the last 24 hours
//! and 14 days, new and regressed badges, paging, live rows.

use std::collections::HashMap;
use std::str::FromStr;

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use errsnap::{
    db::{Database, GroupOrder, GroupQuery, GroupRow, GroupStatus},
    Level,
};
use maud::{html, Markup};

use super::layout::{self, Nav};
use super::{bad_request, clean_line, enc, when};
use crate::serve::charts::{self, DAY, HOUR};
use crate::serve::{App, Shared};

/// Groups per page.
pub(crate) const PAGE: usize = 50;

/// The time ranges offered.
const RANGES: [(&str, i64); 5] = [
    ("1h", HOUR),
    ("24h", DAY),
    ("7d", 7 * DAY),
    ("14d", 14 * DAY),
    ("30d", 30 * DAY),
];

/// The page's query, checked.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    pub(crate) query: GroupQuery,
    /// The parameters as given (to keep them in links and forms).
    pub(crate) given: Vec<(String, String)>,
    pub(crate) page: usize,
    pub(crate) range: String,
    pub(crate) sort: String,
}

/// Reads the parameters; `Err` is the 400 answer naming the bad one.
pub(crate) fn filters(p: &HashMap<String, String>, now: i64) -> Result<Filters, Box<Response>> {
    let mut f = Filters::default();
    let mut q = GroupQuery::default();
    let get = |k: &str| p.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    if let Some(v) = get("level") {
        q.min_level = Some(Level::from_str(v).map_err(|e| bad("level", v, &e.to_string()))?);
    }
    if let Some(v) = get("status") {
        q.status = Some(GroupStatus::from_str(v).map_err(|e| bad("status", v, &e))?);
    }
    for (key, slot) in [
        ("logger", &mut q.logger),
        ("release", &mut q.release),
        ("environment", &mut q.environment),
        ("host", &mut q.host),
        ("new_in", &mut q.new_in),
    ] {
        *slot = get(key).map(str::to_owned);
    }
    f.range = get("range").unwrap_or("all").to_owned();
    if f.range != "all" {
        let Some((_, span)) = RANGES.iter().find(|(n, _)| *n == f.range) else {
            return Err(bad(
                "range",
                &f.range,
                "expected 1h, 24h, 7d, 14d, 30d or all",
            ));
        };
        q.since = Some(now - span);
    }
    f.sort = get("sort").unwrap_or("last").to_owned();
    q.order = match f.sort.as_str() {
        "last" => GroupOrder::LastSeen,
        "count" => GroupOrder::Count,
        "first" => GroupOrder::FirstSeen,
        other => return Err(bad("sort", other, "expected last, count or first")),
    };
    f.page = match get("page") {
        None => 1,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=100_000).contains(&n) => n,
            _ => return Err(bad("page", v, "expected a page number")),
        },
    };
    q.offset = (f.page - 1) * PAGE;
    q.limit = PAGE + 1;
    for k in [
        "level",
        "status",
        "logger",
        "release",
        "environment",
        "host",
        "new_in",
        "range",
        "sort",
    ] {
        if let Some(v) = get(k) {
            f.given.push((k.to_owned(), v.to_owned()));
        }
    }
    f.query = q;
    Ok(f)
}

/// A 400 answer, boxed.
fn bad(param: &str, value: &str, why: &str) -> Box<Response> {
    Box::new(bad_request(param, value, why))
}

/// A link to this page with `changes` applied to the given parameters.
fn link(f: &Filters, changes: &[(&str, String)]) -> String {
    let mut params: Vec<(String, String)> = f
        .given
        .iter()
        .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
        .cloned()
        .collect();
    for (k, v) in changes {
        if !v.is_empty() {
            params.push(((*k).to_owned(), v.clone()));
        }
    }
    if params.is_empty() {
        return "/".to_owned();
    }
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    format!("/?{}", q.join("&"))
}

/// `GET /`.
pub(crate) async fn page(
    State(app): State<Shared>,
    Query(p): Query<HashMap<String, String>>,
) -> Response {
    let now = crate::output::now_ms();
    let f = match filters(&p, now) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let fragment = p.get("fragment").is_some_and(|v| v == "rows");
    app.page(move |db, app| {
        let mut groups = db.groups(&f.query)?;
        let more = groups.len() > PAGE;
        groups.truncate(PAGE);
        let rows = rows(db, &groups, now)?;
        if fragment {
            return Ok(Html(rows.into_string()).into_response());
        }
        let choices = Choices::read(db)?;
        Ok(
            Html(render(app, &f, &choices, rows, more, groups.is_empty()).into_string())
                .into_response(),
        )
    })
    .await
}

/// The values offered in the filters.
struct Choices {
    releases: Vec<String>,
    environments: Vec<String>,
    hosts: Vec<String>,
}

impl Choices {
    fn read(db: &Database) -> anyhow::Result<Choices> {
        Ok(Choices {
            releases: db.values("release", 100)?,
            environments: db.values("environment", 50)?,
            hosts: db.values("host", 200)?,
        })
    }
}

/// The table rows (also the live fragment).
pub(crate) fn rows(db: &Database, groups: &[GroupRow], now: i64) -> anyhow::Result<Markup> {
    let ids: Vec<i64> = groups.iter().map(|g| g.id).collect();
    let end = charts::hour_end(now);
    let mut by_group: HashMap<i64, Vec<(i64, u64)>> = HashMap::new();
    for h in db.hourly(Some(&ids), end - 14 * DAY, end)? {
        if let Some(g) = h.group {
            by_group.entry(g).or_default().push((h.hour_ms, h.count));
        }
    }
    Ok(html! {
        @for g in groups {
            @let pairs = by_group.get(&g.id).map_or(&[][..], Vec::as_slice);
            @let day = charts::bucket(pairs, end, HOUR, 24);
            @let fortnight = charts::bucket(pairs, end, DAY, 14);
            tr data-group=(g.id) {
                td { (status_badge(g.status)) }
                td.lvl { span class={"level " (g.level.as_str())} { (g.level.as_str()) } }
                td.title {
                    a href={"/groups/" (g.id)} { (clean_line(&g.title, 140)) }
                    @if now - g.first_seen < DAY { " " span.badge.new title="first seen in the last 24 hours" { "new" } }
                    @if let Some(r) = &g.regressed_in { " " span.badge.regressed { "regressed in " (clean_line(r, 40)) } }
                    @else if g.regressed_at.is_some() { " " span.badge.regressed { "regressed" } }
                    @if let Some(c) = &g.culprit { div.culprit { (clean_line(c, 140)) } }
                    div.meta { (clean_line(&g.logger, 60)) " · " (g.kind.as_str())
                        @if let Some(r) = &g.first_release { " · new in " (clean_line(r, 40)) } }
                }
                td.num { (g.count) }
                td { (super::when(g.last_seen, now)) }
                td { (when(g.first_seen, now)) }
                td.spark { (charts::bars(&day, &charts::labels(end, HOUR, 24, 16), 72, 18, "last 24 hours")) }
                td.spark { (charts::bars(&fortnight, &charts::labels(end, DAY, 14, 10), 56, 18, "last 14 days")) }
            }
        }
    })
}

/// A group's status as a badge.
pub(crate) fn status_badge(s: GroupStatus) -> Markup {
    let label = match s {
        GroupStatus::ResolvedInNextRelease => "resolved (next release)",
        other => other.as_str(),
    };
    html! { span class={"status " (s.as_str())} { (label) } }
}

fn select(name: &str, label: &str, current: &str, options: &[(String, String)]) -> Markup {
    html! {
        label {
            (label) " "
            select name=(name) {
                option value="" { "any" }
                @for (v, text) in options {
                    option value=(v) selected[v == current] { (clean_line(text, 60)) }
                }
            }
        }
    }
}

fn pairs(values: &[String]) -> Vec<(String, String)> {
    values.iter().map(|v| (v.clone(), v.clone())).collect()
}

fn render(app: &App, f: &Filters, c: &Choices, rows: Markup, more: bool, empty: bool) -> Markup {
    let given = |k: &str| {
        f.given
            .iter()
            .find(|(g, _)| g == k)
            .map_or(String::new(), |(_, v)| v.clone())
    };
    let levels: Vec<(String, String)> = ["trace", "debug", "info", "warn", "error", "fatal"]
        .iter()
        .map(|l| ((*l).to_owned(), format!("{l} and above")))
        .collect();
    let statuses: Vec<(String, String)> = ["open", "resolved", "resolved-next", "muted"]
        .iter()
        .map(|s| ((*s).to_owned(), (*s).to_owned()))
        .collect();
    let ranges: Vec<(String, String)> = RANGES
        .iter()
        .map(|(n, _)| ((*n).to_owned(), format!("last {n}")))
        .collect();
    let sorts = [
        ("last", "last seen"),
        ("count", "count"),
        ("first", "first seen"),
    ];
    let body = html! {
        h1 { "Groups" }
        form.filters method="get" action="/" {
            (select("status", "Status", &given("status"), &statuses))
            (select("level", "Level", &given("level"), &levels))
            label { "Logger " input type="text" name="logger" value=(given("logger")) size="12"; }
            (select("release", "Release", &given("release"), &pairs(&c.releases)))
            (select("environment", "Environment", &given("environment"), &pairs(&c.environments)))
            (select("host", "Host", &given("host"), &pairs(&c.hosts)))
            (select("range", "Seen in", &given("range"), &ranges))
            label { "Sort "
                select name="sort" {
                    @for (v, t) in sorts { option value=(v) selected[f.sort == v] { (t) } }
                }
            }
            button type="submit" { "Apply" }
            " " a href="/" { "Clear" }
        }
        table.groups {
            thead { tr {
                th { "Status" } th { "Level" } th { "Group" } th.num { "Count" }
                th { "Last seen" } th { "First seen" } th { "24 h" } th { "14 d" }
            } }
            tbody #live-rows data-live="/live" { (rows) }
        }
        @if empty { p.muted.empty { "No group matches these filters." } }
        nav.pager {
            @if f.page > 1 { a rel="prev" href=(link(f, &[("page", (f.page - 1).to_string())])) { "← Newer" } }
            " page " (f.page) " "
            @if more { a rel="next" href=(link(f, &[("page", (f.page + 1).to_string())])) { "Older →" } }
        }
        p.live-note.muted { span #live-state { "live" } ": this page updates as events arrive." }
    };
    layout::page(app, "Groups", Nav::Groups, "", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> HashMap<String, String> {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn filters_are_read_and_bad_values_named() {
        let f = filters(
            &params(&[
                ("level", "warn"),
                ("status", "muted"),
                ("range", "24h"),
                ("page", "3"),
                ("sort", "count"),
                ("host", " web-1 "),
            ]),
            100 * DAY,
        )
        .unwrap();
        assert_eq!(f.query.min_level, Some(Level::Warn));
        assert_eq!(f.query.status, Some(GroupStatus::Muted));
        assert_eq!(f.query.since, Some(99 * DAY));
        assert_eq!(f.query.offset, 2 * PAGE);
        assert_eq!(f.query.order, GroupOrder::Count);
        assert_eq!(f.query.host.as_deref(), Some("web-1"));
        for (k, v) in [
            ("level", "loud"),
            ("status", "gone"),
            ("range", "2y"),
            ("page", "0"),
            ("sort", "x"),
        ] {
            assert!(filters(&params(&[(k, v)]), 0).is_err(), "{k}={v}");
        }
        assert_eq!(
            link(&f, &[("page", "4".into())]).matches("page=").count(),
            1
        );
        assert!(link(&f, &[("page", "4".into())]).contains("host=web-1"));
    }
}
