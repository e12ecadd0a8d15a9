//! Which rings the table shows, and in what order: the sort column (`s`) and the
//! filter typed after `/`.

use std::cmp::Ordering;

use super::snapshot::RingRow;

/// Columns of the rings table, in display order; `s` cycles through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Process,
    Ring,
    Flags,
    Submits,
    Completions,
    InFlight,
    P50,
    P99,
    Errors,
    Overflows,
    Punts,
}

impl Column {
    pub const ALL: [Column; 11] = [
        Column::Process,
        Column::Ring,
        Column::Flags,
        Column::Submits,
        Column::Completions,
        Column::InFlight,
        Column::P50,
        Column::P99,
        Column::Errors,
        Column::Overflows,
        Column::Punts,
    ];

    pub fn header(self) -> &'static str {
        match self {
            Column::Process => "PID/COMM",
            Column::Ring => "RING",
            Column::Flags => "FLAGS",
            Column::Submits => "SUB/s",
            Column::Completions => "CMP/s",
            Column::InFlight => "INFL",
            Column::P50 => "P50",
            Column::P99 => "P99",
            Column::Errors => "ERR/s",
            Column::Overflows => "OVF",
            Column::Punts => "PUNT/s",
        }
    }

    /// Numbers sort largest first (what `top` users look for), names A to Z.
    pub fn descending_by_default(self) -> bool {
        !matches!(self, Column::Process | Column::Ring | Column::Flags)
    }

    pub fn next(self) -> Column {
        let i = Column::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Column::ALL[(i + 1) % Column::ALL.len()]
    }
}

/// Sorting of rows by one column; missing values sort as smallest.
pub fn compare(x: &RingRow, y: &RingRow, col: Column) -> Ordering {
    let f = |a: Option<f64>, b: Option<f64>| a.unwrap_or(-1.0).total_cmp(&b.unwrap_or(-1.0));
    match col {
        Column::Process => x.comm.cmp(&y.comm).then(x.pid.cmp(&y.pid)),
        Column::Ring => x.ring.cmp(&y.ring),
        Column::Flags => x.flags.cmp(&y.flags),
        Column::Submits => f(x.submits_per_s, y.submits_per_s),
        Column::Completions => f(x.completions_per_s, y.completions_per_s),
        Column::InFlight => x.in_flight.cmp(&y.in_flight),
        Column::P50 => x.p50_ns.cmp(&y.p50_ns),
        Column::P99 => x.p99_ns.cmp(&y.p99_ns),
        Column::Errors => f(x.errors_per_s, y.errors_per_s),
        Column::Overflows => x.overflows.cmp(&y.overflows),
        Column::Punts => f(x.punts_per_s, y.punts_per_s),
    }
}

/// Does `row` match a filter typed after `/`: a pid (prefix), or a substring of the
/// comm or ring address, ignoring case.
pub fn matches_filter(row: &RingRow, filter: &str) -> bool {
    let f = filter.trim().to_ascii_lowercase();
    if f.is_empty() {
        return true;
    }
    row.pid.to_string().starts_with(&f)
        || row.comm.to_ascii_lowercase().contains(&f)
        || row.ring.contains(&f)
}

pub fn visible_rows(rows: &[RingRow], filter: &str, sort: Column, desc: bool) -> Vec<usize> {
    let mut v: Vec<usize> = (0..rows.len())
        .filter(|&i| matches_filter(&rows[i], filter))
        .collect();
    v.sort_by(|&a, &b| {
        let (x, y) = (&rows[a], &rows[b]);
        let ord = compare(x, y, sort);
        let ord = if desc { ord.reverse() } else { ord };
        // Ties in a stable, meaningful order: pid, then ring.
        ord.then(x.pid.cmp(&y.pid)).then(x.ctx.cmp(&y.ctx))
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pid: u32, comm: &str, ring: &str, in_flight: u64) -> RingRow {
        RingRow {
            ctx: u64::from_str_radix(ring.trim_start_matches("0x"), 16).unwrap(),
            ring: ring.into(),
            pid,
            comm: comm.into(),
            in_flight,
            ..RingRow::default()
        }
    }

    #[test]
    fn visible_rows_filter_then_sort_with_ties_by_pid_and_ring() {
        let rows = [
            row(20, "nginx", "0xffffa000", 5),
            row(10, "fio", "0xffffb000", 5),
            row(10, "fio", "0xffffcabc", 9),
            row(31, "Redis", "0xffffd000", 1),
        ];
        assert_eq!(
            visible_rows(&rows, "", Column::InFlight, true),
            [2, 1, 0, 3]
        );
        assert_eq!(
            visible_rows(&rows, "", Column::InFlight, false),
            [3, 1, 0, 2]
        );
        // A pid prefix, a comm substring ignoring case, a ring address substring.
        assert_eq!(visible_rows(&rows, "1", Column::Process, false), [1, 2]);
        assert_eq!(visible_rows(&rows, " REDIS ", Column::Process, false), [3]);
        assert_eq!(visible_rows(&rows, "abc", Column::Process, false), [2]);
        assert!(visible_rows(&rows, "nothing", Column::Process, false).is_empty());
    }
}
