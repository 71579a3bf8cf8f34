backprop::network! {
    #[backprop(crate = ::backprop, crate = ::backprop)]
    struct Net < 2 => 1 >
}

fn main() {}
