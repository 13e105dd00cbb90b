//! The `attesta` binary: see [`attesta::cli`].

fn main() -> std::process::ExitCode {
    attesta::cli::main()
}
