//! A completed request's slice begin, half of all packets, written without building a
//! general [`Event`] when its name and values are interned already.

use super::*;

/// A completed request's slice begin with the usual args (user_data, result, flags,
/// fd, chain position) and flows: see [`PacketWriter::request_begin`].
#[derive(Clone, Copy, Debug)]
pub struct RequestBegin<'a> {
    pub ts: u64,
    pub track: u64,
    pub opcode: u8,
    pub user_data: u64,
    pub res: i32,
    pub flags: u8,
    pub fd: Option<&'a str>,
    pub chain_position: Option<u32>,
    pub flows: [u64; 3],
    pub nflows: usize,
}

impl<'a> RequestBegin<'a> {
    fn flows(&self) -> &[u64] {
        &self.flows[..self.nflows.min(3)]
    }

    /// The same slice begin as a general event.
    pub fn event(&self) -> Event<'a> {
        let mut b = Event::new(
            self.ts,
            self.track,
            track_event::Type::TYPE_SLICE_BEGIN,
            Name::Op(self.opcode),
        );
        b.arg(ArgName::UserData, Arg::Uint(self.user_data));
        b.arg(ArgName::Result, Arg::Result(self.res));
        b.arg(ArgName::Flags, Arg::SqeFlags(self.flags));
        if let Some(fd) = self.fd {
            b.arg(ArgName::Fd, Arg::Str(fd));
        }
        if let Some(pos) = self.chain_position {
            b.arg(ArgName::ChainPosition, Arg::Uint(pos.into()));
        }
        for &id in self.flows() {
            b.flow(id);
        }
        b
    }
}

impl<W: Write> PacketWriter<W> {
    /// A request's slice begin, the other half of all packets: [`Self::event`] for
    /// `r` without building an [`Event`], when its name and values are interned already
    /// (else through [`Self::event`], which interns them: the bytes are the same).
    pub fn request_begin(&mut self, r: &RequestBegin<'_>) -> std::io::Result<()> {
        let i = &self.interner;
        let an = &i.arg_names;
        let name = i.known_name(Name::Op(r.opcode));
        let res = i.known(Arg::Result(r.res));
        let flags = i.known(Arg::SqeFlags(r.flags));
        let fast = name != 0
            && an[ArgName::UserData as usize] != 0
            && an[ArgName::Result as usize] != 0
            && an[ArgName::Flags as usize] != 0
            && (r.fd.is_none() || an[ArgName::Fd as usize] != 0)
            && (r.chain_position.is_none() || an[ArgName::ChainPosition as usize] != 0);
        #[cfg(test)]
        let fast = fast && !self.generated;
        let (Known::Iid(res), Known::Iid(flags), true) = (res, flags, fast) else {
            return self.event(&r.event());
        };
        let bound = PACKET_BOUND + 5 * ARG_BOUND + r.fd.map_or(0, str::len);
        let at = self.room(bound)?;
        let seq_flags = self.sequence_flags();
        let f = FIELDS;
        let an = &self.interner.arg_names;
        let mut c = wire::Cursor::new(&mut self.buf, at);
        let (packet, te) = begin_track_event(
            &mut c,
            r.ts,
            seq_flags,
            track_event::Type::TYPE_SLICE_BEGIN,
            r.track,
        );
        c.uint(f.te_name_iid, name.into());
        let ann = c.begin(f.te_annotations);
        c.uint(f.da_name_iid, an[ArgName::UserData as usize].into());
        c.uint(f.da_uint, r.user_data);
        c.end(ann);
        let ann = c.begin(f.te_annotations);
        c.uint(f.da_name_iid, an[ArgName::Result as usize].into());
        c.uint(f.da_string_iid, res);
        c.end(ann);
        let ann = c.begin(f.te_annotations);
        c.uint(f.da_name_iid, an[ArgName::Flags as usize].into());
        c.uint(f.da_string_iid, flags);
        c.end(ann);
        if let Some(fd) = r.fd {
            let ann = c.begin(f.te_annotations);
            c.uint(f.da_name_iid, an[ArgName::Fd as usize].into());
            c.bytes(f.da_string, fd.as_bytes());
            c.end(ann);
        }
        if let Some(pos) = r.chain_position {
            let ann = c.begin(f.te_annotations);
            c.uint(f.da_name_iid, an[ArgName::ChainPosition as usize].into());
            c.uint(f.da_uint, pos.into());
            c.end(ann);
        }
        for &id in r.flows() {
            c.uint(f.te_flow_ids, id);
        }
        c.end(te);
        c.end(packet);
        let end = c.n;
        self.wrote(at, end)
    }
}
