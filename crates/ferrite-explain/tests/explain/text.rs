//! Explaining a fine-tuned text classifier (all-MiniLM-L6-v2 with a trained sentiment head,
//! fetched by `scripts/fetch-assets.sh`): integrated gradients on the word embeddings close within
//! 1% at 64 steps, the sentiment words carry the attribution, attention maps are probability rows,
//! the HTML and PNG views are written, and missing layers, heads and labels are named.

use ferrite_explain::*;
use ferrite_train::finetune::{finetune_run, DataOptions, FinetuneArgs, FinetuneOptions};
use std::path::{Path, PathBuf};

/// Short opinions: a sentiment word decides the label, the rest is shared filler.
fn write_opinions(path: &Path) {
    let mut csv = String::from("label,text\n");
    let things = [
        "the hotel",
        "this laptop",
        "the concert",
        "my meal",
        "the course",
        "that game",
    ];
    let words = [
        ("positive", ["lovely", "superb", "brilliant", "pleasant"]),
        ("negative", ["poor", "boring", "nasty", "broken"]),
    ];
    let ends = [
        "",
        " indeed",
        " this week",
        " to be honest",
        " as expected",
        " sadly or not",
    ];
    for thing in things {
        for (label, ws) in words {
            for w in ws {
                for end in ends {
                    csv.push_str(&format!("{label},\"{thing} was {w}{end}\"\n"));
                }
            }
        }
    }
    std::fs::write(path, csv).unwrap();
}

fn trained_classifier(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let data = dir.join("opinions.csv");
    write_opinions(&data);
    let model = ferrite_core::testing::cached_asset(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."),
        "all-MiniLM-L6-v2",
        "model.safetensors",
    );
    let args = FinetuneArgs {
        model,
        data,
        data_options: DataOptions {
            text_column: "text".into(),
            label_column: "label".into(),
            ..DataOptions::default()
        },
        options: FinetuneOptions {
            freeze_encoder: true,
            epochs: 12,
            lr: 1e-2,
            max_len: 24,
            ..FinetuneOptions::default()
        },
        from_scratch: false,
    };
    let run = dir.join("run");
    let s = finetune_run(&args, Some(&run)).unwrap();
    assert!(s.test_accuracy >= 0.9, "probe accuracy {}", s.test_accuracy);
    run
}

#[test]
fn text_classifier_attributions_attention_and_errors() {
    let dir = std::env::temp_dir().join(format!("ferrite-explain-text-{}", std::process::id()));
    let run = trained_classifier(&dir);
    let text = "the hotel was superb and the staff friendly";
    for q in [Quadrature::RiemannMiddle, Quadrature::GaussLegendre] {
        let mut opts = ExplainOptions::new(Method::IntegratedGradients);
        opts.ig.quadrature = q;
        let html = dir.join("ig.html");
        let v = explain_text_run(&run, text, &TextRequest::Attribution(opts), &html).unwrap();
        let gap = v["completeness_gap"].as_f64().unwrap();
        eprintln!("{q:?}, 64 steps: completeness gap {:.5}%", 100.0 * gap);
        assert!(gap < 0.01, "{q:?}: {gap}");
        assert_eq!(v["target_name"], "positive");
        let tokens: Vec<&str> = v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        let scores: Vec<f64> = v["token_scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_f64().unwrap())
            .collect();
        let top = (0..scores.len())
            .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
            .unwrap();
        assert_eq!(tokens[top], "superb", "{tokens:?} {scores:?}");
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(page.contains("superb") && page.contains("completeness gap"));
    }
    // Saliency, as a PNG bar chart.
    let png = dir.join("saliency.png");
    explain_text_run(
        &run,
        text,
        &TextRequest::Attribution(ExplainOptions::new(Method::Saliency)),
        &png,
    )
    .unwrap();
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));

    // Attention: every row of every map is a probability distribution over the tokens.
    let c = ferrite_train::finetune::Classifier::open(&run).unwrap();
    let maps = attention_maps(&c, text).unwrap();
    assert_eq!((maps.layers, maps.heads), (6, 12));
    let t = maps.keys.len();
    assert_eq!(maps.queries, maps.keys);
    for layer in &maps.maps {
        for m in layer {
            for row in m.chunks(t) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
            }
        }
    }
    let mean = maps.select(2, None).unwrap();
    let by_hand: f32 = (0..12).map(|h| maps.maps[2][h][5]).sum::<f32>() / 12.0;
    assert!((mean[5] - by_hand).abs() < 1e-6);
    for (out, head) in [
        ("attention.png", None),
        ("head3.png", Some(3)),
        ("attention.html", None),
    ] {
        let req = TextRequest::Attention {
            layer: Some(2),
            head,
            part: None,
        };
        let v = explain_text_run(&run, text, &req, &dir.join(out)).unwrap();
        assert_eq!(v["map"].as_array().unwrap().len(), t * t);
    }
    let page = std::fs::read_to_string(dir.join("attention.html")).unwrap();
    assert!(page.contains("<select id=\"layer\">") && page.contains("staff"));

    // Layers, heads and labels that do not exist.
    let e = maps.select(6, None).unwrap_err().to_string();
    assert!(e.contains("layer 6") && e.contains("6 layers"), "{e}");
    let e = maps.select(0, Some(12)).unwrap_err().to_string();
    assert!(e.contains("head 12") && e.contains("12 heads"), "{e}");
    let mut opts = ExplainOptions::new(Method::Saliency);
    opts.target = Some(2);
    let e = explain_text_run(&run, text, &TextRequest::Attribution(opts), &png)
        .unwrap_err()
        .to_string();
    assert!(e.contains("target 2") && e.contains("2 outputs"), "{e}");
    let e = explain_text_run(
        &run,
        text,
        &TextRequest::Attribution(ExplainOptions::new(Method::Occlusion)),
        &png,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("Occlusion gives no token attributions"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}
