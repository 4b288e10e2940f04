//! The machine's own limit: how fast a large f32 matrix product runs here, on one core and on
//! all of them, through the same gemm, on the widest kernels the CPU runs, that burn-flex's
//! matmul and attnx's kernels call; and the
//! process's CPU time, to tell how many cores a case kept busy.

use std::time::Instant;

use super::Peak;
use crate::kernels::matmul::{Operand, Products, matmul};

/// Side of the square product timed: large enough for gemm's best blocking, small enough to
/// take a fraction of a second.
pub const SIDE: usize = 768;

/// How far the peak may move between the measurements before and after the cases (run to run
/// on an idle machine it moves by a few percent).
const STEADY: f64 = 0.10;
/// The least share of `cores` times the one-core peak that all cores together reach on an
/// idle machine (each runs its own product; an idle 2-core machine measured 1.96-1.99x).
const SCALING: f64 = 0.8;

/// Which f32 product kernels the peak runs: the widest gemm picks on this CPU, as the text
/// classifiers' products do ([`Products::Widest`]). The echo models keep the AVX2 ones, so on an
/// AVX-512 CPU their share of this peak is against a limit they do not aim at.
pub fn kernels() -> String {
    use crate::machine::SimdLevel;
    match crate::machine::simd_level() {
        SimdLevel::Avx512 => "gemm's AVX-512 kernels: the best this CPU runs (the echo models' \
                              products keep gemm's AVX2 ones)"
            .into(),
        SimdLevel::Avx2 => {
            "gemm's AVX2+FMA kernels: the best this CPU runs (it has no AVX-512)".into()
        }
        SimdLevel::Portable => {
            "gemm's kernels without AVX2 and FMA: the best this CPU runs (it lacks one or both)"
                .into()
        }
    }
}

/// GFLOP/s of one core's `SIDE`-sided products, the best of a few rounds of at least 0.3 s.
fn one_core() -> f64 {
    let a: Vec<f32> = (0..SIDE * SIDE).map(|i| (i % 17) as f32 * 0.01).collect();
    let b: Vec<f32> = (0..SIDE * SIDE).map(|i| (i % 13) as f32 * 0.01).collect();
    let mut c = vec![0.0f32; SIDE * SIDE];
    let flops = 2.0 * (SIDE * SIDE * SIDE) as f64;
    let mut product = || {
        matmul(
            (&mut c, SIDE),
            (SIDE, SIDE, SIDE),
            Operand::rows(&a, SIDE),
            Operand::rows(&b, SIDE),
            1.0,
            false,
            Products::Widest,
        )
    };
    product(); // warm-up: pages, caches, gemm's dispatch
    let mut best = 0.0f64;
    for _ in 0..3 {
        let started = Instant::now();
        let mut rounds = 0;
        while started.elapsed().as_secs_f64() < 0.3 {
            product();
            rounds += 1;
        }
        best = best.max(flops * rounds as f64 / started.elapsed().as_secs_f64() / 1e9);
    }
    best
}

/// The peak: GFLOP/s on one core, and on `cores` cores each running its own products at once
/// (how attnx uses cores: a repeat, or half a batch, each).
pub fn measure(cores: usize) -> Peak {
    let single = one_core();
    let all = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..cores).map(|_| scope.spawn(one_core)).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a peak thread"))
            .sum()
    });
    Peak {
        one_core: single,
        all_cores: all,
        cores,
    }
}

