// Proves that redact_uri (detail/uri.hpp) takes every secret out of a store URI, well-formed or
// not: the TSIG secret of `tsig=ALG:NAME:SECRET`, the password of a userinfo, the value of any
// parameter not on the public whitelist (a misspelt one included), a parameter without '=', a
// fragment; and that it keeps what an operator needs to recognise the store (scheme, host, port,
// path, key name, file paths).
#include <catch2/catch.hpp>

#include <string>

#include <planfence/detail/uri.hpp>

using planfence::detail::redact_uri;

namespace {
const std::string secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQ=";
}

TEST_CASE("redact_uri hides secrets and keeps what names the store", "[uri]") {
  SECTION("tsig keeps a known algorithm name only") {
    const std::string out = redact_uri("rfc2136://127.0.0.1:53/example.test.?tsig=hmac-sha256:planfence-key:" + secret);
    CHECK(out == "rfc2136://127.0.0.1:53/example.test.?tsig=hmac-sha256:(redacted)");
    // Fields in the wrong order put the secret first: nothing of it is shown.
    CHECK(redact_uri("rfc2136://h/z?tsig=" + secret + ":planfence-key:hmac-sha256") == "rfc2136://h/z?tsig=(redacted)");
  }
  SECTION("a tsig value without colons is hidden whole") {
    CHECK(redact_uri("rfc2136://h/z?tsig=" + secret) == "rfc2136://h/z?tsig=(redacted)");
  }
  SECTION("a password with a raw '/' is hidden whole") {
    // Seen in CI: a random base64 secret beginning with '/' was printed by planfence-ctl.
    CHECK(redact_uri("zonefile://admin:/x4t/SGDY=@/tmp") == "zonefile://admin:(redacted)@/tmp");
    CHECK(redact_uri("etcd://root:ab/cd@127.0.0.1:2379/pf") == "etcd://root:(redacted)@127.0.0.1:2379/pf");
  }
  SECTION("a userinfo keeps its user name only") {
    CHECK(redact_uri("etcd://root:" + secret + "@127.0.0.1:2379/pf") == "etcd://root:(redacted)@127.0.0.1:2379/pf");
    CHECK(redact_uri("etcd://a:" + secret + "@h1:1,h2:2/pf?fence=floor") == "etcd://a:(redacted)@h1:1,h2:2/pf?fence=floor");
  }
  SECTION("a port that is not a number is hidden: a password whose '@' is missing") {
    CHECK(redact_uri("etcd://root:" + secret + "/pf") == "etcd://root:(redacted)/pf");
    CHECK(redact_uri("etcd://h1:2379,root:" + secret + "/pf") == "etcd://h1:2379,root:(redacted)/pf");
    CHECK(redact_uri("rfc2136://[::1]:5300/z") == "rfc2136://[::1]:5300/z");
  }
  SECTION("public parameters are kept, unknown or misspelt ones hidden") {
    CHECK(redact_uri("rfc2136://h/z?tsig-file=/etc/key&tsigg=" + secret) == "rfc2136://h/z?tsig-file=/etc/key&(redacted)");
    CHECK(redact_uri("etcd://h:1/p?password=" + secret) == "etcd://h:1/p?password=(redacted)");
    CHECK(redact_uri("rfc2136://h/z?" + secret) == "rfc2136://h/z?(redacted)");
    CHECK(redact_uri("rfc2136://h/z?a=1&&" + secret) == "rfc2136://h/z?(redacted)&(redacted)&(redacted)");
  }
  SECTION("a fragment is hidden") {
    CHECK(redact_uri("zonefile:///srv/z#" + secret) == "zonefile:///srv/z#(redacted)");
  }
  SECTION("URIs without secrets are unchanged") {
    for (const char* uri : {"zonefile:///srv/zones", "rfc2136://[::1]:5300/example.test.",
                                  "etcd://127.0.0.1:2379,127.0.0.1:2380/planfence/prod?fence=holder", ""}) {
      CHECK(redact_uri(uri) == std::string(uri));
    }
  }
  SECTION("text that is no URI is hidden whole") {
    CHECK(redact_uri(secret) == "(redacted)");
    CHECK(redact_uri("garbage") == "(redacted)");
  }
  SECTION("the secret never survives, whatever surrounds it") {
    for (const std::string& uri :
         {"etcd://u:" + secret + "@h/p", "rfc2136://h/z?tsig=x:y:" + secret + "&tsig-file=/k", "x?tsig=" + secret, "rfc2136://h/z?" + secret + "=x",
          "rfc2136://h/z?tsig=hmac-sha256:" + secret, "rfc2136://h/z?tsig=" + secret + ":k:hmac-sha256", "e://u:" + secret + "@@h/p", "etcd://u:" + secret + "/p", "etcd://u:" + secret, "rfc2136://h/z?tsig=a:b:" + secret + "#f"}) {
      INFO(uri);
      CHECK(redact_uri(uri).find(secret) == std::string::npos);
    }
  }
}
