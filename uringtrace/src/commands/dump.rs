use std::io::{self, BufWriter, Write};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::{DumpArgs, DumpFormat};
use crate::display::{json_value, text_line};
use crate::recording::{ReadStatus, Reader};

pub fn run(args: DumpArgs) -> anyhow::Result<ExitCode> {
    let mut reader =
        Reader::open(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let base = reader.header().clock.start_monotonic_ns;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut n = 0u64;
    loop {
        let ev = reader
            .next_event()
            .with_context(|| format!("reading {}", args.file.display()))?;
        let Some(ev) = ev else { break };
        let r = match args.format {
            DumpFormat::Text => writeln!(out, "{}", text_line(&ev, base)),
            DumpFormat::Jsonl => writeln!(out, "{}", json_value(&ev)),
        };
        if let Err(e) = r {
            // `uringtrace dump | head` is normal use, not an error.
            if e.kind() == io::ErrorKind::BrokenPipe {
                return Ok(ExitCode::SUCCESS);
            }
            return Err(e).context("writing to stdout");
        }
        n += 1;
    }
    let _ = out.flush();
    match reader.status() {
        ReadStatus::Truncated { offset } => eprintln!(
            "uringtrace: warning: {} is cut short: the record at offset {offset} is incomplete; \
             {n} events read up to there",
            args.file.display()
        ),
        ReadStatus::Unfinished => eprintln!(
            "uringtrace: warning: {} has no end record (recording was killed); {n} events read, \
             drop counters unknown",
            args.file.display()
        ),
        _ => {
            let d = reader.drops();
            if d.total > 0 {
                eprintln!(
                    "uringtrace: warning: {} events were lost in the kernel ring buffer while recording (per CPU: {:?})",
                    d.total, d.per_cpu
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
