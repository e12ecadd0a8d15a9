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
    for round in 0..2u64 {
        let mut b = Event::new(100 + round, 7, track_event::Type::TYPE_SLICE_BEGIN, "NOP");
        b.args.push(("user_data", Arg::Uint(u64::MAX - round)));
        b.args.push(("result", Arg::Str("-ECANCELED".into())));
        b.args.push(("overflowed", Arg::Bool(true)));
        b.args.push(("cqe_dropped", Arg::Bool(false)));
        b.flows.extend([1, 1 << 40]);
        if round == 1 {
            // Lengths over 127: nested messages whose length prefix takes two bytes.
            b.args.push(("message", Arg::Str("x".repeat(300))));
        }
        w.event(b).unwrap();
        w.event(Event::new(200, 7, track_event::Type::TYPE_SLICE_END, ""))
            .unwrap();
        let mut i = Event::new(150, 8, track_event::Type::TYPE_INSTANT, "CQE NOP");
        i.terminating_flows.push(1);
        i.args.push(("user_data", Arg::Uint(0)));
        w.event(i).unwrap();
        for v in [0, 5, -3, i64::MIN] {
            let mut c = Event::new(160, 9, track_event::Type::TYPE_COUNTER, "");
            c.counter = Some(v);
            w.event(c).unwrap();
        }
    }
    w.finish().unwrap().0
}

#[test]
fn fast_path_decodes_like_the_generated_messages() {
    let fast = Trace::parse_from_bytes(&write(false)).unwrap();
    let generated = Trace::parse_from_bytes(&write(true)).unwrap();
    assert_eq!(generated.packet.len(), 1 + 2 * 7);
    assert_eq!(fast, generated);
}
