//! Generated code names only absolute paths: it compiles under `#![no_implicit_prelude]`, beside
//! user types called `f32`, `usize`, `Option` and `Result`, and beside a user module called `core`.
#![no_implicit_prelude]
#![allow(non_camel_case_types, dead_code)]

struct f32;
struct f64;
struct usize;
struct str;
struct Option;
struct Result;
struct Vec;
trait Clone {}
mod nalgebra {}

::backprop::network! {
    /// A network declared where no prelude name can be trusted.
    pub struct Net < 4 => relu 5 => leaky_relu(0.2) 2 => sigmoid 1 >
}

#[test]
fn the_network_works_without_a_prelude() {
    let net = Net::<::core::primitive::f64>::init(7);
    let x = ::backprop::nalgebra::SVector::<::core::primitive::f64, 4>::new(0.1, 0.2, 0.3, 0.4);
    let y = ::backprop::nalgebra::SVector::<::core::primitive::f64, 1>::new(1.0);
    let mut ws = net.workspace();
    let mut grad = Net::zeros();
    let loss = net.backward(&x, &y, &::backprop::loss::Mse, &mut ws, &mut grad);
    ::std::assert!(loss > 0.0 && loss < 1.0);
    ::std::assert_eq!(
        Net::<::core::primitive::f64>::PARAMETERS,
        20 + 5 + 10 + 2 + 2 + 1
    );
    let anonymous = ::backprop::network!(< 2 => tanh 3 => 1 >);
    ::std::assert_eq!(
        anonymous
            .forward(&::backprop::nalgebra::SVector::<::core::primitive::f32, 2>::zeros())
            .len(),
        1
    );
}
