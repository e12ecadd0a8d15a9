//! Tests of the BTF reader: hand-built blobs, and this kernel's BTF when present.

use super::*;

/// Builds a tiny BTF blob: `struct inner { u64 a; union { int r; u32 fd; }; }`,
/// `struct outer { void *p; struct inner in; }` and `btf_trace_tp(void *, struct outer *)`.
fn blob() -> Vec<u8> {
    let mut strings = vec![0u8];
    let mut s = |n: &str| {
        let off = strings.len() as u32;
        strings.extend_from_slice(n.as_bytes());
        strings.push(0);
        off
    };
    let (n_u64, n_int, n_u32, n_a, n_r, n_fd, n_inner, n_outer, n_p, n_in, n_td) = (
        s("u64"),
        s("int"),
        s("u32"),
        s("a"),
        s("r"),
        s("fd"),
        s("inner"),
        s("outer"),
        s("p"),
        s("in"),
        s("btf_trace_tp"),
    );
    let mut t = Vec::new();
    let mut ty = |name: u32, kind: u32, vlen: u32, st: u32, extra: &[u32]| {
        for v in [name, (kind << 24) | vlen, st].iter().chain(extra) {
            t.extend_from_slice(&v.to_le_bytes());
        }
    };
    ty(n_u64, KIND_INT, 0, 8, &[64]); // 1
    ty(n_int, KIND_INT, 0, 4, &[32]); // 2
    ty(n_u32, KIND_INT, 0, 4, &[32]); // 3
    ty(0, KIND_UNION, 2, 4, &[n_r, 2, 0, n_fd, 3, 0]); // 4: anonymous union
    ty(n_inner, KIND_STRUCT, 2, 16, &[n_a, 1, 0, 0, 4, 64]); // 5
    ty(0, KIND_PTR, 0, 0, &[]); // 6: void *
    ty(n_outer, KIND_STRUCT, 2, 24, &[n_p, 6, 0, n_in, 5, 64]); // 7
    ty(0, KIND_PTR, 0, 7, &[]); // 8: struct outer *
    ty(0, KIND_FUNC_PROTO, 2, 0, &[0, 6, 0, 8]); // 9
    ty(0, KIND_PTR, 0, 9, &[]); // 10
    ty(n_td, KIND_TYPEDEF, 0, 10, &[]); // 11
    let mut out = Vec::new();
    out.extend_from_slice(&0xeb9fu16.to_le_bytes());
    out.extend_from_slice(&[1, 0]);
    for v in [
        24u32,
        0,
        t.len() as u32,
        t.len() as u32,
        strings.len() as u32,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&t);
    out.extend_from_slice(&strings);
    out
}

#[test]
fn finds_members_through_anonymous_unions() {
    let btf = Btf::parse(blob()).unwrap();
    assert_eq!(
        btf.member("inner", &["a"]),
        Some(Member { offset: 0, size: 8 })
    );
    assert_eq!(
        btf.member("inner", &["fd"]),
        Some(Member { offset: 8, size: 4 })
    );
    assert_eq!(
        btf.member("outer", &["in", "fd"]),
        Some(Member {
            offset: 16,
            size: 4
        })
    );
    assert_eq!(
        btf.member("outer", &["p"]),
        Some(Member { offset: 0, size: 8 })
    );
    assert_eq!(btf.member("outer", &["nope"]), None);
    assert_eq!(btf.member("nope", &["a"]), None);
}

#[test]
fn reads_tracepoint_prototypes() {
    let btf = Btf::parse(blob()).unwrap();
    assert_eq!(
        btf.tracepoint_args("tp"),
        Some(vec!["struct outer *".to_string()])
    );
    assert_eq!(btf.tracepoint_args("other"), None);
}

#[test]
fn rejects_garbage_without_panicking() {
    assert_eq!(Btf::parse(vec![1, 2, 3]).err(), Some(BtfError::BadMagic));
    let b = blob();
    for cut in 0..b.len() {
        let _ = Btf::parse(b[..cut].to_vec());
    }
}

