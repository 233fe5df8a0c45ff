//! Suspect commits, locally: when an event's release names a commit, `git
//! blame` at that commit names who last changed the lines of its top
//! in-app frames, and the newest of those commits is the suspect (Sentry's
//! rule: recent commits touching the top in-app frames; Sentry asks
//! GitHub, errsnap asks the repository beside it). Nothing leaves the
//! machine: `git` runs on the repository the user names, with a time limit.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::event::{Frame, Location};

/// How many in-app frames (from the top) are blamed.
pub const FRAMES_BLAMED: usize = 5;
/// How long one `git` command may take.
const GIT_TIMEOUT: Duration = Duration::from_secs(10);

/// A git repository holding the recorded program's code, and how the paths
/// the compiler recorded map into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    root: PathBuf,
    /// `(build prefix, repository prefix)`, tried in order.
    path_map: Vec<(String, String)>,
}

impl Repository {
    /// The repository at `root` (its top directory).
    pub fn new(root: impl Into<PathBuf>) -> Repository {
        Repository {
            root: root.into(),
            path_map: Vec::new(),
        }
    }

    /// Maps recorded paths starting with `build` to paths starting with
    /// `repo` in the repository (e.g. `/home/ci/build` to `` or `app/`);
    /// the first that fits is used. Without one, a path under the
    /// repository's directory, or a relative one, is taken as it is.
    pub fn map_path(mut self, build: impl Into<String>, repo: impl Into<String>) -> Repository {
        self.path_map.push((build.into(), repo.into()));
        self
    }

    /// The mappings of a setting's text: `build=repo` pairs, comma-separated.
    ///
    /// # Errors
    /// A pair without `=` (the error names it).
    pub fn map_paths(mut self, text: &str) -> Result<Repository> {
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((build, repo)) = pair.split_once('=') else {
                return Err(Error::config(
                    "ERRSNAP_REPO_PATH_MAP",
                    format!("{pair:?}: expected build_prefix=repository_prefix"),
                ));
            };
            self.path_map
                .push((build.trim().to_owned(), repo.trim().to_owned()));
        }
        Ok(self)
    }

    /// The path in the repository of a recorded file, if it can be one.
    pub(crate) fn path_in_repo(&self, file: &str) -> Option<String> {
        for (build, repo) in &self.path_map {
            if let Some(rest) = file.strip_prefix(build.as_str()) {
                let rest = rest.trim_start_matches('/');
                let joined = if repo.is_empty() {
                    rest.to_owned()
                } else {
                    format!("{}/{rest}", repo.trim_end_matches('/'))
                };
                return clean(&joined);
            }
        }
        let path = Path::new(file);
        if path.is_absolute() {
            let root = std::fs::canonicalize(&self.root).unwrap_or_else(|_| self.root.clone());
            let rel = path
                .strip_prefix(&root)
                .or_else(|_| path.strip_prefix(&self.root))
                .ok()?;
            return clean(&rel.to_string_lossy());
        }
        clean(file)
    }
}

/// A relative path with no `..` (a recorded path never leads out of the
/// repository).
fn clean(path: &str) -> Option<String> {
    let p = path.trim_start_matches("./");
    let ok = !p.is_empty()
        && !p.starts_with('/')
        && !p.starts_with('-')
        && p.split('/').all(|c| c != ".." && !c.is_empty());
    ok.then(|| p.to_owned())
}

/// The commit a release names: the release itself when it is a hex commit
/// id (7 to 40 digits), or its last part after `+`, `@`, `-g` (`git
/// describe`) or `.`: `2.1.0+3f2c9e1`, `app@1.0-14-g3f2c9e1`.
pub fn commit_of_release(release: &str) -> Option<&str> {
    // Hex digits only, and not a plain number (a date, a build number):
    // a letter among them, or all 40.
    let hex = |s: &str| {
        (7..=40).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_hexdigit())
            && (s.len() == 40 || s.bytes().any(|b| b.is_ascii_alphabetic()))
    };
    let r = release.trim();
    if hex(r) {
        return Some(r);
    }
    ["+", "@", "-g", "."]
        .iter()
        .filter_map(|sep| r.rsplit_once(sep).map(|(_, tail)| tail))
        .find(|tail| hex(tail))
}

/// One blamed line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BlamedLine {
    /// The frame's place from the top of the stack (0: where it happened).
    pub frame: usize,
    /// The function, if named.
    pub function: Option<String>,
    /// The file, as in the repository.
    pub path: String,
    /// The line.
    pub line: u32,
    /// The commit that last changed the line.
    pub commit: SuspectCommit,
}

/// A commit, as `git` tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SuspectCommit {
    /// The full commit id.
    pub id: String,
    /// Its author's name.
    pub author: String,
    /// Its author's e-mail address.
    pub email: String,
    /// When it was authored (seconds since the Unix epoch).
    pub time: i64,
    /// The first line of its message.
    pub summary: String,
}

