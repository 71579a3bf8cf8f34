//! Every declaration error and every call-site shape error, pinned with its message and span.
//! Bless changes with `TRYBUILD=overwrite cargo test --test ui` and review the diff.
//!
//! The weight-file cases name their fixtures relative to trybuild's project under
//! `target/tests/trybuild`, so run these with the default target directory.

use std::sync::Mutex;

/// trybuild builds every group in one project directory: one group at a time.
static PROJECT: Mutex<()> = Mutex::new(());

/// Errors found by `cargo check`: declarations, types, widths, scalars, orientation.
#[test]
fn ui() {
    let _project = PROJECT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}

/// Errors found only when code is generated (`const` checks of a monomorphised call, such as a
/// probability output fed to a loss that takes logits): a pass case makes trybuild build these
/// instead of checking them.
#[test]
fn ui_build() {
    let _project = PROJECT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let t = trybuild::TestCases::new();
    t.pass("tests/ui_build/pass_*.rs");
    t.compile_fail("tests/ui_build/[!p]*.rs");
}
