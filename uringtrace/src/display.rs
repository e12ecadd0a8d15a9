//! Readable renderings of single events (dump's text and JSON lines).

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde_json::{json, Value};
use uringtrace_common::view::{self, EventView};
use uringtrace_common::{EventKind, RawEvent, Role};

use crate::names::{cqe_flags, enter_flags, opcode_name, result_name, setup_flags, sqe_flags};

/// A task's comm as text: up to its first NUL, invalid UTF-8 replaced; borrowed when
/// it is valid (the analyzer compares it with the one it has before keeping a copy).
pub fn comm_text(comm: &[u8]) -> Cow<'_, str> {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end])
}

pub fn comm_str(comm: &[u8]) -> String {
    comm_text(comm).into_owned()
}

fn role_name(r: u8) -> &'static str {
    Role::from_u8(r).map_or("?", Role::name)
}

fn kind_name(k: u16) -> String {
    EventKind::from_u16(k).map_or_else(|| format!("kind{k}"), |k| k.name().to_string())
}

fn ud(v: u64) -> String {
    format!("{v:#x}")
}

/// Kind-specific fields as (name, readable value) pairs, in display order.
pub fn fields(ev: &RawEvent) -> Vec<(&'static str, String)> {
    use EventKind::*;
    let mut f: Vec<(&'static str, String)> = Vec::new();
    let Some(kind) = EventKind::from_u16(ev.kind) else {
        return f;
    };
    let ring = |f: &mut Vec<(&'static str, String)>| {
        if ev.ctx != 0 {
            f.push(("ring", format!("{:#x}", ev.ctx)));
        }
    };
    let req = |f: &mut Vec<(&'static str, String)>| {
        f.push(("req", format!("{:#x}", ev.req)));
    };
    match kind {
        Create => {
            let c = view::Create::read(ev);
            ring(&mut f);
            f.push(("fd", c.fd.to_string()));
            f.push(("sq_entries", c.sq_entries.to_string()));
            f.push(("cq_entries", c.cq_entries.to_string()));
            f.push(("flags", setup_flags(c.flags)));
        }
        Register => {
            let r = view::Register::read(ev);
            ring(&mut f);
            f.push(("opcode", r.opcode.to_string()));
            f.push(("nr_files", r.nr_files.to_string()));
            f.push(("nr_bufs", r.nr_bufs.to_string()));
            f.push(("ret", result_name(ev.res)));
        }
        Submit => {
            let s = view::Submit::read(ev);
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("op", opcode_name(ev.opcode).into_owned()));
            f.push(("flags", sqe_flags(s.req_flags)));
            f.push(("req_flags", format!("{:#x}", s.req_flags)));
            f.push(("sq_thread", s.sq_thread.to_string()));
        }
        Complete => {
            let c = view::Complete::read(ev);
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("res", result_name(ev.res)));
            f.push(("cflags", cqe_flags(ev.cflags)));
            // Any value but "unknown" shows, as the kernel side wrote it.
            if c.file != view::COMPLETE_FILE_UNKNOWN {
                let file = if c.file == view::COMPLETE_FILE_REGULAR {
                    "regular"
                } else {
                    "not regular"
                };
                f.push(("file", file.to_string()));
            }
        }
        CqeOverflow => {
            let o = view::CqeOverflow::read(ev);
            ring(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("res", result_name(ev.res)));
            f.push(("cflags", cqe_flags(ev.cflags)));
            f.push((
                "ocqe",
                if o.dropped() {
                    "NULL (CQE dropped)".into()
                } else {
                    format!("{:#x}", o.ocqe)
                },
            ));
        }
        Link => {
            ring(&mut f);
            req(&mut f);
            f.push(("target", format!("{:#x}", view::Link::read(ev).target_req)));
        }
        FailLink => {
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("op", opcode_name(ev.opcode).into_owned()));
            f.push(("cancelled", format!("{:#x}", view::FailLink::read(ev).link)));
        }
        FileGet => {
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("fd", view::FileGet::read(ev).fd.to_string()));
        }
        QueueAsyncWork => {
            let q = view::QueueAsyncWork::read(ev);
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("op", opcode_name(ev.opcode).into_owned()));
            f.push(("flags", sqe_flags(q.req_flags)));
            f.push(("hashed", q.hashed.to_string()));
        }
        Defer => {
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("op", opcode_name(ev.opcode).into_owned()));
        }
        CqringWait => {
            ring(&mut f);
            f.push((
                "min_events",
                view::CqringWait::read(ev).min_events.to_string(),
            ));
        }
        PollArm | TaskAdd | PollWake => {
            let p = view::Poll::read(ev);
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("op", opcode_name(ev.opcode).into_owned()));
            f.push(("mask", format!("{:#x}", p.mask)));
            if kind == PollArm {
                f.push(("events", format!("{:#x}", p.events)));
            }
        }
        ReqFailed => {
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("op", opcode_name(ev.opcode).into_owned()));
            let sqe = view::ReqFailed::read(ev).sqe_flags;
            f.push(("sqe_flags", sqe_flags(sqe.into())));
            f.push(("error", result_name(ev.res)));
        }
        TaskWorkRun | LocalWorkRun => {
            let w = view::WorkRun::read(ev);
            ring(&mut f);
            f.push(("count", w.count.to_string()));
            f.push(("loops", w.loops.to_string()));
        }
        ShortWrite => {
            let w = view::ShortWrite::read(ev);
            ring(&mut f);
            f.push(("pos", w.pos.to_string()));
            f.push(("wanted", w.wanted.to_string()));
            f.push(("got", w.got.to_string()));
        }
        EnterEnter => {
            let e = view::Enter::read(ev);
            f.push(("fd", e.fd.to_string()));
            f.push(("to_submit", e.to_submit.to_string()));
            f.push(("min_complete", e.min_complete.to_string()));
            f.push(("flags", enter_flags(e.flags)));
        }
        EnterExit => f.push(("ret", result_name(ev.res))),
        SchedWaking => {
            let w = view::SchedWaking::read(ev);
            f.push(("woken", w.woken.to_string()));
            f.push(("target_cpu", w.target_cpu.to_string()));
        }
        SchedSwitch => {
            let s = view::SchedSwitch::read(ev);
            f.push(("prev", s.prev.to_string()));
            f.push(("next", s.next.to_string()));
            f.push(("prev_state", format!("{:#x}", s.prev_state)));
        }
        TaskNewtask => {
            let t = view::TaskNewtask::read(ev);
            f.push(("new_tid", t.new_tid.to_string()));
            f.push(("clone_flags", format!("{:#x}", t.clone_flags)));
        }
        TaskRename => {
            let r = view::TaskRename::read(ev);
            f.push(("tid", r.tid.to_string()));
            f.push(("newcomm", comm_str(&r.newcomm)));
        }
        ProcessFork => {
            let p = view::ProcessFork::read(ev);
            f.push(("parent", p.parent.to_string()));
            f.push(("child", p.child.to_string()));
        }
        FdObject => {
            let o = view::FdObject::read(ev);
            f.push(("fd", o.fd.to_string()));
            f.push(("type", o.fd_type().map_or("?", |k| k.name()).to_string()));
            f.push(("inode", o.inode.to_string()));
        }
        FdName => {
            let n = view::FdName::read(ev);
            f.push(("fd", n.fd.to_string()));
            f.push(("piece", n.index.to_string()));
            f.push(("len", n.len.to_string()));
            // A piece of the name, quoted: a path may hold spaces, and a piece may end
            // inside a UTF-8 character (shown as U+FFFD).
            let text = String::from_utf8_lossy(&n.bytes[..n.used()]);
            f.push(("text", format!("{text:?}")));
        }
        ProcessExit => {}
        SetupFailed => {
            let v = view::SetupFailed::read(ev);
            let opt = |o: Option<u32>| o.map_or_else(|| "?".to_string(), |v| v.to_string());
            f.push(("ret", result_name(ev.res)));
            f.push(("entries", v.entries.to_string()));
            f.push(("io_uring_disabled", opt(v.disabled)));
            f.push((
                "io_uring_group",
                v.group.map_or_else(|| "?".to_string(), |g| g.to_string()),
            ));
            f.push(("seccomp", opt(v.seccomp)));
            f.push(("in_group", v.has(view::SetupFailed::IN_GROUP).to_string()));
            f.push((
                "cap_sys_admin",
                v.has(view::SetupFailed::CAP_SYS_ADMIN).to_string(),
            ));
        }
        TaskState => {
            let t = view::TaskState::read(ev);
            f.push(("tid", t.tid.to_string()));
            f.push(("state", char::from(t.state).to_string()));
            f.push(("syscall", t.syscall.to_string()));
            f.push(("wchan", comm_str(&t.wchan)));
        }
        RingClosed => {
            f.push(("fd", view::RingClosed::read(ev).fd.to_string()));
        }
        RingState => {
            let s = view::RingState::read(ev);
            f.push(("fd", s.fd.to_string()));
            f.push(("sq_head", s.sq_head.to_string()));
            f.push(("sq_tail", s.sq_tail.to_string()));
            f.push(("cq_ready", s.cq_ready.to_string()));
            if let Some(tid) = s.sq_thread {
                f.push(("sq_thread", tid.to_string()));
                f.push(("sq_total_us", s.sq_total_us.to_string()));
                f.push(("sq_work_us", s.sq_work_us.to_string()));
            }
        }
        AggOps => {
            let a = view::AggOps::read(ev);
            ring(&mut f);
            f.push(("opcode", opcode_name(ev.opcode).to_string()));
            f.push(("requests", a.requests.to_string()));
            f.push(("latency_sum_ns", a.latency_sum_ns.to_string()));
            if a.ended_unseen != 0 {
                // Submitted, then ended without a CQE (CQE_SKIP_SUCCESS).
                f.push(("ended_without_cqe", a.ended_unseen.to_string()));
            }
        }
        AggLatency => {
            let a = view::AggLatency::read(ev);
            ring(&mut f);
            f.push(("opcode", opcode_name(ev.opcode).to_string()));
            let low = uringtrace_common::aggregate::lat_bucket_low(a.bucket as usize);
            f.push(("latency_from_ns", low.to_string()));
            f.push(("requests", a.requests.to_string()));
        }
    }
    f
}

