//! Attention maps of SmolLM2 (GGUF; `scripts/fetch-assets.sh smollm2`) over a prompt: 30 layers ×
//! 9 heads of causal probability rows, drawn as PNG and HTML; a missing head is named.

use ferrite_explain::*;

#[test]
fn llm_attention_over_a_prompt() {
    let file = "SmolLM2-135M-Instruct.Q4_1.gguf";
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let model = ferrite_core::testing::cached_asset(&root, "smollm2", file).join(file);
    let maps = llm::llm_attention(&model, "The capital of France is Paris").unwrap();
    assert_eq!((maps.layers, maps.heads), (30, 9));
    assert_eq!(maps.queries, ["The", " capital", " of", " France", " is", " Paris"]);
    let t = maps.keys.len();
    for m in maps.maps.iter().flatten() {
        for (i, row) in m.chunks(t).enumerate() {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
            assert!(row[i + 1..].iter().all(|&v| v == 0.0), "causal");
        }
    }
    let dir = std::env::temp_dir().join(format!("ferrite-explain-llm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (out, head) in [("a.png", None), ("a.html", None), ("h.png", Some(8))] {
        let req = TextRequest::Attention {
            layer: Some(3),
            head,
            part: None,
        };
        let v = explain_text_run(&model, "The capital of France is Paris", &req, &dir.join(out)).unwrap();
        assert_eq!(v["map"].as_array().unwrap().len(), t * t);
    }
    let req = TextRequest::Attention {
        layer: None,
        head: Some(9),
        part: None,
    };
    let e = explain_text_run(&model, "x", &req, &dir.join("x.png"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("head 9") && e.contains("9 heads"), "{e}");
    std::fs::remove_dir_all(dir).ok();
}
