use backprop::network;

network! {
    #[budget(macs = 31)]
    pub struct Net < 4 => relu 5 => relu 2 => sigmoid 1 >
}

fn main() {}
