//! The interning state of the export's one packet sequence: event names, debug annotation
//! names and the common string values (results, IOSQE flags) get ids in order of first
//! use; a packet declares an id in its `InternedData` the first time it uses it.

use std::borrow::Cow;
use std::collections::HashMap as StdHashMap;

/// foldhash: SipHash was a tenth of an export's time.
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;

use super::packets::{Arg, ArgName, Name, ARG_NAMES};
use crate::names;

/// Results in -SMALL_RES..=SMALL_RES are interned through an array (errnos, small sizes).
const SMALL_RES: i32 = 4096;
/// Other distinct results interned through a map, at most this many (constant memory);
/// later ones are written inline.
const MAX_BIG_RES: usize = 16384;

/// An interned id, with the text to declare when it is new.
pub struct Iid<'a> {
    pub iid: u64,
    pub new: Option<Cow<'a, str>>,
}

/// An annotation value known without the interner's slower path.
pub enum Known {
    Uint(u64),
    Bool(bool),
    Iid(u64),
    No,
}

/// An annotation value as written.
pub enum Value<'a> {
    Uint(u64),
    Bool(bool),
    Str(Cow<'a, str>),
    Interned(Iid<'a>),
}

/// The sequence's interning state: ids handed out in order of first use.
pub struct Interner {
    /// [Op, Cancelled, Punt, Cqe][opcode] → iid (0: not yet).
    op_names: [[u32; 256]; 4],
    text_names: HashMap<String, u64>,
    next_name: u64,
    pub arg_names: [u32; ARG_NAMES.len()],
    next_arg: u64,
    small_res: Vec<u32>,
    big_res: HashMap<i32, u64>,
    sqe_flags: [u32; 256],
    next_str: u64,
}

impl Interner {
    pub fn new() -> Self {
        Interner {
            op_names: [[0; 256]; 4],
            text_names: HashMap::default(),
            next_name: 1,
            arg_names: [0; ARG_NAMES.len()],
            next_arg: 1,
            small_res: vec![0; 2 * SMALL_RES as usize + 1],
            big_res: HashMap::default(),
            sqe_flags: [0; 256],
            next_str: 1,
        }
    }

    pub fn name<'a>(&mut self, name: Name<'a>) -> Iid<'a> {
        let slot = match name {
            Name::Op(op) => &mut self.op_names[0][op as usize],
            Name::Cancelled(op) => &mut self.op_names[1][op as usize],
            Name::Punt(op) => &mut self.op_names[2][op as usize],
            Name::Cqe(op) => &mut self.op_names[3][op as usize],
            Name::Text(t) => {
                if let Some(&iid) = self.text_names.get(t) {
                    return Iid { iid, new: None };
                }
                let iid = self.next_name;
                self.next_name += 1;
                self.text_names.insert(t.to_owned(), iid);
                return Iid {
                    iid,
                    new: Some(t.into()),
                };
            }
        };
        if *slot != 0 {
            return Iid {
                iid: (*slot).into(),
                new: None,
            };
        }
        let iid = self.next_name;
        self.next_name += 1;
        *slot = iid as u32;
        Iid {
            iid,
            new: Some(name.text()),
        }
    }

    pub fn arg_name(&mut self, name: ArgName) -> Iid<'static> {
        let slot = &mut self.arg_names[name as usize];
        if *slot != 0 {
            return Iid {
                iid: (*slot).into(),
                new: None,
            };
        }
        let iid = self.next_arg;
        self.next_arg += 1;
        *slot = iid as u32;
        Iid {
            iid,
            new: Some(name.name().into()),
        }
    }

    /// An opcode's name's iid when interned already; else 0.
    #[inline(always)]
    pub fn known_name(&self, name: Name<'_>) -> u32 {
        match name {
            Name::Op(op) => self.op_names[0][op as usize],
            _ => 0,
        }
    }

    /// A value written without interning, or interned already; else `Known::No`.
    #[inline(always)]
    pub fn known(&self, v: Arg<'_>) -> Known {
        let iid = match v {
            Arg::Uint(v) => return Known::Uint(v),
            Arg::Bool(v) => return Known::Bool(v),
            Arg::Str(_) => return Known::No,
            Arg::SqeFlags(f) => self.sqe_flags[f as usize],
            Arg::Result(res) => match usize::try_from(res + SMALL_RES) {
                Ok(i) if res <= SMALL_RES => self.small_res[i],
                _ => return Known::No,
            },
        };
        match iid {
            0 => Known::No,
            iid => Known::Iid(iid.into()),
        }
    }

    pub fn value<'a>(&mut self, v: Arg<'a>) -> Value<'a> {
        let (slot, text): (&mut u32, fn(u64) -> String) = match v {
            Arg::Uint(v) => return Value::Uint(v),
            Arg::Bool(v) => return Value::Bool(v),
            Arg::Str(s) => return Value::Str(s.into()),
            Arg::SqeFlags(f) => (&mut self.sqe_flags[f as usize], names::sqe_flags),
            Arg::Result(res) => match usize::try_from(res + SMALL_RES) {
                Ok(i) if res <= SMALL_RES => {
                    (&mut self.small_res[i], |r| names::result_name(r as i32))
                }
                _ => return self.big_result(res),
            },
        };
        if *slot != 0 {
            return Value::Interned(Iid {
                iid: (*slot).into(),
                new: None,
            });
        }
        let iid = self.next_str;
        self.next_str += 1;
        *slot = iid as u32;
        let key = match v {
            Arg::SqeFlags(f) => f.into(),
            Arg::Result(res) => res as u32 as u64,
            _ => 0,
        };
        Value::Interned(Iid {
            iid,
            new: Some(text(key).into()),
        })
    }

    fn big_result<'a>(&mut self, res: i32) -> Value<'a> {
        if let Some(&iid) = self.big_res.get(&res) {
            return Value::Interned(Iid { iid, new: None });
        }
        if self.big_res.len() == MAX_BIG_RES {
            return Value::Str(names::result_name(res).into());
        }
        let iid = self.next_str;
        self.next_str += 1;
        self.big_res.insert(res, iid);
        Value::Interned(Iid {
            iid,
            new: Some(names::result_name(res).into()),
        })
    }
}
