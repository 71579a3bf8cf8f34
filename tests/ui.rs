//! Every declaration error and every call-site shape error, pinned with its message and span.
//! Bless changes with `TRYBUILD=overwrite cargo test --test ui` and review the diff.

#[test]
fn ui() {
    // Errors found by `cargo check`: declarations, types, widths, scalars, orientation.
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    drop(t);
    // Errors found only when code is generated (`const` checks of a monomorphised call, such
    // as a probability output fed to a loss that takes logits): a pass case makes trybuild
    // build these instead of checking them.
    let t = trybuild::TestCases::new();
    t.pass("tests/ui_build/pass_*.rs");
    t.compile_fail("tests/ui_build/[!p]*.rs");
}
