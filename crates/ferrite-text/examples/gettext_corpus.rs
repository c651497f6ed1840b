//! Builds an English→X corpus from installed gettext catalogs and prints what each filter removed.
//!
//! ```sh
//! cargo run -p ferrite-text --example gettext_corpus -- /usr/share/locale/fr/LC_MESSAGES [out.tsv]
//! ```

use std::path::PathBuf;

fn main() -> ferrite_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "/usr/share/locale/fr/LC_MESSAGES".to_string()),
    );
    let (pairs, stats) = ferrite_text::extract_gettext_pairs(&dir)?;
    println!("{stats:#?}");
    let step = (pairs.len() / 12).max(1);
    for pair in pairs.iter().step_by(step) {
        println!("{:?}\t{:?}", pair.src, pair.tgt);
    }
    if let Some(out) = args.next() {
        ferrite_text::write_tsv(&PathBuf::from(&out), &pairs)?;
        println!("wrote {} pairs to {out}", pairs.len());
    }
    Ok(())
}
