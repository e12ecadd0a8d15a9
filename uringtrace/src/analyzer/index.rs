//! A small u64 → u64 map for the per-event hot path (user_data → req of in-flight
//! requests): open addressing, linear probing, deletion by backward shift. A submit
//! and a completion each touch it; hashbrown's general-purpose insert and entry cost
//! several times as many instructions for these keys.

/// Fibonacci hashing: the top bits of the product are well mixed even for keys that
/// count up or differ only in their low bits (user_data often does both).
const MUL: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Clone, Debug, Default)]
pub struct U64Map {
    /// Empty, or a power of two long, at most half full.
    slots: Vec<Option<(u64, u64)>>,
    /// 64 − log2(slots.len()).
    shift: u32,
    len: usize,
}

impl U64Map {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn home(&self, k: u64) -> usize {
        (k.wrapping_mul(MUL) >> self.shift) as usize
    }

    /// Slot of `k`, when present.
    #[inline]
    fn find(&self, k: u64) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(k);
        loop {
            match self.slots[i] {
                None => return None,
                Some((key, _)) if key == k => return Some(i),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    #[inline]
    pub fn get(&self, k: &u64) -> Option<&u64> {
        let i = self.find(*k)?;
        self.slots[i].as_ref().map(|(_, v)| v)
    }

    /// Sets `k` to `v`; the previous value, if any.
    #[inline]
    pub fn insert(&mut self, k: u64, v: u64) -> Option<u64> {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(k);
        loop {
            match &mut self.slots[i] {
                slot @ None => {
                    *slot = Some((k, v));
                    self.len += 1;
                    return None;
                }
                Some((key, old)) if *key == k => return Some(std::mem::replace(old, v)),
                Some(_) => i = (i + 1) & mask,
            }
        }
    }

    #[inline]
    pub fn remove(&mut self, k: &u64) -> Option<u64> {
        let i = self.find(*k)?;
        self.remove_at(i)
    }

    /// Removes `k` only while it maps to `v`.
    #[inline]
    pub fn remove_if(&mut self, k: u64, v: u64) {
        if let Some(i) = self.find(k) {
            if self.slots[i].is_some_and(|(_, x)| x == v) {
                self.remove_at(i);
            }
        }
    }

    /// Empties slot `i` (found occupied by the caller) and returns its value.
    fn remove_at(&mut self, i: usize) -> Option<u64> {
        let (_, v) = self.slots[i].take()?;
        self.len -= 1;
        // Backward shift: move later members of the probe run into the hole when the
        // hole is on their probe path, so that lookups never stop short.
        let mask = self.slots.len() - 1;
        let mut hole = i;
        let mut j = (i + 1) & mask;
        while let Some((k, _)) = self.slots[j] {
            let from_home = j.wrapping_sub(self.home(k)) & mask;
            let from_hole = j.wrapping_sub(hole) & mask;
            if from_home >= from_hole {
                self.slots[hole] = self.slots[j].take();
                hole = j;
            }
            j = (j + 1) & mask;
        }
        Some(v)
    }

    #[cold]
    fn grow(&mut self) {
        let cap = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![None; cap]);
        self.shift = 64 - cap.trailing_zeros();
        self.len = 0;
        for (k, v) in old.into_iter().flatten() {
            self.insert(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::U64Map;

    /// Against std's HashMap, with keys that collide a lot (few distinct low bits,
    /// counting up, and the extremes).
    #[test]
    fn behaves_as_a_hash_map() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut m = U64Map::default();
        let mut reference = HashMap::new();
        for step in 0..200_000u64 {
            let r = next();
            let k = match r % 4 {
                0 => r >> 60,
                1 => (step / 3) << 8,
                2 => u64::MAX - (r >> 58),
                _ => r >> 54,
            };
            match (r >> 8) % 5 {
                0 | 1 => assert_eq!(m.insert(k, step), reference.insert(k, step)),
                2 => assert_eq!(m.remove(&k), reference.remove(&k)),
                3 => {
                    let v = reference.get(&k).copied().unwrap_or(0);
                    let v = if r & 1 == 0 { v } else { v + 1 };
                    m.remove_if(k, v);
                    if reference.get(&k) == Some(&v) {
                        reference.remove(&k);
                    }
                }
                _ => assert_eq!(m.get(&k), reference.get(&k)),
            }
            assert_eq!(m.len(), reference.len());
        }
        for (k, v) in &reference {
            assert_eq!(m.get(k), Some(v));
        }
    }
}
