// tests/zonefile/zonefile_fixture.hpp: a fresh directory with one zone, for the conformance
// suite and the store tests.
//
// A temp_directory is made with mkdtemp under $TMPDIR (or /tmp) and removed with everything in
// it when the object dies. The fixture creates the zone example.test. in it and opens a store;
// the conformance suite's names are all inside that zone. The zone-file tests also share here
// what each of them would otherwise repeat: stamp_at, contains, file helpers, the zone checkers.
#pragma once

#include <catch2/catch.hpp>

#include <planfence/dns/zone_layout.hpp>
#include <planfence/zonefile/store.hpp>
#include <planfence/zonefile/syntax.hpp>
#include <planfence/zonefile/zone.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "../support/store_fixtures.hpp"

namespace planfence_zonefile_test {

/// A directory of its own, removed on destruction.
class temp_directory {
 public:
  temp_directory() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/planfence-zone-XXXXXX";
    const char* made = ::mkdtemp(pattern.data());
    PLANFENCE_ASSERT(made != nullptr);
    path_ = made;
  }
  temp_directory(const temp_directory&) = delete;
  temp_directory& operator=(const temp_directory&) = delete;
  ~temp_directory() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

/// A stamp with no flags: generation `gen`, fence `fence`.
inline planfence::stamp stamp_at(std::uint64_t gen, std::uint64_t fence) {
  return planfence::stamp{planfence::generation{gen}, planfence::fence_token{fence}, 0};
}

/// Whether `text` has `part` in it (error details, file contents).
inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

/// Runs `TOOL ARGUMENTS FILE` with `text` in FILE (a fresh directory's); returns its exit status
/// (128 when it did not exit normally) and output.
inline std::pair<int, std::string> run_zone_checker(const std::string& tool, const std::string& arguments,
                                                    const std::string& text) {
  temp_directory dir;
  write_text(dir.path() / "zone", text);
  const std::string output = (dir.path() / "out").string();
  const std::string command = tool + " " + arguments + " " + (dir.path() / "zone").string() + " > " + output + " 2>&1";
  const int status = std::system(command.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128, read_text(output)};
}

/// Runs kzonecheck (found at configure time) on `text` as zone `zone`; returns its exit status and
/// output. -1: no kzonecheck.
inline std::pair<int, std::string> kzonecheck(const std::string& text, const std::string& zone) {
  const std::string tool = PLANFENCE_KZONECHECK;
  if (tool.empty()) return {-1, "kzonecheck was not found at configure time"};
  return run_zone_checker(tool, "-o " + zone, text);
}

/// The same with BIND's named-checkzone (optional at configure time). -1: not found.
inline std::pair<int, std::string> named_checkzone(const std::string& text, const std::string& zone) {
  const std::string tool = PLANFENCE_NAMED_CHECKZONE;
  if (tool.empty()) return {-1, "named-checkzone was not found at configure time"};
  return run_zone_checker(tool, zone, text);
}

/// Checks that kzonecheck and named-checkzone both load `text` as zone `zone` (a tool not found
/// at configure time is reported with WARN, not failed: PLANFENCE_REQUIRE_TEST_DEPS makes CI
/// find both).
inline void check_servers_load(const std::string& text, const std::string& zone) {
  for (const auto& check : {kzonecheck, named_checkzone}) {
    auto [status, output] = check(text, zone);
    if (status == -1) {
      WARN("not checked: " << output);
      continue;
    }
    INFO(output);
    CHECK(status == 0);
  }
}

/// Files in a directory, names only, sorted.
inline std::vector<std::string> files_in(const std::filesystem::path& directory) {
  std::vector<std::string> out;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) out.push_back(entry.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

inline planfence::zonefile_store open_with_zone(const std::filesystem::path& directory, const std::string& zone = "example.test.") {
  auto made = planfence::zonefile_store::create_zone(directory, zone);
  PLANFENCE_ASSERT(made.has_value());
  auto store = planfence::zonefile_store::open(directory);
  PLANFENCE_ASSERT(store.has_value());
  return std::move(*store);
}

/// The SOA serial of a zone file as the store wrote it: each rewrite advances it by one, so the
/// difference of two readings counts the rewrites between them.
inline std::uint32_t serial_of(const std::filesystem::path& file, const std::string& zone = "example.test.") {
  auto records = planfence::parse_zone(read_text(file), planfence::zone_parse_options{zone});
  REQUIRE(records);
  auto contents = planfence::decode_zone(*records, zone);
  REQUIRE(contents);
  return contents->soa.serial.value;
}

/// An enactor on a zone-file store of its own (the zone example.test., a local lease authority,
/// a manual clock, a plan registry): what the enactor tests of this suite set up.
struct enactor_rig {
  using enactor_type = planfence::enactor<planfence::zonefile_store, planfence::local_lease_authority<planfence::manual_clock>,
                                          planfence::plan_registry, planfence::manual_clock>;
  temp_directory dir;
  planfence::zonefile_store store = open_with_zone(dir.path());
  std::filesystem::path file = store.zone_file("example.test.");
  planfence::manual_clock clock;
  planfence::local_lease_authority<planfence::manual_clock> authority{clock};
  planfence::plan_registry registry;
  enactor_type e;
  explicit enactor_rig(planfence::enactor_config config) : e{store, authority, registry, clock, std::move(config)} {}
};

/// One zone per name, so that the store's endpoints are exactly those names (a zone's apex and
/// everything below it are endpoints of the store).
inline planfence::zonefile_store open_with_zones(const std::filesystem::path& directory, const std::vector<std::string>& zones) {
  for (const std::string& zone : zones) {
    auto made = planfence::zonefile_store::create_zone(directory, zone);
    PLANFENCE_ASSERT(made.has_value());
  }
  auto store = planfence::zonefile_store::open(directory);
  PLANFENCE_ASSERT(store.has_value());
  return std::move(*store);
}

/// The conformance fixture (tests/support/store_conformance.inc): each endpoint is the apex of a
/// zone of its own, so a name outside them (missing.example.test.) is unknown to the store.
struct zonefile_store_fixture {
  static constexpr const char* name = "zonefile";

  explicit zonefile_store_fixture(const std::vector<std::string>& names) : store(open_with_zones(directory.path(), names)) {}

  temp_directory directory;  // declared first: destroyed last
  planfence::zonefile_store store;

  const planfence::record_set& records(planfence::generation gen, const std::string& /*endpoint*/) {
    std::lock_guard lock(mutex_);
    sets_.push_back(planfence_test::a_records({planfence_test::address_of(gen.value())}));
    return sets_.back();
  }

  std::vector<std::string> served(planfence::endpoint_handle h) const { return planfence_test::served_addresses(store, h); }

 private:
  std::mutex mutex_;
  std::deque<planfence::record_set> sets_;
};

}  // namespace planfence_zonefile_test
