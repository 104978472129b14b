// cpa-manager-plus: the CPA Manager Plus Manager Server (see README.md).
#include "cli/cli.h"

int main(int argc, char** argv) { return cpamp::cli::Main(argc, argv); }
