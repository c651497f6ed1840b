//! The privacy accountants against Opacus 1.6.0's own numbers (`tests/reference/privacy.json`,
//! written by `tools/make_privacy_reference.py`), the figures the issue quotes, their
//! monotonicity, and their errors.

use ferrite_core::testing::load_reference;
use ferrite_train::privacy::{self, rdp, Accountant, AccountantKind};
use serde_json::Value;

fn reference() -> Value {
    load_reference(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/reference/privacy.json"
    ))
    .unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::INFINITY)
}

/// Per-order RDP of one step matches Opacus's `compute_rdp` to 1e-9 relative (the series and
/// special functions are the same; the rest is rounding).
#[test]
fn rdp_per_order_matches_opacus() {
    let r = reference();
    let orders: Vec<f64> = r["default_alphas"].as_array().unwrap().iter().map(f).collect();
    assert_eq!(orders, rdp::default_orders());
    for case in r["rdp_orders"].as_array().unwrap() {
        let (q, sigma) = (f(&case["q"]), f(&case["sigma"]));
        let got = rdp::rdp(q, sigma, 1, &orders);
        for ((want, got), order) in case["rdp"].as_array().unwrap().iter().map(f).zip(got).zip(&orders) {
            assert!(
                (got - want).abs() <= 1e-9 * want.abs() + 1e-300,
                "q={q} σ={sigma} α={order}: {got} vs Opacus {want}"
            );
        }
    }
}

/// ε from RDP (both conversions) to 1e-9, and PRV's upper bound to 1e-4 of Opacus's (its
/// stated error is ±0.01; ferrite's grid is the same, zero-padded to a power of two).
#[test]
fn epsilon_matches_opacus() {
    for case in reference()["epsilon"].as_array().unwrap() {
        let (q, sigma, delta) = (f(&case["q"]), f(&case["sigma"]), f(&case["delta"]));
        let steps = case["steps"].as_u64().unwrap();
        let what = format!("q={q} σ={sigma} steps={steps} δ={delta}");
        let ledger = Accountant::with_steps(AccountantKind::Rdp, q, sigma, steps).unwrap();
        let (eps, order) = ledger.epsilon_rdp(delta).unwrap();
        assert!(
            (eps - f(&case["rdp_eps"])).abs() < 1e-9,
            "{what}: RDP ε {eps} vs {}",
            case["rdp_eps"]
        );
        assert_eq!(order, f(&case["rdp_alpha"]), "{what}");
        assert_eq!(ledger.epsilon(delta).unwrap(), eps);
        let (classic, classic_order) = ledger.epsilon_rdp_classic(delta).unwrap();
        assert!(
            (classic - f(&case["rdp_classic_eps"])).abs() < 1e-9,
            "{what}: classic ε {classic}"
        );
        assert_eq!(classic_order, f(&case["rdp_classic_alpha"]), "{what}");

        let prv = Accountant::with_steps(AccountantKind::Prv, q, sigma, steps).unwrap();
        let got = prv.epsilon(delta).unwrap();
        let want = f(&case["prv_eps"]);
        assert!((got - want).abs() < 1e-4, "{what}: PRV ε {got} vs Opacus {want}");
    }
}

/// The figures the issue quotes (δ = 1e-5), to the digits quoted.
#[test]
fn published_figures() {
    let q = 256.0 / 60000.0;
    let at = |kind, steps| Accountant::with_steps(kind, q, 1.1, steps).unwrap();
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    assert_eq!(
        round3(at(AccountantKind::Rdp, 14062).epsilon_rdp_classic(1e-5).unwrap().0),
        3.008
    );
    assert_eq!(round3(at(AccountantKind::Rdp, 14062).epsilon(1e-5).unwrap()), 2.597);
    assert_eq!(round3(at(AccountantKind::Prv, 14062).epsilon(1e-5).unwrap()), 2.392);
    assert_eq!(round3(at(AccountantKind::Rdp, 14100).epsilon(1e-5).unwrap()), 2.600);
    assert_eq!(round3(at(AccountantKind::Prv, 14100).epsilon(1e-5).unwrap()), 2.395);
    // Opacus's own unit test (test_rdp_accountant), matched there to 1e-6.
    let opacus = Accountant::with_steps(AccountantKind::Rdp, 0.04, 1.5, 2250)
        .unwrap()
        .epsilon(1e-5)
        .unwrap();
    assert!((opacus - 7.32911117143).abs() < 1e-6, "{opacus}");
}

