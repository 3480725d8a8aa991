//! Every shader parses and validates with naga; a broken one fails with its file and line.

use glassnet::gpu::pipeline::SHADERS;

mod common;

#[test]
fn every_shader_validates_with_naga() {
    let mut failures = Vec::new();
    for (name, src) in SHADERS {
        let path = format!("shaders/{name}.wgsl");
        let module = match naga::front::wgsl::parse_str(src) {
            Ok(m) => m,
            Err(e) => {
                failures.push(e.emit_to_string_with_path(src, &path));
                continue;
            }
        };
        let mut v = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        );
        if let Err(e) = v.validate(&module) {
            failures.push(e.emit_to_string_with_path(src, &path));
        }
        assert!(
            module.entry_points.iter().any(|e| e.name == "main"),
            "{path}: no entry point `main`"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_wgsl_file_is_registered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let stem = name
            .strip_suffix(".wgsl")
            .expect("only .wgsl files in shaders/");
        assert!(
            SHADERS.iter().any(|(n, _)| *n == stem),
            "shaders/{name} is not in SHADERS"
        );
    }
}

/// The generated kernels are what tools/gen_kernels.py makes today: a template edited
/// without regenerating (or a generated file edited by hand) fails here. Needs python3; with
/// CI=true its absence fails the test instead of skipping it.
#[test]
fn generated_shaders_match_their_generator() {
    let Some(out) = common::python3_tool("gen_kernels.py", &["--check"]) else {
        return;
    };
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("30 generated shaders are up to date"),
        "{text}"
    );
    // Which files the generator owns (their first line says so): tests/variants.rs.
}
