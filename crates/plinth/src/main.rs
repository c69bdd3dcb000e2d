//! The `plinth` command; everything it does lives in the library.

fn main() -> std::process::ExitCode {
    plinth::cli::main()
}
