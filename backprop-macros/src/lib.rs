//! The `network!` macro of the `backprop` crate. Use it through `backprop::network!`.
//!
//! A declaration goes through three stages, each in its own module: `ast` parses tokens into a
//! syntax tree, `valid` checks it and reports every mistake at once, `expand` generates the
//! code. This file only wires them together.
#![deny(missing_docs)]

mod activation;
mod ast;
mod expand;
mod names;
mod valid;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use proc_macro2::TokenStream;

/// Declares a statically sized neural network; see the `backprop` crate for the grammar and the
/// generated API.
///
/// ```text
/// network! { pub struct Net < 4 => relu 5 => relu 2 => sigmoid 1 > }
/// let net = network!(< 4 => relu 5 => 1 >);
/// ```
#[proc_macro]
pub fn network(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    generate(input.into()).into()
}

/// Parse, check, expand; any error becomes `compile_error!` at the offending tokens, beside the
/// bare struct (`expand::fallback`) so that uses of the network add no errors of their own.
fn generate(input: TokenStream) -> TokenStream {
    match syn::parse2::<ast::Declaration>(input.clone()) {
        Err(error) => expand::fallback(error, ast::recover_header(input)),
        Ok(declaration) => match valid::check(declaration) {
            Ok(network) => expand::expand(&network),
            Err(failure) => expand::fallback(failure.error, Some(failure.header)),
        },
    }
}
