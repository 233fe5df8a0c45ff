//! The flight recorder's ring in the crash file: the last
//! [`layout::RING_SLOTS`] readings, each written by the writer thread with
//! one `pwrite` into slot `seq % RING_SLOTS` (never by the signal handler),
//! so a process killed by anything (a native crash, the OOM killer,
//! `SIGKILL`) still leaves its last minutes. Each slot carries its
//! sequence number and a checksum: a slot torn by a kill mid-write, or
//! never written, is skipped when read back.

use super::layout;
use crate::event::sample::RunSample;

/// Words per slot: sequence, checksum, time, then the figures.
const WORDS: usize = (layout::RING_SLOT_SIZE / 8) as usize;
/// Figures after the time.
const FIGURES: usize = 10;
/// An absent figure.
const NONE: u64 = u64::MAX;

const _: () = assert!(WORDS * 8 == layout::RING_SLOT_SIZE as usize && WORDS >= 3 + FIGURES);

fn checksum(words: &[u64; WORDS]) -> u64 {
    // FNV-1a over every word but the checksum's, folded per byte.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, w) in words.iter().enumerate() {
        if i == 1 {
            continue;
        }
        for b in w.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The slot's bytes for reading number `seq` (counted from 1).
pub(crate) fn slot(seq: u64, s: &RunSample) -> [u8; layout::RING_SLOT_SIZE as usize] {
    let opt = |v: Option<u64>| v.unwrap_or(NONE);
    let mut w = [0u64; WORDS];
    w[0] = seq;
    w[2] = s.at_ms as u64;
    let figures: [u64; FIGURES] = [
        opt(s.rss_bytes),
        opt(s.cpu_percent.map(|c| (c * 10.0).round().max(0.0) as u64)),
        opt(s.threads),
        opt(s.open_fds),
        opt(s.fd_limit),
        opt(s.io_read_bytes),
        opt(s.io_write_bytes),
        opt(s.cgroup_memory_bytes),
        opt(s.cgroup_memory_max_bytes),
        opt(s.cgroup_throttled_usec),
    ];
    w[3..3 + FIGURES].copy_from_slice(&figures);
    w[1] = checksum(&w);
    let mut out = [0u8; layout::RING_SLOT_SIZE as usize];
    for (chunk, word) in out.chunks_exact_mut(8).zip(w) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    out
}

/// Where reading number `seq` goes in the file.
pub(crate) fn slot_at(seq: u64) -> u64 {
    layout::RING_AT + (seq % layout::RING_SLOTS) * layout::RING_SLOT_SIZE
}

/// The readings of a ring's bytes, oldest first: whole slots only, each
/// once (a slot whose checksum fails is skipped).
pub(crate) fn read(ring: &[u8]) -> Vec<(u64, RunSample)> {
    let mut out = Vec::new();
    for bytes in ring
        .chunks_exact(layout::RING_SLOT_SIZE as usize)
        .take(layout::RING_SLOTS as usize)
    {
        let mut w = [0u64; WORDS];
        for (word, b) in w.iter_mut().zip(bytes.chunks_exact(8)) {
            *word = u64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
        }
        if w[0] == 0 || checksum(&w) != w[1] {
            continue;
        }
        let f = |i: usize| Some(w[3 + i]).filter(|&v| v != NONE);
        out.push((
            w[0],
            RunSample {
                at_ms: w[2] as i64,
                rss_bytes: f(0),
                cpu_percent: f(1).map(|t| t as f64 / 10.0),
                threads: f(2),
                open_fds: f(3),
                fd_limit: f(4),
                io_read_bytes: f(5),
                io_write_bytes: f(6),
                cgroup_memory_bytes: f(7),
                cgroup_memory_max_bytes: f(8),
                cgroup_throttled_usec: f(9),
            },
        ));
    }
    out.sort_by_key(|(seq, _)| *seq);
    out.dedup_by_key(|(seq, _)| *seq);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(i: u64) -> RunSample {
        RunSample {
            at_ms: 1_700_000_000_000 + i as i64 * 1000,
            rss_bytes: Some(100 << 20 | i),
            cpu_percent: if i.is_multiple_of(3) {
                None
            } else {
                Some(i as f64 / 2.0)
            },
            threads: Some(4),
            open_fds: Some(10 + i),
            fd_limit: Some(1024),
            io_read_bytes: None,
            io_write_bytes: Some(i * 4096),
            cgroup_memory_bytes: Some(200 << 20),
            cgroup_memory_max_bytes: None,
            cgroup_throttled_usec: Some(i),
        }
    }

    #[test]
    fn the_ring_keeps_the_last_readings_in_order() {
        let mut ring = vec![0u8; (layout::RING_SLOTS * layout::RING_SLOT_SIZE) as usize];
        let n = layout::RING_SLOTS + 25;
        for seq in 1..=n {
            let at = (slot_at(seq) - layout::RING_AT) as usize;
            ring[at..at + layout::RING_SLOT_SIZE as usize]
                .copy_from_slice(&slot(seq, &sample(seq)));
        }
        let back = read(&ring);
        assert_eq!(back.len(), layout::RING_SLOTS as usize);
        assert_eq!(back[0].0, n - layout::RING_SLOTS + 1);
        assert_eq!(back.last().unwrap().0, n);
        for (seq, s) in &back {
            assert_eq!(s, &sample(*seq));
        }
    }

    #[test]
    fn the_checksum_is_fnv_1a_of_every_other_word() {
        // Part of the file format: a file written by an earlier build
        // still reads.
        let mut w = [0u64; WORDS];
        w[0] = 7;
        w[1] = 0xdead;
        w[2] = 1_700_000_000_000;
        for (i, x) in w.iter_mut().enumerate().skip(3) {
            *x = i as u64;
        }
        assert_eq!(checksum(&w), 0xf102_2408_f216_18c1);
    }

    #[test]
    fn torn_or_empty_slots_are_skipped() {
        let mut ring = vec![0u8; (layout::RING_SLOTS * layout::RING_SLOT_SIZE) as usize];
        assert!(read(&ring).is_empty());
        for seq in 1..=3 {
            let at = (slot_at(seq) - layout::RING_AT) as usize;
            ring[at..at + layout::RING_SLOT_SIZE as usize]
                .copy_from_slice(&slot(seq, &sample(seq)));
        }
        // A kill in the middle of the second slot's write: half of it new.
        let at = (slot_at(2) - layout::RING_AT) as usize;
        ring[at + 40] ^= 0x5a;
        let back: Vec<u64> = read(&ring).iter().map(|(s, _)| *s).collect();
        assert_eq!(back, vec![1, 3]);
        // Short bytes (an older file) give what they hold.
        assert_eq!(read(&ring[..2 * layout::RING_SLOT_SIZE as usize]).len(), 1);
    }
}
