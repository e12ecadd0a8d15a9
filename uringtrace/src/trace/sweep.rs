//! Kernel map entries that no event retires: io threads that exited (an idle io-wq
//! worker exits after a few seconds while its process lives on), processes that
//! exited with an overflow not yet flushed, or that were in the process filter, and
//! rings that hold a slot or a place in the ring filter without the session having
//! seen them created (created before the trace, or only counted in the kernel). A
//! long host-wide trace would otherwise fill these maps with the dead.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aya::maps::{HashMap as BpfHashMap, MapData};

use super::loader::{ignore_missing, LoadError, Tracer};
use super::occupancy::entries;
use super::ring_watch::RingWatch;

/// Whether process `tgid` exists.
pub fn process_alive(tgid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{tgid}")).exists()
}

/// Whether thread `tid` of `tgid` exists.
pub fn thread_alive(tgid: u32, tid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{tgid}/task/{tid}")).exists()
}

/// Removes the dead from the maps, a sweep at a time.
#[derive(Default)]
pub struct Sweeper {
    last: Option<Instant>,
    /// (map, key) found dead at the last sweep: removed if still dead at this one, so
    /// that an entry the programs add as its task is being created is never taken
    /// for a dead one.
    suspects: HashSet<(&'static str, u64)>,
}

/// The maps keyed by a task id, with what their key is dead by: (map, key is a
/// thread id whose process is the value).
const TASK_MAPS: [(&str, bool); 3] = [("IOTHREADS", true), ("OVERFLOWED", false), ("TGIDS", false)];

impl Sweeper {
    pub const INTERVAL: Duration = Duration::from_secs(2);

    pub fn due(&self) -> bool {
        self.last.is_none_or(|t| t.elapsed() >= Self::INTERVAL)
    }

    /// Rings held in the kernel become known to `rings` (which forgets them once gone,
    /// statistics read first); dead tasks leave IOTHREADS, OVERFLOWED and TGIDS.
    pub fn sweep(
        &mut self,
        tracer: &mut Tracer,
        rings: &mut RingWatch,
        now: Instant,
    ) -> Result<(), LoadError> {
        self.last = Some(now);
        for (_, r) in tracer.ring_aggs()? {
            rings.learn(r.ctx, r.tgid);
        }
        for (ctx, tgid) in tracer.filtered_rings()? {
            rings.learn(ctx, tgid);
        }
        let mut suspects = HashSet::new();
        let mut filter_changed = false;
        for (name, by_thread) in TASK_MAPS {
            let dead: Vec<u32> = entries::<u32>(tracer, name)?
                .into_iter()
                .filter(|&(key, owner)| {
                    if by_thread {
                        !thread_alive(owner, key)
                    } else {
                        !process_alive(key)
                    }
                })
                .map(|(key, _)| key)
                .collect();
            let map_err = |error| LoadError::Map { name, error };
            let mut map: BpfHashMap<&mut MapData, u32, u32> =
                BpfHashMap::try_from(tracer.map_mut(name).ok_or(LoadError::MissingMap(name))?)
                    .map_err(map_err)?;
            for key in dead {
                if self.suspects.contains(&(name, u64::from(key))) {
                    ignore_missing(map.remove(&key)).map_err(map_err)?;
                    filter_changed |= name == "TGIDS";
                } else {
                    suspects.insert((name, u64::from(key)));
                }
            }
        }
        self.suspects = suspects;
        if filter_changed {
            // Task caches hold filter verdicts (a pid may be reused).
            tracer.bump_filter_gen()?;
        }
        Ok(())
    }
}
