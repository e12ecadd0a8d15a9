//! LEB128 varints and zigzag: the one implementation, for every record of both format
//! versions (docs/recording-format.md).
//!
//! A varint holds 7 bits a byte, lowest group first, the high bit set on every byte
//! but the last: at most [`MAX_LEN`] bytes, the 10th holding only bit 63. A longer
//! form of a value (`0x80 0x00` for 0) reads as that value: the format allows it, and
//! the bound on the longest record ([`super::codec2::LOOKAHEAD`]) counts with it.

/// Most bytes a varint takes.
pub const MAX_LEN: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VarintError {
    /// The input ends inside the varint.
    Truncated,
    /// More than 64 bits: a 10th byte above 1 (so also more than 10 bytes).
    Overflow,
}

/// Bytes `v` takes: one per started group of 7 bits (0 takes one byte).
#[inline(always)]
pub fn len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros()).div_ceil(7) as usize
}

/// Writes `v` at the start of `out` (which must have room: [`MAX_LEN`] always is);
/// returns the bytes written.
#[inline(always)]
pub fn encode(mut v: u64, out: &mut [u8]) -> usize {
    let mut n = 0;
    while v >= 0x80 {
        out[n] = v as u8 | 0x80;
        v >>= 7;
        n += 1;
    }
    out[n] = v as u8;
    n + 1
}

#[inline(always)]
pub fn put_u64(out: &mut Vec<u8>, v: u64) {
    // Room for the longest form, then cut to size: a fixed-size copy, no call.
    let start = out.len();
    out.extend_from_slice(&[0; MAX_LEN]);
    let n = encode(v, &mut out[start..]);
    out.truncate(start + n);
}

#[inline(always)]
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, zigzag(v));
}

/// Reads the varint at `*pos` and moves `*pos` past it (only on success).
#[inline(always)]
pub fn get_u64(buf: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    let Some(&b) = buf.get(*pos) else {
        return Err(VarintError::Truncated);
    };
    if b < 0x80 {
        *pos += 1;
        return Ok(b.into());
    }
    // Two bytes (timestamp deltas) without a call.
    if let Some(&b2) = buf.get(*pos + 1) {
        if b2 < 0x80 {
            *pos += 2;
            return Ok(u64::from(b & 0x7f) | u64::from(b2) << 7);
        }
    }
    get_long(buf, pos)
}

#[inline(never)]
fn get_long(buf: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    let mut v = 0u64;
    let mut i = *pos;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(i).ok_or(VarintError::Truncated)?;
        i += 1;
        if shift == 63 && b > 1 {
            return Err(VarintError::Overflow);
        }
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            *pos = i;
            return Ok(v);
        }
    }
    // Not reached: the 10th byte either ends the varint or overflows.
    Err(VarintError::Overflow)
}

#[inline(always)]
pub fn get_i64(buf: &[u8], pos: &mut usize) -> Result<i64, VarintError> {
    get_u64(buf, pos).map(unzigzag)
}

/// Signed values that are small in magnitude become small unsigned ones.
#[inline(always)]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline(always)]
pub fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

#[inline(always)]
pub fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

#[inline(always)]
pub fn unzigzag32(u: u32) -> i32 {
    ((u >> 1) as i32) ^ -((u & 1) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EDGES: [u64; 12] = [
        0,
        1,
        127,
        128,
        300,
        16_383,
        16_384,
        u32::MAX as u64,
        1 << 56,
        1 << 63,
        u64::MAX - 1,
        u64::MAX,
    ];

    #[test]
    fn round_trips_edges() {
        for v in EDGES {
            let mut b = Vec::new();
            put_u64(&mut b, v);
            assert_eq!(b.len(), len(v), "{v}");
            let mut p = 0;
            assert_eq!(get_u64(&b, &mut p), Ok(v));
            assert_eq!(p, b.len());
        }
        for v in [0i64, -1, 1, -125, i64::MIN, i64::MAX] {
            let mut b = Vec::new();
            put_i64(&mut b, v);
            let mut p = 0;
            assert_eq!(get_i64(&b, &mut p), Ok(v));
        }
        for v in [0i32, -1, 1, -125, i32::MIN, i32::MAX] {
            assert_eq!(unzigzag32(zigzag32(v)), v);
            assert_eq!(u64::from(zigzag32(v)), zigzag(v.into()));
        }
    }

    #[test]
    fn ten_bytes_at_most() {
        let mut b = Vec::new();
        put_u64(&mut b, u64::MAX);
        assert_eq!(
            b,
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(
            (len(u64::MAX), len(1 << 63), len((1 << 63) - 1)),
            (10, 10, 9)
        );
        assert_eq!((len(0), len(127), len(128)), (1, 1, 2));
        // Reads stop at the varint's end, wherever it is in the buffer.
        let mut p = 0;
        b.extend_from_slice(&[0x05, 0x80]);
        assert_eq!(get_u64(&b, &mut p), Ok(u64::MAX));
        assert_eq!(get_u64(&b, &mut p), Ok(5));
        assert_eq!(p, 11);
    }

    #[test]
    fn longer_forms_read_as_their_value() {
        let mut p = 0;
        assert_eq!(get_u64(&[0x80, 0x00], &mut p), Ok(0));
        let mut zero10 = [0x80u8; 10];
        zero10[9] = 0;
        let mut p = 0;
        assert_eq!(get_u64(&zero10, &mut p), Ok(0));
        assert_eq!(p, 10);
    }

    #[test]
    fn rejects_truncated_and_overflowing() {
        let mut p = 0;
        assert_eq!(get_u64(&[], &mut p), Err(VarintError::Truncated));
        assert_eq!(get_u64(&[0x80], &mut p), Err(VarintError::Truncated));
        assert_eq!(get_u64(&[0x80, 0x80], &mut p), Err(VarintError::Truncated));
        assert_eq!(get_u64(&[0xff; 9], &mut p), Err(VarintError::Truncated));
        assert_eq!(p, 0, "a failed read does not move");
        // A 10th byte above 1 (bits beyond 63), or an 11th byte.
        let mut big = [0xffu8; 10];
        big[9] = 0x02;
        assert_eq!(get_u64(&big, &mut p), Err(VarintError::Overflow));
        assert_eq!(get_u64(&[0xff; 11], &mut p), Err(VarintError::Overflow));
        assert_eq!(get_u64(&[0x80; 12], &mut p), Err(VarintError::Overflow));
        let mut cut = Vec::new();
        put_u64(&mut cut, u64::MAX);
        for n in 0..cut.len() {
            assert_eq!(get_u64(&cut[..n], &mut p), Err(VarintError::Truncated));
        }
    }
}
