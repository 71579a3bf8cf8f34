//! Declarations that once expanded to code that did not compile, each now compiling and working:
//! user derives, raw identifiers, `#[cfg]`, widths passed through `macro_rules!`, and names that
//! collide with what the expansion generates (its generic parameters `T`, `B`, `U`, ..., the
//! `Workspace` suffix, `f32`, `Box`).
#![deny(warnings)]
#![allow(non_camel_case_types, dead_code)]

use backprop::prelude::*;

network! {
    /// The user derives what the macro derives (dropped: the macro's own are kept) and more
    /// (passed through).
    #[derive(Clone, Debug, PartialEq)]
    #[derive(core::fmt::Debug, std::clone::Clone)]
    #[cfg_attr(all(), derive(Debug))]
    pub struct Derived < 2 => 1 >
}

/// Holds only if the macro's derives stayed.
fn is_debug_clone<N: core::fmt::Debug + Clone + PartialEq>(_: &N) {}

network! {
    /// Deprecated for the user's code; the generated impls use it without a warning.
    #[deprecated = "use `Derived`"]
    pub struct Old < 2 => 1 >
}

network! {
    /// Attributes that pass through to the struct, on a chain with a boxed layer.
    #[repr(C)]
    #[non_exhaustive]
    #[must_use]
    pub struct Passed { a: < 2 => 1 >, b: < 1 => 200 => 100 > }
}

network! {
    /// Raw identifiers: a layer and a part named like keywords.
    pub struct r#Raw < 3 => r#type: relu 4 => r#fn: 2 >
}

