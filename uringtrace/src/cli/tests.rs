//! Which options the command lines give the library.

use super::*;

fn parse(args: &[&str]) -> Command {
    let argv = std::iter::once("uringtrace").chain(args.iter().copied());
    Cli::try_parse_from(argv).unwrap().command
}

#[test]
fn record_streams_into_the_large_ring_and_hooks_syscalls_only_when_filtered() {
    let Command::Record(host) = parse(&["record", "-o", "x.utr"]) else {
        panic!("not record");
    };
    let o = host.trace.session_options();
    assert_eq!(o.trace.ring_bytes, STREAM_RING_BYTES);
    assert!(!o.trace.filter && !o.trace.syscalls);
    let Command::Record(cmd) = parse(&["record", "-o", "x.utr", "--", "ls"]) else {
        panic!("not record");
    };
    let o = cmd.trace.session_options();
    assert!(o.trace.syscalls && !o.trace.filter);
    assert_eq!(o.command, ["ls"]);
    let Command::Record(pid) = parse(&["record", "-o", "x", "-p", "7", "--ring-size", "1M"]) else {
        panic!("not record");
    };
    let o = pid.trace.session_options();
    assert!(o.trace.filter && o.trace.syscalls);
    assert_eq!((o.trace.pids, o.trace.ring_bytes), (vec![7], 1 << 20));
}

#[test]
fn analysis_aggregates_into_the_small_ring_and_holds_back_less_than_the_stall() {
    let Command::Diagnose(d) = parse(&["diagnose", "--stall-threshold", "4ms"]) else {
        panic!("not diagnose");
    };
    let o = d.trace.analysis_session_options(&d.kernel, &d.analysis);
    assert_eq!(o.trace.mode, KernelMode::Aggregate);
    assert_eq!(o.trace.ring_bytes, AGGREGATE_RING_BYTES);
    assert_eq!(o.trace.slow_ns, 2_000_000);
    assert_eq!(d.analysis.analyzer_config().stall_ns, 4_000_000);
    let Command::Top(t) = parse(&["top", "--kernel-mode", "stream"]) else {
        panic!("not top");
    };
    let o = t.trace.analysis_session_options(&t.kernel, &t.analysis);
    assert_eq!(o.trace.mode, KernelMode::Stream);
    assert_eq!(o.trace.ring_bytes, STREAM_RING_BYTES);
    assert_eq!(o.trace.slow_ns, DEFAULT_SLOW_NS);
}
