// tests/recovery/ctl_truth_test.cpp: planfence-ctl never says "done" when it is not.
//
// What it proves, each case run as an operator would run the real binary (and each of them failed
// against the tool before these rules were written, docs/planfence-ctl.md "What the exit status
// promises"):
//  - an apply or override that could not write an endpoint (no zone for it, nothing to write to)
//    exits 1 and lists every endpoint the read-back found not serving the plan;
//  - a fence that cannot be raised (a full file system) makes override stop before it applies
//    anything, exit 2, and never claim automation is fenced out;
//  - output that cannot be written (a full device or file system) exits 3; a plan or zone written
//    to a regular file is cut back to what the file held before, and --output writes whole or not
//    at all;
//  - diff compares stamps: records of generation 3 under a stamp hand-edited to 1 are drift;
//  - hostile history directories (a FIFO or /dev/zero named like a plan file, a FIFO as the
//    collected high-water file, a plan padded with comments) neither hang nor crash the tool,
//    and 'latest' refuses when the newest plan does not load;
//  - a missing --dir is named as missing;
//  - a long apply prints its progress while it runs, and SIGINT or SIGTERM stop it between two
//    endpoints with a report and the signal's exit status;
//  - a TSIG secret in a store URI appears in no output of any command or error path (real knotd).
#include <catch2/catch.hpp>

#include <planfence/history.hpp>
#include <planfence/planfence.hpp>
#include <planfence/zonefile/store.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../support/fixtures.hpp"
#include "../support/shell.hpp"
#include "../support/temporary_directory.hpp"
#include "examples/support/knot_server.hpp"

#if defined(PLANFENCE_CTL_PATH)

