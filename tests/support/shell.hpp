// tests/support/shell.hpp: running a command line from a Catch2 test, as an operator would.
//
// `run(command)` runs it through the shell with standard output and error together, bounded by a
// timeout (`timeout -s KILL`, so a command that hangs fails its test instead of blocking the
// suite), and records the command, its output and exit status with UNSCOPED_INFO, so a failing
// check shows what ran. Exit status -1: killed by a signal (the timeout among them).
#pragma once

#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace planfence_test {

struct command_result {
  int status = -1;
  std::string output;  // stdout and stderr
};

inline command_result run(const std::string& command, int timeout_seconds = 300) {
  command_result out;
  const std::string line = "timeout -s KILL " + std::to_string(timeout_seconds) + " " + command + " 2>&1";
  FILE* pipe = ::popen(line.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.output.append(buffer, n);
  const int status = ::pclose(pipe);
  out.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  UNSCOPED_INFO("$ " << command << "\n" << out.output << "(exit " << out.status << ")");
  return out;
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace planfence_test
