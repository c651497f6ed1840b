//! `ferrite data gettext --target fr --out DIR`: English→LANG sentence pairs from the system's
//! gettext catalogs, cleaned, deduplicated and split by hash into `DIR/{train,valid,test}.tsv`.

use clap::{Args, Subcommand};
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
    }
}