/// One text line. `base_ns` is subtracted from timestamps (the recording start).
pub fn text_line(ev: &RawEvent, base_ns: u64) -> String {
    let t = ev.ts_ns.saturating_sub(base_ns);
    let mut s = format!(
        "{:>5}.{:09} cpu{:<2} {}/{} {} [{}] {}",
        t / 1_000_000_000,
        t % 1_000_000_000,
        ev.cpu,
        ev.tgid,
        ev.pid,
        comm_str(&ev.comm),
        role_name(ev.role),
        kind_name(ev.kind),
    );
    for (k, v) in fields(ev) {
        s.push(' ');
        s.push_str(k);
        s.push('=');
        s.push_str(&v);
    }
    s
}

/// One event as `dump --format jsonl` writes it: every raw field of the recorded
/// `RawEvent`, plus the kind, comm and role by name and the kind-specific fields
/// decoded for reading. `uringtrace schema dump` is this type's JSON schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
pub struct EventJson {
    /// Monotonic timestamp (ns, CLOCK_MONOTONIC of the traced host).
    pub ts_ns: u64,
    /// The event kind by name ("submit", "complete", ...); `kindN` for a number this
    /// build does not know.
    #[schemars(schema_with = "kind_schema")]
    pub kind: String,
    pub cpu: u16,
    /// Thread id.
    pub pid: u32,
    /// Process id.
    pub tgid: u32,
    /// The thread's comm, up to its first NUL.
    pub comm: String,
    /// Who ran it: "submitter", "sqpoll", "io-wq", or "?" for an unknown number.
    #[schemars(schema_with = "role_schema")]
    pub role: &'static str,
    /// The ring (`struct io_ring_ctx *`), 0 when the event is about no ring.
    pub ctx: u64,
    /// The request (`struct io_kiocb *`), 0 when none.
    pub req: u64,
    pub user_data: u64,
    /// Kind-specific raw slots (`fields` decodes them).
    pub aux: u64,
    pub aux2: u64,
    pub res: i32,
    pub cflags: u32,
    pub opcode: u8,
    pub args: [u32; 4],
    /// The kind-specific fields decoded, by name, as text (`dump`'s text format shows the
    /// same `name=value` pairs).
    pub fields: BTreeMap<String, String>,
}

