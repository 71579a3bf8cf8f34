use backprop::network;

network! {
    #[budget(ram = 1024, batch = 32, train = adam)]
    pub struct Policy < 16 => relu 32 => tanh 4 >
}

fn main() {}
