//! The explaining pages in a real browser: headless Chromium loads a page with an entry in the
//! URL's fragment, runs its scripts, and the DOM it dumps must show that entry's explanation
//! with the values PyTorch's fixtures give (by hand from its activations and parameters).
//!
//! Ignored by default: they need Chromium (Debian's `chromium`, or the program named by
//! `BACKPROP_CHROMIUM`) and the seed page the example writes. `scripts/browser_test.sh` runs
//! them:
//!
//! ```text
//! cargo run --example seed -- --html target/pictures/seed.html
//! cargo test --test suite browser -- --ignored --test-threads=1
//! ```

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{fixture, numbers};
use backprop::page::to_html;
use backprop::prelude::*;

/// Where the pages and screenshots go.
fn pages() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pictures");
    std::fs::create_dir_all(&dir).expect("target/pictures can be made");
    dir
}

/// Runs headless Chromium on `page#fragment` with `args` and returns what it prints.
fn chromium(page: &Path, fragment: &str, args: &[String]) -> String {
    let program = std::env::var("BACKPROP_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let page = page
        .canonicalize()
        .unwrap_or_else(|e| panic!("no page {}: {e}", page.display()));
    let profile = std::env::temp_dir().join(format!(
        "backprop-chromium-{}-{}",
        std::process::id(),
        fragment.len() + args.len() * 1000
    ));
    let url = format!("file://{}#{fragment}", page.display());
    let output = Command::new(&program)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(&url)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{program}` ({e}): install Debian's chromium or set BACKPROP_CHROMIUM"
            )
        });
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        output.status.success(),
        "`{program}` failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the DOM is UTF-8")
}

/// The DOM of `page#fragment` after its scripts ran.
fn dump_dom(page: &Path, fragment: &str) -> String {
    let dom = chromium(page, fragment, &["--dump-dom".into()]);
    assert!(
        dom.contains("data-ready=\"true\""),
        "the page's script did not finish:\n{dom}"
    );
    dom
}

/// HTML's escapes in serialized attributes and text, undone.
fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The value of attribute `name` in the first tag at or after `from`.
fn attribute<'a>(dom: &'a str, from: usize, name: &str) -> &'a str {
    let tag_end = dom[from..].find('>').expect("a tag") + from;
    let key = format!(" {name}=\"");
    let start = dom[from..tag_end]
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in {}", &dom[from..tag_end]))
        + from
        + key.len();
    let end = dom[start..].find('"').unwrap() + start;
    &dom[start..end]
}

/// What the explanation panel shows: the entry, its value, and each sample's factors as
/// (label, value) in order.
struct Shown {
    entry: String,
    total: String,
    chains: Vec<Vec<(String, String)>>,
}

/// Reads the explanation panel out of a dumped DOM.
fn shown(dom: &str) -> Shown {
    let start = dom
        .find("<aside id=\"explanation\"")
        .expect("the explanation panel");
    let end = dom[start..].find("</aside>").expect("the panel ends") + start;
    let panel = &dom[start..end];
    let entry = unescape(attribute(panel, 0, "data-entry"));
    let total = panel
        .find("<span class=\"total\">")
        .map(|i| {
            let from = i + "<span class=\"total\">".len();
            panel[from..from + panel[from..].find('<').unwrap()].to_string()
        })
        .unwrap_or_default();
    let chains = panel
        .split("<div class=\"chain\"")
        .skip(1)
        .map(|chain| {
            let product = chain.split("<table").next().unwrap();
            product
                .match_indices("<span class=\"factor\"")
                .map(|(i, _)| {
                    (
                        unescape(attribute(product, i, "data-label")),
                        unescape(attribute(product, i, "data-value")),
                    )
                })
                .collect()
        })
        .collect();
    Shown {
        entry,
        total,
        chains,
    }
}

/// The seed page the example wrote.
fn seed_page() -> PathBuf {
    let page = pages().join("seed.html");
    assert!(
        page.exists(),
        "no {}: run `cargo run --example seed -- --html target/pictures/seed.html` first \
         (scripts/browser_test.sh does)",
        page.display()
    );
    page
}

