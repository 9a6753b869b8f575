// The etcd client's parsers without a server: JSON (etcd/json.hpp), base64, HTTP responses
// (etcd/http.hpp), etcd URIs and endpoint values. Each case feeds well-formed input the gateway
// really sends (copied from etcd 3.4.23) and hostile input that must be refused with an error,
// never a crash or a silent misreading; the fuzz target tests/fuzz/etcd_response_fuzz.cpp drives
// the same parsers with random input under the sanitizers.
#include <catch2/catch.hpp>

#include <planfence/etcd/http.hpp>
#include <planfence/etcd/json.hpp>
#include <planfence/etcd/client.hpp>
#include <planfence/etcd/store.hpp>

#include <string>

#include "../support/fixtures.hpp"

using namespace planfence;
using planfence::detail::base64_decode;
using planfence::detail::base64_encode;
using planfence::detail::http_parse_response;
using planfence::detail::json_parse;

TEST_CASE("json: reads what the etcd gateway sends, with omitted zero values", "[etcd][json]") {
  const std::string text =
      R"({"header":{"cluster_id":"324952591200643719","member_id":"3319814642761637952","revision":"2","raft_term":"2"},)"
      R"("kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"})";
  auto doc = json_parse(text);
  REQUIRE(doc);
  auto range = etcd::read_range(*doc);
  REQUIRE(range);
  CHECK(range->revision == 2);
  REQUIRE(range->kvs.size() == 1);
  CHECK(range->kvs[0].key == "foo");
  CHECK(range->kvs[0].value == "bar");
  CHECK(range->kvs[0].lease == 0);  // omitted: zero
  CHECK_FALSE(range->more);         // omitted: false
  auto txn = etcd::read_txn(*json_parse(R"({"header":{"revision":"9"}})"));
  REQUIRE(txn);
  CHECK_FALSE(txn->succeeded);  // a missing `succeeded` means false
  CHECK(txn->revision == 9);
  // Member ids are uint64 and may not fit int64: they are read as unsigned.
  CHECK(json_parse(R"({"id":"18446744073709551615"})")->int64_of("id").value() == -1);
}

TEST_CASE("json: escapes, surrogate pairs and numbers", "[etcd][json]") {
  auto doc = json_parse(R"({"s":"a\"b\\c\/d\n\u00e9\ud83d\ude00","n":-12.5e+3,"t":true,"f":false,"z":null,"a":[1,[2],{}]})");
  REQUIRE(doc);
  CHECK(doc->string_of("s") == "a\"b\\c/d\n\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(doc->find("n")->text() == "-12.5e+3");
  CHECK(doc->bool_of("t"));
  CHECK_FALSE(doc->bool_of("f"));
  CHECK(doc->find("z")->type() == detail::json_value::kind::null);
  CHECK(doc->find("a")->items().size() == 3);
  std::string written;
  detail::json_append_string(written, "q\"\\\n\x01");
  CHECK(written == R"("q\"\\\u000a\u0001")");
  CHECK(json_parse(written)->text() == "q\"\\\n\x01");
}

TEST_CASE("json: hostile input is refused with a position", "[etcd][json]") {
  const char* bad[] = {
      "",          "{",           "[1,]",        "{\"a\":1,}",   "{'a':1}",     "01",          "1.",          "-",
      "1e",        "\"\\x\"",     "\"\\u12\"",   "\"\\udc00\"",  "\"\\ud800\"", "\"a\nb\"",    "tru",         "nul",
      "{} {}",     "[1 2]",       "{\"a\" 1}",   "/* c */ 1",    "\"\\ud800\\u0041\"", "{\"a\":}",  "]",
  };
  for (const char* text : bad) {
    INFO("input: " << text);
    auto doc = json_parse(text);
    REQUIRE_FALSE(doc);
    CHECK(doc.error().code == errc::parse_error);
  }
  auto at = json_parse("{\n  \"a\": tru }");
  REQUIRE_FALSE(at);
  CHECK(at.error().line == 2);
  CHECK(at.error().column == 8);
}

