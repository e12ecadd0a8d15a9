//! The results: rows and ratios, the markdown table, the JSON in target/bench/ and
//! README's block between the bench markers, plus the run's facts (machine, tools).

use super::*;

impl Bench {
    pub(super) fn metadata(&self, parts: &[Part], took: Duration) -> Value {
        let args: Vec<String> = std::env::args().skip(1).collect();
        json!({
            "date": utc_now("%Y-%m-%dT%H:%M:%SZ"),
            "command": format!("cargo xtask {}", args.join(" ")),
            "parts": parts,
            "plan": self.plan,
            "took_secs": took.as_secs(),
            "waited_for_quiet_secs": self.quiet_waited.get().as_secs(),
            "machine": {
                "cpu": cpuinfo_model(),
                "vcpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
                "kernel": read_trimmed("/proc/sys/kernel/osrelease"),
                "memory_gib": mem_total_gib(),
            },
            "tools": {
                "uringtrace": tool_version(&self.ut.to_string_lossy(), &["--version"]).ok(),
                "uringtrace_path": self.ut,
                "baseline": self.baseline.as_ref().map(|b| json!({
                    "path": b.path,
                    "version": tool_version(&b.path.to_string_lossy(), &["--version"]).ok(),
                    "kernel_modes": b.modes,
                })),
                "fio": self.fio.as_ref().ok(),
                "bpftrace": self.bpftrace.as_ref().ok(),
                "kernel_modes": self.modes,
            },
        })
    }
}

#[derive(Clone, Copy, Debug, Serialize)]
#[serde(tag = "op", content = "value")]
pub(super) enum Target {
    #[serde(rename = ">=")]
    AtLeast(f64),
    #[serde(rename = "<=")]
    AtMost(f64),
    /// At least this, and above the group's row of the named variant (checked
    /// by the part: `met` sees only the first half).
    #[serde(rename = ">= and >")]
    AtLeastAbove(f64, &'static str),
    /// No ratio target: the traced run must lose no events.
    #[serde(rename = "0 lost")]
    NoLoss,
}

impl Target {
    pub(super) fn met(self, v: f64) -> bool {
        match self {
            Target::AtLeast(t) | Target::AtLeastAbove(t, _) => v >= t,
            Target::AtMost(t) => v <= t,
            Target::NoLoss => true,
        }
    }

