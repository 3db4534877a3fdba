//! The part of the `mutual` package that the binary and its integration tests share: the
//! story's PKI as the `mutual` commands that build it ([`story_pki`]), which `mutual demo`
//! narrates and the tests run. It is not a library API of mutual; the crates under `crates/`
//! are.
//!
//! A library target rather than a file included twice with `#[path]`: the module is compiled
//! and tested once, the tests name it as `mutual::story_pki` like any dependency, and no test
//! binary carries half-used copies that need `dead_code` allowances.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod story_pki;