TEST_CASE("json: every bound is enforced", "[etcd][json]") {
  std::string deep(40, '[');
  deep += std::string(40, ']');
  CHECK(json_parse(deep).error().code == errc::parse_error);  // depth 40 > 32
  std::string ok_depth(32, '[');
  ok_depth += std::string(32, ']');
  CHECK(json_parse(ok_depth).has_value());
  detail::json_limits small{.input_bytes_max = 10, .depth_max = 32, .values_max = 4};
  CHECK(json_parse("[1,2,3,4,5]", small).error().code == errc::capacity_exceeded);
  CHECK(json_parse("[1,2,3]", small).has_value());
  detail::json_limits few{.input_bytes_max = 100, .depth_max = 32, .values_max = 3};
  CHECK(json_parse("[1,2,3]", few).error().code == errc::capacity_exceeded);
  // A string where an integer belongs, or an integer out of range, is an error, not a zero.
  CHECK(json_parse(R"({"r":"12x"})")->int64_of("r").error().code == errc::parse_error);
  CHECK(json_parse(R"({"r":"99999999999999999999"})")->int64_of("r").error().code == errc::parse_error);
  CHECK(json_parse(R"({"r":{}})")->int64_of("r").error().code == errc::parse_error);
}

TEST_CASE("base64: round trips and refuses what is not base64", "[etcd][json]") {
  const std::vector<std::string> samples = {"", "f", "fo", "foo", "foob", "fooba", "foobar", std::string("\0\xff\x10", 3)};
  for (const std::string& s : samples) {
    CHECK(base64_decode(base64_encode(s)).value() == s);
  }
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
  CHECK(base64_encode("fo") == "Zm8=");
  for (const char* bad : {"Zm9", "Zm=v", "Zm9v!A==", "Zg==Zg==", "Zh==", "Zm9=", "====", "Z==="}) {
    INFO(bad);
    CHECK_FALSE(base64_decode(bad));
  }
}

