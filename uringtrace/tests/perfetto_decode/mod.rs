//! Decoding a Perfetto trace written by `uringtrace export` (or `--perfetto`) with the
//! official protos (`perfetto_protos`), interning resolved as Perfetto's trace processor
//! does: shared by the export tests on recordings and the live ones.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use perfetto_protos::debug_annotation::debug_annotation;
use perfetto_protos::trace::Trace;
use perfetto_protos::trace_packet::trace_packet;
use perfetto_protos::track_descriptor::track_descriptor;
use perfetto_protos::track_event::track_event::{self, Type};
use protobuf::Message as _;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Track {
    pub name: String,
    pub parent: Option<u64>,
    /// "process", "thread", "counter" or "" (a plain named track).
    pub kind: &'static str,
    pub pid: i32,
    pub tid: i32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slice {
    pub track: u64,
    pub name: String,
    pub ts: u64,
    /// None: never ended.
    pub dur: Option<u64>,
    pub args: BTreeMap<String, String>,
    pub flows: Vec<u64>,
    pub terminating: Vec<u64>,
    pub instant: bool,
}

#[derive(Default, Debug)]
pub struct Decoded {
    pub tracks: HashMap<u64, Track>,
    pub slices: Vec<Slice>,
    pub counters: Vec<(u64, u64, i64)>,
}

impl Decoded {
    /// Slices (not instants) on request lanes, by begin time.
    pub fn requests(&self) -> Vec<&Slice> {
        let mut v: Vec<&Slice> = self
            .slices
            .iter()
            .filter(|s| !s.instant && self.tracks[&s.track].name.starts_with("requests #"))
            .collect();
        v.sort_by_key(|s| (s.ts, s.args.get("user_data").cloned()));
        v
    }
    /// Every flow id → the names of the events on it, in time order.
    pub fn flows(&self) -> BTreeMap<u64, Vec<String>> {
        let mut m: BTreeMap<u64, Vec<(u64, String)>> = BTreeMap::new();
        for s in &self.slices {
            for f in s.flows.iter().chain(&s.terminating) {
                m.entry(*f).or_default().push((s.ts, s.name.clone()));
            }
        }
        m.into_iter()
            .map(|(k, mut v)| {
                v.sort();
                (k, v.into_iter().map(|x| x.1).collect())
            })
            .collect()
    }
}

pub fn decode(path: &Path) -> Decoded {
    let bytes = std::fs::read(path).unwrap();
    let trace = Trace::parse_from_bytes(&bytes).unwrap();
    let mut d = Decoded::default();
    let mut names: HashMap<u64, String> = HashMap::new();
    let mut arg_names: HashMap<u64, String> = HashMap::new();
    // Interned annotation values (results, IOSQE flags).
    let mut values: HashMap<u64, String> = HashMap::new();
    // Open slice begins per track (a stack, as Perfetto nests them).
    let mut open: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, p) in trace.packet.iter().enumerate() {
        let flags = p.sequence_flags.unwrap_or(0);
        if i == 0 {
            assert_ne!(
                flags & 1,
                0,
                "the first packet clears the incremental state"
            );
        }
        if let Some(interned) = p.interned_data.as_ref() {
            for n in &interned.event_names {
                assert!(names.insert(n.iid(), n.name().to_owned()).is_none());
            }
            for n in &interned.debug_annotation_names {
                assert!(arg_names.insert(n.iid(), n.name().to_owned()).is_none());
            }
            for v in &interned.debug_annotation_string_values {
                let text = String::from_utf8(v.str().to_vec()).unwrap();
                assert!(values.insert(v.iid(), text).is_none());
            }
        }
        match &p.data {
            Some(trace_packet::Data::TrackDescriptor(t)) => {
                let (kind, name, pid, tid) = if let Some(pr) = t.process.as_ref() {
                    ("process", pr.process_name().to_owned(), pr.pid(), 0)
                } else if let Some(th) = t.thread.as_ref() {
                    ("thread", th.thread_name().to_owned(), th.pid(), th.tid())
                } else {
                    let name = match &t.static_or_dynamic_name {
                        Some(track_descriptor::Static_or_dynamic_name::Name(n)) => n.clone(),
                        _ => String::new(),
                    };
                    let kind = if t.counter.is_some() { "counter" } else { "" };
                    (kind, name, 0, 0)
                };
                d.tracks.insert(
                    t.uuid(),
                    Track {
                        name,
                        parent: t.parent_uuid,
                        kind,
                        pid,
                        tid,
                    },
                );
            }
            Some(trace_packet::Data::TrackEvent(e)) => {
                assert_ne!(flags & 2, 0, "track events need the incremental state");
                let track = e.track_uuid();
                assert!(
                    d.tracks.contains_key(&track),
                    "event on an undeclared track"
                );
                let name = match &e.name_field {
                    Some(track_event::Name_field::NameIid(iid)) => names[iid].clone(),
                    Some(track_event::Name_field::Name(n)) => n.clone(),
                    _ => String::new(),
                };
                let args = e
                    .debug_annotations
                    .iter()
                    .map(|a| {
                        let k = match &a.name_field {
                            Some(debug_annotation::Name_field::NameIid(iid)) => {
                                arg_names[iid].clone()
                            }
                            other => panic!("annotation name not interned: {other:?}"),
                        };
                        let v = match &a.value {
                            Some(debug_annotation::Value::UintValue(v)) => v.to_string(),
                            Some(debug_annotation::Value::IntValue(v)) => v.to_string(),
                            Some(debug_annotation::Value::StringValue(v)) => v.clone(),
                            Some(debug_annotation::Value::StringValueIid(iid)) => {
                                values[iid].clone()
                            }
                            Some(debug_annotation::Value::BoolValue(v)) => v.to_string(),
                            other => panic!("unexpected value {other:?}"),
                        };
                        (k, v)
                    })
                    .collect();
                let ts = p.timestamp();
                let slice = |instant: bool| Slice {
                    track,
                    name: name.clone(),
                    ts,
                    dur: instant.then_some(0),
                    args,
                    flows: e.flow_ids.clone(),
                    terminating: e.terminating_flow_ids.clone(),
                    instant,
                };
                match e.type_() {
                    Type::TYPE_SLICE_BEGIN => {
                        open.entry(track).or_default().push(d.slices.len());
                        d.slices.push(slice(false));
                    }
                    Type::TYPE_SLICE_END => {
                        let i = open.get_mut(&track).and_then(|v| v.pop()).unwrap();
                        assert!(ts >= d.slices[i].ts);
                        d.slices[i].dur = Some(ts - d.slices[i].ts);
                    }
                    Type::TYPE_INSTANT => d.slices.push(slice(true)),
                    Type::TYPE_COUNTER => d.counters.push((track, ts, e.counter_value())),
                    t => panic!("unexpected type {t:?}"),
                }
            }
            other => panic!("unexpected packet {other:?}"),
        }
    }
    d
}

