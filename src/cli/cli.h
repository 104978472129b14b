// Command line: `serve` (default), `reset-admin-key` (alias `reset-admin-password`),
// `--version`, `--help`.
#pragma once

namespace cpamp::cli {

int Main(int argc, char** argv);

}  // namespace cpamp::cli
