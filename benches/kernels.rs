//! `cargo bench`: the kernels at the reference network's shapes (a step of 32 triplets = 96
//! images), each validated against the CPU reference before it is timed: the conv passes on
//! the CPU fast path, and, when an adapter exists, the GPU's conv passes, pooling, ReLU,
//! dense, distances and Adam beside its plain matrix product. Prints the device and commit
//! beside each figure. The same measurements are behind `glassnet bench`.

use glassnet::bench::{
    cpu_gemm_gflops, cpu_kernels, gpu_gemm, gpu_kernels, gpu_layer_kernels, KernelTime,
};
use glassnet::gpu::{AdapterChoice, GpuContext};

fn print(device: &str, rows: &[KernelTime]) {
    println!("\n{device} (commit {})", env!("GLASSNET_COMMIT"));
    for k in rows {
        println!(
            "  {:<24} {:<28} {:>9.2} ms {:>8.2} GFLOP/s {:>8.2} GB/s",
            k.name, k.shape, k.ms, k.gflops, k.gbs
        );
    }
}

fn main() {
    let batch = 96;
    println!(
        "cpu SGEMM 1024^3 (one thread): {:.1} GFLOP/s",
        cpu_gemm_gflops()
    );
    match cpu_kernels(batch, 5) {
        Ok(rows) => print("cpu fast path", &rows),
        Err(e) => panic!("cpu kernels: {e}"),
    }
    match GpuContext::new(AdapterChoice::Any) {
        Ok(ctx) => {
            let name = ctx.adapter.summary();
            match gpu_gemm(&ctx, batch, 3) {
                Ok(rows) => print(&format!("gpu ceiling (plain matmul): {name}"), &rows),
                Err(e) => panic!("gpu matmul: {e}"),
            }
            match gpu_kernels(&ctx, batch, 3) {
                Ok(rows) => print(&format!("gpu: {name}"), &rows),
                Err(e) => panic!("gpu kernels: {e}"),
            }
            match gpu_layer_kernels(&ctx, batch, 3) {
                Ok(rows) => print(&format!("gpu, other layers: {name}"), &rows),
                Err(e) => panic!("gpu layer kernels: {e}"),
            }
        }
        Err(e) => println!("\nno GPU adapter, GPU kernels not timed: {e}"),
    }
}
