// tests/rfc2136/refusal_checks.hpp: what the RFC 2136 tests that read refusals share, whatever
// the server (knotd, PowerDNS, a fake responder): a store URI with one attempt and a timeout,
// opening or committing where a refusal is expected (its code checked, its message returned for
// the test's own checks), the output of a command line (knsupdate, kdig), and the TXT strings
// kdig reads at a name (txt_at).
//
//   const std::string message = planfence_rfc2136_test::open_refused(
//       planfence_rfc2136_test::store_uri(port, "example.test.", 1000, key), names, errc::authentication_failed);
//   INFO(message);
//   CHECK(planfence_rfc2136_test::contains(message, "BADKEY"));
#pragma once

#include <catch2/catch.hpp>

#include <planfence/rfc2136/store.hpp>

#include <algorithm>
#include <array>
#include <sstream>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "support/store_fixtures.hpp"

namespace planfence_rfc2136_test {

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// "rfc2136://127.0.0.1:PORT/ZONE?attempts=1&timeout-ms=T", with "&tsig=KEY" when `key` is given.
inline std::string store_uri(std::uint16_t port, const std::string& zone, int timeout_ms, const std::string& key = {}) {
  return "rfc2136://127.0.0.1:" + std::to_string(port) + "/" + zone + "?attempts=1&timeout-ms=" +
         std::to_string(timeout_ms) + (key.empty() ? std::string() : "&tsig=" + key);
}

/// Opens the store at `uri` for `names`, which must be refused with `code`; the refusal's message.
inline std::string open_refused(const std::string& uri, const std::vector<std::string>& names, planfence::errc code) {
  auto store = planfence::rfc2136_store::open_uri(uri, names);
  REQUIRE(!store);
  INFO(store.error().message());
  CHECK(store.error().code == code);
  return store.error().message();
}

/// Commits generation 1 (A 192.0.2.1) to www.example.test. over `store` from no stamp, which must
/// be refused with `code`; the refusal's message.
inline std::string first_commit_refused(planfence::rfc2136_store& store, planfence::errc code) {
  auto done = store.commit(store.resolve("www.example.test.").value(), planfence::stamp{},
                           planfence::stamp{planfence::generation{1}, planfence::fence_token{1}, 0},
                           planfence_test::a_records({"192.0.2.1"}));
  REQUIRE(!done);
  INFO(done.error().message());
  CHECK(done.error().code == code);
  return done.error().message();
}

/// The standard output of `command` run through the shell (empty when it could not run).
inline std::string command_output(const std::string& command) {
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    std::array<char, 512> buffer{};
    while (std::fgets(buffer.data(), static_cast<int>(buffer.size()), pipe) != nullptr) out += buffer.data();
    ::pclose(pipe);
  }
  return out;
}

/// The TXT strings the server answers at `name` (kdig, signed with the server's key), sorted.
template <class Server>
std::vector<std::string> txt_at(const Server& server, const std::string& name) {
  const std::string out = command_output("kdig @127.0.0.1 -p " + std::to_string(server.port()) + " -y " +
                                         server.key_argument() + " +short TXT " + name + " 2>&1");
  INFO(out);
  std::vector<std::string> strings;
  std::istringstream lines(out);
  // +short prints the answer's strings, then (signed) a blank line and the TSIG pseudosection.
  for (std::string line; std::getline(lines, line) && !line.empty();) {
    REQUIRE(!contains(line, ";; WARNING"));
    REQUIRE(!contains(line, ";; ERROR"));
    REQUIRE(line.size() >= 2);
    REQUIRE(line.front() == '"');
    REQUIRE(line.back() == '"');
    strings.push_back(line.substr(1, line.size() - 2));
  }
  REQUIRE(contains(out, "NOERROR"));  // the TSIG pseudosection: a signed answer from the server
  std::sort(strings.begin(), strings.end());
  return strings;
}

}  // namespace planfence_rfc2136_test
