//! Who and which request: the user and HTTP request an event was raised
//! for (from a scope), stored with the event as one JSON object.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Request headers never stored: cookies and credentials.
pub(crate) const SECRET_HEADERS: &[&str] = &[
    "cookie",
    "set-cookie",
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
];

/// Request headers that carry a client's IP address (stored only when IP
/// addresses are).
pub(crate) const IP_HEADERS: &[&str] = &["x-forwarded-for", "x-real-ip", "forwarded"];

/// The user an event was raised for (set on a scope with
/// [`Scope::set_user`](crate::Scope::set_user)).
///
/// The id and username are always stored. The e-mail address and the IP
/// address are personal data: they are stored only when
/// `ERRSNAP_STORE_USER_EMAIL` / `ERRSNAP_STORE_USER_IP` are `true` (off by
/// default), and pass redaction like every other text.
///
/// ```
/// let user = errsnap::User::new().id("42").username("ann");
/// assert_eq!(user.id.as_deref(), Some("42"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct User {
    /// Your application's id of the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// E-mail address (stored only with `ERRSNAP_STORE_USER_EMAIL=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// IP address (stored only with `ERRSNAP_STORE_USER_IP=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

impl User {
    /// A user with nothing set.
    pub fn new() -> User {
        User::default()
    }
    /// Sets the id.
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> User {
        self.id = Some(id.into());
        self
    }
    /// Sets the username.
    #[must_use]
    pub fn username(mut self, name: impl Into<String>) -> User {
        self.username = Some(name.into());
        self
    }
    /// Sets the e-mail address (kept only when enabled).
    #[must_use]
    pub fn email(mut self, email: impl Into<String>) -> User {
        self.email = Some(email.into());
        self
    }
    /// Sets the IP address (kept only when enabled).
    #[must_use]
    pub fn ip_address(mut self, ip: impl Into<String>) -> User {
        self.ip_address = Some(ip.into());
        self
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.id.is_none()
            && self.username.is_none()
            && self.email.is_none()
            && self.ip_address.is_none()
    }
}

/// The HTTP request an event was raised while handling (filled by the
/// [`tower`](crate::tower) layer, or set on a scope with
/// [`Scope::set_request`](crate::Scope::set_request)).
///
/// Never holds a body, cookies or credentials: the tower layer keeps only
/// the headers it is told to, refuses `Cookie` and `Authorization`, and
/// redacts secret-looking query values before the event is stored
/// (where redaction runs over every text again).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path as requested (without the query).
    pub path: String,
    /// The route template (`/users/{id}`) when the router told it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The query string, secret values replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    /// The `Host` header or the URI's authority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Selected headers (lower-case names).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The peer's address (stored only with `ERRSNAP_STORE_USER_IP=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// The response status, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Time from the request to the response head, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl Request {
    /// A request with its method and path.
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            ..Request::default()
        }
    }
    /// Sets the route template.
    #[must_use]
    pub fn route(mut self, route: impl Into<String>) -> Request {
        self.route = Some(route.into());
        self
    }
    /// Sets the query string (give it already without secrets; redaction
    /// runs over it again before it is stored).
    #[must_use]
    pub fn query(mut self, query: impl Into<String>) -> Request {
        self.query = Some(query.into());
        self
    }
    /// Adds a header (cookies and credentials are never stored; headers
    /// holding a client's IP only when IP addresses are).
    #[must_use]
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request {
        self.headers.insert(name.to_ascii_lowercase(), value.into());
        self
    }
    /// Sets the peer address.
    #[must_use]
    pub fn peer(mut self, peer: impl Into<String>) -> Request {
        self.peer = Some(peer.into());
        self
    }
    /// Sets the host.
    #[must_use]
    pub fn host(mut self, host: impl Into<String>) -> Request {
        self.host = Some(host.into());
        self
    }
}

/// The request-scoped part of a stored event: the transaction (route)
/// name, the user and the request. Stored as one JSON column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EventContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) transaction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) user: Option<User>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) request: Option<Request>,
}

impl EventContext {
    pub(crate) fn is_empty(&self) -> bool {
        self.transaction.is_none() && self.user.is_none() && self.request.is_none()
    }

