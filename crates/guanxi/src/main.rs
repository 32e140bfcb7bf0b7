/// jemalloc instead of the C library's allocator: with a thread per SQLite connection and the
/// runtime's workers on two cores, glibc's per-thread arenas made `malloc`/`free` a sixth of a
/// point read's profile; with jemalloc a point read served 1.6× the requests, creates and
/// searches a tenth more (docs/benchmarks.md, issue 20). It also replaces `malloc` for the C
/// code (`unprefixed_malloc_on_supported_platforms`), so the bundled SQLite's page caches are
/// in the same arenas instead of one more glibc arena per connection thread: lists served
/// ~30% more, searches ~5% (docs/benchmarks.md, issue 20, 2026-12-07).
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
