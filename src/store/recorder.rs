//! The flight recorder's series as the store keeps it: a run's readings in
//! chunks of up to [`CHUNK`], each chunk one row whose `data` is the
//! readings packed by [`encode`] (each figure the zig-zag varint of its
//! change since the reading before: a steady process costs about a byte
//! per figure). The writer rewrites its open chunk on each reading, so the
//! store is never more than one reading behind.

use crate::event::sample::RunSample;

/// Readings per stored chunk.
pub(crate) const CHUNK: usize = 60;

/// The packing's version (the first byte).
const FORMAT: u8 = 1;

/// The figures of a reading, in their packed order; `None` packs as 0,
/// a value `v` as `v + 1`, so that a change of `None` to a value is a
/// delta like any other.
const FIGURES: usize = 11;

/// The most readings one chunk may unpack to (a damaged length never
/// makes a reader allocate more).
const MAX_READINGS: usize = 4 * CHUNK;

fn figures(s: &RunSample) -> [u64; FIGURES] {
    let opt = |v: Option<u64>| v.map_or(0, |v| v.saturating_add(1));
    let kib = |v: Option<u64>| opt(v.map(|b| (b + 512) / 1024));
    [
        s.at_ms as u64,
        kib(s.rss_bytes),
        opt(s.cpu_percent.map(|c| (c * 10.0).round().max(0.0) as u64)),
        opt(s.threads),
        opt(s.open_fds),
        opt(s.fd_limit),
        kib(s.io_read_bytes),
        kib(s.io_write_bytes),
        kib(s.cgroup_memory_bytes),
        kib(s.cgroup_memory_max_bytes),
        opt(s.cgroup_throttled_usec),
    ]
}

fn reading(f: &[u64; FIGURES]) -> RunSample {
    let opt = |v: u64| v.checked_sub(1);
    let kib = |v: u64| opt(v).map(|k| k.saturating_mul(1024));
    RunSample {
        at_ms: f[0] as i64,
        rss_bytes: kib(f[1]),
        cpu_percent: opt(f[2]).map(|t| t as f64 / 10.0),
        threads: opt(f[3]),
        open_fds: opt(f[4]),
        fd_limit: opt(f[5]),
        io_read_bytes: kib(f[6]),
        io_write_bytes: kib(f[7]),
        cgroup_memory_bytes: kib(f[8]),
        cgroup_memory_max_bytes: kib(f[9]),
        cgroup_throttled_usec: opt(f[10]),
    }
}

/// A reading as it reads back from the store (memory to the KiB, CPU to
/// a tenth of a percent).
#[cfg(test)]
pub(crate) fn as_stored(s: &RunSample) -> RunSample {
    reading(&figures(s))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(b: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at)?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Packs readings (oldest first): the format, the figures per reading,
/// then each reading's changes.
pub(crate) fn encode(samples: &[RunSample]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + samples.len() * (FIGURES + 3));
    out.push(FORMAT);
    out.push(FIGURES as u8);
    let mut prev = [0u64; FIGURES];
    for s in samples {
        let cur = figures(s);
        for (c, p) in cur.iter().zip(prev.iter()) {
            let d = c.wrapping_sub(*p) as i64;
            put_varint(&mut out, ((d << 1) ^ (d >> 63)) as u64);
        }
        prev = cur;
    }
    out
}

