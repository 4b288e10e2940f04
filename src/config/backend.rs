//! Where a config runs: the burn backend and, on wgpu, which adapter.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The burn backend that runs the model. One model code path serves all of them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// burn's ndarray CPU backend (deprecated upstream, kept for comparison).
    Ndarray,
    /// burn's flex CPU backend: the fastest CPU backend for these models.
    #[default]
    Flex,
    /// burn's wgpu backend (GPU; Vulkan, Metal or DX12).
    Wgpu,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Ndarray => "ndarray",
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
        }
    }

    /// One of the CPU backends (ndarray, flex).
    pub fn is_cpu(self) -> bool {
        matches!(self, Backend::Ndarray | Backend::Flex)
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A wgpu adapter, written `default`, `cpu`, `discrete`, `integrated`, `virtual`, or one of the
/// last three with an index (`discrete:1`: the second discrete GPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum WgpuDevice {
    /// wgpu's choice: the best discrete GPU, else integrated, else a CPU adapter
    /// (`CUBECL_WGPU_DEFAULT_DEVICE` overrides it).
    #[default]
    Default,
    Discrete(usize),
    Integrated(usize),
    Virtual(usize),
    /// A CPU adapter (Mesa's lavapipe on Linux).
    Cpu,
}

impl std::str::FromStr for WgpuDevice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (kind, index) = match text.split_once(':') {
            Some((kind, index)) => {
                let index = index
                    .parse()
                    .map_err(|_| format!("{text:?}: the index after ':' must be a number"))?;
                (kind, Some(index))
            }
            None => (text, None),
        };
        let at = index.unwrap_or(0);
        match (kind, index) {
            ("default", None) => Ok(Self::Default),
            ("cpu", None) => Ok(Self::Cpu),
            ("discrete", _) => Ok(Self::Discrete(at)),
            ("integrated", _) => Ok(Self::Integrated(at)),
            ("virtual", _) => Ok(Self::Virtual(at)),
            _ => Err(format!(
                "unknown wgpu device {text:?}, expected default, cpu, discrete[:N], integrated[:N] or virtual[:N]"
            )),
        }
    }
}

impl TryFrom<String> for WgpuDevice {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<WgpuDevice> for String {
    fn from(device: WgpuDevice) -> String {
        device.to_string()
    }
}

impl fmt::Display for WgpuDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("default"),
            Self::Cpu => f.write_str("cpu"),
            Self::Discrete(i) => write!(f, "discrete:{i}"),
            Self::Integrated(i) => write!(f, "integrated:{i}"),
            Self::Virtual(i) => write!(f, "virtual:{i}"),
        }
    }
}
