//! An error's `source()` chain, read on the caller's thread.

use crate::event::ChainLink;

/// The most links an error chain keeps; a longer chain ends with a marker
/// link ("... 12 more causes").
pub(crate) const MAX_CHAIN: usize = 64;
/// How far past [`MAX_CHAIN`] the remaining causes are counted (a `source()`
/// that loops would never end).
const COUNT_BEYOND: usize = 10_000;

/// What a `Display` impl that panicked is recorded as.
pub(crate) const DISPLAY_PANICKED: &str = "<Display panicked>";

/// `e.to_string()`, or [`DISPLAY_PANICKED`] if the impl panics.
pub(crate) fn display_text(e: &dyn std::fmt::Display) -> String {
    crate::util::unwind::guarded(|| e.to_string()).unwrap_or_else(|| DISPLAY_PANICKED.to_owned())
}

/// Walks `err.source()` and returns the chain, outermost first.
#[cfg_attr(
    not(any(feature = "anyhow", feature = "eyre", feature = "tracing")),
    allow(dead_code)
)]
pub(crate) fn error_chain(
    err: &(dyn std::error::Error + 'static),
    type_name: Option<&str>,
) -> Vec<ChainLink> {
    let mut chain = Vec::new();
    chain.push(ChainLink {
        message: display_text(err),
        type_name: type_name.map(str::to_owned),
    });
    add_sources(err.source(), &mut chain);
    chain
}

/// Appends `first` and its sources to `chain`, up to [`MAX_CHAIN`] links,
/// then a marker link counting the causes left out.
pub(crate) fn add_sources(
    first: Option<&(dyn std::error::Error + 'static)>,
    chain: &mut Vec<ChainLink>,
) {
    let mut cur = first;
    while let Some(e) = cur {
        if chain.len() >= MAX_CHAIN {
            let mut more = 0usize;
            while let Some(e) = cur {
                if more >= COUNT_BEYOND {
                    break;
                }
                more += 1;
                cur = crate::util::unwind::guarded(|| e.source()).flatten();
            }
            let n = if cur.is_some() {
                format!("{more}+")
            } else {
                more.to_string()
            };
            let causes = if more == 1 { "cause" } else { "causes" };
            chain.push(ChainLink {
                message: format!("... {n} more {causes}"),
                type_name: None,
            });
            return;
        }
        chain.push(ChainLink {
            message: display_text(e),
            type_name: None,
        });
        cur = crate::util::unwind::guarded(|| e.source()).flatten();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_walks_sources() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("loading failed")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let outer = Outer(std::io::Error::other("disk on fire"));
        let chain = error_chain(&outer, Some("std::io::Error"));
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[1].message, "disk on fire");
        assert_eq!(chain[0].type_name.as_deref(), Some("std::io::Error"));
    }
}