/// Unpacks a chunk: every whole reading before any damage (a chunk of an
/// unknown format: none). Figures a newer format added are skipped.
pub(crate) fn decode(b: &[u8]) -> Vec<RunSample> {
    let mut out = Vec::new();
    let [FORMAT, stored, ..] = *b else {
        return out;
    };
    let stored = usize::from(stored);
    if stored < FIGURES {
        return out;
    }
    let mut at = 2;
    let mut prev = [0u64; FIGURES];
    let mut extra = vec![0u64; stored - FIGURES];
    // Ends where the bytes end (a figure cannot be read) or at the bound.
    'readings: while out.len() < MAX_READINGS {
        let mut cur = prev;
        for i in 0..stored {
            let Some(z) = get_varint(b, &mut at) else {
                break 'readings;
            };
            let d = ((z >> 1) as i64) ^ -((z & 1) as i64);
            if i < FIGURES {
                cur[i] = prev[i].wrapping_add(d as u64);
            } else {
                extra[i - FIGURES] = extra[i - FIGURES].wrapping_add(d as u64);
            }
        }
        out.push(reading(&cur));
        prev = cur;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady(n: usize) -> Vec<RunSample> {
        (0..n)
            .map(|i| RunSample {
                at_ms: 1_700_000_000_000 + i as i64 * 10_000,
                rss_bytes: Some((200 << 20) + i as u64 * 4096),
                cpu_percent: Some(12.5),
                threads: Some(9),
                open_fds: Some(40),
                fd_limit: Some(1024),
                io_read_bytes: Some(1 << 20),
                io_write_bytes: Some((3 << 20) + i as u64 * 2048),
                cgroup_memory_bytes: Some(300 << 20),
                cgroup_memory_max_bytes: Some(4 << 30),
                cgroup_throttled_usec: Some(i as u64 * 17),
            })
            .collect()
    }

    #[test]
    fn readings_round_trip_to_their_stored_precision() {
        let mut v = steady(CHUNK);
        v[3].cpu_percent = None;
        v[4].rss_bytes = None;
        v[5].cgroup_memory_max_bytes = None;
        v[6].cpu_percent = Some(1234.56);
        v[7].rss_bytes = Some(u64::MAX / 2048);
        v[8].at_ms = 5;
        let back = decode(&encode(&v));
        let want: Vec<RunSample> = v.iter().map(as_stored).collect();
        assert_eq!(back, want);
        assert_eq!(back[6].cpu_percent, Some(1234.6));
        assert_eq!(back[3].cpu_percent, None);
        assert_eq!(back[0].rss_bytes, Some(200 << 20));
        assert_eq!(back[0].cgroup_memory_max_bytes, Some(4 << 30));
    }

    #[test]
    fn a_steady_process_costs_about_a_byte_per_figure() {
        let b = encode(&steady(CHUNK));
        // The first reading carries the whole values; the rest only their
        // changes (the clock's 10 s take 3 bytes).
        assert!(b.len() < 60 + CHUNK * 16, "{} bytes", b.len());
    }

    #[test]
    fn this_processs_readings_at_the_default_heartbeat_cost_little_per_hour() {
        // Real readings of this process, spaced as the default heartbeat
        // (10 s, with the timer's jitter) spaces them.
        let mut sampler = crate::pipeline::sampler::Sampler::new();
        let v: Vec<RunSample> = (0..CHUNK as i64)
            .map(|i| {
                let mut s = sampler.reading();
                s.at_ms = 1_700_000_000_000 + i * 10_000 + i % 7;
                s
            })
            .collect();
        let bytes = encode(&v).len();
        eprintln!(
            "{CHUNK} readings: {bytes} bytes packed, {:.1} per reading, {} per hour at 10 s",
            bytes as f64 / CHUNK as f64,
            bytes * 6
        );
        assert!(bytes < CHUNK * 24, "{bytes} bytes");
        assert_eq!(
            decode(&encode(&v)),
            v.iter().map(as_stored).collect::<Vec<_>>()
        );
    }

    #[test]
    fn damage_yields_whole_readings_or_none() {
        let b = encode(&steady(10));
        let full = decode(&b);
        assert_eq!(full.len(), 10);
        for cut in 0..b.len() {
            let part = decode(&b[..cut]);
            assert!(part.len() <= 10);
            assert_eq!(part[..], full[..part.len()], "cut at {cut}");
        }
        let mut other = b.clone();
        other[0] = 9;
        assert!(decode(&other).is_empty());
        let mut fewer = b.clone();
        fewer[1] = 3;
        assert!(decode(&fewer).is_empty());
        // Endless continuation bytes end the chunk, never the reader.
        let mut junk = vec![FORMAT, FIGURES as u8];
        junk.extend(std::iter::repeat_n(0xff, 10_000));
        assert!(decode(&junk).is_empty());
        let many = vec![0u8; 100_000];
        let mut zeros = vec![FORMAT, FIGURES as u8];
        zeros.extend(many);
        assert_eq!(decode(&zeros).len(), 4 * CHUNK);
        // A chunk of that many readings unpacks whole.
        assert_eq!(decode(&encode(&steady(4 * CHUNK))).len(), 4 * CHUNK);
    }

    #[test]
    fn figures_a_newer_format_added_are_skipped() {
        let v = steady(3);
        // Repack with one more figure per reading.
        let mut b = vec![FORMAT, FIGURES as u8 + 1];
        let mut prev = [0u64; FIGURES];
        for s in &v {
            let cur = figures(s);
            for (c, p) in cur.iter().zip(prev.iter()) {
                let d = c.wrapping_sub(*p) as i64;
                put_varint(&mut b, ((d << 1) ^ (d >> 63)) as u64);
            }
            put_varint(&mut b, 6);
            prev = cur;
        }
        let want: Vec<RunSample> = v.iter().map(as_stored).collect();
        assert_eq!(decode(&b), want);
    }
}