/// The seed fixture's numbers: a3, a2, a1 and the parameters.
fn seed_numbers() -> (f64, Vec<f64>, Vec<f64>, serde_json::Value) {
    let fixture = fixture("seed_torch.json");
    let a3 = numbers(&fixture["activations"]["fc3"])[0];
    let a2 = numbers(&fixture["activations"]["fc2"]);
    let a1 = numbers(&fixture["activations"]["fc1"]);
    (a3, a2, a1, fixture)
}

/// A number as the page shows it in an explanation: five decimals.
fn five(value: f64) -> String {
    format!("{value:.5}")
}

#[test]
#[ignore = "needs Chromium; run by scripts/browser_test.sh"]
fn the_seed_page_opens_on_fc2_weight_1_0() {
    let page = seed_page();
    let dom = dump_dom(&page, "fc2.weight[1][0]");
    let shown = shown(&dom);
    let (a3, a2, a1, fixture) = seed_numbers();
    assert_eq!(shown.entry, "fc2.weight[1][0]");
    // PyTorch's fc2.weight.grad[1][0] is -0.036872.
    let torch = numbers(&fixture["grads"]["fc2.weight"])[5];
    assert_eq!(shown.total, five(torch));
    assert_eq!(shown.total, "-0.03687");
    // By hand: MSE' = 2(a3 − 1), sigmoid' = a3(1 − a3), the weight, relu' = 1 (a2[1] > 0),
    // and fc2's input a1[0].
    assert!(a2[1] > 0.0);
    let w = numbers(&fixture["params"]["fc3.weight"])[1];
    let expected = [
        ("∂E/∂a3[0]", 2.0 * (a3 - 1.0)),
        ("sigmoid'(z3[0])", a3 * (1.0 - a3)),
        ("fc3.weight[0][1]", w),
        ("relu'(z2[1])", 1.0),
        ("fc2.input[0]", a1[0]),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(label, value)| (label.to_string(), five(*value)))
        .collect();
    assert_eq!(shown.chains, [expected]);
    assert!(dom.contains("data-stage=\"8\""), "the stepper shows all");

    // A screenshot of the same page in the same run, checked for its size only.
    let png = pages().join("seed_fc2.weight[1][0].png");
    let _ = std::fs::remove_file(&png);
    chromium(
        &page,
        "fc2.weight[1][0]",
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1400,900".into(),
        ],
    );
    let bytes = std::fs::read(&png).expect("Chromium wrote the screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((width, height), (1400, 900));
    assert!(
        bytes.len() > 20_000,
        "a blank screenshot? {} bytes",
        bytes.len()
    );
    println!("screenshot: {}", png.display());
}

#[test]
#[ignore = "needs Chromium; run by scripts/browser_test.sh"]
fn the_seed_page_opens_on_fc3_weight_0_1() {
    let dom = dump_dom(&seed_page(), "fc3.weight[0][1]");
    let shown = shown(&dom);
    let (a3, a2, _, fixture) = seed_numbers();
    assert_eq!(shown.entry, "fc3.weight[0][1]");
    let torch = numbers(&fixture["grads"]["fc3.weight"])[1];
    assert_eq!(shown.total, five(torch));
    assert_eq!(shown.total, "-0.02224");
    let expected: Vec<(String, String)> = [
        ("∂E/∂a3[0]", 2.0 * (a3 - 1.0)),
        ("sigmoid'(z3[0])", a3 * (1.0 - a3)),
        ("fc3.input[1]", a2[1]),
    ]
    .iter()
    .map(|(label, value)| (label.to_string(), five(*value)))
    .collect();
    assert_eq!(shown.chains, [expected]);
}