pub fn summary(d: &Decoded) -> Vec<String> {
    d.requests()
        .iter()
        .map(|s| {
            format!(
                "{} ud={} res={} flags={}",
                s.name, s.args["user_data"], s.args["result"], s.args["flags"]
            )
        })
        .collect()
}

pub fn on(d: &Decoded, s: &Slice) -> Track {
    d.tracks[&s.track].clone()
}

pub fn named<'a>(d: &'a Decoded, name: &str) -> Vec<&'a Slice> {
    let mut v: Vec<&Slice> = d.slices.iter().filter(|s| s.name == name).collect();
    v.sort_by_key(|s| s.ts);
    v
}

/// Every track hangs under a declared parent; a ring's group under its process.
pub fn check_hierarchy(d: &Decoded) {
    for t in d.tracks.values() {
        if let Some(p) = t.parent {
            assert!(d.tracks.contains_key(&p), "{t:?} has an undeclared parent");
        }
        if t.name.starts_with("io_uring 0x") {
            assert_eq!(d.tracks[&t.parent.unwrap()].kind, "process");
        }
        if t.name.starts_with("requests #") {
            assert!(d.tracks[&t.parent.unwrap()].name.starts_with("io_uring 0x"));
        }
        if t.kind == "thread" {
            assert_eq!(d.tracks[&t.parent.unwrap()].kind, "process");
        }
    }
}

/// What the cq-overflow scenario's export holds, recorded or live: 17 NOPs on a 4-entry
/// CQ, user_data 5-17 overflowed (kept, not dropped), one instant each, one finding,
/// and the scenario's four GETEVENTS waits for 4, 4, 4 and 1 completions.
pub fn assert_cq_overflow_export(d: &Decoded) {
    check_hierarchy(d);
    let reqs = d.requests();
    assert_eq!(reqs.len(), 17);
    let overflowed: Vec<String> = reqs
        .iter()
        .filter(|s| s.args.contains_key("overflowed"))
        .map(|s| s.args["user_data"].clone())
        .collect();
    assert_eq!(
        overflowed,
        (5..=17).map(|u| u.to_string()).collect::<Vec<_>>()
    );
    let instants = named(d, "CQ overflow");
    let uds: Vec<&str> = instants
        .iter()
        .map(|s| s.args["user_data"].as_str())
        .collect();
    assert_eq!(uds, (5..=17).map(|u| u.to_string()).collect::<Vec<_>>());
    assert!(instants
        .iter()
        .all(|s| s.args["dropped"] == "false" && on(d, s).name.starts_with("io_uring 0x")));
    assert_eq!(named(d, "finding: cq-overflow").len(), 1);
    let waits: Vec<&str> = named(d, "io_uring_enter")
        .iter()
        .filter(|s| s.args["flags"].contains("EXT_ARG"))
        .map(|s| s.args["min_complete"].as_str())
        .collect();
    assert_eq!(waits, ["4", "4", "4", "1"]);
}