impl EventJson {
    pub fn of(ev: &RawEvent) -> EventJson {
        EventJson {
            ts_ns: ev.ts_ns,
            kind: kind_name(ev.kind),
            cpu: ev.cpu,
            pid: ev.pid,
            tgid: ev.tgid,
            comm: comm_str(&ev.comm),
            role: role_name(ev.role),
            ctx: ev.ctx,
            req: ev.req,
            user_data: ev.user_data,
            aux: ev.aux,
            aux2: ev.aux2,
            res: ev.res,
            cflags: ev.cflags,
            opcode: ev.opcode,
            args: ev.args,
            fields: fields(ev)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }
}

fn kind_schema(_: &mut SchemaGenerator) -> Schema {
    let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
    json_schema!({
        "anyOf": [
            { "type": "string", "enum": names },
            { "type": "string", "pattern": "^kind[0-9]+$" },
        ]
    })
}

fn role_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "enum": ["submitter", "sqpoll", "io-wq", "?"] })
}

/// One JSON object with every raw field plus the readable names ([`EventJson`]). Keys
/// come out sorted (a `serde_json` map), as they always have.
pub fn json_value(ev: &RawEvent) -> Value {
    // EventJson has only string map keys and plain numbers, so this cannot fail; a value
    // that names the problem is still better than a panic.
    serde_json::to_value(EventJson::of(ev)).unwrap_or_else(|e| json!({ "error": e.to_string() }))
}