    /// Drops the personal data not allowed to be stored.
    pub(crate) fn keep_personal(&mut self, email: bool, ip: bool) {
        if let Some(u) = &mut self.user {
            if !email {
                u.email = None;
            }
            if !ip {
                u.ip_address = None;
            }
            if u.is_empty() {
                self.user = None;
            }
        }
        if let Some(r) = &mut self.request {
            r.headers.retain(|name, _| {
                let name = name.to_ascii_lowercase();
                !SECRET_HEADERS.contains(&name.as_str())
                    && (ip || !IP_HEADERS.contains(&name.as_str()))
            });
            if !ip {
                r.peer = None;
            }
        }
    }

    /// Every text, for redaction.
    pub(crate) fn texts_mut(&mut self) -> Vec<&mut String> {
        let mut out: Vec<&mut String> = Vec::new();
        out.extend(self.transaction.as_mut());
        if let Some(u) = &mut self.user {
            out.extend(u.id.as_mut());
            out.extend(u.username.as_mut());
            out.extend(u.email.as_mut());
            out.extend(u.ip_address.as_mut());
        }
        if let Some(r) = &mut self.request {
            out.push(&mut r.path);
            out.extend(r.route.as_mut());
            out.extend(r.query.as_mut());
            out.extend(r.host.as_mut());
            out.extend(r.peer.as_mut());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> EventContext {
        EventContext {
            transaction: Some("GET /me".into()),
            user: Some(
                User::new()
                    .id("7")
                    .email("ann@example.com")
                    .ip_address("192.0.2.1"),
            ),
            request: Some(
                Request::new("GET", "/me")
                    .peer("192.0.2.1")
                    .header("Cookie", "sid=1")
                    .header("Authorization", "Bearer x")
                    .header("X-Forwarded-For", "192.0.2.1")
                    .header("User-Agent", "ua"),
            ),
        }
    }

    #[test]
    fn personal_data_is_kept_only_as_allowed() {
        let mut c = ctx();
        c.keep_personal(false, false);
        let u = c.user.as_ref().expect("user");
        assert_eq!((u.email.as_deref(), u.ip_address.as_deref()), (None, None));
        let r = c.request.as_ref().expect("request");
        assert_eq!(r.peer, None);
        assert_eq!(r.headers.keys().collect::<Vec<_>>(), ["user-agent"]);

        let mut c = ctx();
        c.keep_personal(true, true);
        let u = c.user.as_ref().expect("user");
        assert_eq!(u.email.as_deref(), Some("ann@example.com"));
        assert_eq!(u.ip_address.as_deref(), Some("192.0.2.1"));
        let r = c.request.as_ref().expect("request");
        assert_eq!(r.peer.as_deref(), Some("192.0.2.1"));
        // Credentials never, whatever is allowed.
        assert_eq!(
            r.headers.keys().collect::<Vec<_>>(),
            ["user-agent", "x-forwarded-for"]
        );

        let mut c = ctx();
        c.keep_personal(true, false);
        assert!(c
            .user
            .as_ref()
            .is_some_and(|u| u.email.is_some() && u.ip_address.is_none()));
        let mut c = ctx();
        c.keep_personal(false, true);
        assert!(c
            .user
            .as_ref()
            .is_some_and(|u| u.email.is_none() && u.ip_address.is_some()));
    }

    #[test]
    fn a_user_left_with_nothing_is_no_user() {
        let mut c = EventContext {
            user: Some(User::new().email("a@b.c")),
            ..EventContext::default()
        };
        assert!(!c.is_empty());
        c.keep_personal(false, false);
        assert!(c.user.is_none());
        assert!(c.is_empty());
        assert!(User::new().is_empty() && !User::new().id("1").is_empty());
        assert!(!User::new().username("a").is_empty());
        assert!(!User::new().ip_address("::1").is_empty());
    }

    #[test]
    fn every_text_is_handed_to_redaction() {
        let mut c = ctx();
        c.request = c.request.map(|r| r.route("/r").query("q=1").host("h"));
        c.user = c.user.map(|u| u.username("ann"));
        let n = c.texts_mut().len();
        // transaction; user id, username, email, ip; path, route, query, host, peer.
        assert_eq!(n, 10);
    }
}
