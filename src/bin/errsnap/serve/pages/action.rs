//! What every action on a group checks before it changes anything (a
//! status, a merge, an unmerge): a writable dashboard, the form's CSRF
//! token, a group number.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::Response;

use super::error_page;
use crate::serve::guard::same;
use crate::serve::App;

/// The checks every action on a group makes (status, merge, unmerge):
/// a writable dashboard, the form's CSRF token, a group number.
pub(crate) fn checks(
    app: &App,
    id: &str,
    form: &HashMap<String, String>,
) -> Result<i64, Box<Response>> {
    if app.read_only {
        return Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            "this dashboard is read-only (--read-only)",
        )));
    }
    if !form.get("csrf").is_some_and(|t| same(t, &app.csrf)) {
        return Err(Box::new(error_page(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token: reload the page and try again",
        )));
    }
    id.parse::<i64>()
        .map_err(|_| Box::new(super::bad_request("group", id, "expected a group number")))
}
