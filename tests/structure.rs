//! The structure rules of docs/DESIGN.md ("Structure"): no source file over 800 lines, no
//! function over 100 outside tests, imports only from lower floors; tools/check_structure.py
//! checks them, with the functions still to split listed in tools/structure_debt.txt.

#[test]
fn source_files_functions_and_imports_keep_the_structure_rules() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = match std::process::Command::new("python3")
        .arg(format!("{root}/tools/check_structure.py"))
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
            assert!(!ci, "CI=true and python3 cannot run: {e}");
            eprintln!("SKIPPED (no python3; set CI=true to make this fail): {e}");
            return;
        }
    };
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("structure:"), "{text}");
}
