//! Paired timing: contenders run in alternating blocks, so a machine whose speed drifts from
//! minute to minute moves their ratio far less than it moves two criterion benches run a minute
//! apart. W1 and W2 use it; W3, whose steps take long enough for criterion, does not.

#![allow(dead_code)]

/// Times `contenders` (each runs a block of as many calls as it is given) in alternating blocks
/// of `steps` calls for `rounds` rounds (`BACKPROP_BENCH_ROUNDS` sets another number), each
/// round starting one contender later, drops the first `warm_up`, and returns each contender's
/// time per call (ns) round by round.
pub fn paired(
    rounds: usize,
    warm_up: usize,
    steps: usize,
    contenders: &mut [&mut dyn FnMut(usize)],
) -> Vec<Vec<f64>> {
    let rounds = std::env::var("BACKPROP_BENCH_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(rounds);
    let count = contenders.len();
    let mut times = vec![Vec::new(); count];
    for round in 0..rounds {
        // Each round starts with the next contender, so that none always runs first (after the
        // others' caches and branch history) or last.
        for turn in 0..count {
            let which = (round + turn) % count;
            let start = std::time::Instant::now();
            contenders[which](steps);
            if round >= warm_up {
                times[which].push(start.elapsed().as_nanos() as f64 / steps as f64);
            }
        }
    }
    times
}

/// The median of `values` (the upper one of an even count; NaN for none).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The median of the round-by-round ratios `numerator[i] / denominator[i]`.
pub fn median_ratio(numerator: &[f64], denominator: &[f64]) -> f64 {
    let ratios: Vec<f64> = numerator
        .iter()
        .zip(denominator)
        .map(|(a, b)| a / b)
        .collect();
    median(&ratios)
}

/// A bench file's `main`: `paired` when `BACKPROP_BENCH_PAIRED` is set, else the criterion
/// `benches` and their summary.
pub fn main(paired: fn(), benches: fn()) {
    if std::env::var_os("BACKPROP_BENCH_PAIRED").is_some() {
        paired();
        return;
    }
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
