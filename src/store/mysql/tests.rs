//! The connection layer against a real MariaDB the tests start
//! (`tests/support/mariadb_server.rs`): the shared layer's statements, and
//! each `ssl-mode` as MySQL's clients mean it, read back from the
//! session's `Ssl_cipher`.

#[path = "../../../tests/support/mariadb_server.rs"]
pub(crate) mod server;

use std::path::Path;

use super::conn::MyConn;
use super::connect::{MyTarget, SslMode};
use crate::store::sql::{params, Conn, Value};
use server::{Maria, PASSWORD};

/// A CA's PEM, and a server certificate and key it signed for
/// `127.0.0.1` and `localhost`.
fn ca_and_server() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (ca_cert.pem(), leaf.pem(), key.serialize_pem())
}

fn cipher(t: &MyTarget) -> String {
    let mut c = t.connect().unwrap();
    let conn: &mut dyn Conn = &mut MyConn {
        conn: &mut c,
        target: t,
        depth: 0,
    };
    let row = conn
        .query_opt(
            "reading the session's cipher",
            "SHOW SESSION STATUS LIKE 'Ssl_cipher'",
            params![],
        )
        .unwrap()
        .unwrap();
    row.get::<String>(1).unwrap()
}

#[test]
fn the_shared_layers_statements_run_on_mariadb() {
    let Some(m) = Maria::start("the_shared_layers_statements_run_on_mariadb", None) else {
        return;
    };
    let t = MyTarget::parse(&m.url("?ssl-mode=DISABLED"), None, None).unwrap();
    let mut raw = t.connect().unwrap();
    let mut c = MyConn {
        conn: &mut raw,
        target: &t,
        depth: 0,
    };
    let c: &mut dyn Conn = &mut c;
    c.execute(
        "making a table",
        r#"CREATE TABLE t (id BIGINT AUTO_INCREMENT PRIMARY KEY, "key" VARCHAR(64)
             CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL UNIQUE,
             n BIGINT, body MEDIUMBLOB, note TEXT CHARACTER SET utf8mb4)"#,
        params![],
    )
    .unwrap();
    let n = c
        .execute(
            "inserting",
            r#"INSERT INTO t ("key", n, body, note) VALUES (?1, ?2, ?3, ?4), (?1 || 'b', ?2, NULL, ?4)"#,
            params!["a ", 7i64, Value::Bytes(vec![0, 159, 255]), "é ✓"],
        )
        .unwrap();
    assert_eq!(n, 2);
    // A trailing space is part of a key (NO PAD), as in SQLite.
    let keys: Vec<String> = c
        .map(
            "reading keys",
            r#"SELECT "key" FROM t WHERE "key" IN (?1) ORDER BY id"#,
            params![Value::Texts(vec!["a ".into(), "a b".into(), "a".into()])],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(keys, vec!["a ".to_owned(), "a b".to_owned()]);
    let row = c
        .query_opt(
            "reading a row",
            "SELECT body, note, sum(n) FROM t WHERE n = ?1 GROUP BY body, note ORDER BY body DESC",
            params![7i64],
        )
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<Vec<u8>>(0).unwrap(), vec![0, 159, 255]);
    assert_eq!(row.get::<String>(1).unwrap(), "é ✓");
    assert_eq!(
        row.get::<i64>(2).unwrap(),
        7,
        "sum()'s DECIMAL reads as an integer"
    );
    let none: i64 = c
        .one(
            "an empty list",
            "SELECT count(*) FROM t WHERE id IN (?1)",
            params![Value::Ints(vec![])],
        )
        .unwrap();
    assert_eq!(none, 0);
    // A failed transaction leaves nothing; a savepoint inside one is undone
    // alone.
    let e = c
        .in_transaction("a failing transaction", |c| {
            c.execute(
                "inserting",
                r#"INSERT INTO t ("key") VALUES ('c')"#,
                params![],
            )?;
            c.execute(
                "inserting twice",
                r#"INSERT INTO t ("key") VALUES ('c')"#,
                params![],
            )
        })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Duplicate") && e.contains("mysql://errsnap@127.0.0.1"),
        "{e}"
    );
    assert!(!e.contains(PASSWORD), "{e}");
    c.in_transaction("an outer transaction", |c| {
        c.execute(
            "inserting",
            r#"INSERT INTO t ("key") VALUES ('d')"#,
            params![],
        )?;
        let inner = c.in_transaction("an inner one", |c| {
            c.execute(
                "inserting",
                r#"INSERT INTO t ("key") VALUES ('e')"#,
                params![],
            )?;
            c.execute("failing", "INSERT INTO nowhere VALUES (1)", params![])
        });
        assert!(inner.is_err());
        Ok(())
    })
    .unwrap();
    let keys: Vec<String> = c
        .map(
            "reading keys",
            r#"SELECT "key" FROM t ORDER BY id"#,
            params![],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(keys, vec!["a ", "a b", "d"]);
}

