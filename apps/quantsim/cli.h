#pragma once

/// The command line of the `quantsim` program.

#include "demo.h"

#include <CLI/CLI.hpp>

#include <memory>
#include <ostream>

namespace quantsim::apps {

/// The `quantsim` command line, bound to `options`: `quantsim [demo] [OPTIONS]`.
///
/// The program and its `demo` subcommand declare the same options, bound to the same fields, so
/// `quantsim --quick` and `quantsim demo --quick` are the same run and both `--help` texts list
/// every option.
/// `--version` prints "quantsim <version>" by throwing CLI::CallForVersion, `--help` throws
/// CLI::CallForHelp (CLI::App::exit prints either); bad values throw other CLI::ParseError types.
///
///     DemoOptions options;
///     auto app = make_command_line(options);
///     app->parse(argc, argv);   // then run_demo(options, std::cout)
std::unique_ptr<CLI::App> make_command_line(DemoOptions& options);

/// main(): parses `argv`, runs the demo, and turns errors into a message on `err` and exit
/// status 1; a command-line error exits with CLI11's code for its kind (105 for a bad value such
/// as `--threads 100000`, 109 for an unexpected argument).
int run_command_line(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace quantsim::apps
