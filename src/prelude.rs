//! The extension traits, for `use errsnap::prelude::*;`.

#[cfg(feature = "anyhow")]
#[cfg_attr(docsrs, doc(cfg(feature = "anyhow")))]
pub use crate::ecosystem::AnyhowResultExt as _;
#[cfg(feature = "eyre")]
#[cfg_attr(docsrs, doc(cfg(feature = "eyre")))]
pub use crate::ecosystem::EyreResultExt as _;
pub use crate::ext::{OptionExt as _, ResultExt as _};
