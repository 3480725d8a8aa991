//! The structure rules of docs/DESIGN.md ("Structure"): no source file over 800 lines, no
//! function over 100 outside tests, imports only from lower floors; tools/check_structure.py
//! checks them, with the functions still to split listed in tools/structure_debt.txt.

mod common;

#[test]
fn source_files_functions_and_imports_keep_the_structure_rules() {
    let Some(out) = common::python3_tool("check_structure.py", &[]) else {
        return;
    };
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("structure:"), "{text}");
}
