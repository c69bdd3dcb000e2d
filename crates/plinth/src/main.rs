//! The `plinth` command; everything it does lives in the library.

/// mimalloc rather than glibc's allocator: the control plane allocates and
/// frees JSON objects on many threads at once, where glibc's per-thread
/// arenas fragment (resident memory grew several times over what was live)
/// and its consolidation showed at the top of CPU profiles.
///
/// The `system-allocator` feature keeps the system's instead, for heap
/// profilers that hook malloc (heaptrack): `cargo build --release
/// --features plinth/system-allocator`, then `heaptrack plinth up`.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    plinth::cli::main()
}
