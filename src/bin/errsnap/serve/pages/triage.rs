//! Triage on a group's page: the group it was merged into, the groups
//! merged into it (each with an unmerge button), a form merging other
//! groups into it, and its suspect commit (`git blame` at the release's
//! commit, when `--repo` or `ERRSNAP_REPO_PATH` names the repository).
//! `POST /groups/{id}/merge` and `POST /groups/{id}/unmerge` make the same
//! store calls as `errsnap merge` and `errsnap unmerge`.

use std::collections::HashMap;

use axum::extract::{Form, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use errsnap::db::{Database, GroupRow};
use maud::{html, Markup};

use super::{clean_line, error_page};
use crate::serve::{App, Shared};

/// The triage sections of group `g`'s page.
pub(crate) fn section(db: &Database, app: &App, g: &GroupRow) -> anyhow::Result<Markup> {
    let merged = db.merged_into(g.id)?;
    let suspects = app
        .repo
        .as_ref()
        .map(|repo| db.suspects(g.id, repo).map_err(|e| e.to_string()));
    Ok(html! {
        @if let Some(into) = g.merged_into {
            p.badge.merged { "Merged into " a href={"/groups/" (into)} { "group " (into) } }
            @if !app.read_only { (unmerge_button(app, g.id, "Unmerge")) }
        }
        section.triage {
            @if let Some(found) = &suspects {
                h3 { "Suspect commit" }
                @match found {
                    Ok(Some(s)) => {
                        @match &s.suspect {
                            Some(c) => p.suspect {
                                code { (clean_line(&c.id[..c.id.len().min(10)], 10)) } " by "
                                strong { (clean_line(&c.author, 80)) } ", "
                                (day(c.time)) ": " (clean_line(&c.summary, 200))
                            },
                            None => p.muted { "No suspect commit." },
                        }
                        @if !s.lines.is_empty() {
                            table.kv { tbody { @for l in &s.lines {
                                tr {
                                    th { code { (clean_line(&l.path, 120)) ":" (l.line) } }
                                    td { code { (clean_line(&l.commit.id[..l.commit.id.len().min(10)], 10)) } }
                                    td { (clean_line(&l.commit.author, 60)) }
                                    td { (day(l.commit.time)) }
                                    td { (clean_line(&l.commit.summary, 120)) }
                                }
                            } } }
                        }
                        @for n in &s.notes { p.muted { (clean_line(n, 200)) } }
                    },
                    Ok(None) => p.muted { "No such group." },
                    Err(e) => p.muted { "Blame failed: " (clean_line(e, 300)) },
                }
            }
            @if !merged.is_empty() {
                h3 { "Merged into this group" }
                table.kv { tbody { @for m in &merged {
                    tr {
                        th { a href={"/groups/" (m.id)} { "group " (m.id) } }
                        td { (clean_line(&m.title, 120)) }
                        td { code { (clean_line(&m.fingerprint, 16)) } }
                        @if !app.read_only { td { (unmerge_button(app, m.id, "Unmerge")) } }
                    }
                } } }
            }
            @if !app.read_only && g.merged_into.is_none() {
                form.merge method="post" action={"/groups/" (g.id) "/merge"} {
                    input type="hidden" name="csrf" value=(app.csrf);
                    label for="merge-groups" { "Merge groups into this one" }
                    " "
                    input #merge-groups type="text" name="groups" inputmode="numeric"
                        pattern="[0-9, ]+" placeholder="12, 15" required;
                    " "
                    button type="submit" { "Merge" }
                }
            }
        }
    })
}

fn day(secs: i64) -> String {
    crate::output::time(secs.saturating_mul(1000))
        .get(..10)
        .unwrap_or("")
        .to_owned()
}

fn unmerge_button(app: &App, group: i64, label: &str) -> Markup {
    html! {
        form.inline method="post" action={"/groups/" (group) "/unmerge"} {
            input type="hidden" name="csrf" value=(app.csrf);
            button type="submit" { (label) }
        }
    }
}

/// `POST /groups/{id}/merge` (form fields `groups`: numbers, and `csrf`).
pub(crate) async fn merge(
    State(app): State<Shared>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let into = match super::action::checks(&app, &id, &form) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    let given = form.get("groups").map(String::as_str).unwrap_or("");
    let groups: Result<Vec<i64>, _> = given
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::parse::<i64>)
        .collect();
    let groups = match groups {
        Ok(g) if !g.is_empty() => g,
        _ => return super::bad_request("groups", given, "expected group numbers, e.g. 12, 15"),
    };
    app.page(move |db, _| {
        if let Err(e) = db.merge(into, &groups) {
            return Ok(error_page(StatusCode::CONFLICT, &e.to_string()));
        }
        Ok((
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/groups/{into}"))],
        )
            .into_response())
    })
    .await
}

/// `POST /groups/{id}/unmerge` (form field `csrf`).
pub(crate) async fn unmerge(
    State(app): State<Shared>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let group = match super::action::checks(&app, &id, &form) {
        Ok(g) => g,
        Err(r) => return *r,
    };
    app.page(move |db, _| {
        if let Err(e) = db.unmerge(group) {
            return Ok(error_page(StatusCode::CONFLICT, &e.to_string()));
        }
        Ok((
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/groups/{group}"))],
        )
            .into_response())
    })
    .await
}
