//! Write passlink's compiled descriptor set to the path given as the first argument, for
//! `tests/conformance/compare-protos.mjs` (run by `scripts/test`).

fn main() -> std::process::ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: write-descriptors PATH");
        return std::process::ExitCode::FAILURE;
    };
    match std::fs::write(&path, passlink_wire::FILE_DESCRIPTOR_SET) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
