//! Without the `alloc` feature, a layer too large to store inline is one readable error on its
//! width. This crate depends on the facade without default features, and trybuild builds the
//! cases with exactly that. Bless with `TRYBUILD=overwrite cargo test -p backprop-renamed-check`.

#[test]
fn ui() {
    trybuild::TestCases::new().compile_fail("tests/no_alloc/*.rs");
}
