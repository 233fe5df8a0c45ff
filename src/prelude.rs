//! The extension traits, for `use errsnap::prelude::*;`.

#[cfg(feature = "anyhow")]
pub use crate::ecosystem::AnyhowResultExt as _;
#[cfg(feature = "eyre")]
pub use crate::ecosystem::EyreResultExt as _;
pub use crate::ext::{OptionExt as _, ResultExt as _};
