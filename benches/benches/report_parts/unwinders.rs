//! `caller_cost.unwinders`: walking the same ~30-frame stack with each
//! unwinder errsnap could use on the caller's thread (issue #16).

use std::ffi::c_void;

use hdrhistogram::Histogram;
use serde_json::{json, Value};

use super::{latency, summary};
use crate::common::{deep, DEPTH};

#[repr(C)]
struct UnwindContext {
    _private: [u8; 0],
}

type UnwindTraceFn = extern "C" fn(ctx: *mut UnwindContext, arg: *mut c_void) -> i32;

extern "C" {
    fn _Unwind_Backtrace(trace: UnwindTraceFn, arg: *mut c_void) -> i32;
    fn _Unwind_GetIP(ctx: *mut UnwindContext) -> usize;
}

extern "C" fn push_ip(ctx: *mut UnwindContext, arg: *mut c_void) -> i32 {
    // SAFETY: `arg` is the Vec passed by `unwind_backtrace`; `ctx` is valid
    // for this callback.
    let ips = unsafe { &mut *(arg as *mut Vec<usize>) };
    ips.push(unsafe { _Unwind_GetIP(ctx) });
    if ips.len() >= 128 {
        5 // _URC_END_OF_STACK: stop
    } else {
        0 // _URC_NO_REASON: go on
    }
}

/// libgcc's `_Unwind_Backtrace`, called directly.
#[inline(never)]
fn unwind_backtrace(ips: &mut Vec<usize>) {
    // SAFETY: the callback only pushes into `ips`.
    unsafe { _Unwind_Backtrace(push_ip, ips as *mut Vec<usize> as *mut c_void) };
}

/// The frame-pointer chain: correct only where every frame keeps one
/// (release builds do not, unless built with `-C force-frame-pointers`).
#[inline(never)]
fn frame_pointers(ips: &mut Vec<usize>) {
    let mut fp: usize;
    // SAFETY: reads one register.
    unsafe { std::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack)) };
    let sp: usize;
    // SAFETY: reads one register.
    unsafe { std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack)) };
    // Stay within 8 MiB above the stack pointer (the main thread's default
    // stack), never below it: a broken chain stops the walk.
    while fp >= sp && fp < sp + (8 << 20) && fp.is_multiple_of(8) && ips.len() < 128 {
        // SAFETY: inside this thread's stack, as checked above.
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        if ret == 0 {
            break;
        }
        ips.push(ret);
        if next <= fp {
            break;
        }
        fp = next;
    }
}

fn measure(calls: u64, walk: fn(&mut Vec<usize>)) -> (Histogram<u64>, usize) {
    let mut ips = Vec::with_capacity(256);
    let h = latency(
        calls,
        || {
            deep(DEPTH, &mut || {
                ips.clear();
                walk(&mut ips);
                std::hint::black_box(ips.len());
            })
        },
        || {},
    );
    (h, ips.len())
}

pub(crate) fn unwinders(calls: u64) -> Value {
    let backtrace_locked: fn(&mut Vec<usize>) = |ips| {
        backtrace::trace(|f| {
            ips.push(f.ip() as usize);
            true
        });
    };
    // What a logger's writer does at its start.
    errsnap::fuzzing::prepare_stack_walk();
    let mut out = serde_json::Map::new();
    for (name, walk) in [
        ("backtrace_trace", backtrace_locked),
        (
            "libgcc_unwind_backtrace",
            unwind_backtrace as fn(&mut Vec<usize>),
        ),
        ("frame_pointers", frame_pointers as fn(&mut Vec<usize>)),
        (
            "errsnap_walk",
            errsnap::fuzzing::stack_walk as fn(&mut Vec<usize>),
        ),
    ] {
        let (h, frames) = measure(calls, walk);
        let mut v = summary(&h);
        v["frames"] = json!(frames);
        out.insert(name.to_owned(), v);
    }
    Value::Object(out)
}