TEST_CASE("http: Content-Length, chunked with trailers, close-delimited, interim responses", "[etcd][http]") {
  auto plain = http_parse_response("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
  REQUIRE(plain);
  CHECK(plain->status == 200);
  CHECK(plain->body == "{}");
  CHECK(plain->keep_alive);
  CHECK(*plain->header("content-type") == "application/json");

  // What etcd 3.4 sends for an error from a streaming call: chunked, then a trailer.
  auto chunked = http_parse_response(
      "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nTrailer: Grpc-Trailer-Content-Type\r\n"
      "Transfer-Encoding: chunked\r\n\r\n6\r\n{\"a\":1\r\n1;ext=1\r\n}\r\n0\r\nGrpc-Trailer-Content-Type: application/grpc\r\n\r\n");
  REQUIRE(chunked);
  CHECK(chunked->status == 404);
  CHECK(chunked->body == "{\"a\":1}");

  auto closed = http_parse_response("HTTP/1.0 200 OK\r\n\r\nuntil close");
  REQUIRE(closed);
  CHECK(closed->body == "until close");
  CHECK_FALSE(closed->keep_alive);

  auto interim = http_parse_response("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx");
  REQUIRE(interim);
  CHECK(interim->status == 200);
  CHECK(interim->body == "x");
  CHECK_FALSE(interim->keep_alive);
}

TEST_CASE("http: a response fed one byte at a time parses the same, and stops at its end", "[etcd][http]") {
  const std::string two = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
  detail::http_response_parser parser;
  std::size_t used_total = 0;
  while (!parser.done()) {
    auto used = parser.feed(std::string_view(two).substr(used_total, 1));
    REQUIRE(used);
    used_total += *used;
  }
  CHECK(std::move(parser).take().body == "abc");
  CHECK(two.substr(used_total).rfind("HTTP/1.1 204", 0) == 0);  // the next response is left alone
}

TEST_CASE("http: hostile responses are refused", "[etcd][http]") {
  const char* bad[] = {
      "HTTP/2 200 OK\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/1.1 99 Low\r\n\r\n",
      "HTTX/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
      "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
      "HTTP/1.1 200 OK\r\n folded: header\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",  // cut short by the close
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
  };
  for (const char* text : bad) {
    INFO("response: " << text);
    CHECK_FALSE(http_parse_response(text));
  }
  detail::http_limits small{.line_bytes_max = 64, .headers_max = 2, .body_bytes_max = 8};
  CHECK(http_parse_response("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n123456789", small).error().code == errc::capacity_exceeded);
  CHECK(http_parse_response("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", small).error().code == errc::capacity_exceeded);
  CHECK(http_parse_response("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'x') + "\r\n\r\n", small).error().code == errc::capacity_exceeded);
  CHECK(http_parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n5\r\n12345\r\n0\r\n\r\n", small)
            .error()
            .code == errc::capacity_exceeded);
}

TEST_CASE("http: a connection to nothing fails in time, with the address", "[etcd][http]") {
  detail::http_connection c{"127.0.0.1", 1};
  auto r = c.post("/v3/kv/range", "{}", detail::deadline_after(std::chrono::milliseconds{500}));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::io_error);
  CHECK(r.error().detail.find("127.0.0.1:1") != std::string::npos);
}

TEST_CASE("etcd URIs and member lists", "[etcd][uri]") {
  auto where = etcd::parse_uri("etcd://127.0.0.1:2379,[::1]:22379/planfence/prod/");
  REQUIRE(where);
  REQUIRE(where->config.members.size() == 2);
  CHECK(where->config.members[0] == etcd::member_address{"127.0.0.1", 2379});
  CHECK(where->config.members[1] == etcd::member_address{"::1", 22379});
  CHECK(where->prefix == "/planfence/prod");
  for (const char* bad : {"http://127.0.0.1:2379/p", "etcd://127.0.0.1:2379", "etcd://127.0.0.1:2379/", "etcd://127.0.0.1/p",
                          "etcd://127.0.0.1:0/p", "etcd://127.0.0.1:65536/p", "etcd://::1:2379/p", "etcd://:2379/p",
                          "etcd://h:1,,h:2/p", "etcd://h:1/a b"}) {
    INFO(bad);
    CHECK(etcd::parse_uri(bad).error().code == errc::parse_error);
  }
  CHECK(etcd::prefix_end("/a/") == "/a0");
  CHECK(etcd::prefix_end(std::string("a\xff", 2)) == "b");
  CHECK(etcd::padded(42) == "00000000000000000042");
  CHECK(etcd::padded(18446744073709551615ull) == "18446744073709551615");
}

TEST_CASE("endpoint values: legible, round trip, refuse corruption with a line", "[etcd][store]") {
  const record_set records = planfence_test::a_records({"192.0.2.10", "192.0.2.11"});
  const std::string text = etcd::format_endpoint_value("db.example.", generation{12}, fence_token{7341}, records);
  CHECK(text ==
        "planfence-endpoint 1\ngeneration 12\nfence 7341\nendpoint db.example.\n  A 60 192.0.2.10\n  A 60 192.0.2.11\n");
  auto back = etcd::parse_endpoint_value(text);
  REQUIRE(back);
  CHECK(back->gen == generation{12});
  CHECK(back->fence == fence_token{7341});
  CHECK(back->records == records);
  CHECK(etcd::parse_endpoint_value("planfence-endpoint 2\n").error().line == 1);
  CHECK(etcd::parse_endpoint_value("planfence-endpoint 1\ngeneration x\nfence 1\n").error().line == 2);
  CHECK(etcd::parse_endpoint_value("planfence-endpoint 1\ngeneration 0\nfence 1\nendpoint a.\n").error().code == errc::parse_error);
  auto bad_record = etcd::parse_endpoint_value("planfence-endpoint 1\ngeneration 3\nfence 1\nendpoint a.\n  A 60 300.1.1.1\n");
  REQUIRE_FALSE(bad_record);
  CHECK(bad_record.error().line == 5);
}
