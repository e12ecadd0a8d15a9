//! Readable renderings of single events (dump's text and JSON lines).

use serde_json::{json, Map, Value};
use uringtrace_common::{EventKind, RawEvent, Role};

use crate::names::{cqe_flags, enter_flags, opcode_name, result_name, setup_flags, sqe_flags};

pub fn comm_str(comm: &[u8]) -> String {
    let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..end]).into_owned()
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
            ring(&mut f);
            f.push(("fd", ev.args[0].to_string()));
            f.push(("sq_entries", ev.args[1].to_string()));
            f.push(("cq_entries", ev.args[2].to_string()));
            f.push(("flags", setup_flags(ev.cflags)));
        }
        Register => {
            ring(&mut f);
            f.push(("opcode", ev.args[0].to_string()));
            f.push(("nr_files", ev.args[1].to_string()));
            f.push(("nr_bufs", ev.args[2].to_string()));
            f.push(("ret", result_name(ev.res)));
        }
        Submit => {
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("op", opcode_name(ev.opcode).into_owned()));
            f.push(("flags", sqe_flags(ev.aux)));
            f.push(("req_flags", format!("{:#x}", ev.aux)));
            f.push(("sq_thread", ev.args[1].to_string()));
        }
        Complete => {
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("res", result_name(ev.res)));
            f.push(("cflags", cqe_flags(ev.cflags)));
            if ev.args[1] != 0 {
                let file = if ev.args[1] == 2 {
                    "regular"
                } else {
                    "not regular"
                };
                f.push(("file", file.to_string()));
            }
        }
        CqeOverflow => {
            ring(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("res", result_name(ev.res)));
            f.push(("cflags", cqe_flags(ev.cflags)));
            f.push((
                "ocqe",
                if ev.aux == 0 {
                    "NULL (CQE dropped)".into()
                } else {
                    format!("{:#x}", ev.aux)
                },
            ));
        }
        Link => {
            ring(&mut f);
            req(&mut f);
            f.push(("target", format!("{:#x}", ev.aux)));
        }
        FailLink => {
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("op", opcode_name(ev.opcode).into_owned()));
            f.push(("cancelled", format!("{:#x}", ev.aux)));
        }
        FileGet => {
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("fd", (ev.args[0] as i32).to_string()));
        }
        QueueAsyncWork => {
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("op", opcode_name(ev.opcode).into_owned()));
            f.push(("flags", sqe_flags(ev.aux)));
            f.push(("hashed", ev.args[0].to_string()));
        }
        Defer => {
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("op", opcode_name(ev.opcode).into_owned()));
        }
        CqringWait => {
            ring(&mut f);
            f.push(("min_events", ev.args[0].to_string()));
        }
        PollArm | TaskAdd | PollWake => {
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("op", opcode_name(ev.opcode).into_owned()));
            f.push(("mask", format!("{:#x}", ev.args[0])));
            if kind == PollArm {
                f.push(("events", format!("{:#x}", ev.args[1])));
            }
        }
        ReqFailed => {
            ring(&mut f);
            req(&mut f);
            f.push(("user_data", ud(ev.user_data)));
            f.push(("op", opcode_name(ev.opcode).into_owned()));
            f.push(("sqe_flags", sqe_flags(ev.cflags.into())));
            f.push(("error", result_name(ev.res)));
        }
        TaskWorkRun | LocalWorkRun => {
            ring(&mut f);
            f.push(("count", ev.args[0].to_string()));
            f.push(("loops", ev.args[1].to_string()));
        }
        ShortWrite => {
            ring(&mut f);
            f.push(("pos", ev.aux.to_string()));
            f.push(("wanted", ev.aux2.to_string()));
            f.push(("got", ev.res.to_string()));
        }
        EnterEnter => {
            f.push(("fd", ev.args[0].to_string()));
            f.push(("to_submit", ev.args[1].to_string()));
            f.push(("min_complete", ev.args[2].to_string()));
            f.push(("flags", enter_flags(ev.cflags)));
        }
        EnterExit => f.push(("ret", result_name(ev.res))),
        SchedWaking => {
            f.push(("woken", ev.args[0].to_string()));
            f.push(("target_cpu", ev.args[1].to_string()));
        }
        SchedSwitch => {
            f.push(("prev", ev.args[0].to_string()));
            f.push(("next", ev.args[1].to_string()));
            f.push(("prev_state", format!("{:#x}", ev.aux)));
        }
        TaskNewtask => {
            f.push(("new_tid", ev.args[0].to_string()));
            f.push(("clone_flags", format!("{:#x}", ev.aux)));
        }
        TaskRename => {
            let mut comm = [0u8; 16];
            comm[..8].copy_from_slice(&ev.aux.to_ne_bytes());
            comm[8..].copy_from_slice(&ev.aux2.to_ne_bytes());
            f.push(("tid", ev.args[0].to_string()));
            f.push(("newcomm", comm_str(&comm)));
        }
        ProcessFork => {
            f.push(("parent", ev.args[0].to_string()));
            f.push(("child", ev.args[1].to_string()));
        }
        FdObject => {
            f.push(("fd", (ev.args[0] as i32).to_string()));
            let kind = uringtrace_common::FdType::from_u32(ev.args[1]);
            f.push(("type", kind.map_or("?", |k| k.name()).to_string()));
            f.push(("inode", ev.aux.to_string()));
        }
        ProcessExit => {}
        RingClosed => {
            f.push(("fd", ev.args[0].to_string()));
        }
        RingState => {
            f.push(("fd", ev.args[0].to_string()));
            f.push(("sq_head", ev.args[1].to_string()));
            f.push(("sq_tail", ev.args[2].to_string()));
            f.push(("cq_ready", ev.args[3].to_string()));
            if ev.aux != 0 {
                f.push(("sq_thread", ev.aux.to_string()));
                f.push(("sq_total_us", ev.aux2.to_string()));
                f.push(("sq_work_us", ev.user_data.to_string()));
            }
        }
        AggOps => {
            ring(&mut f);
            f.push(("opcode", crate::names::opcode_name(ev.opcode).to_string()));
            f.push(("requests", ev.aux.to_string()));
            f.push(("latency_sum_ns", ev.aux2.to_string()));
            let unseen = ev.args[uringtrace_common::aggregate::AGG_OPS_UNSEEN_ARG];
            if unseen != 0 {
                // Submitted, then ended without a CQE (CQE_SKIP_SUCCESS).
                f.push(("ended_without_cqe", unseen.to_string()));
            }
        }
        AggLatency => {
            ring(&mut f);
            f.push(("opcode", crate::names::opcode_name(ev.opcode).to_string()));
            let low = uringtrace_common::aggregate::lat_bucket_low(ev.args[0] as usize);
            f.push(("latency_from_ns", low.to_string()));
            f.push(("requests", ev.aux.to_string()));
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

/// One JSON object with every raw field plus the readable names.
pub fn json_value(ev: &RawEvent) -> Value {
    let mut m = Map::new();
    m.insert("ts_ns".into(), json!(ev.ts_ns));
    m.insert("kind".into(), json!(kind_name(ev.kind)));
    m.insert("cpu".into(), json!(ev.cpu));
    m.insert("pid".into(), json!(ev.pid));
    m.insert("tgid".into(), json!(ev.tgid));
    m.insert("comm".into(), json!(comm_str(&ev.comm)));
    m.insert("role".into(), json!(role_name(ev.role)));
    m.insert("ctx".into(), json!(ev.ctx));
    m.insert("req".into(), json!(ev.req));
    m.insert("user_data".into(), json!(ev.user_data));
    m.insert("aux".into(), json!(ev.aux));
    m.insert("aux2".into(), json!(ev.aux2));
    m.insert("res".into(), json!(ev.res));
    m.insert("cflags".into(), json!(ev.cflags));
    m.insert("opcode".into(), json!(ev.opcode));
    m.insert("args".into(), json!(ev.args));
    let named: Map<String, Value> = fields(ev)
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    m.insert("fields".into(), Value::Object(named));
    Value::Object(m)
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
