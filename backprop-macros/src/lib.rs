//! The `network!` macro of the `backprop` crate. Use it through `backprop::network!`.
//!
//! A declaration goes through three stages, each in its own module: `ast` parses tokens into a
//! syntax tree, `valid` checks it and reports every mistake at once, `expand` generates the
//! code. This file only wires them together.
#![deny(missing_docs)]

mod activation;
mod ast;
mod costs;
mod derivatives;
mod expand;
mod names;
mod valid;
mod weights;

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
///
/// # Attributes
///
/// - Docs and other attributes go on the struct. The struct always derives `Clone`, `Debug` and
///   `PartialEq`; a user's derive of those is accepted and dropped (also inside `cfg_attr`), so
///   `#[derive(Clone, Debug)]` is harmless. Derives of other traits are passed through, except
///   `Copy`, `Default`, `Eq`, `Hash`, `Ord` and `PartialOrd`, which floating-point layers cannot
///   have: those are errors on the trait's name.
/// - `#[cfg(...)]` applies to every item the declaration generates (the struct, its workspace,
///   their impls, a chain's parts).
/// - `#[backprop(crate = path)]` says where the `backprop` crate is when the dependency is
///   renamed (`bp = { package = "backprop", ... }` in Cargo.toml): `#[backprop(crate = ::bp)]`
///   (a string, `crate = "::bp"`, works too). The expression form takes it before the `<`:
///   `network!(#[backprop(crate = ::bp)] < 2 => 1 >)`, and no other attribute.
/// - `#[weights("models/policy.safetensors")]` (path relative to the crate's manifest directory;
///   `names = sequential` for `nn.Sequential`'s `0.weight`, `2.weight`, ...) reads a safetensors
///   file at compile time, checks it against the declaration (every error on the path literal)
///   and adds `Net::WEIGHTS` (`Net<f32>`) and `Net::WEIGHTS_F64`, `const` networks holding its
///   values, converted as torch's `.to()` does from F32, F64, F16 or BF16. Such a network stores
///   every layer inline, large ones too, so that it is one `const` value for a `static` in flash
///   (no heap box); a RAM copy of a large one is then a large value (build it with `Box::new`
///   in a release build, or keep it in a `static`). Cargo rebuilds when the file changes.
/// - `#[budget(ram = bytes, macs = count, batch = B, scalar = f32 | f64, train = sgd |
///   sgd_momentum | adam | adamw)]` fails the build, on the limit's literal, when the network is
///   over: `ram` counts a network value and a workspace for `batch` (only the workspace with
///   `#[weights]`: the weights are in flash), plus a gradient and the optimizer's state with
///   `train`; `macs` counts a forward pass (a training step with `train`) at `batch`.
///
/// # Costs
///
/// Every network has, for its scalar `T` and the target it is built for: `PARAMETER_BYTES`,
/// `HEAP_BYTES` (large layers' boxes), `NETWORK_BYTES` (inline + heap), `GRADIENT_BYTES`,
/// `SGD_BYTES`, `SGD_MOMENTUM_BYTES`, `ADAM_BYTES`, `ADAMW_BYTES` (each optimizer's struct and
/// prepared state), `FORWARD_MACS`, `TRAINING_MACS`, and `workspace_bytes::<B>()`,
/// `forward_macs(b)`, `training_macs(b)`, `inference_ram::<B>()`, `flash_inference_ram::<B>()`,
/// `training_ram::<B>(optimizer_bytes)`; the workspace type has `BYTES` and `HEAP_BYTES`.
///
/// # Names
///
/// Raw identifiers name layers and parts without their `r#`: a layer `r#type` has the
/// parameters `type.weight` and `type.bias`, as in PyTorch. The generated generic parameters are
/// `T` (scalar, default `f32`), `B` (batch size), `U`, `L`, `Y` and `X`; when the struct, its
/// workspace or a part type has one of those names, that parameter is renamed (`T1`, ...), so any
/// struct name works. A chain's part types (`Net` + `a_b` → `NetAB`) must be distinct from each
/// other and from `NetWorkspace`: a clash is an error on the part's name.
///
/// # Errors
///
/// Every mistake is reported at once, on the token that caused it. The struct and its workspace
/// are still declared (without fields or methods), so one mistake does not also make every use of
/// the type an error; the expression form evaluates to the error itself, which adds none at its
/// uses. Widths, activation arguments and names passed through `macro_rules!` (`$h:literal`,
/// `$h:expr`, `$h:tt`) are read through the invisible groups they arrive in.
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
