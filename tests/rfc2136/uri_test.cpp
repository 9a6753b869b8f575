// Proves that rfc2136_store::parse_uri refuses what it cannot read unambiguously and never puts a
// secret in its error messages. Every error path of the parser is driven with a URI (or a key
// file) carrying one known TSIG secret, and each message is searched for the secret, for its
// lower-case form (an algorithm field is lower-cased before it is quoted), and for its first 16
// characters. An unbracketed IPv6 host ("::1:15397", which could be [::1]:15397 or the address
// ::1:15397) is refused with a message saying how to write it. No server is needed.
#include <catch2/catch.hpp>

#include <planfence/rfc2136/store.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

using namespace planfence;

namespace {

// base64("PlanfenceSecretForTests-0123456789AB"): no '/' or '+', so it also parses as a name.
const std::string secret = "UGxhbmZlbmNlU2VjcmV0Rm9yVGVzdHMtMDEyMzQ1Njc4OUFC";
const std::string key = "hmac-sha256:planfence-key.:" + secret;

void check_no_secret(const std::string& message) {
  INFO(message);
  std::string lower = secret;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) { return static_cast<char>(std::tolower(c)); });
  std::string lower_message = message;
  std::transform(lower_message.begin(), lower_message.end(), lower_message.begin(),
                 [](char c) { return static_cast<char>(std::tolower(c)); });
  CHECK(message.find(secret.substr(0, 16)) == std::string::npos);
  CHECK(lower_message.find(lower.substr(0, 16)) == std::string::npos);
}

/// A 0600 file holding `content`, removed at the end of the scope.
struct key_file {
  explicit key_file(const std::string& content) {
    char pattern[] = "/tmp/planfence-uri-test-XXXXXX";
    const int fd = ::mkstemp(pattern);
    REQUIRE(fd >= 0);
    ::close(fd);
    path = pattern;
    std::ofstream(path) << content;
    ::chmod(path.c_str(), 0600);
  }
  ~key_file() { std::remove(path.c_str()); }
  std::string path;
};

}  // namespace

TEST_CASE("uri: an unbracketed IPv6 host is refused with the bracketed form to write", "[uri]") {
  auto unbracketed = rfc2136_store::parse_uri("rfc2136://::1:15397/example.test.");
  REQUIRE(!unbracketed);
  CHECK(unbracketed.error().code == errc::parse_error);
  CHECK(unbracketed.error().message().find("[::1]:15397") != std::string::npos);
  auto no_port = rfc2136_store::parse_uri("rfc2136://2001:db8::53/example.test.");
  REQUIRE(!no_port);
  CHECK(no_port.error().message().find("[2001:db8::53]") != std::string::npos);
  auto bare = rfc2136_store::parse_uri("rfc2136://::1/example.test.");  // not "[:]:1"
  REQUIRE(!bare);
  CHECK(bare.error().message().find("write [::1] for that address on port 53") != std::string::npos);
  CHECK(bare.error().message().find("[:]") == std::string::npos);
  auto bracketed = rfc2136_store::parse_uri("rfc2136://[::1]:15397/example.test.");
  REQUIRE(bracketed);
  CHECK(bracketed->host == "::1");
  CHECK(bracketed->port == 15397);
  auto v4 = rfc2136_store::parse_uri("rfc2136://127.0.0.1:15397/example.test.");
  REQUIRE(v4);
  CHECK(v4->host == "127.0.0.1");
  CHECK(v4->port == 15397);
}

