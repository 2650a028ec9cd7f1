//! `hallmark keygen`: a publisher key pair. Reads no configuration.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;

use crate::bundle::generate_signing_key;

#[derive(Debug, Args)]
pub struct KeygenArgs {
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: &KeygenArgs) -> anyhow::Result<ExitCode> {
    let out = &args.out;
    use std::os::unix::fs::OpenOptionsExt;
    let private = out.join("publisher.key.pem");
    let public = out.join("publisher.pub.pem");
    for p in [&private, &public] {
        if p.exists() {
            bail!("{} already exists; not overwriting a key", p.display());
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let key = generate_signing_key();
    let write = |path: &Path, text: &str, mode: u32| -> anyhow::Result<()> {
        // create_new: a file that appeared meanwhile is still never overwritten.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        Ok(())
    };
    write(&private, &key.private_pem()?, 0o600)?;
    write(&public, &key.public_pem()?, 0o644)?;
    println!("{}\n{}", private.display(), public.display());
    Ok(ExitCode::SUCCESS)
}