/// A sentence when the machine was not the same for the whole run: the peak moved by more than
/// [`STEADY`] between `before` and `after`, or all cores together reached less than [`SCALING`]
/// of their number times one core's (another process held a core). Times and shares of peak
/// from such a run are not to be compared with another run's.
pub fn busy_host(before: &Peak, after: &Peak) -> Option<String> {
    let moved = |a: f64, b: f64| (a - b).abs() > STEADY * a.max(b);
    let mut found = Vec::new();
    if moved(before.one_core, after.one_core) || moved(before.all_cores, after.all_cores) {
        found.push(format!(
            "the peak moved during the run ({:.1} -> {:.1} GFLOP/s on one core, {:.1} -> {:.1} \
             on {})",
            before.one_core, after.one_core, before.all_cores, after.all_cores, before.cores
        ));
    }
    for (when, peak) in [("before", before), ("after", after)] {
        if peak.cores > 1 && peak.all_cores < SCALING * peak.cores as f64 * peak.one_core {
            found.push(format!(
                "{} cores reached {:.2}x one core's peak {when} the cases",
                peak.cores,
                peak.all_cores / peak.one_core
            ));
        }
    }
    (!found.is_empty()).then(|| {
        format!(
            "{}: the host was busy, so this run's times are not comparable with another run's \
             (rerun on an idle machine)",
            found.join("; ")
        )
    })
}

/// Seconds of CPU time this process has used (user and system, all threads); `None` where
/// the system cannot say.
pub fn cpu_seconds() -> Option<f64> {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// Seconds of CPU time the calling thread has used: unlike [`cpu_seconds`], other threads'
/// work (a test harness's, say) does not count.
pub fn thread_cpu_seconds() -> Option<f64> {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// One of the kernel's CPU-time clocks, in nanoseconds: no clock-tick rate to assume.
#[allow(unsafe_code)] // a C call: std has no CPU-time clock
fn cpu_clock(clock: libc::clockid_t) -> Option<f64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec for the call's duration.
    let status = unsafe { libc::clock_gettime(clock, &mut now) };
    (status == 0).then_some(now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peak(one_core: f64, all_cores: f64) -> Peak {
        Peak {
            one_core,
            all_cores,
            cores: 2,
        }
    }

    /// A steady, idle machine passes; a peak that moved or cores that did not scale are named.
    #[test]
    fn a_busy_host_is_named() {
        // The figures of runs on one 2-core machine: idle, then with the host busy.
        assert_eq!(busy_host(&peak(108.6, 213.2), &peak(107.9, 214.6)), None);
        let moved = busy_host(&peak(108.6, 213.2), &peak(76.7, 160.9)).unwrap();
        assert!(moved.contains("108.6 -> 76.7"), "{moved}");
        let held = busy_host(&peak(108.2, 110.4), &peak(108.0, 112.0)).unwrap();
        assert!(held.contains("1.02x one core's peak before"), "{held}");
        assert!(held.contains("after"), "{held}");
        assert!(!held.contains("moved"), "{held}");
        let one_core = Peak {
            cores: 1,
            ..peak(100.0, 100.0)
        };
        assert_eq!(busy_host(&one_core, &one_core), None);
    }

    /// The thread's clock counts this thread's work and no other's: with a second thread
    /// spinning beside it (as other tests do, or the harness), it never reads more than the
    /// wall time that passed, while the process's clock counts both. Fixed work, not a fixed
    /// time: a busy host slows it but cannot make it cost nothing.
    #[test]
    fn the_threads_cpu_time_counts_its_own_work() {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spinner = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        };
        let wall = Instant::now();
        let (process, thread) = (cpu_seconds().unwrap(), thread_cpu_seconds().unwrap());
        let mut x = 0u64;
        for _ in 0..100_000_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        let used = thread_cpu_seconds().unwrap() - thread;
        let process_used = cpu_seconds().unwrap() - process;
        let elapsed = wall.elapsed().as_secs_f64();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        spinner.join().unwrap();
        assert!(x != 7);
        // 10^8 dependent multiply-adds: at least 0.02 s on any CPU this runs on.
        assert!(
            used > 0.02,
            "the loop used {used} s of the thread's CPU time"
        );
        assert!(used <= elapsed + 0.005, "{used} s of CPU in {elapsed} s");
        assert!(process_used >= used - 1e-6, "{process_used} < {used}");
    }
}