/// What blame found for a stack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Suspects {
    /// The release's commit, as the repository names it.
    pub commit: Option<String>,
    /// The most likely commit: the newest of those that last changed the
    /// lines of the top in-app frames (on a tie, the one nearer the top).
    pub suspect: Option<SuspectCommit>,
    /// Each blamed line, top frame first.
    pub lines: Vec<BlamedLine>,
    /// Why nothing could be blamed, or what was skipped.
    pub notes: Vec<String>,
}

/// Blames the top in-app frames (and `location`, where it happened, first)
/// at the release's commit.
///
/// # Errors
/// `git` cannot be run, or the repository has no such commit.
pub(crate) fn suspects(
    repo: &Repository,
    release: Option<&str>,
    location: Option<&Location>,
    frames: &[Frame],
) -> Result<Suspects> {
    let mut out = Suspects::default();
    let Some(named) = release.and_then(commit_of_release) else {
        out.notes.push(match release {
            Some(r) => format!("the release {r:?} names no commit"),
            None => "the event has no release".into(),
        });
        return Ok(out);
    };
    let full = git(
        repo,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{named}^{{commit}}"),
        ],
    )?;
    let commit = full.trim().to_owned();
    if commit.is_empty() {
        return Err(Error::config(
            "ERRSNAP_REPO_PATH",
            format!("{}: no commit {named}", repo.root.display()),
        ));
    }
    out.commit = Some(commit.clone());
    let mut places: Vec<(Option<String>, &str, u32)> = Vec::new();
    if let Some(l) = location {
        places.push((None, &l.file, l.line));
    }
    for f in frames.iter().filter(|f| f.in_app) {
        if let (Some(file), Some(line)) = (f.file.as_deref(), f.line) {
            if !places.iter().any(|(_, p, l)| *p == file && *l == line) {
                places.push((f.function.clone(), file, line));
            }
        }
    }
    for (frame, (function, file, line)) in places.into_iter().take(FRAMES_BLAMED).enumerate() {
        let Some(path) = repo.path_in_repo(file) else {
            out.notes
                .push(format!("{file}: not a path in the repository"));
            continue;
        };
        let range = format!("{line},{line}");
        match git(
            repo,
            &["blame", "--porcelain", "-L", &range, &commit, "--", &path],
        ) {
            Ok(text) => match parse_porcelain(&text) {
                Some(c) => out.lines.push(BlamedLine {
                    frame,
                    function,
                    path,
                    line,
                    commit: c,
                }),
                None => out.notes.push(format!("{path}:{line}: blame said nothing")),
            },
            Err(e) => out.notes.push(format!("{path}:{line}: {e}")),
        }
    }
    // The newest commit; on a tie, the one nearer the top.
    out.suspect = out
        .lines
        .iter()
        .max_by_key(|l| (l.commit.time, std::cmp::Reverse(l.frame)))
        .map(|l| l.commit.clone());
    Ok(out)
}

/// The commit of `git blame --porcelain` for one line.
fn parse_porcelain(text: &str) -> Option<SuspectCommit> {
    let mut lines = text.lines();
    let id = lines.next()?.split_whitespace().next()?.to_owned();
    let mut c = SuspectCommit {
        id,
        author: String::new(),
        email: String::new(),
        time: 0,
        summary: String::new(),
    };
    for l in lines {
        if let Some(v) = l.strip_prefix("author ") {
            c.author = v.to_owned();
        } else if let Some(v) = l.strip_prefix("author-mail ") {
            c.email = v.trim_start_matches('<').trim_end_matches('>').to_owned();
        } else if let Some(v) = l.strip_prefix("author-time ") {
            c.time = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = l.strip_prefix("summary ") {
            c.summary = v.to_owned();
        }
    }
    Some(c)
}

/// Runs `git` in the repository, without the environment's or the
/// system's git settings steering it, within [`GIT_TIMEOUT`]; its output.
fn git(repo: &Repository, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(&repo.root)
        .args(["-c", "core.fsmonitor=false", "-c", "core.quotepath=off"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::io("running git (is it installed?)", e))?;
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(out) = stdout.as_mut() {
            let _ = out.take(8 << 20).read_to_string(&mut s);
        }
        s
    });
    let deadline = Instant::now() + GIT_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::config(
                    "ERRSNAP_REPO_PATH",
                    format!("git {} took over {} s", args[0], GIT_TIMEOUT.as_secs()),
                ));
            }
            Err(e) => return Err(Error::io("waiting for git", e)),
        }
    };
    let text = reader.join().unwrap_or_default();
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = (&mut e).take(4096).read_to_string(&mut err);
    }
    // `rev-parse --verify --quiet` says "no such commit" by its status.
    let quiet_miss = args[0] == "rev-parse" && status.code() == Some(1);
    if !(status.success() || quiet_miss) {
        let first = err.lines().next().unwrap_or("failed").trim();
        return Err(Error::config(
            "ERRSNAP_REPO_PATH",
            format!(
                "git {}: {}",
                args[0],
                first
                    .chars()
                    .filter(|c| !c.is_control())
                    .collect::<String>()
            ),
        ));
    }
    Ok(text)
}

#[cfg(test)]
pub(crate) mod tests;