#[test]
#[ignore = "needs Chromium; run by scripts/browser_test.sh"]
fn a_softmax_page_opens_on_its_entry_with_every_sample() {
    network! { struct Softmax < 4 => tanh 5 => softmax 3 > }
    let all = fixture("parity.json");
    let case = all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "d2_softmax_mse_f64_b3")
        .expect("the softmax case");
    let mut net = Softmax::<f64>::zeros();
    common::load_params(&mut net, &case["params"]);
    let x: SMatrix<f64, 4, 3> = common::columns(&SMatrix::zeros(), &case["input"]);
    let y: SMatrix<f64, 3, 3> = common::columns(&SMatrix::zeros(), &case["target"]);
    let html = to_html(
        &net,
        &x,
        &y,
        &Mse,
        "4 => tanh 5 => softmax 3, MSE, a batch of 3",
    )
    .unwrap();
    let page = pages().join("softmax.html");
    std::fs::write(&page, html).unwrap();

    let shown = shown(&dump_dom(&page, "fc2.weight[1][3]"));
    assert_eq!(shown.entry, "fc2.weight[1][3]");
    let torch = numbers(&case["grads"]["fc2.weight"])[5 + 3];
    assert_eq!(shown.total, five(torch));
    // Per sample, by hand: MSE over 3·3 entries gives g = 2(a − t)/9; softmax's backward gives
    // δ[1] = a[1]·(g[1] − Σ_j a[j]·g[j]); the weight multiplies a1[3].
    assert_eq!(shown.chains.len(), 3);
    for (s, chain) in shown.chains.iter().enumerate() {
        let a = numbers(&case["activations"]["fc2"][s]);
        let t = numbers(&case["target"][s]);
        let g: Vec<f64> = a.iter().zip(&t).map(|(a, t)| 2.0 * (a - t) / 9.0).collect();
        let dot: f64 = a.iter().zip(&g).map(|(a, g)| a * g).sum();
        let delta = a[1] * (g[1] - dot);
        let input = numbers(&case["activations"]["fc1"][s])[3];
        assert_eq!(
            chain,
            &[
                ("softmax'ᵀ·∂E/∂a2 [1]".to_string(), five(delta)),
                ("fc2.input[3]".to_string(), five(input)),
            ],
            "sample {s}"
        );
    }
}

/// Whether the element with `id` is faded by the stepper as not yet computed.
fn later(dom: &str, id: &str) -> bool {
    let at = dom
        .find(&format!(" id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element {id} in the DOM"));
    let start = dom[..at].rfind('<').unwrap();
    let tag = &dom[start..at + dom[at..].find('>').unwrap()];
    match tag.find(" class=\"") {
        Some(i) => tag[i + 8..]
            .split('"')
            .next()
            .unwrap()
            .split(' ')
            .any(|c| c == "later"),
        None => false,
    }
}

#[test]
#[ignore = "needs Chromium; run by scripts/browser_test.sh"]
fn the_stepper_goes_forward_then_backward_layer_by_layer() {
    // The seed page with a script that presses the page's own buttons: start, then `step` twice
    // (forward through fc1 and fc2); then four more (fc3, the loss, backward through fc3, fc2).
    let html = std::fs::read_to_string(seed_page()).unwrap();
    let press = |steps: usize| {
        let script = format!(
            "<script>document.getElementById('first').click();\
             for (let i = 0; i < {steps}; i++) document.getElementById('next').click();</script></body>"
        );
        let page = pages().join(format!("seed_step_{steps}.html"));
        std::fs::write(&page, html.replace("</body>", &script)).unwrap();
        dump_dom(&page, "")
    };

    let dom = press(2);
    assert!(dom.contains("data-stage=\"2\""), "stage 2");
    assert!(dom.contains("forward 2/3"), "the caption names the step");
    assert!(dom.contains("z2 = fc2.weight · a1 + fc2.bias, a2 = relu(z2)"));
    assert!(!later(&dom, "za-1-0"), "fc1's z and a are computed");
    assert!(!later(&dom, "za-2-1"), "fc2's z and a are computed");
    assert!(later(&dom, "za-3-0"), "fc3 is not yet");
    assert!(later(&dom, "d-1-0"), "no δ before the backward pass");
    assert!(later(&dom, "e-2-1-0"), "no gradient yet");
    assert!(dom.contains("<rect class=\"column current\" id=\"col-2\""));

    let dom = press(6);
    assert!(dom.contains("data-stage=\"6\""), "stage 6");
    assert!(dom.contains("backward 2/3"));
    assert!(dom.contains("δ2 = (fc3.weightᵀ · δ3) ⊙ relu'(z2)"));
    assert!(!later(&dom, "za-3-0"));
    assert!(!later(&dom, "d-3-0"), "δ3 is computed");
    assert!(!later(&dom, "d-2-1"), "δ2 is computed");
    assert!(later(&dom, "d-1-0"), "δ1 is not yet");
    assert!(!later(&dom, "e-2-1-0"), "fc2's gradients are");
    assert!(later(&dom, "e-1-0-1"), "fc1's are not");
}
