// A libFuzzer target for what the etcd client reads from the network: the JSON reader
// (etcd/json.hpp), base64, the HTTP/1.1 response parser (etcd/http.hpp), the gateway
// response readers (etcd::read_range, etcd::read_txn) and the endpoint values of the etcd store.
// It proves, for every input the fuzzer finds:
//  - no parser crashes, asserts, reads out of bounds or exceeds its bounds, whatever the bytes;
//  - the HTTP parser gives the same answer fed whole or in pieces of any size (the sizes come
//    from the input), and never consumes more than it is given;
//  - base64 that decodes re-encodes to the same text; encoded bytes always decode back;
//  - a JSON string re-written by json_append_string parses back to the same string;
//  - an endpoint value that parses re-formats to a value that parses to the same stamp and records.
// The first byte of the input picks the parser; the rest is its input. A violated property
// calls abort().
//
// Built by tests/fuzz/CMakeLists.txt with Clang and run by `ctest -L fuzz` from the seeds in
// tests/fuzz/corpus/etcd_response/. By hand, from a Clang build directory:
//
//   tests/fuzz/etcd_response_fuzz -max_total_time=300 /tmp/corpus ../tests/fuzz/corpus/etcd_response
//
// To replay inputs with any compiler, define PLANFENCE_FUZZ_MAIN (each argument is a file).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include <planfence/etcd/http.hpp>
#include <planfence/etcd/json.hpp>
#include <planfence/etcd/client.hpp>
#include <planfence/etcd/store.hpp>

namespace {

void require(bool property) {
  if (!property) std::abort();
}

void fuzz_json(std::string_view text) {
  auto doc = planfence::detail::json_parse(text, {.input_bytes_max = 1 << 20, .depth_max = 32, .values_max = 1 << 16});
  if (!doc) {
    require(doc.error().code == planfence::errc::parse_error || doc.error().code == planfence::errc::capacity_exceeded);
    return;
  }
  static_cast<void>(planfence::etcd::read_range(*doc));
  static_cast<void>(planfence::etcd::read_txn(*doc));
  if (doc->is_string()) {
    std::string again;
    planfence::detail::json_append_string(again, doc->text());
    auto back = planfence::detail::json_parse(again);
    require(back.has_value() && back->text() == doc->text());
  }
  for (const auto& [name, value] : doc->members()) {
    static_cast<void>(doc->int64_of(name));
    static_cast<void>(value.type());
  }
}

void fuzz_http(std::string_view text) {
  if (text.empty()) return;
  // The first byte sets the piece size for the incremental run.
  const std::size_t piece = static_cast<unsigned char>(text[0]) % 17 + 1;
  text.remove_prefix(1);
  const planfence::detail::http_limits limits{.line_bytes_max = 256, .headers_max = 16, .body_bytes_max = 4096};
  auto whole = planfence::detail::http_parse_response(text, limits);

  planfence::detail::http_response_parser parser(limits);
  std::size_t used_total = 0;
  bool failed = false;
  while (!parser.done() && used_total < text.size()) {
    const std::string_view chunk = text.substr(used_total, piece);
    auto used = parser.feed(chunk);
    if (!used) {
      failed = true;
      break;
    }
    require(*used <= chunk.size());
    used_total += *used;
    if (*used < chunk.size()) require(parser.done());
  }
  if (!failed && !parser.done()) failed = !parser.feed_end().has_value();
  require(failed == !whole.has_value());
  if (!failed) {
    const auto incremental = std::move(parser).take();
    require(incremental.status == whole->status);
    require(incremental.body == whole->body);
    require(incremental.body.size() <= limits.body_bytes_max);
  }
}

void fuzz_base64(std::string_view text) {
  auto decoded = planfence::detail::base64_decode(text);
  if (decoded) require(planfence::detail::base64_encode(*decoded) == text);
  auto round = planfence::detail::base64_decode(planfence::detail::base64_encode(text));
  require(round.has_value() && *round == text);
}

void fuzz_endpoint_value(std::string_view text) {
  auto value = planfence::etcd::parse_endpoint_value(text);
  if (!value) return;
  const std::string again = planfence::etcd::format_endpoint_value("fuzz.example.", value->gen, value->fence, value->records);
  auto back = planfence::etcd::parse_endpoint_value(again);
  require(back.has_value());
  require(back->gen == value->gen && back->fence == value->fence && back->records == value->records);
}

void fuzz_uri(std::string_view text) {
  auto where = planfence::etcd::parse_uri(text);
  if (where) {
    require(!where->config.members.empty() && where->config.members.size() <= planfence::etcd::members_max);
    require(where->prefix.size() >= 2 && where->prefix.front() == '/' && where->prefix.back() != '/');
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: fuzz_json(input); break;
    case 1: fuzz_http(input); break;
    case 2: fuzz_base64(input); break;
    case 3: fuzz_endpoint_value(input); break;
    default: fuzz_uri(input); break;
  }
  return 0;
}

PLANFENCE_FUZZ_REPLAY_MAIN("etcd_response_fuzz")
