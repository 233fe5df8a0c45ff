//! Secrets and the command line: every local user can read a process's
//! arguments (`/proc/<pid>/cmdline`, `ps`) for as long as it runs, so a
//! password or token belongs in the environment or a file. A password in
//! `--db` is refused by `serve` (it runs for hours) and warned about by
//! the other commands; `serve --token` is warned about (`--token-file`
//! and `ERRSNAP_DASHBOARD_TOKEN` keep it out of sight).

use std::ffi::OsString;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Whether `url` carries a password: `scheme://user:password@host`, or a
/// `password=` parameter.
pub(crate) fn url_has_password(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let in_userinfo = authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    let in_query = rest.split_once('?').is_some_and(|(_, q)| {
        q.split('&').any(|kv| {
            kv.split('=')
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("password"))
        })
    });
    in_userinfo || in_query
}

/// Whether option `name` (`--db`) was given on the command line itself
/// (not only through the environment).
pub(crate) fn given_in_args(args: &[OsString], name: &str) -> bool {
    let with_value = format!("{name}=");
    args.iter().skip(1).any(|a| {
        let a = a.to_string_lossy();
        a == name || a.starts_with(&with_value)
    })
}

/// The check of `--db`: a URL with a password on the command line is an
/// error for a long-lived command (`long_lived`), a warning otherwise.
/// Returns the warning to print, if any.
pub(crate) fn check_db_arg(
    args: &[OsString],
    db: &Path,
    long_lived: bool,
) -> Result<Option<&'static str>> {
    let Some(url) = db.to_str() else {
        return Ok(None);
    };
    if !given_in_args(args, "--db") || !url_has_password(url) {
        return Ok(None);
    }
    const WHY: &str = "--db holds a password, which every local user can read in the process \
                       list while errsnap runs: give the URL without it and the password in \
                       ERRSNAP_DATABASE_PASSWORD (or in --env-file), or the whole URL in \
                       ERRSNAP_DB_PATH";
    if long_lived {
        bail!("{WHY}");
    }
    Ok(Some(WHY))
}

/// The warning for `serve --token` given on the command line.
pub(crate) const TOKEN_IN_ARGS: &str =
    "--token is visible to every local user in the process list for as long as the \
     dashboard runs: prefer --token-file PATH or ERRSNAP_DASHBOARD_TOKEN";

/// Reads a token from `path`: the file's first line, trimmed. A file that
/// others may read is refused (it would leak what the option is there to
/// hide).
pub(crate) fn read_token_file(path: &Path) -> Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("--token-file {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.mode() & 0o077 != 0 {
            bail!(
                "--token-file {}: readable by others (mode {:o}): chmod 600 it",
                path.display(),
                meta.mode() & 0o777
            );
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--token-file {}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn passwords_are_found_in_the_userinfo_or_a_parameter() {
        for yes in [
            "postgres://ann:s3cret@db.example/app",
            "postgresql://ann:@db/app",
            "mysql://u:p@h:3306/d",
            "postgres://db.example/app?user=ann&password=s3cret",
            "postgres://db.example/app?sslmode=require&PASSWORD=x",
        ] {
            assert!(url_has_password(yes), "{yes}");
        }
        for no in [
            "postgres://ann@db.example/app",
            "postgres://db.example/app?sslmode=require",
            "postgres://db.example:5432/app",
            "LOGS.db",
            "/var/lib/app/LOGS.db",
            "postgres://db.example/a:b@c",
            "postgres://db.example/app?passwordless=1",
        ] {
            assert!(!url_has_password(no), "{no}");
        }
    }

    #[test]
    fn only_what_the_command_line_says_counts() {
        assert!(given_in_args(
            &args(&["errsnap", "--db", "x", "groups"]),
            "--db"
        ));
        assert!(given_in_args(
            &args(&["errsnap", "--db=x", "groups"]),
            "--db"
        ));
        assert!(!given_in_args(&args(&["errsnap", "groups"]), "--db"));
        assert!(!given_in_args(
            &args(&["errsnap", "--dbx", "groups"]),
            "--db"
        ));
        // The program's own name is not an argument.
        assert!(!given_in_args(&args(&["--db"]), "--db"));
    }

    #[test]
    fn a_password_in_db_is_refused_for_serve_and_warned_about_otherwise() {
        let url = Path::new("postgres://ann:s3cret@db/app");
        let argv = args(&["errsnap", "--db", "postgres://ann:s3cret@db/app", "serve"]);
        let e = check_db_arg(&argv, url, true).unwrap_err().to_string();
        assert!(
            e.contains("ERRSNAP_DATABASE_PASSWORD") && !e.contains("s3cret"),
            "{e}"
        );
        let w = check_db_arg(&argv, url, false).unwrap().unwrap();
        assert!(!w.contains("s3cret"));
        // From the environment: nothing to say.
        let env_only = args(&["errsnap", "serve"]);
        assert!(check_db_arg(&env_only, url, true).unwrap().is_none());
        // No password: nothing to say.
        let plain = Path::new("postgres://ann@db/app");
        assert!(check_db_arg(&argv, plain, true).unwrap().is_none());
    }

    #[test]
    fn a_token_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("token");
        std::fs::write(&p, "abcdefgh-12345678\nignored\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_token_file(&p).unwrap(), "abcdefgh-12345678");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_token_file(&p).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && !e.contains("abcdefgh"), "{e}");
    }
}
