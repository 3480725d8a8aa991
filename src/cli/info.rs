//! `glassnet info`: adapters and their compute limits.

use crate::gpu::context::{list_adapters, NO_ADAPTER_HELP};

pub fn run() -> anyhow::Result<()> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        anyhow::bail!("{NO_ADAPTER_HELP}");
    }
    println!(
        "glassnet {} - {} GPU adapter(s), best first:",
        env!("CARGO_PKG_VERSION"),
        adapters.len()
    );
    for (i, a) in adapters.iter().enumerate() {
        let l = &a.limits;
        println!("\n[{i}] {}", a.summary());
        println!(
            "    max storage buffer binding   {} MiB",
            l.max_storage_buffer_binding_size >> 20
        );
        println!(
            "    max buffer size              {} MiB",
            l.max_buffer_size >> 20
        );
        println!(
            "    storage buffers per stage    {}",
            l.max_storage_buffers_per_shader_stage
        );
        println!(
            "    workgroup size (x, invocations) {}, {}",
            l.max_compute_workgroup_size_x, l.max_compute_invocations_per_workgroup
        );
        println!(
            "    workgroup memory             {} KiB",
            l.max_compute_workgroup_storage_size >> 10
        );
        println!(
            "    workgroups per dimension     {}",
            l.max_compute_workgroups_per_dimension
        );
    }
    let chosen = &adapters[0];
    println!(
        "\n`--device auto` uses {}.",
        if chosen.is_software() {
            "the fast CPU backend (no hardware GPU found; --gpu runs the shaders on the software adapter)".to_string()
        } else {
            chosen.info.name.clone()
        }
    );
    Ok(())
}
