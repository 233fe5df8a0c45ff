//! The PostgreSQL client's certificate checks follow libpq, against a real
//! server the test starts (see `pg.rs`): `require` with a root file is
//! `verify-ca`, wherever the file is named (`sslrootcert=`,
//! `ERRSNAP_TLS_CA_FILE`, `PGSSLROOTCERT`, `~/.postgresql/root.crt`), and
//! `sslrootcert=system` means the operating system's store under
//! `verify-full`.

use std::path::Path;
use std::process::{Command, Output};

use crate::pg::pg_server::{Pg, PgOptions, PASSWORD};
use crate::pg::text;
use crate::servers::TestCa;
use crate::util;

/// `errsnap migrate` against `url`, with a home directory of its own and
/// none of libpq's or OpenSSL's variables but those given.
fn migrate(url: &str, home: &Path, env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_errsnap"));
    cmd.args(["--db", url, "migrate", "--json"])
        .env_remove("ERRSNAP_DATABASE_PASSWORD")
        .env_remove("ERRSNAP_TLS_CA_FILE")
        .env_remove("PGSSLROOTCERT")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env("HOME", home)
        .current_dir(std::env::temp_dir());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[track_caller]
fn accepted(out: &Output) {
    assert!(out.status.success(), "{}", util::describe(out));
}

#[track_caller]
fn refused(out: &Output, because: &str) {
    assert!(!out.status.success(), "accepted: {}", util::describe(out));
    let t = text(out);
    assert!(t.contains(because), "wanted {because:?} in: {t}");
    assert!(!t.contains(PASSWORD), "{t}");
}

#[test]
fn require_with_a_root_file_refuses_a_server_another_ca_signed() {
    let ours = TestCa::new();
    let theirs = TestCa::new();
    let Some(pg) = Pg::start(
        "require with a root file",
        PgOptions {
            tls: Some((&ours.cert_pem, &ours.key_pem)),
            tls_only: true,
        },
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ours_dir = dir.path().join("ours");
    let theirs_dir = dir.path().join("theirs");
    std::fs::create_dir(&ours_dir).unwrap();
    std::fs::create_dir(&theirs_dir).unwrap();
    let our_ca = ours.write(&ours_dir);
    let their_ca = theirs.write(&theirs_dir);
    let empty_home = dir.path().join("home");
    std::fs::create_dir(&empty_home).unwrap();
    let url = |host: &str, query: &str| {
        format!(
            "postgres://postgres:{PASSWORD}@{host}:{}/postgres?{query}",
            pg.port
        )
    };
    let require = url("127.0.0.1", "sslmode=require");

    // Without any root file, require only encrypts (libpq's meaning).
    accepted(&migrate(&require, &empty_home, &[]));

    // A root file of the wrong CA, wherever it is named, is obeyed.
    let with_file = |ca: &Path| {
        url(
            "127.0.0.1",
            &format!("sslmode=require&sslrootcert={}", ca.display()),
        )
    };
    refused(
        &migrate(&with_file(&their_ca), &empty_home, &[]),
        "certificate",
    );
    refused(
        &migrate(&require, &empty_home, &[("ERRSNAP_TLS_CA_FILE", &their_ca)]),
        "certificate",
    );
    refused(
        &migrate(&require, &empty_home, &[("PGSSLROOTCERT", &their_ca)]),
        "certificate",
    );
    let planted_home = dir.path().join("planted");
    std::fs::create_dir_all(planted_home.join(".postgresql")).unwrap();
    std::fs::copy(&their_ca, planted_home.join(".postgresql/root.crt")).unwrap();
    refused(&migrate(&require, &planted_home, &[]), "certificate");

    // The right CA is accepted, for any name (verify-ca's meaning), and the
    // URL's file wins over the others.
    accepted(&migrate(&with_file(&our_ca), &planted_home, &[]));
    accepted(&migrate(
        &require,
        &empty_home,
        &[
            ("ERRSNAP_TLS_CA_FILE", &our_ca),
            ("PGSSLROOTCERT", &their_ca),
        ],
    ));

    // A named file that is not there is an error naming the setting,
    // never a quiet fallback to "encrypted only".
    let missing = dir.path().join("no-such-ca.pem");
    refused(
        &migrate(&with_file(&missing), &empty_home, &[]),
        "sslrootcert",
    );
    refused(
        &migrate(&require, &empty_home, &[("PGSSLROOTCERT", &missing)]),
        "PGSSLROOTCERT",
    );

    // sslrootcert=system: the system's store (SSL_CERT_FILE stands in for
    // it here), verify-full by default, weaker modes refused.
    let system = url("localhost", "sslrootcert=system");
    accepted(&migrate(
        &system,
        &empty_home,
        &[("SSL_CERT_FILE", &our_ca)],
    ));
    refused(
        &migrate(&system, &empty_home, &[("SSL_CERT_FILE", &their_ca)]),
        "certificate",
    );
    refused(
        &migrate(
            &url("127.0.0.1", "sslmode=require&sslrootcert=system"),
            &empty_home,
            &[("SSL_CERT_FILE", &our_ca)],
        ),
        "verify-full",
    );

    // verify-full with no root file anywhere: refused before connecting,
    // saying what to give.
    refused(
        &migrate(&url("localhost", "sslmode=verify-full"), &empty_home, &[]),
        "sslrootcert=system",
    );
}
