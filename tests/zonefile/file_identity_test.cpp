// The zone-file store keeps the identity of the files it rewrites, and says exactly what happened
// when raising the fence fails:
//  - a zone file (or planfence.floor) that is a symbolic link is followed: the link's target, which
//    the DNS server reads, gets the new content and the link stays a link;
//  - owner, group and mode are kept across a commit and a raise_fence (checked as root, with the
//    file chowned to nobody:nogroup 0640 first; without root the test says so and skips that part);
//    a writer running as nobody, which cannot chown the new file back to root, writes nothing;
//  - a zone file with several hard links is refused with nothing written (a rename would leave the
//    other names with the old content);
//  - raise_fence on a full file system (a 64 KiB tmpfs, as root) and with a zone that cannot be
//    written: the error names the file and errno, says what was and was not raised, and the floor
//    is what the error says it is.
#include <catch2/catch.hpp>

#include <grp.h>
#include <pwd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "zonefile_fixture.hpp"

using namespace planfence;
using namespace planfence_zonefile_test;

namespace {

struct stat stat_of(const std::filesystem::path& path) {
  struct stat info {};
  REQUIRE(::lstat(path.c_str(), &info) == 0);
  return info;
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on destruction; mounted() is false
/// when mounting is not allowed (not root, or no CAP_SYS_ADMIN).
class small_tmpfs {
 public:
  explicit small_tmpfs(const char* size) {
    const std::string options = std::string("size=") + size;
    mounted_ = ::geteuid() == 0 && ::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, options.c_str()) == 0;
  }
  small_tmpfs(const small_tmpfs&) = delete;
  small_tmpfs& operator=(const small_tmpfs&) = delete;
  ~small_tmpfs() {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  [[nodiscard]] bool mounted() const noexcept { return mounted_; }
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return dir_.path(); }

 private:
  temp_directory dir_;
  bool mounted_ = false;
};

}  // namespace

TEST_CASE("zonefile store: a symlinked zone file is followed: the target gets the commit, the link stays", "[zonefile][identity]") {
  temp_directory dir;
  temp_directory elsewhere;
  zonefile_store store = open_with_zone(dir.path());
  const std::filesystem::path link = store.zone_file("example.test.");
  const std::filesystem::path target = elsewhere.path() / "example.test.db";
  std::filesystem::rename(link, target);
  std::filesystem::create_symlink(target, link);

  const endpoint_handle www = store.resolve("www.example.test.").value();
  auto done = store.commit(www, store.read_stamp(www).value(), stamp_at(1, 1), planfence_test::a_records({"192.0.2.1"}));
  INFO((done ? std::string("ok") : done.error().message()));
  REQUIRE(done);
  CHECK(std::filesystem::is_symlink(link));
  CHECK(std::filesystem::read_symlink(link) == target);
  CHECK(contains(read_text(target), "_planfence.www.example.test. 0 IN TXT \"gen=1 fence=1\""));
  CHECK(store.read_stamp(www).value() == stamp_at(1, 1));
  CHECK_FALSE(std::filesystem::exists(target.string() + ".tmp"));

  // The floor file too.
  const std::filesystem::path floor_target = elsewhere.path() / "floor";
  write_text(floor_target, "floor=1\n");
  std::filesystem::create_symlink(floor_target, dir.path() / "planfence.floor");
  REQUIRE(store.raise_fence(fence_token{4}));
  CHECK(std::filesystem::is_symlink(dir.path() / "planfence.floor"));
  CHECK(read_text(floor_target) == "floor=4\n");
  CHECK(contains(read_text(target), "\"floor=4\""));

  // A dangling link is refused, nothing created.
  std::filesystem::remove(target);
  auto refused = store.commit(www, stamp_at(1, 4), stamp_at(2, 4), planfence_test::a_records({"192.0.2.2"}));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::store_unavailable);
  CHECK_FALSE(std::filesystem::exists(target));
}

