//! Compile-time weights: torch-written safetensors files (f32 and f64 with state-dict names, f16,
//! bf16, `nn.Sequential`, a layer above 16 384 weights) compiled into `static` networks, whose
//! outputs equal torch's on fixed inputs (`scripts/make_weights_fixtures.py`): 1e-6 relative in
//! f32, 1e-12 in f64. No test reads a weight file at run time; only torch's outputs are read.

use backprop::prelude::*;

network! {
    #[weights("tests/fixtures/weights/seed_f32.safetensors")]
    pub struct Seed32 < 4 => relu 5 => relu 2 => sigmoid 1 >
}
network! {
    #[weights("tests/fixtures/weights/seed_f64.safetensors")]
    pub struct Seed64 < 4 => relu 5 => relu 2 => sigmoid 1 >
}
network! {
    #[weights("tests/fixtures/weights/seed_f16.safetensors")]
    pub struct SeedHalf < 4 => relu 5 => relu 2 => sigmoid 1 >
}
network! {
    #[weights("tests/fixtures/weights/seed_bf16.safetensors")]
    pub struct SeedBrain < 4 => relu 5 => relu 2 => sigmoid 1 >
}
network! {
    #[weights("tests/fixtures/weights/sequential.safetensors", names = sequential)]
    pub struct Sequential < 3 => tanh 8 => relu 4 => 2 >
}
network! {
    /// fc1 has 20 000 weights: inline in the static (flash), no heap box.
    #[weights("tests/fixtures/weights/large.safetensors", names = sequential)]
    pub struct Large < 200 => relu 100 => 3 >
}

network! {
    /// A chain whose parts are submodules in PyTorch: `encoder.fc1.weight`, ...
    #[weights("tests/fixtures/weights/chain.safetensors")]
    pub struct Chain {
        encoder: < 6 => relu 4 => 2 >,
        decoder: < 2 => tanh 4 => 6 >,
    }
}

static CHAIN: Chain<f32> = Chain::WEIGHTS;
static CHAIN_F64: Chain<f64> = Chain::WEIGHTS_F64;
static SEED32: Seed32<f32> = Seed32::WEIGHTS;
static SEED32_F64: Seed32<f64> = Seed32::WEIGHTS_F64;
static SEED64: Seed64<f64> = Seed64::WEIGHTS_F64;
static SEED64_F32: Seed64<f32> = Seed64::WEIGHTS;
static HALF: SeedHalf<f32> = SeedHalf::WEIGHTS;
static HALF_F64: SeedHalf<f64> = SeedHalf::WEIGHTS_F64;
static BRAIN: SeedBrain<f32> = SeedBrain::WEIGHTS;
static BRAIN_F64: SeedBrain<f64> = SeedBrain::WEIGHTS_F64;
static SEQUENTIAL: Sequential<f32> = Sequential::WEIGHTS;
static SEQUENTIAL_F64: Sequential<f64> = Sequential::WEIGHTS_F64;
static LARGE: Large<f32> = Large::WEIGHTS;
static LARGE_F64: Large<f64> = Large::WEIGHTS_F64;

/// Rows of numbers, one per sample.
type Rows = Vec<Vec<f64>>;

/// torch's inputs and outputs (f32, f64) for fixture `key`.
fn expected(key: &str) -> (Rows, Rows, Rows) {
    let text = include_str!("../fixtures/weights/expected.json");
    let all: serde_json::Value = serde_json::from_str(text).unwrap();
    let rows =
        |name: &str| -> Vec<Vec<f64>> { serde_json::from_value(all[key][name].clone()).unwrap() };
    (rows("inputs"), rows("f32"), rows("f64"))
}

/// `ours` within `rtol` of `torch`, relative to the larger of `|torch|` and `scale` (the largest
/// output of the fixture): an output that cancels to near zero (the large network's sums of 100
/// f32 products, summed in another order than torch's BLAS) is judged on its batch's scale.
fn close(ours: f64, torch: f64, scale: f64, rtol: f64, what: &str) {
    let error = (ours - torch).abs() / torch.abs().max(scale);
    assert!(
        error <= rtol,
        "{what}: ours {ours}, torch {torch}, relative {error:e}"
    );
}

/// Forward of `f32` and `f64` networks on torch's inputs against torch's outputs.
macro_rules! check {
    ($key:literal, $single:expr, $double:expr, $inputs:literal) => {{
        let (inputs, single, double) = expected($key);
        let scale = |rows: &[Vec<f64>]| rows.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
        let (scale32, scale64) = (scale(&single), scale(&double));
        for (k, x) in inputs.iter().enumerate() {
            let x32: [f32; $inputs] = core::array::from_fn(|i| x[i] as f32);
            let x64: [f64; $inputs] = core::array::from_fn(|i| x[i]);
            let y32 = $single.forward(&x32);
            let y64 = $double.forward(&x64);
            for o in 0..y32.len() {
                close(
                    f64::from(y32[o]),
                    single[k][o],
                    scale32,
                    1e-6,
                    concat!($key, " f32"),
                );
                close(y64[o], double[k][o], scale64, 1e-12, concat!($key, " f64"));
            }
        }
    }};
}

#[test]
fn f32_and_f64_files_with_state_dict_names() {
    check!("seed_f32", SEED32, SEED32_F64, 4);
    check!("seed_f64", SEED64_F32, SEED64, 4);
}

#[test]
fn f16_and_bf16_files_give_torch_outputs_for_the_up_converted_weights() {
    check!("seed_f16", HALF, HALF_F64, 4);
    check!("seed_bf16", BRAIN, BRAIN_F64, 4);
}

#[test]
fn sequential_names_and_a_large_layer() {
    check!("sequential", SEQUENTIAL, SEQUENTIAL_F64, 3);
    check!("large", LARGE, LARGE_F64, 200);
    check!("chain", CHAIN, CHAIN_F64, 6);
    // Stored inline, as a static: no box, the whole layer in the value.
    assert!(core::mem::size_of::<Large<f32>>() >= (200 * 100 + 100 + 100 * 3 + 3) * 4);
    assert_eq!(Large::<f32>::HEAP_BYTES, 0);
}

#[test]
fn a_compiled_network_copies_into_ram_and_trains_there() {
    // Fine-tuning: a RAM copy of the flash network, one Adam step toward a target.
    let mut net = SEED32.clone();
    let mut grad = Seed32::<f32>::zeros();
    let mut ws = net.workspace::<1>();
    let mut adam = Adam::new(1e-2);
    let x = SVector::<f32, 4>::new(0.5, -0.25, 1.0, 2.0);
    let y = SVector::<f32, 1>::new(0.9);
    let before = net.backward(&x, &y, &Mse, &mut ws, &mut grad);
    for _ in 0..20 {
        net.backward(&x, &y, &Mse, &mut ws, &mut grad);
        adam.step(&mut net, &grad);
    }
    let after = net.backward(&x, &y, &Mse, &mut ws, &mut grad);
    assert!(
        after < before,
        "fine-tuning did not lower the loss: {before} → {after}"
    );
    assert_ne!(net, SEED32);
}
