//! A request as a slice on its lane: the general path for the rare cases (still in
//! flight at the end, a cancelled chain follower, an overflowed CQE) and the writer's
//! fast path for the rest.

use std::io::Write;

use perfetto_protos::track_event::track_event::Type;
use uringtrace_common::FdType;

use super::packets::{Arg, ArgName, Event, Name, PacketWriter, RequestBegin};
use super::requests::{fd_label, Request};
use super::tracks::Tracks;
use super::HashMap;
use crate::analyzer::state::FdNames;
use crate::names;

/// A request to write as a slice: a copy, or one detached from [`InFlight`] and read in
/// its slot (which is then freed): a copy right after the lookup stalled on store
/// forwarding, a quarter of a completion's time.
pub enum Held {
    Owned(Request),
    Detached(u32),
}

/// What a request's fd arg is made from.
pub struct Files<'a> {
    /// Scratch for the arg's text.
    pub text: &'a mut String,
    pub fds: &'a HashMap<(u32, i32), (FdType, u64)>,
    pub names: &'a FdNames,
}

/// One request as a slice on its lane; `end` None: still in flight at the end.
pub fn write_slice<W: Write>(
    out: &mut PacketWriter<W>,
    tracks: &mut Tracks,
    files: &mut Files<'_>,
    r: &Request,
    end: u64,
    res: Option<i32>,
    overflowed: Option<bool>,
) -> std::io::Result<()> {
    tracks.free_lane(r.ring, r.lane);
    let ring = tracks.get_mut(r.ring);
    ring.in_flight = ring.in_flight.saturating_sub(1);
    let track = tracks.lane_uuid(r.ring, r.lane);
    let cancelled_follower =
        matches!(r.chain, Some((_, pos)) if pos > 0) && res == Some(-libc::ECANCELED);
    let name = if cancelled_follower {
        Name::Cancelled(r.opcode)
    } else {
        Name::Op(r.opcode)
    };
    // The fd arg's text, in `files.text`.
    let fd = r.fd.map(|fd| {
        fd_label(
            files.text,
            fd,
            files.fds.get(&(r.tgid, fd)).copied(),
            files.names.get(r.tgid, fd),
            r.flags & names::IOSQE_FIXED_FILE != 0,
        );
    });
    // The common case (completed, not cancelled, not overflowed) takes the writer's
    // fast path; the others are rare and built as general events.
    if let (Some(res), false, None) = (res, cancelled_follower, overflowed) {
        let mut flows = [0; 3];
        let mut nflows = 0;
        for flow in [r.punt, r.chain.map(|c| c.0), r.msg].into_iter().flatten() {
            flows[nflows] = flow;
            nflows += 1;
        }
        out.request_begin(&RequestBegin {
            ts: r.ts,
            track,
            opcode: r.opcode,
            user_data: r.user_data,
            res,
            flags: r.flags as u8,
            fd: fd.map(|()| files.text.as_str()),
            chain_position: r.chain.map(|(_, pos)| pos),
            flows,
            nflows,
        })?;
        return out.slice_end(end.max(r.ts), track);
    }
    let mut b = Event::new(r.ts, track, Type::TYPE_SLICE_BEGIN, name);
    b.arg(ArgName::UserData, Arg::Uint(r.user_data));
    b.arg(
        ArgName::Result,
        res.map_or(Arg::Str("none (in flight)"), Arg::Result),
    );
    b.arg(ArgName::Flags, Arg::SqeFlags(r.flags as u8));
    if fd.is_some() {
        b.arg(ArgName::Fd, Arg::Str(files.text));
    }
    if let Some((_, pos)) = r.chain {
        b.arg(ArgName::ChainPosition, Arg::Uint(pos.into()));
    }
    if cancelled_follower {
        b.arg(ArgName::CancelledFollower, Arg::Bool(true));
    }
    if let Some(dropped) = overflowed {
        b.arg(ArgName::Overflowed, Arg::Bool(true));
        b.arg(ArgName::CqeDropped, Arg::Bool(dropped));
    }
    for flow in [r.punt, r.chain.map(|c| c.0), r.msg].into_iter().flatten() {
        b.flow(flow);
    }
    out.event(&b)?;
    if res.is_some() || overflowed.is_some() {
        out.slice_end(end.max(r.ts), track)?;
    }
    Ok(())
}