network! {
    /// A chain whose parts are raw identifiers.
    pub struct C { r#type: < 2 => 3 >, b: < 3 => 4 > }
}

network! {
    /// Never compiled: a false cfg removes the struct and every impl, so the names are free.
    #[cfg(any())]
    pub struct Gone < 2 => 1 >
}

network! {
    /// Never compiled either: a `cfg` inside `cfg_attr` removes everything too.
    #[cfg_attr(all(), cfg(any()))]
    #[cfg_attr(all(), derive(Debug))]
    pub struct Hidden { a: < 2 => 3 >, b: < 3 => 1 > }
}

/// Compiles only if `Hidden`'s expansion left the name free.
pub struct Hidden;
/// Likewise for a part.
pub struct HiddenA;

/// Compiles only if `Gone`'s expansion left these names free.
pub struct Gone;
/// Likewise for the workspace.
pub struct GoneWorkspace;

network! {
    /// Always compiled.
    #[cfg(all())]
    pub struct Kept < 2 => 1 >
}

macro_rules! by_literal {
    ($name:ident, $h:literal, $slope:literal) => {
        network! { pub struct $name < 4 => leaky_relu($slope) $h => $h > }
    };
}
macro_rules! by_expr {
    ($name:ident, $h:expr, $slope:expr) => {
        network! { pub struct $name < $h => elu($slope) $h => 1 > }
    };
}
macro_rules! by_tt {
    ($name:ident, $h:tt, $act:ident) => {
        network! { pub struct $name < 4 => $act $h => 1 > }
    };
}
by_literal!(ByLiteral, 16, 0.2);
by_expr!(ByExpr, 16, 0.5);
by_tt!(ByTt, 16, tanh);

network! { pub struct T < 2 => 3 => 1 > }
network! { pub struct B < 2 => 3 => 1 > }
network! { pub struct U < 2 => 3 => 1 > }
network! { pub struct L < 2 => 1 > }
network! { pub struct Y < 2 => 1 > }
network! { pub struct X < 2 => 1 > }
network! { pub struct T1 < 2 => 1 > }
/// User types called like the primitives and prelude types the expansion names.
mod shadowing {
    use backprop::network;
    network! { pub struct f32 < 2 => 1 > }
    network! { pub struct Box < 200 => 200 > }
    network! { pub struct Option < 2 => 1 > }
}
use shadowing::{Box, Option};
network! { pub struct Workspace < 2 => 1 > }
network! { pub struct NetWorkspaceWorkspace < 2 => 1 > }
network! { pub struct SelfNet < 2 => 1 > }
network! {
    /// Parts whose types would be the generic names were it not for the chain's prefix.
    pub struct Tb { t: < 2 => 3 >, b: < 3 => 2 >, u: < 2 => 1 > }
}
network! {
    /// A chain named `T` with a part `workspace_part`: `TWorkspacePart` is not `TWorkspace`.
    pub struct r#T2 { workspace_part: < 2 => 3 >, x: < 3 => 1 > }
}

#[test]
fn user_derives_compile_once() {
    let net = Derived::<f64>::init(1);
    is_debug_clone(&net);
    assert_eq!(net.clone(), net);
    assert!(format!("{net:?}").starts_with("Derived"));
}

#[test]
fn raw_identifiers_are_unraw_in_names() {
    let net = Raw::<f32>::init(3);
    let names: Vec<&str> = net.params().map(|param| param.name).collect();
    assert_eq!(names, ["type.weight", "type.bias", "fn.weight", "fn.bias"]);
    assert_eq!(net.r#type.weight.ncols(), 3);
    let chain = C::<f32>::zeros();
    assert_eq!(chain.params().next().unwrap().name, "type.fc1.weight");
    let _: CType<f32> = chain.r#type;
    assert!(Raw::<f32>::DERIVATION.starts_with("Raw: "));
    let ws = net.workspace::<1>();
    assert!(ws.layer("type").is_some());
}

#[test]
fn cfg_applies_to_every_item() {
    assert_eq!(Kept::<f32>::zeros().forward(&[1.0, 2.0]).len(), 1);
}

#[test]
fn widths_through_macro_rules() {
    assert_eq!(ByLiteral::<f32>::OUTPUTS, 16);
    assert_eq!(ByExpr::<f32>::INPUTS, 16);
    assert_eq!(ByTt::<f32>::PARAMETERS, 4 * 16 + 16 + 16 + 1);
    let x = SVector::<f32, 4>::new(-1.0, 0.0, 0.0, 0.0);
    let mut net = ByLiteral::<f32>::zeros();
    net.fc1.weight[(0, 0)] = 1.0;
    net.fc2.weight[(0, 0)] = 1.0;
    assert_eq!(net.forward(&x)[0], -0.2);
}

/// Exercises one network: zeros, init, forward, backward and cast.
fn exercise<N, const I: usize, const O: usize>(net: &N)
where
    N: Model<I, O, Scalar = f32>,
{
    let mut grad = N::zeros();
    let mut ws = net.workspace::<1>();
    let x = SVector::<f32, I>::zeros();
    let output = net.forward_into(&x, &mut ws);
    assert!(output.iter().all(|v| v.is_finite()));
    net.backward(&x, &SVector::<f32, O>::zeros(), &Mse, &mut ws, &mut grad);
    assert!(grad
        .params()
        .all(|p| p.values.iter().all(|v| v.is_finite())));
    assert_eq!(net.params().count(), 2 * N::LAYERS.len());
}

#[test]
fn names_that_collide_with_generated_ones() {
    exercise(&T::<f32>::init(0));
    exercise(&B::<f32>::init(0));
    exercise(&U::<f32>::init(0));
    exercise(&L::<f32>::init(0));
    exercise(&Y::<f32>::init(0));
    exercise(&X::<f32>::init(0));
    exercise(&T1::<f32>::init(0));
    exercise(&shadowing::f32::<f32>::init(0));
    exercise(&Box::<f32>::init(0));
    exercise(&Option::<f32>::init(0));
    exercise(&Workspace::<f32>::init(0));
    exercise(&NetWorkspaceWorkspace::<f32>::init(0));
    exercise(&SelfNet::<f32>::init(0));
    exercise(&Tb::<f32>::init(0));
    exercise(&T2::<f32>::init(0));
    exercise(&Passed::<f32>::init(0));
    #[allow(deprecated)]
    exercise(&Old::<f32>::init(0));
    let t: T<f64> = T::<f32>::init(2).cast::<f64>();
    let u: U<f64> = U::<f32>::init(2).cast();
    assert_eq!(t.forward(&[1.0, 2.0]).len(), u.forward(&[1.0, 2.0]).len());
    let mut ws: TWorkspace<f64> = t.workspace();
    let mut grad = T::zeros();
    let loss = t.backward(
        &SVector::<f64, 2>::new(1.0, 2.0),
        &SVector::<f64, 1>::new(0.5),
        &Mse,
        &mut ws,
        &mut grad,
    );
    assert!(loss.is_finite());
}
