/// jemalloc instead of the C library's allocator: with a thread per SQLite connection and the
/// runtime's workers on two cores, glibc's per-thread arenas made `malloc`/`free` a sixth of a
/// point read's profile; with jemalloc a point read served 1.6× the requests, creates and
/// searches a tenth more (docs/benchmarks.md, issue 20). The bundled SQLite keeps its own
/// allocations in the C library's.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = guanxi::Cli::parse();
    match guanxi::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
