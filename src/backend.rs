//! Maps the config's `backend` to a burn `Device`: one model code path for every backend.

use burn::prelude::*;

use crate::config::{Backend, WgpuDevice};
use crate::error::InputError;

/// The backends this attnx was built with.
pub fn compiled() -> Vec<Backend> {
    let mut backends = vec![Backend::Ndarray, Backend::Flex];
    if cfg!(feature = "wgpu") {
        backends.push(Backend::Wgpu);
    }
    backends
}

/// The device for `backend` (on wgpu, the adapter `choice`), checked to be usable.
pub fn device(backend: Backend, choice: Option<WgpuDevice>) -> Result<Device, InputError> {
    match backend {
        #[allow(deprecated)] // ndarray is deprecated upstream; users still compare against it
        Backend::Ndarray => Ok(Device::ndarray()),
        Backend::Flex => Ok(Device::flex()),
        Backend::Wgpu => wgpu_device(choice.unwrap_or_default()),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device(choice: WgpuDevice) -> Result<Device, InputError> {
    use burn::tensor::DeviceKind;
    let device = Device::wgpu(match choice {
        WgpuDevice::Default => DeviceKind::DefaultDevice,
        WgpuDevice::Cpu => DeviceKind::Cpu,
        WgpuDevice::Discrete(i) => DeviceKind::DiscreteGpu(i),
        WgpuDevice::Integrated(i) => DeviceKind::IntegratedGpu(i),
        WgpuDevice::Virtual(i) => DeviceKind::VirtualGpu(i),
    });
    // wgpu reports a missing adapter (or a driver that cannot run compute shaders) by
    // panicking on first use; run one small matmul to turn that into an error here.
    let probe = device.clone();
    let outcome = crate::error::quietly(move || {
        let x = Tensor::<2>::ones([2, 2], &probe);
        x.clone().matmul(x).into_data().try_into_vec::<f32>().ok()
    });
    match outcome {
        Ok(Some(v)) if v == [2.0; 4] => Ok(device),
        Ok(_) => Err(InputError(
            "wgpu: the GPU adapter computed a wrong result for a 2x2 matmul; use --backend flex"
                .into(),
        )),
        Err(reason) => Err(InputError(format!(
            "wgpu: no usable adapter for device {choice} ({reason}); install a Vulkan driver (e.g. Debian's mesa-vulkan-drivers), name another device (`attnx info` lists them) or use --backend flex"
        ))),
    }
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device(_choice: WgpuDevice) -> Result<Device, InputError> {
    Err(without_wgpu())
}

/// What a CPU-only attnx says when asked for the GPU backend.
pub fn without_wgpu() -> InputError {
    InputError(format!(
        "this attnx was built without the wgpu backend: rebuild with `{WGPU_BUILD}`"
    ))
}

/// The command that builds attnx with the GPU backend.
pub const WGPU_BUILD: &str = "cargo build --release --features wgpu";

/// A one-line description of the device, for records: the adapter's name on wgpu.
pub fn describe(backend: Backend, device: &Device) -> String {
    match adapter_name(device) {
        Some(name) => format!("{backend}: {name}"),
        None => format!("{backend}: {device:?}"),
    }
}

/// The GPU adapter's name, for wgpu devices.
#[cfg(feature = "wgpu")]
pub fn adapter_name(device: &Device) -> Option<String> {
    device
        .as_dispatch()
        .identity()
        .map(|identity| identity.name)
}

#[cfg(not(feature = "wgpu"))]
pub fn adapter_name(_device: &Device) -> Option<String> {
    None
}

/// The memory a GPU device may be asked to hold at once (cubecl's figure: the largest
/// device-local heap on Vulkan), or `None` for CPU devices and drivers that give none.
#[cfg(feature = "wgpu")]
pub fn gpu_memory_bytes(device: &Device) -> Option<u64> {
    match device.as_dispatch() {
        burn_dispatch::DispatchDevice::Cube(cube) => cube.client().properties().memory.max_memory(),
        _ => None,
    }
}

#[cfg(not(feature = "wgpu"))]
pub fn gpu_memory_bytes(_device: &Device) -> Option<u64> {
    None
}

/// What `attnx info` says of the backends: each compiled one, and whether it can run here.
pub fn report() -> Vec<(Backend, String)> {
    let mut out = Vec::new();
    for backend in [Backend::Ndarray, Backend::Flex, Backend::Wgpu] {
        let state = if !compiled().contains(&backend) {
            format!("not in this build (rebuild with `{WGPU_BUILD}`)")
        } else {
            match device(backend, None) {
                Ok(device) => match (adapter_name(&device), gpu_memory_bytes(&device)) {
                    (Some(name), Some(bytes)) => format!(
                        "ready: adapter {name}, {:.1} GiB of device memory",
                        bytes as f64 / (1u64 << 30) as f64
                    ),
                    (Some(name), None) => {
                        format!("ready: adapter {name} (its memory size is not reported)")
                    }
                    (None, _) => "ready (CPU)".to_string(),
                },
                Err(e) => e.to_string(),
            }
        };
        out.push((backend, state));
    }
    out
}