TEST_CASE("uri: no parse error echoes the secret", "[uri][secret]") {
  ::setenv("PLANFENCE_URI_TEST_KEY", key.c_str(), 1);
  const std::string tail = "?tsig=" + key;
  const std::vector<std::string> refused = {
      "http://127.0.0.1/example.test." + tail,                              // scheme
      "rfc2136://127.0.0.1" + tail,                                          // no /ZONE
      "rfc2136://::1:15397/example.test." + tail,                            // unbracketed IPv6
      "rfc2136://[::1/example.test." + tail,                                 // unclosed [
      "rfc2136://[::1]x/example.test." + tail,                               // junk after ]
      "rfc2136://[::1]:0/example.test." + tail,                              // bad port in brackets
      "rfc2136://127.0.0.1:99999/example.test." + tail,                      // bad port
      "rfc2136://planfence:" + secret + "@127.0.0.1/example.test.",         // userinfo
      "rfc2136:///example.test." + tail,                                     // no host
      "rfc2136://127.0.0.1/%zz" + tail,                                      // bad zone escape
      "rfc2136://127.0.0.1/" + tail,                                         // empty zone
      "rfc2136://127.0.0.1/example.test.?" + key,                            // pair without '='
      "rfc2136://127.0.0.1/example.test.?tsgi=" + key,                       // misspelt tsig
      "rfc2136://127.0.0.1/example.test.?" + secret + "=1",                  // the secret as a name
      "rfc2136://127.0.0.1/example.test.?tsig=" + key + "%zz",               // bad escape in the value
      "rfc2136://127.0.0.1/example.test." + tail + "&tsig-env=PLANFENCE_URI_TEST_KEY",  // key twice
      "rfc2136://127.0.0.1/example.test.?tsig=" + secret,                    // no ALGORITHM:NAME:
      "rfc2136://127.0.0.1/example.test.?tsig=hmac-md5:k.:" + secret,        // other algorithm
      "rfc2136://127.0.0.1/example.test.?tsig=hmac-sha256:k.:" + secret + "!",  // not base64
      "rfc2136://127.0.0.1/example.test.?tsig=hmac-sha256:bad%20name:" + secret,  // bad key name
      "rfc2136://127.0.0.1/example.test.?tsig-env=" + key,                   // the key, not a variable name
      "rfc2136://127.0.0.1/example.test.?tsig-env=" + secret,                // an unset "variable"
      "rfc2136://127.0.0.1/example.test.?timeout-ms=0&tsig=" + key,          // bad timeout
      "rfc2136://127.0.0.1/example.test.?attempts=11&tsig=" + key,           // bad attempts
      "rfc2136://127.0.0.1/example.test.?tcp=maybe&tsig=" + key,             // bad tcp
      "rfc2136://127.0.0.1/example.test." + tail + "#" + secret,             // fragment
  };
  for (const std::string& uri : refused) {
    auto parsed = rfc2136_store::parse_uri(uri);
    INFO(uri);
    REQUIRE(!parsed);
    CHECK(parsed.error().code == errc::parse_error);
    CHECK(!parsed.error().message().empty());
    check_no_secret(parsed.error().message());
  }
  // A key written in the wrong order puts the secret where the algorithm goes; the parser does
  // not quote it (detail::redact_uri, which names the URI, keeps that field: see docs/rfc2136.md).
  auto swapped = detail::parse_tsig_key(secret + ":k.:AAAA");
  REQUIRE(!swapped);
  check_no_secret(swapped.error().message());
  // A malformed key file: the message names the file, never what is in it.
  for (const std::string& content : {secret + "\n", "hmac-sha256:planfence-key.:" + secret + "!\n",
                                     secret + ":planfence-key.:AAAA\n", "key \"k\" { secret \"" + secret + "\"; };\n"}) {
    key_file file(content);
    auto parsed = rfc2136_store::parse_uri("rfc2136://127.0.0.1/example.test.?tsig-file=" + file.path);
    INFO(content);
    REQUIRE(!parsed);
    CHECK(parsed.error().message().find(file.path) != std::string::npos);
    check_no_secret(parsed.error().message());
  }
  // The same key, well-formed, is accepted from each source.
  key_file good(key + "\n");
  CHECK(rfc2136_store::parse_uri("rfc2136://127.0.0.1/example.test." + tail));
  CHECK(rfc2136_store::parse_uri("rfc2136://127.0.0.1/example.test.?tsig-file=" + good.path));
  CHECK(rfc2136_store::parse_uri("rfc2136://127.0.0.1/example.test.?tsig-env=PLANFENCE_URI_TEST_KEY"));
  ::unsetenv("PLANFENCE_URI_TEST_KEY");
}
