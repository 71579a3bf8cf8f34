//! The declaration language and the generated API: forms, names, activations, scalar types,
//! constructors, batches and named access. Expected values come from hand derivation.

use backprop::prelude::*;

network! {
    /// Attributes and doc comments pass through to the struct.
    #[allow(clippy::all)]
    pub(crate) struct Named < 3 => encoder: tanh 4 => code: 2 => decoder: leaky_relu(0.5) 3 >
}

network! { struct Plain < 2 => 2 > }

network! { pub struct Seed < 4 => relu 5 => relu 2 => sigmoid 1 > }

#[test]
fn field_names_are_given_or_generated() {
    let net = Named::<f64>::zeros();
    let names: Vec<_> = net.params().map(|p| p.name).collect();
    assert_eq!(
        names,
        [
            "encoder.weight",
            "encoder.bias",
            "code.weight",
            "code.bias",
            "decoder.weight",
            "decoder.bias"
        ]
    );
    assert_eq!(net.encoder.weight.shape(), (4, 3));
    assert_eq!(net.code.bias.len(), 2);
    let layers = <Named as Network>::LAYERS;
    assert_eq!(
        layers[1].activation, "identity",
        "an omitted activation is identity"
    );
    assert_eq!(layers[2].activation, "leaky_relu(0.5)");
    assert_eq!(<Plain as Network>::LAYERS[0].name, "fc1");
}

#[test]
fn the_scalar_type_defaults_to_f32() {
    let net: Plain = Plain::zeros();
    let out: SVector<f32, 2> = net.forward(&SVector::zeros());
    assert_eq!(out, SVector::<f32, 2>::zeros());
}

#[test]
fn identity_and_leaky_relu_argument_compute_by_hand() {
    // Plain: z = W x + b with W = [[1, 2], [3, 4]], b = [0.5, -0.5], x = [1, -1]:
    // z = [1 − 2 + 0.5, 3 − 4 − 0.5] = [−0.5, −1.5].
    let mut net = Plain::<f64>::zeros();
    net.fc1.weight = SMatrix::<f64, 2, 2>::new(1.0, 2.0, 3.0, 4.0);
    net.fc1.bias = SVector::<f64, 2>::new(0.5, -0.5);
    assert_eq!(
        net.forward(&SVector::<f64, 2>::new(1.0, -1.0)),
        SVector::<f64, 2>::new(-0.5, -1.5)
    );

    // Named's decoder is leaky_relu(0.5): with zero weights and bias −2 its output is −1.
    let mut named = Named::<f64>::zeros();
    named.decoder.bias.fill(-2.0);
    assert_eq!(
        named.forward(&SVector::zeros()),
        SVector::<f64, 3>::repeat(-1.0)
    );
}

#[test]
fn the_expression_form_is_a_ready_network() {
    let net = network!(< 3 => relu 4 => softmax 2 >);
    let out = net.forward(&SVector::<f32, 3>::new(0.5, -0.25, 1.0));
    assert!((out.sum() - 1.0).abs() < 1e-6, "softmax outputs sum to 1");
    let same = network!(< 3 => relu 4 => softmax 2 >);
    assert_eq!(
        net.params().map(|p| p.values.to_vec()).collect::<Vec<_>>(),
        same.params().map(|p| p.values.to_vec()).collect::<Vec<_>>(),
        "seeded with 0"
    );
}

#[test]
fn init_is_pytorch_default_and_reproducible() {
    let a = Seed::<f64>::init(42);
    assert_eq!(a, Seed::<f64>::init(42), "same seed, same network");
    assert_ne!(a, Seed::<f64>::init(43));
    // Every weight and bias of a layer lies within ±1/√fan_in (fan_in 4, 5, 2).
    for (layer, fan_in) in [("fc1", 4.0), ("fc2", 5.0), ("fc3", 2.0)] {
        let bound = 1.0 / f64::sqrt(fan_in);
        for kind in ["weight", "bias"] {
            let param = a.param(&format!("{layer}.{kind}")).unwrap();
            assert!(
                param.values.iter().all(|v| v.abs() <= bound),
                "{layer}.{kind} within ±{bound}"
            );
        }
    }
    // f32 and f64 networks from one seed hold the same numbers, rounded.
    let single = Seed::<f32>::init(42);
    assert_eq!(single.cast::<f64>(), a.cast::<f32>().cast::<f64>());
}

