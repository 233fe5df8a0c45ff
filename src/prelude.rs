//! The extension traits, for `use errsnap::prelude::*;`.

pub use crate::ext::{OptionExt as _, ResultExt as _};
