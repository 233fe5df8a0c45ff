//! Secrets and the command line: what every local user can read in the
//! process list (`/proc/<pid>/cmdline`) or in `--help`.

use std::process::Command;

use crate::dash::Dash;
use crate::util;

fn errsnap() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_errsnap"));
    c.env_remove("ERRSNAP_DB_PATH")
        .env_remove("ERRSNAP_DASHBOARD_TOKEN");
    c
}

#[test]
fn help_never_prints_a_secret_bearing_variable() {
    let secret_url = "postgres://ann:s3cret-pw@db.example/app";
    let out = errsnap()
        .env("ERRSNAP_DB_PATH", secret_url)
        .env("ERRSNAP_DASHBOARD_TOKEN", "tok-0123456789abcdef")
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ERRSNAP_DB_PATH"), "{text}");
    assert!(
        !text.contains("s3cret") && !text.contains("tok-0123"),
        "{text}"
    );
}

#[test]
fn a_password_in_db_is_refused_by_serve_and_warned_about_elsewhere() {
    let url = "postgres://ann:s3cret-pw@127.0.0.1:1/app";
    let out = errsnap()
        .args(["--db", url, "serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", util::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ERRSNAP_DATABASE_PASSWORD"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    // A one-shot command says so, and goes on (here: no server answers).
    let out = errsnap().args(["--db", url, "groups"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: --db holds a password"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    // The same URL from the environment: no warning about the arguments.
    let out = errsnap()
        .env("ERRSNAP_DB_PATH", url)
        .args(["groups"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning: --db"));
}

#[test]
fn the_token_comes_from_a_private_file_and_on_the_command_line_is_warned_about() {
    let (dir, db) = util::temp_db();
    let logger = util::logger(&db, "web");
    logger.error("something");
    assert!(logger.flush(std::time::Duration::from_secs(20)));
    drop(logger);
    let file = dir.path().join("token");
    std::fs::write(&file, "file-token-0123456789\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let dash = Dash::start(&db, &["--token-file", file.to_str().unwrap()]);
    assert_eq!(dash.token, "file-token-0123456789");
    drop(dash);
    // On the command line it works, with a warning on stderr.
    let mut child = errsnap()
        .args([
            "--db",
            db.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--token", "argv-token-0123456789"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    child.kill().unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: --token is visible"), "{err}");
    assert!(!err.contains("argv-token"), "{err}");
    // A token file others can read is refused.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let out = errsnap()
        .args([
            "--db",
            db.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--token-file")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("chmod 600") && !err.contains("file-token"),
        "{err}"
    );
}
