use backprop::network;

network! {
    #[budget(rom = 1024)]
    pub struct Net < 4 => relu 5 => 1 >
}

fn main() {}
