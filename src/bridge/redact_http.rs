//! What of an HTTP request's target may be stored: query values of
//! secret-looking parameters replaced, token-like path segments replaced,
//! and a route made from a path when no template is known.

/// Query parameter names whose values are replaced: any name containing
/// one of these (case-insensitive, `%xx` escapes read), or equal to one of
/// [`SECRET_PARAM_NAMES`]. The event's redaction rules run over the query
/// again before it is stored.
const SECRET_PARAMS: &[&str] = &[
    "token",
    "key",
    "pass",
    "pwd",
    "secret",
    "auth",
    "sess",
    "sig",
    "credential",
    "jwt",
    "otp",
    "code",
    "ticket",
    "saml",
    "nonce",
    "assertion",
    "hmac",
    "bearer",
    "cookie",
];

/// Names too short to look for inside others (`sid` is in `inside`).
const SECRET_PARAM_NAMES: &[&str] = &["sid", "state", "relaystate"];

/// What replaces a secret value.
pub(crate) const MARK: &str = "[REDACTED]";

/// The query with the values of secret-looking parameters replaced.
pub(crate) fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decoded = name.replace('+', " ").to_ascii_lowercase();
            let decoded = percent_lower(&decoded);
            let secret = SECRET_PARAMS.iter().any(|s| decoded.contains(s))
                || SECRET_PARAM_NAMES.contains(&decoded.as_str());
            if !value.is_empty() && secret {
                format!("{name}={MARK}")
            } else {
                pair.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `%xx` escapes decoded (ASCII only), so `api%5Fkey` is seen as
/// `api_key`.
fn percent_lower(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let v = (h * 16 + l) as u8;
                if v.is_ascii() {
                    out.push(v.to_ascii_lowercase() as char);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// What a path segment looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment {
    /// A word of the route (`users`, `reset`, `v2`).
    Word,
    /// An identifier: a number, a UUID, a hexadecimal run of 8 or more.
    Id,
    /// A token: 16 or more characters of letters and digits mixed (with
    /// `-_.~=+`), random-looking, the kind a link carries as a secret.
    Token,
}

fn segment(s: &str) -> Segment {
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    let letters = s.bytes().filter(u8::is_ascii_alphabetic).count();
    let is_uuid = s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                b == b'-'
            } else {
                b.is_ascii_hexdigit()
            }
        });
    if !s.is_empty() && digits == s.len()
        || is_uuid
        || (s.len() >= 8 && digits > 0 && s.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Segment::Id;
    }
    let token_chars = s.bytes().all(|b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'=' | b'+' | b'%')
    });
    if s.len() >= 16 && token_chars && digits > 0 && letters > 0 {
        return Segment::Token;
    }
    Segment::Word
}

/// The path with token-like segments replaced by [`MARK`] (numbers and
/// other ids are kept: they are no secret, and they help).
pub(crate) fn redact_path(path: &str) -> String {
    path.split('/')
        .map(|s| match segment(s) {
            Segment::Token => MARK,
            _ => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A route template made from a path: ids become `{id}`, tokens `{token}`
/// (`/users/42/reset/9fQ...` is `/users/{id}/reset/{token}`).
pub(crate) fn route_of_path(path: &str) -> String {
    path.split('/')
        .map(|s| match segment(s) {
            Segment::Id => "{id}",
            Segment::Token => "{token}",
            Segment::Word => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_query_values_are_replaced_by_name() {
        assert_eq!(
            redact_query("page=2&token=abc&API_KEY=k1&api%5Fkey=k2&q=shoes&password=&sort"),
            "page=2&token=[REDACTED]&API_KEY=[REDACTED]&api%5Fkey=[REDACTED]&q=shoes&password=&sort"
        );
        assert_eq!(
            redact_query("sessionid=s&x-auth=t&signature=z"),
            "sessionid=[REDACTED]&x-auth=[REDACTED]&signature=[REDACTED]"
        );
        assert_eq!(redact_query("name=ann"), "name=ann");
    }

    #[test]
    fn common_session_and_sso_names_are_secret_too() {
        for name in [
            "ticket",
            "sid",
            "SID",
            "PHPSESSID",
            "JSESSIONID",
            "SAMLResponse",
            "SAMLRequest",
            "RelayState",
            "state",
            "nonce",
            "id_token",
            "access_token",
            "hmac",
            "x-amz-signature",
        ] {
            assert_eq!(
                redact_query(&format!("{name}=v4lue&page=2")),
                format!("{name}=[REDACTED]&page=2"),
                "{name}"
            );
        }
        // Short names are matched whole: `sid` is in `inside`.
        assert_eq!(redact_query("inside=1&statement=2"), "inside=1&statement=2");
    }

    #[test]
    fn escaped_names_are_read_as_ascii() {
        for (escaped, plain) in [
            ("%74oken", "token"),
            ("pass%77ord", "password"),
            ("a%4B", "ak"),
            ("%41%42", "ab"),
            ("x%", "x%"),
            ("x%4", "x%4"),
            ("%4", "%4"),
            ("%zz1", "%zz1"),
            ("%C3%A9", "%C3%A9"),
        ] {
            assert_eq!(percent_lower(escaped), plain, "{escaped}");
        }
        assert_eq!(
            redact_query("%74oken=abc&pass%77ord=p&%41=1&%73id=x"),
            "%74oken=[REDACTED]&pass%77ord=[REDACTED]&%41=1&%73id=[REDACTED]"
        );
    }

    #[test]
    fn segments_are_words_ids_or_tokens() {
        for w in [
            "users",
            "reset",
            "v2",
            "api",
            "",
            "carts",
            "a-b-c",
            "release-2024",
        ] {
            assert_eq!(segment(w), Segment::Word, "{w}");
        }
        for id in [
            "42",
            "0",
            "123e4567-e89b-12d3-a456-426614174000",
            "deadbeef12",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
        ] {
            assert_eq!(segment(id), Segment::Id, "{id}");
        }
        for t in [
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig4ture",
            "Zk3qP9xLmW2vT8rY",
            "reset_7aXk2mQ9pL4nB8vC",
        ] {
            assert_eq!(segment(t), Segment::Token, "{t}");
        }
        // Long words without a digit are words; fifteen characters are not
        // yet a token.
        assert_eq!(segment("internationalization"), Segment::Word);
        assert_eq!(segment("abc123def456ghi"), Segment::Word);
        assert_eq!(segment("abcdefg"), Segment::Word, "short hex-looking word");
        // Hex letters without a digit are a word ("deadbeef", "facade"s).
        assert_eq!(segment("deadbeefcafe"), Segment::Word);
        assert_eq!(segment("deadbeefcafe1"), Segment::Id);
        // Digits and separators without a letter: a number, never a token.
        assert_eq!(segment("1234-5678-9012-3456"), Segment::Word);
        assert_eq!(segment("1234-5678-9012-345a"), Segment::Token);
    }

    #[test]
    fn paths_keep_ids_but_never_tokens_and_routes_name_both() {
        let p = "/users/42/reset/Zk3qP9xLmW2vT8rY";
        assert_eq!(redact_path(p), "/users/42/reset/[REDACTED]");
        assert_eq!(route_of_path(p), "/users/{id}/reset/{token}");
        assert_eq!(
            route_of_path("/carts/123e4567-e89b-12d3-a456-426614174000/items/7"),
            "/carts/{id}/items/{id}"
        );
        assert_eq!(route_of_path("/health"), "/health");
        assert_eq!(route_of_path("/"), "/");
        assert_eq!(redact_path("/static/app.css"), "/static/app.css");
    }
}