/// Solving for σ walks the same doubling and bisection as Opacus's `get_noise_multiplier`, so it
/// lands on the same σ.
#[test]
fn noise_multiplier_matches_opacus() {
    for case in reference()["noise_multiplier"].as_array().unwrap() {
        let kind: AccountantKind = case["accountant"].as_str().unwrap().parse().unwrap();
        let (sigma, eps) = privacy::noise_multiplier(
            kind,
            f(&case["target_epsilon"]),
            f(&case["target_delta"]),
            f(&case["sample_rate"]),
            case["steps"].as_u64().unwrap(),
            f(&case["epsilon_tolerance"]),
        )
        .unwrap();
        assert_eq!(sigma, f(&case["sigma"]), "{case}");
        assert!((eps - f(&case["epsilon"])).abs() < 1e-4, "{case}: ε {eps}");
    }
}

/// A ledger of different steps composes them (RDP adds, PRV convolves).
#[test]
fn heterogeneous_history_matches_opacus() {
    for case in reference()["heterogeneous"].as_array().unwrap() {
        let delta = f(&case["delta"]);
        let mut rdp_ledger = Accountant::new(AccountantKind::Rdp);
        let mut prv_ledger = Accountant::new(AccountantKind::Prv);
        for step in case["history"].as_array().unwrap() {
            let (q, sigma, steps) = (f(&step["q"]), f(&step["sigma"]), step["steps"].as_u64().unwrap());
            rdp_ledger.add(q, sigma, steps).unwrap();
            prv_ledger.add(q, sigma, steps).unwrap();
        }
        assert_eq!(rdp_ledger.history().len(), 2);
        let rdp_eps = rdp_ledger.epsilon(delta).unwrap();
        assert!(
            (rdp_eps - f(&case["rdp_eps"])).abs() < 1e-9,
            "RDP {rdp_eps} vs {}",
            case["rdp_eps"]
        );
        let prv_eps = prv_ledger.epsilon(delta).unwrap();
        assert!(
            (prv_eps - f(&case["prv_eps"])).abs() < 1e-3,
            "PRV {prv_eps} vs {}",
            case["prv_eps"]
        );
    }
}

/// ε grows with the steps and the sampling rate, and shrinks as the noise grows — for both
/// accountants, over a grid of settings.
#[test]
fn epsilon_is_monotone() {
    for kind in [AccountantKind::Rdp, AccountantKind::Prv] {
        for &(q, sigma) in &[(0.001, 0.8), (0.01, 1.0), (0.05, 2.0)] {
            let eps = |q: f64, sigma: f64, steps: u64| {
                Accountant::with_steps(kind, q, sigma, steps)
                    .unwrap()
                    .epsilon(1e-5)
                    .unwrap()
            };
            let base = eps(q, sigma, 500);
            let (more_steps, more_noise, bigger_q) =
                (eps(q, sigma, 2000), eps(q, sigma * 1.5, 500), eps(q * 2.0, sigma, 500));
            assert!(more_steps > base, "{kind:?} q={q} σ={sigma}: {more_steps} ≤ {base}");
            assert!(more_noise < base, "{kind:?} q={q} σ={sigma}: {more_noise} ≥ {base}");
            assert!(bigger_q > base, "{kind:?} q={q} σ={sigma}: {bigger_q} ≤ {base}");
        }
    }
}

#[test]
fn bad_privacy_settings_are_named_errors() {
    let err = |r: ferrite_core::Result<Accountant>| r.unwrap_err().to_string();
    assert!(err(Accountant::with_steps(AccountantKind::Rdp, 0.01, 0.0, 10)).contains("noise multiplier σ = 0"));
    assert!(err(Accountant::with_steps(AccountantKind::Rdp, 0.01, -1.0, 10)).contains("positive"));
    assert!(err(Accountant::with_steps(AccountantKind::Rdp, 0.0, 1.0, 10)).contains("(0, 1]"));
    assert!(err(Accountant::with_steps(AccountantKind::Rdp, 1.5, 1.0, 10)).contains("(0, 1]"));
    let ledger = Accountant::with_steps(AccountantKind::Rdp, 0.01, 1.0, 10).unwrap();
    assert!(ledger.epsilon(0.0).unwrap_err().to_string().contains("δ = 0"));
    assert!(ledger.epsilon(1.0).unwrap_err().to_string().contains("(0, 1)"));
    // A target no noise reaches names the smallest reachable ε.
    let msg = privacy::noise_multiplier(AccountantKind::Rdp, 0.05, 1e-5, 0.01, 1000, 0.01)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("smallest reachable ε is 0.1"), "{msg}");
    assert!("gdp"
        .parse::<AccountantKind>()
        .unwrap_err()
        .to_string()
        .contains("rdp or prv"));
    // Almost no noise: PRV's grid cannot hold the loss; a named error, never an overflow.
    let tiny = Accountant::with_steps(AccountantKind::Prv, 0.5, 1e-3, 100).unwrap();
    assert!(tiny
        .epsilon(1e-5)
        .unwrap_err()
        .to_string()
        .contains("use the RDP accountant"));
}
