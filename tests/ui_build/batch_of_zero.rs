use backprop::train::TrainOptions;

fn main() {
    let _ = TrainOptions::new(10, 0).batch::<0>();
}