#[test]
fn each_ssl_mode_means_what_mysqls_clients_mean() {
    let (ca, cert, key) = ca_and_server();
    let Some(m) = Maria::start(
        "each_ssl_mode_means_what_mysqls_clients_mean",
        Some((&cert, &key)),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    let (other_ca, _, _) = ca_and_server();
    let other = dir.path().join("other.pem");
    std::fs::write(&other, other_ca).unwrap();
    let target = |mode: &str, ca: Option<&Path>| {
        MyTarget::parse(
            &m.url(&format!("?ssl-mode={mode}")),
            None,
            ca.map(Path::to_owned),
        )
        .unwrap()
    };
    assert_eq!(cipher(&target("DISABLED", None)), "");
    assert_ne!(
        cipher(&target("PREFERRED", None)),
        "",
        "TLS when the server has it"
    );
    assert_ne!(
        cipher(&target("REQUIRED", None)),
        "",
        "any certificate, encrypted"
    );
    let t = target("VERIFY_IDENTITY", Some(&ca_file));
    assert_eq!(t.ssl, SslMode::VerifyIdentity);
    assert_ne!(cipher(&t), "");
    // Signed by another CA: refused, and said so.
    let e = target("VERIFY_IDENTITY", Some(&other))
        .connect()
        .unwrap_err()
        .to_string();
    assert!(e.contains("connecting to mysql://errsnap@127.0.0.1"), "{e}");
    assert!(!e.contains(PASSWORD), "{e}");
    // No CA file: the public roots do not know this CA.
    assert!(target("VERIFY_IDENTITY", None).connect().is_err());
    // A wrong password: refused, the message names the database, not the
    // password tried.
    let wrong = MyTarget::parse(
        &format!(
            "mysql://errsnap:not-it-9Q@127.0.0.1:{}/errsnap?ssl-mode=REQUIRED",
            m.port
        ),
        None,
        None,
    )
    .unwrap();
    let e = wrong.connect().unwrap_err().to_string();
    assert!(
        e.contains("Access denied") && !e.contains("not-it-9Q"),
        "{e}"
    );
}

#[test]
fn preferred_falls_back_only_where_the_server_has_no_tls() {
    let Some(m) = Maria::start(
        "preferred_falls_back_only_where_the_server_has_no_tls",
        None,
    ) else {
        return;
    };
    let t = MyTarget::parse(&m.url(""), None, None).unwrap();
    assert_eq!(t.ssl, SslMode::Preferred);
    assert_eq!(cipher(&t), "", "connected, without TLS");
    let required = MyTarget::parse(&m.url("?ssl-mode=REQUIRED"), None, None).unwrap();
    let e = required.connect().unwrap_err().to_string();
    assert!(
        e.contains("has no TLS") && e.contains("ssl-mode=REQUIRED"),
        "{e}"
    );
    // The password from ERRSNAP_DATABASE_PASSWORD when the URL has none.
    let from_env = MyTarget::parse(
        &format!("mariadb://errsnap@127.0.0.1:{}/errsnap", m.port),
        Some(PASSWORD),
        None,
    )
    .unwrap();
    assert_eq!(cipher(&from_env), "");
}

/// A connection to database `db` of `m` as the `errsnap` user.
fn connect_to(m: &Maria, db: &str) -> (MyTarget, mysql::Conn) {
    let url = m
        .url("?ssl-mode=DISABLED")
        .replace("/errsnap?", &format!("/{db}?"));
    let t = MyTarget::parse(&url, None, None).unwrap();
    let c = t.connect().unwrap();
    (t, c)
}

#[test]
fn the_schema_is_made_once_however_many_start_and_a_foreign_database_is_refused() {
    use super::migrate::{migrate, SCHEMA_VERSION};
    use mysql::prelude::Queryable;
    let Some(m) = Maria::start(
        "the_schema_is_made_once_however_many_start_and_a_foreign_database_is_refused",
        None,
    ) else {
        return;
    };
    for db in ["fleet", "theirs", "future"] {
        m.sql(&format!(
            "CREATE DATABASE {db}; GRANT ALL ON {db}.* TO 'errsnap'@'127.0.0.1';"
        ));
    }
    // Eight processes' writers starting at once: one makes the schema.
    let made: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let (t, mut c) = connect_to(&m, "fleet");
                    migrate(&mut c, &t).unwrap()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let (v, made) = h.join().unwrap();
                assert_eq!(v, SCHEMA_VERSION);
                made
            })
            .collect()
    });
    assert_eq!(made.iter().filter(|m| **m).count(), 1, "{made:?}");
    let (t, mut c) = connect_to(&m, "fleet");
    assert_eq!(migrate(&mut c, &t).unwrap(), (SCHEMA_VERSION, false));
    // Keys are NO PAD: `a` and `a ` are two loggers, as in SQLite.
    c.query_drop("INSERT INTO loggers (name, created_at) VALUES ('a', 0), ('a ', 0)")
        .unwrap();
    let app: Option<String> = c
        .query_first(r#"SELECT value FROM errsnap_meta WHERE "key" = 'application'"#)
        .unwrap();
    assert_eq!(app.as_deref(), Some("errsnap"));
    // Another program's `events` table: refused, left as it was.
    m.sql("CREATE TABLE theirs.events (id INT, what TEXT); INSERT INTO theirs.events VALUES (1, 'x');");
    let (t, mut c) = connect_to(&m, "theirs");
    let e = migrate(&mut c, &t).unwrap_err().to_string();
    assert!(
        e.contains("not errsnap's") && e.contains("\"events\""),
        "{e}"
    );
    assert_eq!(m.sql("SELECT count(*) FROM theirs.events"), "1");
    assert_eq!(
        m.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'theirs'"),
        "1",
        "nothing made beside it"
    );
    // A schema a newer errsnap wrote, that this one may not write.
    let (t, mut c) = connect_to(&m, "future");
    migrate(&mut c, &t).unwrap();
    c.query_drop(r#"UPDATE errsnap_meta SET value = '99' WHERE "key" IN ('schema_version', 'min_writer_version')"#)
        .unwrap();
    let e = migrate(&mut c, &t).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            crate::error::ErrorKind::FutureSchema { found: 99, .. }
        ),
        "{e}"
    );
}
