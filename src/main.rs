//! `glassnet`: parse, run, map errors to an exit code (no panics, no backtraces).

fn main() {
    std::process::exit(glassnet::cli::main());
}
