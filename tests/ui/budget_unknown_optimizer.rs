use backprop::network;

network! {
    #[budget(ram = 4096, train = rmsprop)]
    pub struct Net < 4 => relu 5 => 1 >
}

fn main() {}