#[test]
fn a_batch_is_its_columns() {
    let net = Seed::<f64>::init(1);
    let x = SMatrix::<f64, 4, 3>::from_fn(|r, c| (r as f64 - 1.5) * (c as f64 + 0.5));
    let batch = net.forward_batch(&x);
    for c in 0..3 {
        assert_eq!(batch.column(c), net.forward(&x.column(c).into_owned()));
    }
}

/// The batch gradient of `loss` against `scale` times the sum of the per-sample gradients.
fn assert_batch_is_scaled_sum<L>(loss: &L, scale: f64)
where
    L: Loss<f64, 1, 4> + Loss<f64, 1, 1>,
{
    let net = Seed::<f64>::init(3);
    let x = SMatrix::<f64, 4, 4>::from_fn(|r, c| ((r * 4 + c) as f64 * 0.37).sin());
    let y = SMatrix::<f64, 1, 4>::from_fn(|_, c| c as f64 / 4.0);
    let mut batch_grad = Seed::zeros();
    net.backward(&x, &y, loss, &mut net.workspace(), &mut batch_grad);
    let mut expected = Seed::<f64>::zeros();
    for c in 0..4 {
        let mut grad = Seed::zeros();
        let (xc, yc) = (x.column(c).into_owned(), y.column(c).into_owned());
        net.backward(&xc, &yc, loss, &mut net.workspace(), &mut grad);
        for (e, g) in expected.params_mut().zip(grad.params()) {
            for (e, g) in e.values.iter_mut().zip(g.values) {
                *e += scale * g;
            }
        }
    }
    for (found, expected) in batch_grad.params().zip(expected.params()) {
        for (f, e) in found.values.iter().zip(expected.values) {
            assert!(
                (f - e).abs() <= 1e-15 + 1e-12 * e.abs(),
                "{}: {f} vs {e}",
                found.name
            );
        }
    }
}

#[test]
fn batch_gradients_follow_pytorch_reductions() {
    // Sse sums over samples: the batch gradient is the sum of per-sample gradients. Mse averages
    // over the B·N entries, so with N = 1 and B = 4 it is a quarter of that sum.
    assert_batch_is_scaled_sum(&Sse, 1.0);
    assert_batch_is_scaled_sum(&Mse, 0.25);
}

#[test]
fn named_access_writes_the_fields() {
    let mut net = Seed::<f32>::zeros();
    net.param_mut("fc2.weight").unwrap().set(1, 3, 2.5);
    assert_eq!(net.fc2.weight[(1, 3)], 2.5);
    assert!(net.param_mut("fc9.bias").is_none());
}

#[test]
fn the_derivation_is_the_delta_rule_of_this_network() {
    let text = Seed::<f32>::DERIVATION;
    assert!(
        text.starts_with("Seed: 4 => relu 5 => relu 2 => sigmoid 1"),
        "{text}"
    );
    for line in [
        "z1 = fc1.weight · a0 + fc1.bias    a1 = relu(z1)",
        "δ3 = ∂E/∂a3 ⊙ sigmoid'(z3)",
        "∂E/∂fc3.weight = δ3 · a2ᵀ",
        "δ2 = (fc3.weightᵀ · δ3) ⊙ relu'(z2)",
        "δ1 = (fc2.weightᵀ · δ2) ⊙ relu'(z1)",
        "∂E/∂fc1.weight = δ1 · a0ᵀ",
    ] {
        assert!(text.contains(line), "missing `{line}` in\n{text}");
    }
}

#[test]
fn constants_describe_the_architecture() {
    assert_eq!(Named::<f32>::INPUTS, 3);
    assert_eq!(Named::<f32>::OUTPUTS, 3);
    assert_eq!(
        Named::<f32>::PARAMETERS,
        (3 * 4 + 4) + (4 * 2 + 2) + (2 * 3 + 3)
    );
    assert_eq!(<Named as Network>::PARAMETERS, Named::<f32>::PARAMETERS);
    let counted: usize = Named::<f32>::zeros().params().map(|p| p.values.len()).sum();
    assert_eq!(counted, Named::<f32>::PARAMETERS);
}

#[test]
fn arrays_are_samples_too() {
    let net = Seed::<f64>::init(5);
    let array = [0.5, -1.0, 0.25, 2.0];
    assert_eq!(net.forward(&array), net.forward(&SVector::from(array)));
}
