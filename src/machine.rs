//! The machine attnx runs on, as far as it decides a result's bits: the CPU, the vector
//! instructions the kernels use, the threads. Records name it ([`Machine`]), and
//! attnx's SIMD kernels dispatch on [`simd_level`], so that what a record says is what ran.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The widest vector instructions the CPU kernels use here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimdLevel {
    /// No AVX2 + FMA: the kernels as the target builds them.
    Portable,
    /// AVX2 and FMA: 8 f32 lanes.
    Avx2,
    /// AVX-512F (with AVX2 and FMA): 16 f32 lanes.
    Avx512,
}

impl SimdLevel {
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Portable => "portable",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    /// Every level this CPU can run, narrowest first (the kernels' tests compare them all).
    pub fn supported() -> Vec<SimdLevel> {
        let best = simd_level();
        [SimdLevel::Portable, SimdLevel::Avx2, SimdLevel::Avx512]
            .into_iter()
            .filter(|&level| level <= best)
            .collect()
    }
}

impl fmt::Display for SimdLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The level the CPU supports, detected once.
pub fn simd_level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> SimdLevel {
    use std::arch::is_x86_feature_detected as has;
    if has!("avx512f") && has!("avx2") && has!("fma") {
        SimdLevel::Avx512
    } else if has!("avx2") && has!("fma") {
        SimdLevel::Avx2
    } else {
        SimdLevel::Portable
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> SimdLevel {
    SimdLevel::Portable
}

/// The CPU's model name (`model name` in `/proc/cpuinfo`), or the architecture where the
/// system does not say.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(key, _)| key.trim() == "model name")
                .map(|(_, value)| value.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The machine a repeat ran on, as records name it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Machine {
    /// The CPU's model name.
    pub cpu: String,
    /// The vector instructions attnx's CPU kernels ran with.
    pub simd: SimdLevel,
    /// Logical CPUs available to attnx.
    pub threads: usize,
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.cpu, self.simd)
    }
}

/// This machine, as a record names it.
pub fn this() -> Machine {
    Machine {
        cpu: cpu_model(),
        simd: simd_level(),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detected_level_is_among_the_supported_ones_and_the_widest() {
        let supported = SimdLevel::supported();
        assert_eq!(supported.first(), Some(&SimdLevel::Portable));
        assert_eq!(supported.last(), Some(&simd_level()));
        assert!(!cpu_model().is_empty());
        assert!(this().threads >= 1);
    }
}
