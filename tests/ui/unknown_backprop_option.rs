backprop::network! {
    #[backprop(krate = ::backprop)]
    struct Net < 2 => 1 >
}

fn main() {}
