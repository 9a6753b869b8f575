// tests/support/temporary_directory.hpp: a fresh directory under $TMPDIR (or /tmp), made with
// mkdtemp and removed with everything in it when the object dies, also when a test fails.
#pragma once

#include <stdlib.h>  // mkdtemp (POSIX)

#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include <planfence/config.hpp>

namespace planfence_test {

struct temporary_directory {
  std::filesystem::path path;

  explicit temporary_directory(std::string_view prefix = "planfence-test") {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/" + std::string(prefix) + "-XXXXXX";
    const char* made = ::mkdtemp(pattern.data());
    PLANFENCE_ASSERT(made != nullptr);  // the test machine's /tmp is unusable: nothing to test
    path = made;
  }
  temporary_directory(const temporary_directory&) = delete;
  temporary_directory& operator=(const temporary_directory&) = delete;
  ~temporary_directory() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace planfence_test
