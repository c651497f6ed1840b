//! Small valid files for the binary fuzz targets, written byte by byte from the formats' layouts
//! (GGUF v3, CTranslate2 model.bin v6, RIFF WAVE), so the seeds need no downloads.

/// GGUF metadata values used by the seeds.
enum Meta {
    U32(u32),
    F32(f32),
    Str(&'static str),
    Strs(Vec<&'static str>),
}

fn gguf_string(b: &mut Vec<u8>, s: &str) {
    b.extend((s.len() as u64).to_le_bytes());
    b.extend(s.as_bytes());
}

/// A GGUF v3 file with `meta` and F32 `tensors` (name, GGUF dims — fastest first —, values).
fn gguf(meta: &[(&str, Meta)], tensors: &[(&str, Vec<u64>, Vec<f32>)]) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend((meta.len() as u64).to_le_bytes());
    for (key, value) in meta {
        gguf_string(&mut b, key);
        match value {
            Meta::U32(v) => {
                b.extend(4u32.to_le_bytes());
                b.extend(v.to_le_bytes());
            }
            Meta::F32(v) => {
                b.extend(6u32.to_le_bytes());
                b.extend(v.to_le_bytes());
            }
            Meta::Str(s) => {
                b.extend(8u32.to_le_bytes());
                gguf_string(&mut b, s);
            }
            Meta::Strs(items) => {
                b.extend(9u32.to_le_bytes());
                b.extend(8u32.to_le_bytes());
                b.extend((items.len() as u64).to_le_bytes());
                for s in items {
                    gguf_string(&mut b, s);
                }
            }
        }
    }
    let mut offset = 0u64;
    for (name, dims, values) in tensors {
        gguf_string(&mut b, name);
        b.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            b.extend(d.to_le_bytes());
        }
        b.extend(0u32.to_le_bytes()); // F32
        b.extend(offset.to_le_bytes());
        offset += (values.len() as u64 * 4).next_multiple_of(32);
    }
    for (_, _, values) in tensors {
        while !b.len().is_multiple_of(32) {
            b.push(0);
        }
        for v in values {
            b.extend(v.to_le_bytes());
        }
    }
    b
}

/// Deterministic weights in [-0.5, 0.5).
fn weights(n: usize, salt: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 7919 + salt * 104_729) % 1000) as f32 / 1000.0) - 0.5)
        .collect()
}

/// A one-block Llama (width 8, 2 heads sharing 1 KV head, FFN 16) with a 6-token byte-level BPE
/// vocabulary, declaring `context` positions.
pub fn tiny_llama(context: u32) -> Vec<u8> {
    let (dim, kv, ffn, vocab) = (8u64, 4u64, 16u64, 6u64);
    let meta = [
        ("general.architecture", Meta::Str("llama")),
        ("llama.context_length", Meta::U32(context)),
        ("llama.embedding_length", Meta::U32(dim as u32)),
        ("llama.block_count", Meta::U32(1)),
        ("llama.feed_forward_length", Meta::U32(ffn as u32)),
        ("llama.attention.head_count", Meta::U32(2)),
        ("llama.attention.head_count_kv", Meta::U32(1)),
        ("llama.attention.layer_norm_rms_epsilon", Meta::F32(1e-5)),
        ("llama.rope.freq_base", Meta::F32(10_000.0)),
        ("tokenizer.ggml.model", Meta::Str("gpt2")),
        (
            "tokenizer.ggml.tokens",
            Meta::Strs(vec!["<|endoftext|>", "a", "b", "ab", "Ġ", "c"]),
        ),
        ("tokenizer.ggml.merges", Meta::Strs(vec!["a b"])),
        ("tokenizer.ggml.eos_token_id", Meta::U32(0)),
    ];
    let t = |name: &'static str, dims: Vec<u64>, salt: usize| {
        let n = dims.iter().product::<u64>() as usize;
        (name, dims, weights(n, salt))
    };
    let tensors = [
        t("token_embd.weight", vec![dim, vocab], 1),
        t("blk.0.attn_norm.weight", vec![dim], 2),
        t("blk.0.attn_q.weight", vec![dim, dim], 3),
        t("blk.0.attn_k.weight", vec![dim, kv], 4),
        t("blk.0.attn_v.weight", vec![dim, kv], 5),
        t("blk.0.attn_output.weight", vec![dim, dim], 6),
        t("blk.0.ffn_norm.weight", vec![dim], 7),
        t("blk.0.ffn_gate.weight", vec![dim, ffn], 8),
        t("blk.0.ffn_up.weight", vec![dim, ffn], 9),
        t("blk.0.ffn_down.weight", vec![ffn, dim], 10),
        t("output_norm.weight", vec![dim], 11),
    ];
    gguf(&meta, &tensors)
}