TEST_CASE("zonefile store: commits and raise_fence keep the files' owner, group and mode", "[zonefile][identity]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const std::filesystem::path file = store.zone_file("example.test.");
  const std::filesystem::path floor = dir.path() / "planfence.floor";
  write_text(floor, "floor=0\n");
  uid_t uid = ::geteuid();
  gid_t gid = ::getegid();
  if (::geteuid() == 0) {
    const struct passwd* nobody = ::getpwnam("nobody");
    const struct group* nogroup = ::getgrnam("nogroup");
    if (nogroup == nullptr) nogroup = ::getgrnam("nobody");
    REQUIRE(nobody != nullptr);
    REQUIRE(nogroup != nullptr);
    uid = nobody->pw_uid;
    gid = nogroup->gr_gid;
  } else {
    WARN("not root: the owner is kept as the invoking user only; run as root to check nobody:nogroup");
  }
  REQUIRE(::chown(file.c_str(), uid, gid) == 0);
  REQUIRE(::chmod(file.c_str(), 0640) == 0);
  REQUIRE(::chown(floor.c_str(), uid, gid) == 0);
  REQUIRE(::chmod(floor.c_str(), 0604) == 0);

  const endpoint_handle www = store.resolve("www.example.test.").value();
  REQUIRE(store.commit(www, store.read_stamp(www).value(), stamp_at(1, 1), planfence_test::a_records({"192.0.2.1"})));
  REQUIRE(store.raise_fence(fence_token{3}));
  for (const auto& path : {file, floor}) {
    INFO(path);
    const struct stat info = stat_of(path);
    CHECK(info.st_uid == uid);
    CHECK(info.st_gid == gid);
    CHECK((info.st_mode & 07777) == (path == file ? 0640U : 0604U));
  }
  CHECK(contains(read_text(file), "gen=1 fence=1"));
  CHECK(contains(read_text(file), "\"floor=3\""));
  CHECK(read_text(floor) == "floor=3\n");
}

TEST_CASE("zonefile store: a writer that cannot give the file its owner back writes nothing", "[zonefile][identity]") {
  if (::geteuid() != 0) {
    WARN("not root: cannot run a writer as another user; the refusal is not checked");
    return;
  }
  const struct passwd* nobody = ::getpwnam("nobody");
  REQUIRE(nobody != nullptr);
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const std::filesystem::path file = store.zone_file("example.test.");
  // The directory and lock file open to the other user, the zone file root's and only readable.
  REQUIRE(::chmod(dir.path().c_str(), 0777) == 0);
  write_text(file.string() + ".lock", "");
  REQUIRE(::chmod((file.string() + ".lock").c_str(), 0666) == 0);
  const std::string before = read_text(file);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::alarm(10);
    if (::setgid(nobody->pw_gid) != 0 || ::setuid(nobody->pw_uid) != 0) ::_exit(3);
    const endpoint_handle www = store.resolve("www.example.test.").value();
    auto refused = store.commit(www, stamp{}, stamp_at(1, 1), planfence_test::a_records({"192.0.2.1"}));
    if (refused) ::_exit(1);
    const std::string message = refused.error().message();
    std::fprintf(stderr, "%s\n", message.c_str());
    const bool says = contains(message, "cannot give the temp file the owner 0:0 of " + file.string()) &&
                      contains(message, "nothing was written");
    ::_exit(says ? 0 : 2);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(read_text(file) == before);
  CHECK(stat_of(file).st_uid == 0);
  CHECK_FALSE(std::filesystem::exists(file.string() + ".tmp"));
}

