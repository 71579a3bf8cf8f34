// 784 × 128 weights are stored on the heap, which needs the `alloc` feature.
bp::network! {
    #[backprop(crate = ::bp)]
    pub struct Large < 784 => relu 128 => 10 >
}

fn main() {}