/// Inverse of the raw part of [`json_value`] (used to check round trips).
pub fn from_json(v: &Value) -> Option<RawEvent> {
    let u = |k: &str| v.get(k)?.as_u64();
    let mut comm = [0u8; 16];
    let c = v.get("comm")?.as_str()?.as_bytes();
    comm[..c.len().min(16)].copy_from_slice(&c[..c.len().min(16)]);
    let args = v.get("args")?.as_array()?;
    let arg = |i: usize| args.get(i)?.as_u64().and_then(|x| u32::try_from(x).ok());
    Some(RawEvent {
        ts_ns: u("ts_ns")?,
        ctx: u("ctx")?,
        req: u("req")?,
        user_data: u("user_data")?,
        aux: u("aux")?,
        aux2: u("aux2")?,
        pid: u("pid")? as u32,
        tgid: u("tgid")? as u32,
        res: v.get("res")?.as_i64()? as i32,
        cflags: u("cflags")? as u32,
        args: [arg(0)?, arg(1)?, arg(2)?, arg(3)?],
        kind: EventKind::from_name(v.get("kind")?.as_str()?)? as u16,
        cpu: u("cpu")? as u16,
        opcode: u("opcode")? as u8,
        role: match v.get("role")?.as_str()? {
            "submitter" => 0,
            "sqpoll" => 1,
            "io-wq" => 2,
            _ => return None,
        },
        _pad: [0; 2],
        comm,
    })
}
