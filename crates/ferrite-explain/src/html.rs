//! Self-contained HTML views (no scripts or styles fetched from anywhere): token attributions as
//! coloured text, and attention maps with a layer/head picker.
//!
//! Layer: explain. Colours use the same diverging scale as the PNGs (red raises the explained
//! logit, blue lowers it); hovering a token shows its score.

use crate::text::{AttentionMaps, TokenExplanation};

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A token as it reads in running text: WordPiece's `##` joins the previous token, byte-level
/// BPE's `Ġ` (and SentencePiece's `▁`) mark a preceding space. Returns (leading space, text).
fn display_token(tok: &str) -> (bool, String) {
    if let Some(rest) = tok.strip_prefix("##") {
        (false, rest.to_string())
    } else if let Some(rest) = tok.strip_prefix('Ġ').or_else(|| tok.strip_prefix('▁')) {
        (true, rest.to_string())
    } else {
        (true, tok.to_string())
    }
}

fn background(score: f32, max: f32) -> String {
    let a = (score / max).clamp(-1.0, 1.0);
    let (r, g, b) = if a >= 0.0 { (214, 39, 40) } else { (31, 119, 180) };
    format!("rgba({r},{g},{b},{:.3})", a.abs() * 0.85)
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;max-width:60em;color:#222}\
.tokens{font-size:1.4em;line-height:2.2em}.tok{padding:.15em .1em;border-radius:.2em}\
table{border-collapse:collapse}td,th{padding:.2em .6em;text-align:left}\
.legend span{padding:.2em .6em;margin-right:.4em}small{color:#666}";

/// The token attributions of one text as a standalone HTML page.
pub fn token_attribution_html(e: &TokenExplanation) -> String {
    let max = e
        .token_scores
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    let mut tokens = String::new();
    for (tok, &score) in e.tokens.iter().zip(&e.token_scores) {
        let (space, text) = display_token(tok);
        if space && !tokens.is_empty() {
            tokens.push(' ');
        }
        tokens.push_str(&format!(
            "<span class=\"tok\" style=\"background:{}\" title=\"{} = {:+.5}\">{}</span>",
            background(score, max),
            escape(tok),
            score,
            escape(&text)
        ));
    }
    let method = serde_json::to_value(e.method)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut probs = String::new();
    for (i, (label, p)) in e.probabilities.iter().enumerate() {
        let mark = if i == e.predicted { " (predicted)" } else { "" };
        probs.push_str(&format!("<tr><td>{}{mark}</td><td>{:.4}</td></tr>", escape(label), p));
    }
    let completeness = e.completeness.as_ref().map_or(String::new(), |c| {
        format!(
            "<p>Integrated gradients, {} steps: Σ attributions − (f(x) − f(baseline)) = {:.3e}, completeness gap {:.3}%.</p>",
            c.steps,
            c.delta,
            100.0 * c.completeness_gap
        )
    });
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ferrite explain: {method}</title><style>{STYLE}</style></head><body>\
<h1>Why “{label}”?</h1><p><b>{method}</b> attributions of the logit of <b>{label}</b> (class {target}, logit {out:.4}) to each input token, \
on the word embeddings. <small>Hover a token for its score.</small></p>\
<p class=\"legend\"><span style=\"background:{red}\">raises {label}</span><span style=\"background:{blue}\">lowers it</span></p>\
<div class=\"tokens\">{tokens}</div>{completeness}<h2>Prediction</h2><table>{probs}</table>\
<p><small>Text: {text}</small></p></body></html>\n",
        label = escape(&e.target_name),
        target = e.target,
        out = e.output,
        red = background(1.0, 1.0),
        blue = background(-1.0, 1.0),
        text = escape(&e.text),
    )
}

/// Every layer's and head's attention map of one text as a standalone HTML page: pick a layer and
/// a head (or the mean over heads); rows are query tokens, columns the tokens they attend to.
pub fn attention_html(maps: &AttentionMaps) -> String {
    // Four decimals are plenty for colours and tooltips, and keep the page small. Rounded as f64:
    // JSON numbers are f64, and an f32 0.2738 would print as 0.27379998564720154.
    let rounded: Vec<Vec<Vec<f64>>> = maps
        .maps
        .iter()
        .map(|l| {
            l.iter()
                .map(|m| m.iter().map(|&v| (f64::from(v) * 1e4).round() / 1e4).collect())
                .collect()
        })
        .collect();
    let data = serde_json::json!({ "queries": maps.queries, "keys": maps.keys, "maps": rounded }).to_string();
    // `</` must not appear inside the script element.
    let data = data.replace("</", "<\\/");
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ferrite explain: attention</title><style>{STYLE}\
td.c{{width:1.6em;height:1.6em;padding:0}}th{{font-weight:normal;font-size:.85em}}th.col{{writing-mode:vertical-rl;transform:rotate(180deg)}}</style></head><body>\
<h1>Attention maps</h1><p>{text}</p><p>Layer <select id=\"layer\"></select> Head <select id=\"head\"></select> \
<small>Row: the query token; column: the token it attends to; darker = more weight (each row sums to 1).</small></p>\
<div id=\"grid\"></div><script>\nconst D = {data};\n\
const L = document.getElementById('layer'), H = document.getElementById('head'), G = document.getElementById('grid');\n\
D.maps.forEach((_, i) => L.add(new Option(String(i), i)));\n\
H.add(new Option('mean of heads', -1)); (D.maps[0] || []).forEach((_, h) => H.add(new Option(String(h), h)));\n\
function esc(s) {{ const d = document.createElement('span'); d.textContent = s; return d.innerHTML.replace(/\"/g, '&quot;'); }}\n\
function draw() {{\n  const heads = D.maps[+L.value] || []; const h = +H.value; const Q = D.queries.length, K = D.keys.length;\n\
  const at = (i, j) => h >= 0 ? heads[h][i * K + j] : heads.reduce((s, m) => s + m[i * K + j], 0) / heads.length;\n\
  let html = '<table><tr><th></th>' + D.keys.map(t => '<th class=\"col\">' + esc(t) + '</th>').join('') + '</tr>';\n\
  for (let i = 0; i < Q; i++) {{\n    html += '<tr><th>' + esc(D.queries[i]) + '</th>';\n\
    for (let j = 0; j < K; j++) {{ const v = at(i, j); html += '<td class=\"c\" title=\"' + esc(D.queries[i]) + ' → ' + esc(D.keys[j]) + ': ' + v.toFixed(4) + '\" style=\"background:rgba(8,48,107,' + Math.min(1, v).toFixed(3) + ')\"></td>'; }}\n\
    html += '</tr>';\n  }}\n  G.innerHTML = html + '</table>';\n}}\nL.onchange = draw; H.onchange = draw; draw();\n</script></body></html>\n",
        text = escape(&maps.text),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_joins_word_pieces() {
        assert_eq!(escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(display_token("##ing"), (false, "ing".into()));
        assert_eq!(display_token("Ġcat"), (true, "cat".into()));
        assert_eq!(background(0.5, 1.0), "rgba(214,39,40,0.425)");
        let maps = AttentionMaps {
            text: "a </script> b".into(),
            queries: vec!["</script>".into(), "b".into()],
            keys: vec!["</script>".into(), "b".into()],
            layers: 1,
            heads: 1,
            maps: vec![vec![vec![1.0, 0.0, 0.5, 0.5]]],
        };
        let page = attention_html(&maps);
        assert_eq!(
            page.matches("</script>").count(),
            1,
            "the data cannot close the script early"
        );
    }
}
