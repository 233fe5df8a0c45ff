//! The page shell: head, navigation with the search box, footer.

use maud::{html, Markup, DOCTYPE};

use super::super::App;

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Groups,
    Events,
    Stats,
    Runs,
    Releases,
    Monitors,
    Search,
}

/// A page with the navigation.
pub(crate) fn page(app: &App, title: &str, nav: Nav, search: &str, body: Markup) -> Markup {
    let item = |n: Nav, href: &str, label: &str| {
        html! { a href=(href) aria-current=[(n == nav).then_some("page")] { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · errsnap" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "errsnap" }
                    nav {
                        (item(Nav::Groups, "/", "Groups"))
                        (item(Nav::Events, "/events", "Events"))
                        (item(Nav::Runs, "/runs", "Runs"))
                        (item(Nav::Releases, "/releases", "Releases"))
                        (item(Nav::Monitors, "/monitors", "Monitors"))
                        (item(Nav::Stats, "/stats", "Stats"))
                    }
                    form.search method="get" action="/search" role="search" {
                        input type="search" name="q" value=(search) placeholder="Search messages, errors, frames"
                            aria-label="search";
                    }
                    span.db title="database" { (super::clean_line(&app.db_name, 80)) }
                    @if app.read_only { span.badge.readonly { "read-only" } }
                    form.logout method="post" action="/logout" {
                        input type="hidden" name="csrf" value=(app.csrf);
                        button type="submit" { "Log out" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page without navigation (login, errors).
pub(crate) fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                link rel="stylesheet" href="/static/app.css";
            }
            body { main.narrow { (body) } }
        }
    }
}
