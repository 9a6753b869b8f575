// Proves how the RFC 2136 store reads a tsig-file: only a regular file of at most
// rfc2136_store::key_file_size_max octets that its group and others cannot use. A key file with
// group or world permissions is refused with the reason and `chmod 600`; a FIFO is refused at once
// (the parse runs on another thread and must finish within 5 s; a writer is opened afterwards so
// that a parser blocked on the FIFO would still end); a directory, a device and an oversize file
// are refused, each message naming the file. No server is needed.
#include <catch2/catch.hpp>

#include <planfence/rfc2136/store.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>

using namespace planfence;

namespace {

const std::string key = "hmac-sha256:planfence-key.:UGxhbmZlbmNlU2VjcmV0Rm9yVGVzdHMtMDEyMzQ1Njc4OUFC";

struct temp_dir {
  temp_dir() {
    char pattern[] = "/tmp/planfence-key-file-test-XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    path = pattern;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string path;
};

result<rfc2136_options> parse_with_file(const std::string& path) {
  return rfc2136_store::parse_uri("rfc2136://127.0.0.1/example.test.?tsig-file=" + path);
}

}  // namespace

TEST_CASE("key file: group or world permissions are refused, owner-only is accepted", "[key-file]") {
  temp_dir dir;
  const std::string path = dir.path + "/key";
  std::ofstream(path) << key << "\n";
  for (const ::mode_t mode : {0644, 0640, 0604, 0660, 0606, 0400 | 040}) {
    REQUIRE(::chmod(path.c_str(), mode) == 0);
    auto parsed = parse_with_file(path);
    INFO("mode " << std::oct << mode);
    REQUIRE(!parsed);
    INFO(parsed.error().message());
    CHECK(parsed.error().code == errc::parse_error);
    CHECK(parsed.error().message().find(path) != std::string::npos);
    CHECK(parsed.error().message().find("chmod 600") != std::string::npos);
    CHECK(parsed.error().message().find("signs updates") != std::string::npos);
  }
  for (const ::mode_t mode : {0600, 0400}) {
    REQUIRE(::chmod(path.c_str(), mode) == 0);
    auto parsed = parse_with_file(path);
    REQUIRE(parsed);
    CHECK(parsed->key->name == "planfence-key.");
  }
}

TEST_CASE("key file: a FIFO is refused at once, never waited on", "[key-file]") {
  temp_dir dir;
  const std::string path = dir.path + "/key";
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  auto parsing = std::async(std::launch::async, [&] { return parse_with_file(path); });
  const bool finished = parsing.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  if (!finished) {
    // Unblock a parser stuck opening the FIFO, so the test fails instead of hanging.
    const int writer = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
    if (writer >= 0) ::close(writer);
  }
  CHECK(finished);
  auto parsed = parsing.get();
  REQUIRE(!parsed);
  CHECK(parsed.error().message().find("not a regular file") != std::string::npos);
  CHECK(parsed.error().message().find(path) != std::string::npos);
}

TEST_CASE("key file: a directory, a device, an oversize file and a missing file are refused", "[key-file]") {
  temp_dir dir;
  REQUIRE(::chmod(dir.path.c_str(), 0700) == 0);
  auto directory = parse_with_file(dir.path);
  REQUIRE(!directory);
  CHECK(directory.error().message().find("not a regular file") != std::string::npos);
  auto device = parse_with_file("/dev/zero");
  REQUIRE(!device);
  CHECK(device.error().message().find("not a regular file") != std::string::npos);

  const std::string big = dir.path + "/big";
  std::ofstream(big) << key << "\n" << std::string(rfc2136_store::key_file_size_max, '#') << "\n";
  REQUIRE(::chmod(big.c_str(), 0600) == 0);
  auto oversize = parse_with_file(big);
  REQUIRE(!oversize);
  CHECK(oversize.error().message().find("larger than") != std::string::npos);
  CHECK(oversize.error().message().find(big) != std::string::npos);

  auto missing = parse_with_file(dir.path + "/none");
  REQUIRE(!missing);
  CHECK(missing.error().message().find(dir.path + "/none") != std::string::npos);
  CHECK(missing.error().message().find("No such file") != std::string::npos);
}
