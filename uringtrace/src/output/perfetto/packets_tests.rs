//! The fast path's bytes decode to the same `Trace` as the generated messages'.

use perfetto_protos::trace::Trace;
use perfetto_protos::track_descriptor::TrackDescriptor;
use protobuf::Message;

use super::*;

fn write(generated: bool) -> Vec<u8> {
    let mut w = PacketWriter::new(Vec::new()).unwrap();
    w.generated = generated;
    let mut d = TrackDescriptor::new();
    d.set_uuid(7);
    d.set_name("ring".into());
    w.descriptor(d).unwrap();
    let long = "x".repeat(300);
    for round in 0..2u64 {
        let mut b = Event::new(
            100 + round,
            7,
            track_event::Type::TYPE_SLICE_BEGIN,
            Name::Cancelled(0),
        );
        b.arg(ArgName::UserData, Arg::Uint(u64::MAX - round));
        b.arg(ArgName::Result, Arg::Result(-libc::ECANCELED));
        b.arg(ArgName::Flags, Arg::SqeFlags(4 | round as u8));
        b.arg(ArgName::Overflowed, Arg::Bool(true));
        b.arg(ArgName::CqeDropped, Arg::Bool(false));
        b.flow(1);
        b.flow(1 << 40);
        if round == 1 {
            // Lengths over 127: nested messages whose length prefix takes two bytes.
            b.arg(ArgName::Message, Arg::Str(&long));
            // Results past the interning array, and a flow per kind.
            b.arg(ArgName::Fd, Arg::Str("3 (pipe:[7])"));
            b.flow(3);
        }
        w.event(&b).unwrap();
        w.event(&Event::new(
            200,
            7,
            track_event::Type::TYPE_SLICE_END,
            Name::Text(""),
        ))
        .unwrap();
        let mut i = Event::new(150, 8, track_event::Type::TYPE_INSTANT, Name::Cqe(1));
        i.terminating_flow = Some(1);
        i.arg(ArgName::UserData, Arg::Uint(0));
        i.arg(ArgName::Result, Arg::Result(1 << 20));
        i.arg(ArgName::Result, Arg::Result(i32::MIN));
        w.event(&i).unwrap();
        let mut t = Event::new(
            151,
            8,
            track_event::Type::TYPE_INSTANT,
            Name::Text("CQ overflow"),
        );
        t.arg(ArgName::Result, Arg::Result(4096));
        w.event(&t).unwrap();
        for v in [0, 5, -3, i64::MIN] {
            let mut c = Event::new(160, 9, track_event::Type::TYPE_COUNTER, Name::Text(""));
            c.counter = Some(v);
            w.event(&c).unwrap();
        }
    }
    w.finish().unwrap().0
}

#[test]
fn fast_path_decodes_like_the_generated_messages() {
    let fast = Trace::parse_from_bytes(&write(false)).unwrap();
    let generated = Trace::parse_from_bytes(&write(true)).unwrap();
    assert_eq!(generated.packet.len(), 1 + 2 * 8);
    assert_eq!(fast, generated);
    // Interned once each: names, annotation names and values.
    let interned: Vec<_> = fast
        .packet
        .iter()
        .filter_map(|p| p.interned_data.as_ref())
        .collect();
    let names: Vec<&str> = interned
        .iter()
        .flat_map(|i| i.event_names.iter().map(|n| n.name()))
        .collect();
    assert_eq!(
        names,
        ["NOP (cancelled)", "CQE OP_1", "CQ overflow"]
            .map(|n| n.replace("OP_1", &crate::names::opcode_name(1)))
    );
    let values: Vec<String> = interned
        .iter()
        .flat_map(|i| {
            i.debug_annotation_string_values
                .iter()
                .map(|s| String::from_utf8_lossy(s.str()).into_owned())
        })
        .collect();
    assert_eq!(
        values,
        [
            "-ECANCELED",
            "IO_LINK",
            "1048576",
            "-2147483648",
            "4096",
            "FIXED_FILE|IO_LINK"
        ]
    );
}

/// Request slice begins, first seen (interned through the general path) and then again
/// (the fast path), with each optional part: the same bytes as general events.
#[test]
fn request_begins_write_the_bytes_of_general_events() {
    fn begins(fd: &str) -> Vec<RequestBegin<'_>> {
        let base = RequestBegin {
            ts: 1_700_000_000_123,
            track: 12,
            opcode: 22,
            user_data: 0xdead_beef,
            res: -libc::EBADF,
            flags: 1,
            fd: None,
            chain_position: None,
            flows: [0; 3],
            nflows: 0,
        };
        let mut all = Vec::new();
        for round in 0..2u64 {
            all.push(RequestBegin {
                ts: base.ts + round,
                ..base
            });
            all.push(RequestBegin {
                fd: Some(fd),
                res: 4096 + round as i32,
                ..base
            });
            all.push(RequestBegin {
                chain_position: Some(3),
                flows: [5, 1 << 40, 9],
                nflows: 3,
                res: 1 << 20,
                ..base
            });
            all.push(RequestBegin {
                flags: 0x44,
                opcode: 0,
                fd: Some(fd),
                chain_position: Some(0),
                flows: [7, 0, 0],
                nflows: 1,
                ..base
            });
        }
        all
    }
    let long = "y".repeat(200);
    let mut fast = PacketWriter::new(Vec::new()).unwrap();
    let mut general = PacketWriter::new(Vec::new()).unwrap();
    for fd in ["3 (pipe:[7])", long.as_str()] {
        for b in begins(fd) {
            fast.request_begin(&b).unwrap();
            general.event(&b.event()).unwrap();
        }
    }
    let (fast, _) = fast.finish().unwrap();
    let (general, written) = general.finish().unwrap();
    assert_eq!(written.packets, 16);
    assert_eq!(fast, general);
}