fn ct2_string(b: &mut Vec<u8>, s: &str) {
    b.extend(((s.len() + 1) as u16).to_le_bytes());
    b.extend(s.as_bytes());
    b.push(0);
}

/// A CTranslate2 v6 `model.bin`: an i32 scalar, f32, f16 and i8 variables and an alias.
pub fn tiny_ct2() -> Vec<u8> {
    let mut b = 6u32.to_le_bytes().to_vec();
    ct2_string(&mut b, "WhisperSpec");
    b.extend(3u32.to_le_bytes());
    let vars: [(&str, Vec<u32>, u8, Vec<u8>); 4] = [
        ("encoder/num_heads", vec![], 3, 2i32.to_le_bytes().to_vec()),
        (
            "encoder/conv1/weight",
            vec![2, 2],
            0,
            [0.5f32, -1.0, 2.0, 0.25].iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
        (
            "decoder/embeddings/weight",
            vec![2, 2],
            4,
            vec![0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38, 0x00, 0x00],
        ),
        ("decoder/scale", vec![3], 1, vec![1, 255, 7]),
    ];
    b.extend((vars.len() as u32).to_le_bytes());
    for (name, dims, dtype, data) in vars {
        ct2_string(&mut b, name);
        b.push(dims.len() as u8);
        for d in &dims {
            b.extend(d.to_le_bytes());
        }
        b.push(dtype);
        b.extend((data.len() as u32).to_le_bytes());
        b.extend(data);
    }
    b.extend(1u32.to_le_bytes());
    ct2_string(&mut b, "decoder/projection/weight");
    ct2_string(&mut b, "decoder/embeddings/weight");
    b
}

/// A 16-bit mono WAV of 64 samples at 16 kHz, as plain PCM or as WAVE_FORMAT_EXTENSIBLE.
pub fn wav(extensible: bool) -> Vec<u8> {
    let samples: Vec<u8> = (0..64i16).flat_map(|i| (i * 511).to_le_bytes()).collect();
    let mut fmt = Vec::new();
    fmt.extend((if extensible { 0xFFFEu16 } else { 1 }).to_le_bytes());
    fmt.extend(1u16.to_le_bytes());
    fmt.extend(16_000u32.to_le_bytes());
    fmt.extend(32_000u32.to_le_bytes());
    fmt.extend(2u16.to_le_bytes());
    fmt.extend(16u16.to_le_bytes());
    if extensible {
        fmt.extend(22u16.to_le_bytes());
        fmt.extend(16u16.to_le_bytes());
        fmt.extend(4u32.to_le_bytes());
        fmt.extend([1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]);
    }
    let mut b = b"RIFF".to_vec();
    b.extend(((4 + 8 + fmt.len() + 8 + samples.len()) as u32).to_le_bytes());
    b.extend(b"WAVEfmt ");
    b.extend((fmt.len() as u32).to_le_bytes());
    b.extend(fmt);
    b.extend(b"data");
    b.extend((samples.len() as u32).to_le_bytes());
    b.extend(samples);
    b
}