TEST_CASE("zonefile store: a zone file with several hard links is refused, nothing written", "[zonefile][identity]") {
  temp_directory dir;
  zonefile_store store = open_with_zone(dir.path());
  const std::filesystem::path file = store.zone_file("example.test.");
  const std::filesystem::path other = dir.path() / "served-by-the-server";
  std::filesystem::create_hard_link(file, other);
  const std::string before = read_text(file);
  const endpoint_handle www = store.resolve("www.example.test.").value();
  auto refused = store.commit(www, store.read_stamp(www).value(), stamp_at(1, 1), planfence_test::a_records({"192.0.2.1"}));
  REQUIRE_FALSE(refused);
  INFO(refused.error().message());
  CHECK(refused.error().code == errc::store_unavailable);
  CHECK(contains(refused.error().detail, file.string() + ": has 2 hard links"));
  CHECK(contains(refused.error().detail, "nothing was written"));
  CHECK(read_text(file) == before);
  CHECK(read_text(other) == before);
  CHECK(stat_of(file).st_ino == stat_of(other).st_ino);
}

TEST_CASE("zonefile store: raise_fence failing names the file and errno and says what was raised", "[zonefile][identity][fence]") {
  SECTION("the file system is full: nothing is raised") {
    small_tmpfs fs("64k");
    if (!fs.mounted()) {
      WARN("cannot mount a tmpfs (not root?): the full file system case is not checked");
      return;
    }
    zonefile_store store = open_with_zone(fs.path());
    {
      std::ofstream filler(fs.path() / "filler", std::ios::binary);
      const std::string block(4096, 'x');
      for (int i = 0; i < 64 && filler; ++i) filler << block << std::flush;
    }
    auto refused = store.raise_fence(fence_token{7});
    REQUIRE_FALSE(refused);
    INFO(refused.error().message());
    CHECK(refused.error().code == errc::store_unavailable);
    CHECK(contains(refused.error().detail, "raise_fence to 7: FAILED"));
    CHECK(contains(refused.error().detail, (fs.path() / "planfence.floor.tmp").string()));
    CHECK(contains(refused.error().detail, std::strerror(ENOSPC)));
    CHECK(contains(refused.error().detail, "the floor was not raised"));
    std::filesystem::remove(fs.path() / "filler");
    CHECK(store.fence_floor().value() == fence_token{0});
    CHECK_FALSE(std::filesystem::exists(fs.path() / "planfence.floor.tmp"));
  }
  SECTION("a zone cannot be written: planfence.floor is raised, and the error says so") {
    temp_directory dir;
    zonefile_store store = open_with_zone(dir.path());
    std::filesystem::create_directory(dir.path() / "example.test.zone.tmp");  // cannot be removed nor created
    auto refused = store.raise_fence(fence_token{7});
    REQUIRE_FALSE(refused);
    INFO(refused.error().message());
    CHECK(refused.error().code == errc::store_unavailable);
    CHECK(contains(refused.error().detail, "raise_fence to 7: FAILED"));
    CHECK(contains(refused.error().detail, "example.test.zone.tmp: cannot create the temp file"));
    CHECK(contains(refused.error().detail, std::strerror(EISDIR)));
    CHECK(contains(refused.error().detail, (dir.path() / "planfence.floor").string() + " says floor=7"));
    CHECK(contains(refused.error().detail, "run raise_fence again"));
    CHECK(read_text(dir.path() / "planfence.floor") == "floor=7\n");
    std::filesystem::remove(dir.path() / "example.test.zone.tmp");
    REQUIRE(store.raise_fence(fence_token{7}));
    CHECK(contains(read_text(store.zone_file("example.test.")), "\"floor=7\""));
  }
  SECTION("the floor file's path is a directory: refused by name") {
    temp_directory dir;
    zonefile_store store = open_with_zone(dir.path());
    std::filesystem::create_directory(dir.path() / "planfence.floor");
    auto refused = store.raise_fence(fence_token{7});
    REQUIRE_FALSE(refused);
    INFO(refused.error().message());
    CHECK(contains(refused.error().detail, (dir.path() / "planfence.floor").string() + ": is a directory, not a regular file"));
    CHECK(contains(refused.error().detail, "the floor was not raised"));
  }
}
