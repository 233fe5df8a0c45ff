//! Blame against a repository scripted here, with several authors and
//! dates, whose right answer the test knows from how it built the history.

use super::*;

/// A repository built commit by commit; each commit by its author at its
/// time.
pub(crate) struct Scripted {
    pub(crate) dir: tempfile::TempDir,
}

impl Scripted {
    pub(crate) fn new() -> Scripted {
        let s = Scripted {
            dir: tempfile::tempdir().unwrap(),
        };
        s.git(&["init", "-q", "-b", "main"], None);
        s
    }

    pub(crate) fn git(&self, args: &[&str], who: Option<(&str, i64)>) -> String {
        let mut cmd = Command::new("git");
        cmd.arg("-C").arg(self.dir.path()).args(args);
        cmd.env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_COMMITTER_NAME", "ci")
            .env("GIT_COMMITTER_EMAIL", "ci@example.invalid");
        if let Some((name, time)) = who {
            let date = format!("{time} +0000");
            cmd.env("GIT_AUTHOR_NAME", name)
                .env(
                    "GIT_AUTHOR_EMAIL",
                    format!("{}@example.invalid", name.to_lowercase()),
                )
                .env("GIT_AUTHOR_DATE", &date)
                .env("GIT_COMMITTER_DATE", &date);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Writes `lines` (1-based line → text) into `file`, over a file of
    /// `len` numbered lines, and commits it.
    pub(crate) fn commit(
        &self,
        who: &str,
        time: i64,
        file: &str,
        edits: &[(usize, &str)],
        msg: &str,
    ) -> String {
        let path = self.dir.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut lines: Vec<String> = std::fs::read_to_string(&path)
            .map(|t| t.lines().map(str::to_owned).collect())
            .unwrap_or_else(|_| (1..=40).map(|i| format!("// line {i}")).collect());
        for (n, text) in edits {
            lines[n - 1] = (*text).to_owned();
        }
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        self.git(&["add", file], None);
        self.git(&["commit", "-q", "-m", msg], Some((who, time)));
        self.git(&["rev-parse", "HEAD"], None)
    }
}

fn frame(function: &str, file: &str, line: u32, in_app: bool) -> Frame {
    Frame::named(Some(function.into()), Some(file.into()), Some(line), in_app)
}

const DAY: i64 = 86_400;
const T0: i64 = 1_780_000_000;

#[test]
fn the_newest_change_to_the_top_frames_lines_is_the_suspect() {
    let r = Scripted::new();
    r.commit("Alice", T0, "src/db.rs", &[], "db: first version");
    r.commit("Alice", T0, "src/main.rs", &[], "main: first version");
    let bob = r.commit(
        "Bob",
        T0 + 2 * DAY,
        "src/main.rs",
        &[(12, "    db::query()?;")],
        "main: call the query",
    );
    let carol = r.commit(
        "Carol",
        T0 + 5 * DAY,
        "src/db.rs",
        &[(7, "    let row = rows[0];")],
        "db: read the first row",
    );
    r.commit(
        "Dave",
        T0 + 6 * DAY,
        "src/db.rs",
        &[(30, "// unrelated")],
        "db: a comment",
    );
    let release = r.git(&["rev-parse", "HEAD"], None);
    // After the release: never blamed for it.
    r.commit(
        "Erin",
        T0 + 9 * DAY,
        "src/db.rs",
        &[(7, "    let row = rows.first()?;")],
        "db: fix the crash",
    );
    let repo = Repository::new(r.dir.path());
    let frames = [
        frame(
            "std::panicking::begin_panic",
            "/rustc/x/library/std/src/panicking.rs",
            600,
            false,
        ),
        frame("app::db::first_row", "src/db.rs", 7, true),
        frame("app::main", "src/main.rs", 12, true),
        frame("app::main", "src/main.rs", 3, true),
    ];
    let s = suspects(
        &repo,
        Some(&format!("app@2.0.0+{}", &release[..10])),
        None,
        &frames,
    )
    .unwrap();
    assert_eq!(s.commit.as_deref(), Some(release.as_str()));
    let blamed: Vec<(&str, u32, &str)> = s
        .lines
        .iter()
        .map(|l| (l.path.as_str(), l.line, l.commit.author.as_str()))
        .collect();
    assert_eq!(
        blamed,
        vec![
            ("src/db.rs", 7, "Carol"),
            ("src/main.rs", 12, "Bob"),
            ("src/main.rs", 3, "Alice")
        ]
    );
    let suspect = s.suspect.unwrap();
    assert_eq!(suspect.id, carol);
    assert_eq!(
        (
            suspect.author.as_str(),
            suspect.email.as_str(),
            suspect.time,
            suspect.summary.as_str()
        ),
        (
            "Carol",
            "carol@example.invalid",
            T0 + 5 * DAY,
            "db: read the first row"
        )
    );
    // Where it happened is blamed first, and once when a frame is there.
    let at = Location {
        file: "src/db.rs".into(),
        line: 7,
        column: 9,
    };
    let s2 = suspects(&repo, Some(&release), Some(&at), &frames).unwrap();
    assert_eq!(s2.lines.len(), 3, "{s2:?}");
    assert_eq!(
        (s2.lines[0].function.as_deref(), s2.lines[0].frame),
        (None, 0)
    );
    assert_eq!(s2.lines[1].path, "src/main.rs");
    // Blamed at an older release: Bob's change is then the newest.
    let s = suspects(&repo, Some(&bob), None, &frames).unwrap();
    assert_eq!(s.suspect.unwrap().author, "Bob");
    assert_eq!(
        s.lines[0].commit.author, "Alice",
        "line 7 before Carol's change"
    );
}

#[test]
fn recorded_paths_map_into_the_repository() {
    let r = Scripted::new();
    r.commit("Alice", T0, "app/src/lib.rs", &[(5, "fn a() {}")], "lib");
    let head = r.git(&["rev-parse", "HEAD"], None);
    let repo = Repository::new(r.dir.path())
        .map_paths("/home/ci/build/app=app, /other=x")
        .unwrap();
    let frames = [frame("app::a", "/home/ci/build/app/src/lib.rs", 5, true)];
    let s = suspects(&repo, Some(&head), None, &frames).unwrap();
    assert_eq!(s.lines.len(), 1, "{s:?}");
    assert_eq!(s.lines[0].path, "app/src/lib.rs");
    // A path under the repository's own directory, and where it happened.
    let inside = r.dir.path().join("app/src/lib.rs");
    let at = Location {
        file: inside.to_string_lossy().into_owned(),
        line: 5,
        column: 1,
    };
    let s = suspects(&Repository::new(r.dir.path()), Some(&head), Some(&at), &[]).unwrap();
    assert_eq!(s.suspect.unwrap().author, "Alice");
    // Paths that could lead out of it, or read as options, are not asked.
    for p in ["../etc/passwd", "src/../../x", "-rf", "/etc/passwd", ""] {
        assert_eq!(repo.path_in_repo(p), None, "{p}");
    }
    assert!(Repository::new(".").map_paths("no-equals").is_err());
}

#[test]
fn releases_name_commits_only_when_they_hold_one() {
    for (release, commit) in [
        ("3f2c9e1", Some("3f2c9e1")),
        ("2.1.0+3f2c9e1", Some("3f2c9e1")),
        ("app@1.0-14-g3f2c9e1a", Some("3f2c9e1a")),
        (
            "app@0123456789abcdef0123456789abcdef01234567",
            Some("0123456789abcdef0123456789abcdef01234567"),
        ),
        ("1.2.3", None),
        ("2026.12.06+20261206", None),
        ("1234567", None),
        ("v1.0+xyz1234", None),
        ("", None),
    ] {
        assert_eq!(commit_of_release(release), commit, "{release}");
    }
    let r = Scripted::new();
    r.commit("Alice", T0, "a.rs", &[], "a");
    let repo = Repository::new(r.dir.path());
    let none = suspects(&repo, Some("1.2.3"), None, &[]).unwrap();
    assert!(none.suspect.is_none() && none.notes[0].contains("names no commit"));
    let none = suspects(&repo, None, None, &[]).unwrap();
    assert!(none.notes[0].contains("no release"));
    let e = suspects(&repo, Some("abcdef1"), None, &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("no commit abcdef1"), "{e}");
}