    pub(super) fn show(self, unit: Unit) -> String {
        match self {
            Target::AtLeast(t) => format!("≥ {}", unit.show(t)),
            Target::AtMost(t) => format!("≤ {}", unit.show(t)),
            Target::AtLeastAbove(t, other) => format!("≥ {}, > {other}", unit.show(t)),
            Target::NoLoss => "0 lost".into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Unit {
    Ratio,
    /// Time a fixed amount of work took.
    Seconds,
    /// Slowdown against untraced: traced time / untraced time - 1.
    Tax,
    OpsPerSec,
    Iops,
    EventsPerSec,
    BytesPerEvent,
    Bytes,
    Events,
}

impl Unit {
    pub(super) fn show(self, v: f64) -> String {
        match self {
            Unit::Ratio => format!("{v:.2}×"),
            Unit::Seconds => format!("{v:.2} s"),
            Unit::Tax => format!("{:+.1} %", v * 100.0),
            Unit::OpsPerSec => format!("{} ops/s", si(v)),
            Unit::Iops => format!("{} IOPS", si(v)),
            Unit::EventsPerSec => format!("{} events/s", si(v)),
            Unit::BytesPerEvent => format!("{v:.1} B/event"),
            Unit::Bytes => format!("{:.0} MiB", v / (1 << 20) as f64),
            Unit::Events => format!("{v:.0} events"),
        }
    }

    /// What traced variants of a measurement in this unit show: the ratio of
    /// rates, or the slowdown of a fixed amount of work.
    pub(super) fn traced(self) -> Unit {
        match self {
            Unit::Seconds => Unit::Tax,
            _ => Unit::Ratio,
        }
    }

    /// One round's value in the notes: `0.83`, `+2.1`.
    pub(super) fn round(self, v: f64) -> String {
        match self {
            Unit::Tax => format!("{:+.1}", v * 100.0),
            Unit::Seconds => format!("{v:.2}"),
            Unit::Ratio => format!("{v:.2}"),
            _ => si(v),
        }
    }
}

/// One line of the results table (and of the JSON's `results`).
#[derive(Debug, Serialize)]
pub(super) struct Row {
    pub(super) part: Part,
    pub(super) group: String,
    pub(super) what: String,
    pub(super) unit: Unit,
    pub(super) value: Option<f64>,
    pub(super) target: Option<Target>,
    pub(super) pass: Option<bool>,
    /// "ok", "skipped" or "failed".
    pub(super) status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) reason: Option<String>,
    pub(super) notes: String,
    /// Per-round values (ratios for ratio rows).
    pub(super) rounds: Vec<f64>,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub(super) data: Value,
}

impl Row {
    pub(super) fn new(part: Part, group: &str, what: &str, unit: Unit) -> Row {
        Row {
            part,
            group: group.into(),
            what: what.into(),
            unit,
            value: None,
            target: None,
            pass: None,
            status: "ok",
            reason: None,
            notes: String::new(),
            rounds: Vec::new(),
            data: Value::Null,
        }
    }

    pub(super) fn value(mut self, v: f64, target: Option<Target>) -> Row {
        self.value = Some(v);
        self.target = target;
        self.pass = target.map(|t| t.met(v));
        self
    }

    pub(super) fn skipped(mut self, reason: String) -> Row {
        self.status = "skipped";
        self.reason = Some(reason);
        self
    }

    pub(super) fn failed(mut self, err: &anyhow::Error) -> Row {
        self.status = "failed";
        self.reason = Some(format!("{err:#}"));
        self
    }

    pub(super) fn notes(mut self, notes: String) -> Row {
        self.notes = notes;
        self
    }
}

/// The untraced rate: every untraced run of the part.
pub(super) fn untraced_row(row: Row, paired: &[Paired], unit: Unit) -> Row {
    let all = Series {
        samples: paired
            .iter()
            .flat_map(|p| p.untraced.samples.clone())
            .collect(),
        error: None,
    };
    let abs = all.values();
    if abs.is_empty() {
        return row.failed(&anyhow::anyhow!(
            "no untraced runs: every traced variant was skipped"
        ));
    }
    let mut row = row.value(median(&abs), None);
    row.unit = unit;
    row.notes = format!(
        "{} runs, {} to {}",
        abs.len(),
        unit.round(abs.iter().copied().fold(f64::INFINITY, f64::min)),
        unit.round(abs.iter().copied().fold(0.0, f64::max))
    );
    if all.noisy() > 0 {
        let _ = write!(row.notes, "; {} began under outside CPU load", all.noisy());
    }
    if all.beside_tracer() > 0 {
        let _ = write!(
            row.notes,
            "; {} began beside another tracer",
            all.beside_tracer()
        );
    }
    row.rounds = abs;
    row
}

/// A traced variant against the untraced run paired with it in each round.
pub(super) fn ratio_row(
    row: Row,
    p: &Paired,
    tracer: Tracer,
    target: Option<Target>,
    unit: Unit,
) -> Row {
    let abs = p.traced.values();
    if abs.is_empty() {
        let e = p.traced.error.clone().unwrap_or_else(|| "no runs".into());
        return row.failed(&anyhow::anyhow!(e));
    }
    let tax = row.unit == Unit::Tax;
    let ratios: Vec<f64> = p
        .untraced
        .samples
        .iter()
        .zip(&p.traced.samples)
        .filter_map(|(b, t)| Some(t.as_ref()?.value / b.as_ref()?.value))
        .map(|r| if tax { r - 1.0 } else { r })
        .collect();
    let lost = p.traced.total_lost();
    let mut row = row.value(median(&ratios), target);
    if matches!(tracer, Tracer::Record | Tracer::Baseline(Base::Record))
        || matches!(target, Some(Target::NoLoss))
    {
        // Streaming counts only if it kept every event.
        row.pass = row.pass.map(|ok| ok && lost == Some(0));
    }
    let shown: Vec<String> = ratios.iter().map(|r| row.unit.round(*r)).collect();
    let mut notes = format!("{}; rounds: {}", unit.show(median(&abs)), shown.join(" "));
    if let Some(l) = lost {
        let _ = write!(notes, "; {l} lost");
    }
    let noisy = p.untraced.noisy() + p.traced.noisy();
    if noisy > 0 {
        let _ = write!(notes, "; {noisy} runs began under outside CPU load");
    }
    let beside = p.untraced.beside_tracer() + p.traced.beside_tracer();
    if beside > 0 {
        let _ = write!(notes, "; {beside} runs began beside another tracer");
    }
    if let Some(e) = &p.traced.error {
        let _ = write!(notes, "; stopped after an error: {e}");
    }
    row.notes = notes;
    row.rounds = ratios;
    row.data = serde_json::to_value(p).unwrap_or_default();
    row
}

pub(super) fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// 19.8 M, 512 k, 930.
pub(super) fn si(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

pub(super) fn meta_line(meta: &Value) -> String {
    let m = &meta["machine"];
    let t = &meta["tools"];
    format!(
        "{}; {}, {} vCPUs, {} GiB, Linux {}; {}, {}; `{}` ({} s)",
        meta["date"].as_str().unwrap_or(""),
        m["cpu"].as_str().unwrap_or(""),
        m["vcpus"],
        m["memory_gib"],
        m["kernel"].as_str().unwrap_or(""),
        t["fio"].as_str().unwrap_or("fio missing"),
        t["bpftrace"].as_str().unwrap_or("bpftrace missing"),
        meta["command"].as_str().unwrap_or(""),
        meta["took_secs"],
    )
}

pub(super) fn markdown_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| Benchmark | Variant | Result | Target | Per round / notes |\n|---|---|---|---|---|\n",
    );
    let mut last_group = "";
    for r in rows {
        let group = if r.group == last_group {
            ""
        } else {
            r.group.as_str()
        };
        last_group = &r.group;
        let (result, notes) = match (r.status, r.value) {
            ("ok", Some(v)) => (format!("**{}**", r.unit.show(v)), r.notes.clone()),
            (status, _) => (status.to_string(), r.reason.clone().unwrap_or_default()),
        };
        let target = match (r.target, r.pass) {
            (Some(t), Some(true)) => format!("{} ✓", t.show(r.unit)),
            (Some(t), Some(false)) => format!("{} ✗", t.show(r.unit)),
            (Some(t), None) => t.show(r.unit),
            (None, _) => String::new(),
        };
        let notes = notes.replace('|', "\\|");
        let _ = writeln!(
            out,
            "| {group} | {} | {result} | {target} | {notes} |",
            r.what
        );
    }
    out
}

pub(super) fn save_json(root: &Path, meta: &Value, rows: &[Row]) -> anyhow::Result<PathBuf> {
    let dir = root.join("target/bench");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut doc = meta.clone();
    doc["results"] = serde_json::to_value(rows)?;
    let text = serde_json::to_string_pretty(&doc)?;
    let path = dir.join(format!("bench-{}.json", utc_now("%Y%m%d-%H%M%S")));
    fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
    fs::write(dir.join("latest.json"), &text).context("writing target/bench/latest.json")?;
    Ok(path)
}

pub(super) fn readme_block(meta: &Value, table: &str) -> String {
    let m = &meta["machine"];
    format!(
        "{table}\nMeasured {} on {}, {} vCPUs, {} GiB RAM, Linux {}; {}, {}. Reproduce: `cargo xtask bench` ({} s).\n",
        meta["date"].as_str().unwrap_or(""),
        m["cpu"].as_str().unwrap_or(""),
        m["vcpus"],
        m["memory_gib"],
        m["kernel"].as_str().unwrap_or(""),
        meta["tools"]["fio"].as_str().unwrap_or("fio missing"),
        meta["tools"]["bpftrace"].as_str().unwrap_or("bpftrace missing"),
        meta["took_secs"],
    )
}

/// Replaces what lies between the bench markers in README.md.
pub(super) fn update_readme(readme: &Path, block: &str) -> anyhow::Result<()> {
    let text =
        fs::read_to_string(readme).with_context(|| format!("reading {}", readme.display()))?;
    let (Some(b), Some(e)) = (text.find(README_BEGIN), text.find(README_END)) else {
        bail!("README.md has no `{README_BEGIN}` ... `{README_END}` markers");
    };
    ensure!(b < e, "README.md's bench markers are out of order");
    let new = format!("{}{README_BEGIN}\n{block}{}", &text[..b], &text[e..]);
    fs::write(readme, new).with_context(|| format!("writing {}", readme.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_the_readme_block() {
        let path = std::env::temp_dir().join(format!("bench-readme-{}.md", std::process::id()));
        fs::write(&path, format!("a\n{README_BEGIN}\nold\n{README_END}\nb\n")).unwrap();
        update_readme(&path, "new\n").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let _ = fs::remove_file(&path);
        assert_eq!(text, format!("a\n{README_BEGIN}\nnew\n{README_END}\nb\n"));
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