namespace {

using planfence_test::temporary_directory;

using planfence_test::command_result;
using planfence_test::contains;
using planfence_test::run;

std::string ctl(const std::string& arguments) { return std::string(PLANFENCE_CTL_PATH) + " " + arguments; }

std::string read_all(const std::filesystem::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

const std::string zone = "example.test.";

planfence::plan plan_of(std::uint64_t g) {
  return planfence_test::make_plan(g, {{"api.example.test.", {"192.0.2.1"}},
                                       {"db.example.test.", {"198.51.100." + std::to_string(g), "198.51.100.200"}},
                                       {"www.example.test.", {"192.0.2.80"}}});
}

/// A history of generations 1..n of plan_of in `dir`.
void write_history(const std::string& dir, std::uint64_t n) {
  auto history = planfence::durable_history::open(dir).value();
  for (std::uint64_t g = 1; g <= n; ++g) REQUIRE(history->publish(plan_of(g)).has_value());
}

/// A small tmpfs at `path`, full to the last block, unmounted on destruction (root only).
struct full_file_system {
  std::filesystem::path path;
  bool mounted = false;
  explicit full_file_system(std::filesystem::path where) : path(std::move(where)) {
    std::filesystem::create_directories(path);
    mounted = ::mount("tmpfs", path.c_str(), "tmpfs", 0, "size=64k") == 0;
  }
  void fill() const {
    std::ofstream filler(path / "filler", std::ios::binary);
    const std::string block(4096, 'x');
    for (int i = 0; i < 64 && filler.write(block.data(), static_cast<std::streamsize>(block.size())); ++i) {
    }
  }
  ~full_file_system() {
    if (mounted) ::umount2(path.c_str(), MNT_DETACH);
  }
};

}  // namespace

TEST_CASE("ctl: nothing applied is never reported as done", "[recovery][ctl][truth]") {
  temporary_directory dir;
  const std::string history = (dir.path / "history").string();
  write_history(history, 3);

  SECTION("an empty store directory: every endpoint is outside every zone") {
    const std::string empty = (dir.path / "empty").string();
    std::filesystem::create_directories(empty);
    for (const std::string command : {"override", "apply"}) {
      auto r = run(ctl(std::string(command) + " --dir " + history + " --generation 3 --store zonefile://" + empty));
      CHECK(r.status == 1);
      CHECK(contains(r.output, "NOT APPLIED: the store has no such endpoint"));
      CHECK(contains(r.output, "Not done: read back, 3 endpoints of generation 3 do not serve it"));
      CHECK_FALSE(contains(r.output, "Verified"));
    }
  }
  SECTION("a zone for some endpoints only: the others are listed, exit 1") {
    const std::string zones = (dir.path / "zones").string();
    std::filesystem::create_directories(zones);
    auto store = planfence::zonefile_store::open(zones).value();
    REQUIRE(store.create_zone("db.example.test.").has_value());  // only db lives in a zone
    auto r = run(ctl("apply --dir " + history + " --generation 3 --store zonefile://" + zones));
    CHECK(r.status == 1);
    CHECK(contains(r.output, "db.example.test.                             applied"));
    CHECK(contains(r.output, "2 endpoints of generation 3 do not serve it"));
  }
}

TEST_CASE("ctl: a fence that cannot be raised stops override before it applies anything", "[recovery][ctl][truth]") {
  if (::geteuid() != 0) {
    WARN("not root: cannot mount a full tmpfs; the case runs in CI, which runs as root");
    return;
  }
  temporary_directory dir;
  const std::string history = (dir.path / "history").string();
  write_history(history, 3);
  full_file_system disk(dir.path / "disk");
  REQUIRE(disk.mounted);
  const std::string zones = (disk.path / "zones").string();
  std::filesystem::create_directories(zones);
  REQUIRE(planfence::zonefile_store::open(zones).value().create_zone(zone).has_value());
  const std::string before = read_all(std::filesystem::path(zones) / "example.test.zone");
  disk.fill();
  auto r = run(ctl("override --dir " + history + " --generation 3 --store zonefile://" + zones));
  CHECK(r.status == 2);
  CHECK(contains(r.output, "No space left on device"));
  CHECK(contains(r.output, "automation is NOT fenced out"));
  CHECK_FALSE(contains(r.output, "is in place"));
  CHECK_FALSE(contains(r.output, "Applying"));
  CHECK(read_all(std::filesystem::path(zones) / "example.test.zone") == before);
}

TEST_CASE("ctl: output that cannot be written is an error, and never a torn zone", "[recovery][ctl][truth]") {
  temporary_directory dir;
  const std::string history = (dir.path / "history").string();
  write_history(history, 3);
  const std::string show = ctl("show --dir " + history + " --generation 3");
  const std::string export_zone = ctl("export --dir " + history + " --generation 3 --zone " + zone);

  CHECK(run(show + " > /dev/full").status == 3);
  CHECK(run(ctl("history --dir " + history) + " > /dev/full").status == 3);
  CHECK(run(export_zone + " > /dev/full").status == 3);
  SECTION("a full file system: the file is cut back, --output leaves no file") {
    if (::geteuid() != 0) {
      WARN("not root: cannot mount a full tmpfs; the case runs in CI, which runs as root");
      return;
    }
    full_file_system disk(dir.path / "disk");
    REQUIRE(disk.mounted);
    // What the file held before fills its last page, so the appended zone needs a new one.
    const std::string kept = "; kept" + std::string(4096 - 7, ' ') + "\n";
    std::ofstream(disk.path / "zone.txt") << kept;
    disk.fill();
    auto appended = run("sh -c '" + export_zone + " >> " + (disk.path / "zone.txt").string() + "'");
    CHECK(appended.status == 3);
    CHECK(contains(appended.output, "cut back"));
    CHECK(read_all(disk.path / "zone.txt") == kept);
    auto atomic = run(export_zone + " --output " + (disk.path / "out.zone").string());
    CHECK(atomic.status == 3);
    CHECK_FALSE(std::filesystem::exists(disk.path / "out.zone"));
  }
  SECTION("--output writes the whole zone, through a symlink, keeping owner and mode") {
    auto written = run(export_zone + " --output " + (dir.path / "out.zone").string());
    CHECK(written.status == 0);
    CHECK(read_all(dir.path / "out.zone") == run(export_zone).output);
    // The server reads served/zone through a link; the file behind it is replaced, the link kept.
    std::filesystem::create_directories(dir.path / "served");
    std::ofstream(dir.path / "served" / "zone") << "; old\n";
    REQUIRE(::chmod((dir.path / "served" / "zone").c_str(), 0640) == 0);
    if (::geteuid() == 0) REQUIRE(::chown((dir.path / "served" / "zone").c_str(), 65534, 65534) == 0);
    std::filesystem::create_symlink(dir.path / "served" / "zone", dir.path / "link.zone");
    CHECK(run(export_zone + " --output " + (dir.path / "link.zone").string()).status == 0);
    CHECK(std::filesystem::is_symlink(dir.path / "link.zone"));
    CHECK(read_all(dir.path / "served" / "zone") == run(export_zone).output);
    struct stat info {};
    REQUIRE(::stat((dir.path / "served" / "zone").c_str(), &info) == 0);
    CHECK((info.st_mode & 07777) == 0640);
    if (::geteuid() == 0) CHECK((info.st_uid == 65534 && info.st_gid == 65534));
  }
}

TEST_CASE("ctl: a commit the store refuses says why, and is not reported as done", "[recovery][ctl][truth]") {
  // www is an MX owner in the zone (a hand-made record planfence keeps); generation 2 makes www a
  // CNAME, which no DNS server loads beside other data. The zone-file store refuses that commit
  // (nothing written), and the tool must say so in the store's words and exit 1.
  temporary_directory dir;
  const std::string history = (dir.path / "history").string();
  {
    auto h = planfence::durable_history::open(history).value();
    REQUIRE(h->publish(plan_of(1)).has_value());
    planfence::plan_builder builder{planfence::generation{2}, 1'761'200'000'002};
    const planfence::plan first = plan_of(1);
    for (const auto& e : first.endpoints()) {
      if (e->name != "www.example.test.") REQUIRE(builder.set(e->name, e->records).has_value());
    }
    auto cname = planfence::make_record(planfence::record_type::cname, 60, "api.example.test.").value();
    REQUIRE(builder.set("www.example.test.", planfence::record_set::make({cname}).value()).has_value());
    REQUIRE(h->publish(std::move(builder).build().value()).has_value());
  }
  const std::string zones = (dir.path / "zones").string();
  std::filesystem::create_directories(zones);
  REQUIRE(planfence::zonefile_store::open(zones).value().create_zone(zone).has_value());
  const std::string where = " --dir " + history + " --store zonefile://" + zones;
  REQUIRE(run(ctl("apply" + where + " --generation 1")).status == 0);
  {
    std::ofstream file(std::filesystem::path(zones) / "example.test.zone", std::ios::app);
    file << "www.example.test. 60 IN MX 10 mail.example.test.\n";
  }
  auto r = run(ctl("apply" + where + " --generation 2"));
  CHECK(r.status == 1);
  CHECK(contains(r.output, "www.example.test.                            NOT APPLIED: the store failed: invalid_plan"));
  CHECK(contains(r.output, "CNAME"));
  CHECK_FALSE(contains(r.output, "run again"));
  CHECK(contains(r.output, "Not done: read back, 1 endpoint of generation 2 does not serve it"));
  CHECK(run(ctl("diff" + where + " --generation 2")).status == 1);
}

TEST_CASE("ctl: diff compares stamps, not only records", "[recovery][ctl][truth]") {
  temporary_directory dir;
  const std::string history = (dir.path / "history").string();
  write_history(history, 3);
  const std::string zones = (dir.path / "zones").string();
  std::filesystem::create_directories(zones);
  REQUIRE(planfence::zonefile_store::open(zones).value().create_zone(zone).has_value());
  const std::string where = " --dir " + history + " --store zonefile://" + zones;
  REQUIRE(run(ctl("apply" + where + " --generation 3")).status == 0);
  REQUIRE(run(ctl("diff" + where + " --generation 3")).status == 0);
  // Hand-edit db's stamp to generation 1: the records still are generation 3's. With the store's
  // apply marks saying 3 is applied, a stamp below it is what a change-following apply leaves on
  // an endpoint its plan did not change: it serves plan 3 (its effective generation), no drift.
  const std::filesystem::path file = std::filesystem::path(zones) / "example.test.zone";
  std::string text = read_all(file);
  const std::size_t at = text.find("\"gen=3 fence=1\"", text.find("_planfence.db"));
  REQUIRE(at != std::string::npos);
  text.replace(at, 15, "\"gen=1 fence=1\"");
  std::ofstream(file, std::ios::trunc) << text;
  REQUIRE(contains(text, "\"begun=3 applied=3\""));
  CHECK(run(ctl("diff" + where + " --generation 3")).status == 0);
  // Without the marks, the stamp alone says generation 1: drift.
  const std::size_t marks_line = text.find("\n_apply._planfence.") + 1;
  REQUIRE(marks_line != 0);
  text.erase(marks_line, text.find('\n', marks_line) + 1 - marks_line);
  std::ofstream(file, std::ios::trunc) << text;
  auto drift = run(ctl("diff" + where + " --generation 3"));
  CHECK(drift.status == 1);
  CHECK(contains(drift.output, "stamp: generation 1, not 3"));
  CHECK(contains(drift.output, "2 endpoints agree, 1 differ"));
}

TEST_CASE("ctl: hostile history files neither hang nor crash the tool", "[recovery][ctl][truth]") {
  temporary_directory dir;
  const std::filesystem::path history = dir.path / "history";
  write_history(history.string(), 3);
  const std::string on = " --dir " + history.string();

  SECTION("a FIFO and /dev/zero named like plan files") {
    REQUIRE(::mkfifo((history / "0000000004.plan").c_str(), 0644) == 0);
    std::filesystem::create_symlink("/dev/zero", history / "0000000005.plan");
    auto listing = run(ctl("history" + on), 20);
    CHECK(listing.status == 1);
    CHECK(contains(listing.output, "0000000004.plan: io_error"));
    CHECK(contains(listing.output, "not a regular file"));
    auto latest = run(ctl("show" + on + " --generation latest"), 20);
    CHECK(latest.status == 2);
    CHECK(contains(latest.output, "the newest generation, 5, does not load"));
    CHECK(run(ctl("show" + on + " --generation 3"), 20).status == 0);
  }
  SECTION("a FIFO as the collected high-water file") {
    REQUIRE(::mkfifo((history / "collected-high-water").c_str(), 0644) == 0);
    auto r = run(ctl("history" + on), 20);
    CHECK(r.status == 2);
    CHECK(contains(r.output, "collected-high-water: not a regular file"));
  }
  SECTION("a plan padded with comments, or larger than the bound") {
    {
      std::ofstream padded(history / "0000000003.plan", std::ios::app);
      for (int i = 0; i < 1000; ++i) padded << "# padding padding padding padding padding padding\n";
    }
    auto r = run(ctl("history" + on), 20);
    CHECK(r.status == 1);
    CHECK(contains(r.output, "0000000003.plan: invalid_plan: not the text publish writes"));
    auto small = run(ctl("history" + on + " --plan-bytes-max 100"), 20);
    CHECK(small.status == 1);
    CHECK(contains(small.output, "0000000001.plan: capacity_exceeded"));
    CHECK(run(ctl("history" + on + " --plan-bytes-max 0"), 20).status == 2);
  }
  SECTION("a missing directory is named as missing") {
    auto r = run(ctl("history --dir " + (dir.path / "nope").string()));
    CHECK(r.status == 2);
    CHECK(contains(r.output, "does not exist"));
  }
}

namespace {

/// Starts the ctl with stdout and stderr into `log`, returns its pid.
pid_t spawn(const std::vector<std::string>& arguments, const std::filesystem::path& log) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> argv;
    for (const std::string& a : arguments) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

}  // namespace

TEST_CASE("ctl: a long apply shows progress, and SIGINT or SIGTERM stop it with a report", "[recovery][ctl][truth]") {
  temporary_directory dir;
  const std::string history = (dir.path / "history").string();
  {
    // 400 endpoints in batches of 8 (--batch): each batch rewrites and fsyncs the zone, so the
    // apply runs for seconds, long enough to print progress and to be interrupted in the middle
    // (with the default 4,096 it is one rewrite).
    auto h = planfence::durable_history::open(history).value();
    std::map<std::string, std::vector<std::string>> endpoints;
    for (int i = 0; i < 400; ++i) endpoints["e" + std::to_string(i) + ".example.test."] = {"192.0.2.7"};
    REQUIRE(h->publish(planfence_test::make_plan(1, endpoints)).has_value());
  }
  for (const int signal_number : {SIGINT, SIGTERM}) {
    const std::string zones = (dir.path / ("zones" + std::to_string(signal_number))).string();
    std::filesystem::create_directories(zones);
    REQUIRE(planfence::zonefile_store::open(zones).value().create_zone(zone).has_value());
    // A log of its own per run: the parent must not find the previous run's lines.
    const std::filesystem::path log = dir.path / ("apply" + std::to_string(signal_number) + ".log");
    const pid_t pid = spawn({PLANFENCE_CTL_PATH, "apply", "--dir", history, "--generation", "1", "--batch", "8", "--store",
                             "zonefile://" + zones},
                            log);
    // Wait for the first endpoints, then interrupt.
    for (int i = 0; i < 600 && !contains(read_all(log), "e10"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    REQUIRE(::kill(pid, signal_number) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    const std::string output = read_all(log);
    INFO(output);
    INFO("signalled: " << (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 128 + signal_number);
    CHECK(contains(output, signal_number == SIGINT ? "Interrupted by SIGINT after" : "Interrupted by SIGTERM after"));
    CHECK(contains(output, "run the same command again to finish"));
    // What it reported applied is applied: finishing the job applies the rest only.
    auto rest = run("env PLANFENCE_CTL_PROGRESS_MS=0 " + ctl("apply --dir " + history + " --generation 1 --store zonefile://" + zones), 300);
    CHECK(rest.status == 0);
    CHECK(contains(rest.output, "e1.example.test.                             left alone"));
    CHECK(contains(rest.output, "planfence-ctl apply: decided 400 of 400 endpoints (100%)"));  // progress, stderr
  }
}

TEST_CASE("ctl: a TSIG secret in the store URI appears in no output (real knotd)", "[recovery][ctl][secrets]") {
  REQUIRE(planfence_example::knot_server::available());
  temporary_directory dir;
  const std::string history = (dir.path / "history").string();
  write_history(history, 3);
  auto knot = planfence_example::knot_server::start({{zone, ""}});
  REQUIRE(knot.has_value());
  const std::string secret = knot->secret_base64();
  const std::string good = knot->uri(zone);
  const std::string port = std::to_string(knot->port());
  // Another secret of the same shape, for URIs that are wrong in other ways.
  const std::string other_secret = "c2VjcmV0LW5vdC10by1iZS1zZWVuLWFueXdoZXJlISE=";
  const std::vector<std::string> stores = {
      good,
      "rfc2136://127.0.0.1:" + port + "/" + zone + "?tsig=hmac-sha256:" + knot->key_name() + ":" + other_secret,
      "rfc2136://127.0.0.1:" + port + "/" + zone + "?tsig=hmac-sha256:wrong-key:" + secret,
      "rfc2136://127.0.0.1:" + port + "/other.test.?tsig=" + knot->key_argument(),
      "rfc2136://127.0.0.1:1/" + zone + "?tsig=" + knot->key_argument(),
      "rfc2136://127.0.0.1:" + port + "/" + zone + "?tsgi=" + knot->key_argument(),
      "rfc2136://127.0.0.1:" + port + "/" + zone + "?" + secret,
      "rfc2136://127.0.0.1:" + port + "/" + zone + "?tsig=hmac-md5:" + knot->key_name() + ":" + secret,
      "rfc2137://127.0.0.1:" + port + "/" + zone + "?tsig=" + knot->key_argument(),
      "rfc2136://::1:" + port + "/" + zone + "?tsig=" + knot->key_argument(),
      // Secrets typed into URIs of other stores, or into --store with no scheme at all.
      "zonefile:///tmp?tsig=" + knot->key_argument(),
      "zonefile://admin:" + secret + "@/tmp",
      secret,
      "etcd://admin:" + secret + "@127.0.0.1:1/planfence",
  };
  const std::string on = " --dir " + history + " --generation 3 --store '";
  for (const std::string& store : stores) {
    for (const std::string command : {"diff", "apply", "override"}) {
      auto r = run(ctl(std::string(command) + on + store + "'"));
      CHECK_FALSE(contains(r.output, secret));
      CHECK_FALSE(contains(r.output, other_secret));
    }
    auto released = run(ctl("release --store '" + store + "'"));
    CHECK_FALSE(contains(released.output, secret));
    CHECK_FALSE(contains(released.output, other_secret));
    auto rehearsed = run(ctl("rehearse --dir " + history + " --zone " + zone + " --endpoint db.example.test. --store '" +
                             store + "'"));
    CHECK_FALSE(contains(rehearsed.output, secret));
  }
  // And the good URI did work, so the secret was really exercised.
  CHECK(run(ctl("diff" + on + good + "'")).status == 0);
}

TEST_CASE("README: the second quick-start command runs without sudo (a fresh container has none)", "[recovery][docs]") {
  const std::string readme = read_all(std::filesystem::path(__FILE__).parent_path() / "../../README.md");
  const std::size_t start = readme.find("## Quick start");
  REQUIRE(start != std::string::npos);
  const std::size_t block = readme.find("```sh\n", start);
  REQUIRE(block != std::string::npos);
  const std::size_t second = readme.find('\n', block + 6) + 1;
  CHECK(readme.substr(second, readme.find('\n', second) - second) == "tests/run_all.sh");
}

TEST_CASE("ctl: docs/planfence-ctl.md shows every command's --help exactly as the binary prints it", "[recovery][ctl][docs]") {
  const std::filesystem::path doc = std::filesystem::path(__FILE__).parent_path() / "../../docs/planfence-ctl.md";
  const std::string text = read_all(doc);
  REQUIRE_FALSE(text.empty());
  CHECK(contains(text, run(ctl("--help")).output));
  for (const char* command : {"history", "show", "export", "diff", "apply", "override", "release", "rehearse", "status"}) {
    INFO(command);
    CHECK(contains(text, "```\n" + run(ctl(std::string(command) + " --help")).output + "```"));
  }
}

#endif  // PLANFENCE_CTL_PATH
