//! The public surface: what the crate root holds, and that docs.rs says the
//! feature of each feature-gated item. Read from the source, as a reader of
//! `lib.rs` sees it.

use std::path::{Path, PathBuf};

fn source(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// The names one `pub use` statement brings in (`a::{B, c::D as E}` gives
/// `B`, `E`).
fn use_names(stmt: &str) -> Vec<String> {
    let body = stmt
        .trim_start_matches("pub use")
        .trim()
        .trim_end_matches(';');
    let mut names = Vec::new();
    let mut depth = 0;
    let mut item = String::new();
    let mut push = |item: &mut String| {
        let t = item.trim();
        if !t.is_empty() && !t.ends_with('{') {
            let last = t.rsplit(" as ").next().unwrap_or(t);
            let last = last.rsplit("::").next().unwrap_or(last).trim();
            if !last.is_empty() && last != "_" {
                names.push(last.to_owned());
            }
        }
        item.clear();
    };
    for c in body.chars() {
        match c {
            '{' => {
                depth += 1;
                item.clear();
            }
            '}' => {
                depth -= 1;
                push(&mut item);
            }
            ',' => push(&mut item),
            c => item.push(c),
        }
    }
    push(&mut item);
    let _ = depth;
    names
}

/// Every name the crate root exports: `pub use` names, `pub mod`, `pub
/// type`, exported macros (items only for doctests left out).
fn root_names() -> Vec<String> {
    let lib = source("src/lib.rs");
    let mut names = Vec::new();
    let mut stmt = String::new();
    let mut depth = 0usize;
    let mut doctest_only = false;
    let mut macro_next = false;
    for line in lib.lines() {
        let t = line.trim();
        if depth == 0 {
            // The README's doctests, and what docs.rs hides (the fuzz
            // targets' entry points): no part of the surface a reader sees.
            if !t.starts_with("//") && (t.contains("doctest") || t == "#[doc(hidden)]") {
                doctest_only = true;
            }
            if t == "#[macro_export]" {
                macro_next = true;
            }
            if let Some(rest) = t.strip_prefix("macro_rules! ") {
                if macro_next {
                    names.push(format!("{}!", rest.trim_end_matches(" {")));
                }
                macro_next = false;
            }
        }
        if !stmt.is_empty() || (depth == 0 && t.starts_with("pub use ")) {
            stmt.push_str(t);
            stmt.push(' ');
            if t.ends_with(';') {
                names.extend(use_names(&stmt));
                stmt.clear();
            }
        } else if depth == 0 {
            for kw in [
                "pub mod ",
                "pub type ",
                "pub struct ",
                "pub fn ",
                "pub trait ",
            ] {
                if let Some(rest) = t.strip_prefix(kw) {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !doctest_only {
                        names.push(name);
                    }
                    doctest_only = false;
                }
            }
        }
        depth += t.matches('{').count();
        depth -= t.matches('}').count().min(depth);
    }
    names
}

#[test]
fn the_root_exports_at_most_fifty_names_each_once() {
    let names = root_names();
    for expected in [
        "init",
        "EventLogger",
        "PushOptions",
        "db",
        "channels",
        "release_name!",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        names.len(),
        "a name exported twice: {names:?}"
    );
    eprintln!(
        "surface: {} names at the root: {}",
        names.len(),
        names.join(" ")
    );
    assert!(
        names.len() <= 50,
        "{} names at the root: {names:?}",
        names.len()
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// An item behind a feature that is public says so on docs.rs: its
/// attributes hold `doc(cfg(...))` beside the `cfg`.
#[test]
fn every_public_feature_gated_item_names_its_feature_in_the_docs() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut missing = Vec::new();
    for f in files
        .iter()
        .filter(|f| !f.to_string_lossy().contains("/bin/"))
    {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim();
            if !(t.starts_with("#[cfg(feature") || t.starts_with("#[cfg(any(feature")) {
                continue;
            }
            // The attributes and doc comments around it, then the item.
            let mut j = i + 1;
            let mut attrs = vec![t.to_owned()];
            while j < lines.len() {
                let n = lines[j].trim();
                if n.starts_with("#[") || n.starts_with("///") || n.starts_with(")]") {
                    attrs.push(n.to_owned());
                    j += 1;
                } else {
                    break;
                }
            }
            let mut k = i;
            while k > 0 {
                let p = lines[k - 1].trim();
                if p.starts_with("#[") || p.starts_with("///") {
                    attrs.push(p.to_owned());
                    k -= 1;
                } else {
                    break;
                }
            }
            let item = lines.get(j).map_or("", |l| l.trim());
            let public = item.starts_with("pub ") && !item.starts_with("pub(");
            let hidden = attrs.iter().any(|a| a.contains("doc(hidden)"));
            if public && !hidden && !attrs.iter().any(|a| a.contains("doc(cfg(")) {
                missing.push(format!("{}:{}: {item}", f.display(), j + 1));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "feature-gated public items without doc(cfg):\n{}",
        missing.join("\n")
    );
}

#[test]
fn use_names_reads_groups_and_renames() {
    assert_eq!(
        use_names("pub use a::{B, c::{D, E as F}, g::H};"),
        vec!["B", "D", "F", "H"]
    );
    assert_eq!(use_names("pub use x::Y;"), vec!["Y"]);
}
