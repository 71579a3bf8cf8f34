//! The facade renamed to `bp` (`bp = { package = "backprop", ... }` in Cargo.toml): the macro
//! finds it through `#[backprop(crate = ::bp)]`. Without that option the expansion would name
//! `::backprop`, which this crate does not have. No default features: no `std`, no `alloc`.
#![no_std]
#![deny(missing_docs)]

use bp::prelude::*;

network! {
    /// A network whose expansion names `::bp::__private`.
    #[backprop(crate = ::bp)]
    pub struct Renamed < 3 => tanh 4 => 1 >
}

/// A chained network through the renamed path, its parts too.
pub mod chain {
    bp::network! {
        /// Encoder and decoder.
        #[backprop(crate = "::bp")]
        pub struct AutoEncoder { encoder: < 4 => relu 2 >, decoder: < 2 => 4 > }
    }
}

/// The output of the expression form under the renamed path.
pub fn anonymous(x: [f32; 2]) -> f32 {
    let net = bp::network!(#[backprop(crate = ::bp)] < 2 => sigmoid 1 >);
    net.forward(&x)[0]
}

/// One backward pass: the loss of `Renamed` at `x` against `y`.
pub fn loss(net: &Renamed<f32>, x: [f32; 3], y: f32) -> f32 {
    let mut ws = net.workspace();
    let mut grad = Renamed::zeros();
    net.backward(
        &SVector::from(x),
        &SVector::<f32, 1>::new(y),
        &Mse,
        &mut ws,
        &mut grad,
    )
}

/// With the `serde` feature: every network above, its parts too, is `Serialize` and
/// `Deserialize`, although this crate neither depends on serde nor names it in a declaration.
#[cfg(feature = "serde")]
pub fn serde_impls() {
    fn both<N>()
    where
        N: bp::__private::serde::Serialize + for<'de> bp::__private::serde::Deserialize<'de>,
    {
    }
    both::<Renamed<f32>>();
    both::<chain::AutoEncoder<f64>>();
    both::<chain::AutoEncoderEncoder<f32>>();
}
