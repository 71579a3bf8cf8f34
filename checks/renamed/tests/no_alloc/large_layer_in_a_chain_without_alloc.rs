// A large layer in a chain's part is reported once, on its width.
bp::network! {
    #[backprop(crate = ::bp)]
    pub struct Chain { encoder: < 784 => relu 64 >, decoder: < 64 => 10 > }
}

fn main() {}
