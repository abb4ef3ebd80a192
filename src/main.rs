use clap::Parser;

fn main() {
    let cli = aurora::cli::Cli::parse();
    std::process::exit(aurora::cli::run(cli));
}
