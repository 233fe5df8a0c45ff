//! Source lines for in-app frames, read only from files under the source
//! roots: a stored frame's path is user data (a forged event could name
//! `/etc/shadow` or `../../`), so the path is made canonical (symbolic
//! links followed) and must then lie under a canonical root.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// The largest file read.
const MAX_FILE: u64 = 4 * 1024 * 1024;
/// Lines shown before and after the frame's line.
const AROUND: u32 = 3;

/// The extensions of source files shown (a stored frame naming `.env`, a
/// key or a database under the root shows nothing).
const SOURCE: [&str; 14] = [
    "rs", "c", "h", "cc", "cpp", "cxx", "hpp", "hh", "s", "S", "go", "zig", "m", "mm",
];

/// Whether `p` looks like a source file: a known extension, no part of the
/// path hidden (`.git`, `.env`).
fn source_like(p: &Path) -> bool {
    let ext_ok = p
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| SOURCE.contains(&e));
    let hidden = p.components().any(|c| {
        c.as_os_str()
            .to_str()
            .is_some_and(|s| s.starts_with('.') && s != "." && s != "..")
    });
    ext_ok && !hidden
}

/// The file `stored` names, if it lies under one of `roots`: an absolute
/// path as is, a relative one against each root; only source files.
pub(crate) fn resolve(roots: &[PathBuf], stored: &str) -> Option<PathBuf> {
    // (An empty path names the root, a directory; one with a NUL cannot be
    // made canonical: both find nothing below.)
    let p = Path::new(stored);
    let candidates: Vec<PathBuf> = if p.is_absolute() {
        vec![p.to_path_buf()]
    } else {
        roots.iter().map(|r| r.join(p)).collect()
    };
    candidates.into_iter().find_map(|c| {
        let real = c.canonicalize().ok()?;
        let meta = std::fs::metadata(&real).ok()?;
        let inside = roots
            .iter()
            .find(|r| real.starts_with(r))
            .and_then(|r| real.strip_prefix(r).ok())?;
        (meta.is_file() && meta.len() <= MAX_FILE && source_like(inside)).then_some(real)
    })
}

/// Lines `line - 3 ..= line + 3` of the file `stored` names (numbered),
/// or `None` when it is not under a root or cannot be read.
pub(crate) fn context(roots: &[PathBuf], stored: &str, line: u32) -> Option<Vec<(u32, String)>> {
    if line == 0 {
        return None;
    }
    let path = resolve(roots, stored)?;
    let file = std::fs::File::open(path).ok()?;
    let first = line.saturating_sub(AROUND).max(1);
    let last = line.saturating_add(AROUND);
    let mut out = Vec::new();
    for (i, l) in BufReader::new(file).lines().enumerate() {
        let n = i as u32 + 1;
        if n > last {
            break;
        }
        let l = l.ok()?;
        if n >= first {
            out.push((n, l.chars().take(300).collect()));
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn only_files_under_a_root_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("src-root");
        std::fs::create_dir_all(root.join("src")).unwrap();
        let lines: String = (1..=10).map(|i| format!("line {i}\n")).collect();
        std::fs::write(root.join("src/main.rs"), &lines).unwrap();
        std::fs::write(dir.path().join("secret.txt"), "secret\n").unwrap();
        let roots = vec![root.canonicalize().unwrap()];
        let got = context(&roots, "src/main.rs", 5).unwrap();
        assert_eq!(got.first().unwrap(), &(2, "line 2".to_owned()));
        assert_eq!(got.last().unwrap(), &(8, "line 8".to_owned()));
        assert_eq!(context(&roots, "src/main.rs", 1).unwrap().len(), 4);
        let abs = root.join("src/main.rs");
        assert!(context(&roots, abs.to_str().unwrap(), 2).is_some());
        // Outside the root, by absolute path, by `..`, by a link.
        let outside = dir.path().join("secret.txt");
        assert!(context(&roots, outside.to_str().unwrap(), 1).is_none());
        assert!(context(&roots, "../secret.txt", 1).is_none());
        assert!(context(&roots, "src/../../secret.txt", 1).is_none());
        std::os::unix::fs::symlink(&outside, root.join("link.rs")).unwrap();
        assert!(context(&roots, "link.rs", 1).is_none());
        assert!(context(&roots, "/etc/passwd", 1).is_none());
        assert!(context(&roots, "", 1).is_none());
        assert!(context(&roots, "src/main.rs", 0).is_none());
        assert!(context(&roots, "src", 1).is_none(), "a directory");
        // Under the root but not source: settings, keys, hidden files.
        for (name, text) in [
            (".env", "ERRSNAP_SMTP_PASSWORD=x\n"),
            ("LOGS.db", "x\n"),
            ("key.pem", "x\n"),
        ] {
            std::fs::write(root.join(name), text).unwrap();
            assert!(context(&roots, name, 1).is_none(), "{name}");
        }
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join(".git/hook.rs"), "x\n").unwrap();
        assert!(context(&roots, ".git/hook.rs", 1).is_none());
        std::fs::write(root.join("src/.hidden.rs"), "x\n").unwrap();
        assert!(context(&roots, "src/.hidden.rs", 1).is_none());
        std::fs::write(root.join("src/lib.c"), "int x;\n").unwrap();
        assert!(context(&roots, "src/lib.c", 1).is_some());
        // Files up to 4 MiB are read; larger ones are not.
        let big = "// padding padding padding padding padding padding padding\n".repeat(40_000);
        assert!(big.len() > 2 * 1024 * 1024 && big.len() < 4 * 1024 * 1024);
        std::fs::write(root.join("src/big.rs"), &big).unwrap();
        assert!(context(&roots, "src/big.rs", 3).is_some());
        std::fs::write(root.join("src/huge.rs"), big.repeat(2)).unwrap();
        assert!(context(&roots, "src/huge.rs", 3).is_none());
    }
}