#[test]
fn reads_this_kernels_btf_when_present() {
    let Ok(btf) = Btf::from_sys_fs() else { return };
    // UAPI: struct io_uring_cqe { __u64 user_data; __s32 res; __u32 flags; }
    assert_eq!(
        btf.member("io_uring_cqe", &["user_data"]),
        Some(Member { offset: 0, size: 8 })
    );
    assert_eq!(
        btf.member("io_uring_cqe", &["res"]),
        Some(Member { offset: 8, size: 4 })
    );
    assert_eq!(
        btf.member("io_uring_cqe", &["flags"]),
        Some(Member {
            offset: 12,
            size: 4
        })
    );
    // Whatever this kernel is, a plan either has all the offsets or none.
    let plan = BtfPlan::from_btf(&btf);
    if plan.submit {
        assert_eq!(plan.layout.req_opcode.size, 1);
        assert_eq!(plan.layout.req_user_data.size, 8);
    }
    if plan.complete {
        assert_eq!(plan.layout.cqe_user_data.offset, 0);
    }
    // The x86_64 ptrace ABI fixes struct pt_regs: r15 .. r8, ax, cx, dx, si, di,
    // then orig_ax.
    #[cfg(target_arch = "x86_64")]
    if btf.tracepoint_args("sys_enter").is_some() {
        assert!(plan.syscalls);
        let offsets: Vec<u16> = plan.layout.regs_args.iter().map(|s| s.offset).collect();
        assert_eq!(offsets, [14 * 8, 13 * 8, 12 * 8, 7 * 8, 9 * 8, 8 * 8]);
        assert_eq!(plan.layout.regs_nr.offset, 15 * 8);
    }
    // The scheduler programs read task_struct: comm's first 8 bytes, pid, prio and
    // exit_state, or nothing at all.
    if plan.sched_waking || plan.sched_switch {
        let l = &plan.layout;
        assert_eq!(
            (
                l.task_comm.size,
                l.task_pid.size,
                l.task_prio.size,
                l.task_exit_state.size
            ),
            (8, 4, 4, 4)
        );
        assert_eq!(
            u32::from(l.task_comm.offset),
            btf.member("task_struct", &["comm"]).unwrap().offset
        );
    }
    // sched_switch's (preempt, prev, next, prev_state) prototype is 5.18+.
    if btf
        .tracepoint_args("sched_switch")
        .is_some_and(|a| a.len() == 4)
    {
        assert!(plan.sched_switch);
    }
}

/// Corrupt BTF: `struct loop` holds 16 anonymous members of its own type, then
/// `int a` at byte 4. Each type is searched once per lookup, so the lookup ends at
/// once with `a` (it used to search 16^33 paths, cut only by the member budget).
#[test]
fn a_struct_nested_in_itself_is_searched_once() {
    let strings = b"\0loop\0a\0int\0".to_vec();
    let (n_loop, n_a, n_int) = (1u32, 6u32, 8u32);
    let mut t = Vec::new();
    let mut push = |v: u32| t.extend_from_slice(&v.to_le_bytes());
    for v in [n_int, KIND_INT << 24, 4, 32] {
        push(v); // 1: int
    }
    for v in [n_loop, (KIND_STRUCT << 24) | 17, 8] {
        push(v); // 2: struct loop
    }
    for _ in 0..16 {
        for v in [0, 2, 0] {
            push(v);
        }
    }
    for v in [n_a, 1, 32] {
        push(v);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&0xeb9fu16.to_le_bytes());
    out.extend_from_slice(&[1, 0]);
    for v in [
        24u32,
        0,
        t.len() as u32,
        t.len() as u32,
        strings.len() as u32,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&t);
    out.extend_from_slice(&strings);
    let btf = Btf::parse(out).unwrap();
    assert_eq!(
        btf.member("loop", &["a"]),
        Some(Member { offset: 4, size: 4 })
    );
    assert_eq!(btf.member("loop", &["b"]), None);
    assert_eq!(
        btf.member_signed("loop", &["a"]),
        Some((Member { offset: 4, size: 4 }, false))
    );
}

/// A last type whose entries run past the type section (here an enum claiming 65,535
/// values) makes the BTF truncated, not a type whose absent entries each lookup walks.
#[test]
fn a_type_running_past_the_type_section_is_truncated() {
    let mut b = blob();
    let strings = b.len() - u32::from_le_bytes(b[20..24].try_into().unwrap()) as usize;
    let mut t = b[24..strings].to_vec();
    for v in [0u32, (KIND_ENUM << 24) | 0xffff, 4] {
        t.extend_from_slice(&v.to_le_bytes());
    }
    let tail = b.split_off(strings);
    b.truncate(24);
    b.extend_from_slice(&t);
    b.extend_from_slice(&tail);
    let n = t.len() as u32;
    b[12..16].copy_from_slice(&n.to_le_bytes());
    b[16..20].copy_from_slice(&n.to_le_bytes());
    assert_eq!(
        Btf::parse(b).err(),
        Some(BtfError::Truncated(24 + n as usize))
    );
}
