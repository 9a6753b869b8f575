// planfence/rfc2136/tsig.hpp: TSIG (RFC 8945) with HMAC-SHA256, for signing DNS UPDATE and
// query messages and verifying the server's answers.
//
// What it is for. An authoritative server accepts an UPDATE only when it carries a valid TSIG
// record for a key allowed to update the zone; and a client that acts on answers (the RFC 2136
// store reads its stamps and its records from them) must know they come from the server, not
// from whoever can put a datagram on the path. The RFC 2136 store signs every request with
// tsig_sign and refuses every answer tsig_verify_response does not accept.
//
//   auto key = parse_tsig_key("hmac-sha256:planfence-key.:c2VjcmV0...").value();
//   hmac_sha256_mac request_mac{};
//   auto signed_request = tsig_sign(std::move(request), key, unix_seconds_now(), request_mac);
//   ... send it, receive `raw` ...
//   auto answer = decode_message(raw).value();
//   if (auto checked = tsig_verify_response(raw, answer, key, request_mac, unix_seconds_now()); !checked)
//     report(checked.error().message());
//     // "authentication_failed: TSIG: server answered NOTAUTH with TSIG error BADSIG: ..."
//
// What is digested (RFC 8945 section 4.3): for a request, the message as it was before the TSIG
// record was added, then the "TSIG variables" (key name and algorithm name in canonical wire
// form, class ANY, TTL 0, time signed, fudge, error, other length and other data); for an
// answer, first the request's MAC (two-octet length, then the MAC), then the answer without its
// TSIG record (ARCOUNT one less, the ID set back to the original ID), then its TSIG variables.
//
// What an answer must satisfy (tsig_verify_response), else errc::authentication_failed with
// the reason:
//  - it has exactly one TSIG record, the last of the additional section;
//  - key name and algorithm are ours (else "answer signed with another key");
//  - a TSIG error from the server is reported by name, with the answer's RCODE and what to check:
//    BADSIG (the server could not verify our MAC: the secret differs), BADKEY (the server does
//    not know the key name, or its ACL does not name it), BADTIME (our clock and the server's
//    differ by more than the fudge; the server's time is quoted);
//  - the MAC is the full 32 octets (truncated MACs, RFC 8945 section 5.2.2.1, are refused) and
//    equal to ours, compared in constant time;
//  - the time signed is within the fudge of our clock (a replayed old answer is refused).
// A response without TSIG to a signed request is refused ("unsigned answer").
//
// What it costs: two HMAC-SHA256 computations per exchange (about 3 us each for a 300-octet
// message, hmac.hpp), one copy of the message for the answer's digest. No global state.
//
// Limits: only hmac-sha256 (the one Knot, BIND and PowerDNS all accept, docs/rfc2136.md); no TSIG on multi-message
// (AXFR) streams; the replay window is the fudge (300 s by default), as RFC 8945 allows: within
// it, the same signed answer may be replayed to this client, and the store's request IDs and
// question checks are what tie an answer to its request.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../record.hpp"
#include "../result.hpp"
#include "../detail/base64.hpp"
#include "wire.hpp"
#include "../detail/hmac.hpp"

namespace planfence {
inline namespace v1 {
namespace detail {

inline constexpr std::string_view tsig_algorithm_hmac_sha256 = "hmac-sha256.";
inline constexpr std::uint16_t tsig_fudge_default_seconds = 300;  // RFC 8945 section 10
inline constexpr std::size_t tsig_secret_size_max = 512;

/// A TSIG key: its name (canonical) and secret. Only hmac-sha256.
struct tsig_key {
  std::string name;                   ///< canonical, e.g. "planfence-key."
  std::vector<std::uint8_t> secret;  ///< the decoded secret
};

/// A key from its name and base64 secret. Errors: errc::invalid_name, errc::parse_error.
[[nodiscard]] inline result<tsig_key> make_tsig_key(std::string_view name, std::string_view secret_base64) {
  auto canonical = canonical_name(name);
  if (!canonical) return fail(errc::invalid_name, "TSIG key name: " + canonical.error().detail);
  auto secret = base64_decode(secret_base64);
  if (!secret) return fail(errc::parse_error, "TSIG secret: " + secret.error().detail);
  if (secret->empty()) return fail(errc::parse_error, "TSIG secret is empty");
  if (secret->size() > tsig_secret_size_max) return fail(errc::parse_error, "TSIG secret longer than 512 octets");
  return tsig_key{std::move(*canonical), std::vector<std::uint8_t>(secret->begin(), secret->end())};
}

/// A key from "ALGORITHM:NAME:BASE64SECRET" (the form of `knsupdate -y`); ALGORITHM must be
/// hmac-sha256 (any case). Errors: errc::parse_error, errc::invalid_name; they never quote the
/// secret, nor the algorithm field unless it is a known algorithm's name (a key written in the
/// wrong order would put the secret there).
[[nodiscard]] inline result<tsig_key> parse_tsig_key(std::string_view spec) {
  const std::size_t first = spec.find(':');
  const std::size_t second = first == std::string_view::npos ? first : spec.find(':', first + 1);
  if (second == std::string_view::npos) {
    return fail(errc::parse_error, "TSIG key must be ALGORITHM:NAME:BASE64SECRET");
  }
  std::string algorithm(spec.substr(0, first));
  for (char& c : algorithm) c = to_lower(c);
  if (algorithm != "hmac-sha256") {
    // Name the algorithm only when it is one: a key written in the wrong order would otherwise
    // put its secret in the message.
    static constexpr std::array<std::string_view, 6> known = {"hmac-md5", "hmac-sha1", "hmac-sha224",
                                                              "hmac-sha384", "hmac-sha512", "gss-tsig"};
    const bool named = std::find(known.begin(), known.end(), algorithm) != known.end() ||
                       algorithm == "hmac-md5.sig-alg.reg.int";
    return fail(errc::parse_error, (named ? "TSIG algorithm '" + algorithm + "'" : std::string("the TSIG algorithm (the "
                                    "text before the first ':', not shown)")) +
                                       " is not supported: only hmac-sha256, as ALGORITHM:NAME:BASE64SECRET");
  }
  return make_tsig_key(spec.substr(first + 1, second - first - 1), spec.substr(second + 1));
}

/// Seconds since the Unix epoch now (TSIG's clock is wall-clock time).
[[nodiscard]] inline std::uint64_t unix_seconds_now() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

/// The fields of a TSIG record's rdata.
struct tsig_fields {
  std::string algorithm;  ///< canonical name
  std::uint64_t time_signed = 0;  ///< 48 bits
  std::uint16_t fudge = 0;
  std::vector<std::uint8_t> mac;
  std::uint16_t original_id = 0;
  std::uint16_t error = 0;
  std::vector<std::uint8_t> other;
};

/// Parses TSIG rdata (the rdata of a dns_record of type TSIG, names already expanded).
/// Errors: errc::parse_error.
[[nodiscard]] inline result<tsig_fields> parse_tsig_rdata(std::span<const std::uint8_t> rdata) {
  tsig_fields out;
  std::size_t at = 0;
  auto name = read_name(rdata, at);
  if (!name) return fail(errc::parse_error, "TSIG algorithm name: " + name.error().detail);
  out.algorithm = std::move(*name);
  auto need = [&](std::size_t n) { return at + n <= rdata.size(); };
  auto get16 = [&] {
    const auto v = static_cast<std::uint16_t>(rdata[at] << 8 | rdata[at + 1]);
    at += 2;
    return v;
  };
  if (!need(10)) return fail(errc::parse_error, "TSIG rdata cut short");
  for (int i = 0; i < 6; ++i) out.time_signed = out.time_signed << 8 | rdata[at++];
  out.fudge = get16();
  const std::size_t mac_size = get16();
  if (!need(mac_size + 6)) return fail(errc::parse_error, "TSIG MAC runs past the rdata");
  out.mac.assign(rdata.begin() + static_cast<std::ptrdiff_t>(at), rdata.begin() + static_cast<std::ptrdiff_t>(at + mac_size));
  at += mac_size;
  out.original_id = get16();
  out.error = get16();
  const std::size_t other_size = get16();
  if (at + other_size != rdata.size()) return fail(errc::parse_error, "TSIG other data does not end the rdata");
  out.other.assign(rdata.begin() + static_cast<std::ptrdiff_t>(at), rdata.end());
  return out;
}

namespace tsig_internal {

inline void put16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v & 0xff));
}
inline void put48(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int shift = 40; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift & 0xff));
}

/// The TSIG variables of RFC 8945 section 4.3.3, in digest order.
[[nodiscard]] inline std::vector<std::uint8_t> variables(std::string_view key_name, std::string_view algorithm,
                                                         std::uint64_t time_signed, std::uint16_t fudge,
                                                         std::uint16_t error, std::span<const std::uint8_t> other) {
  std::vector<std::uint8_t> out;
  append_wire_name(out, key_name);
  put16(out, dns_class::any);
  out.insert(out.end(), {0, 0, 0, 0});  // TTL 0
  append_wire_name(out, algorithm);
  put48(out, time_signed);
  put16(out, fudge);
  put16(out, error);
  put16(out, static_cast<std::uint16_t>(other.size()));
  out.insert(out.end(), other.begin(), other.end());
  return out;
}

}  // namespace tsig_internal

/// Appends a TSIG record to `message` (a complete message without one) and returns the signed
/// message; `mac_out` receives the MAC (needed to verify the answer). `prior_mac`, when given,
/// makes this the signature of an answer to a request with that MAC (what a server does; the
/// tests' fake servers use it). `error` and `other` are the TSIG error and other data (BADTIME
/// answers carry the server's time in `other`). The message's ID is the original ID.
[[nodiscard]] inline std::vector<std::uint8_t> tsig_sign(std::vector<std::uint8_t> message, const tsig_key& key,
                                                         std::uint64_t time_signed, hmac_sha256_mac& mac_out,
                                                         std::uint16_t fudge = tsig_fudge_default_seconds,
                                                         std::optional<hmac_sha256_mac> prior_mac = std::nullopt,
                                                         std::uint16_t error = 0,
                                                         std::span<const std::uint8_t> other = {}) {
  using namespace tsig_internal;
  PLANFENCE_ASSERT(message.size() >= dns_header_size);
  PLANFENCE_ASSERT(time_signed < (std::uint64_t{1} << 48));
  hmac_sha256_state state(key.secret);
  if (prior_mac) {
    std::vector<std::uint8_t> length;
    put16(length, static_cast<std::uint16_t>(prior_mac->size()));
    state.update(length);
    state.update(*prior_mac);
  }
  state.update(message);
  state.update(variables(key.name, tsig_algorithm_hmac_sha256, time_signed, fudge, error, other));
  mac_out = state.finish();

  std::vector<std::uint8_t> rdata;
  append_wire_name(rdata, tsig_algorithm_hmac_sha256);
  put48(rdata, time_signed);
  put16(rdata, fudge);
  put16(rdata, static_cast<std::uint16_t>(mac_out.size()));
  rdata.insert(rdata.end(), mac_out.begin(), mac_out.end());
  rdata.push_back(message[0]);  // original ID
  rdata.push_back(message[1]);
  put16(rdata, error);
  put16(rdata, static_cast<std::uint16_t>(other.size()));
  rdata.insert(rdata.end(), other.begin(), other.end());

  append_wire_name(message, key.name);
  put16(message, dns_type::tsig);
  put16(message, dns_class::any);
  message.insert(message.end(), {0, 0, 0, 0});
  put16(message, static_cast<std::uint16_t>(rdata.size()));
  message.insert(message.end(), rdata.begin(), rdata.end());
  const unsigned arcount = static_cast<unsigned>(message[10] << 8 | message[11]) + 1;
  PLANFENCE_ASSERT(arcount <= 0xffff);
  message[10] = static_cast<std::uint8_t>(arcount >> 8);
  message[11] = static_cast<std::uint8_t>(arcount & 0xff);
  return message;
}

namespace tsig_internal {
[[nodiscard]] inline unexpected_error refused(std::string why) {
  return fail(errc::authentication_failed, "TSIG: " + std::move(why));
}
}  // namespace tsig_internal

/// Checks the TSIG record of an answer (`raw` as received, `decoded` from decode_message(raw))
/// to a request signed with `key` whose MAC was `request_mac`; `now` is our Unix time in
/// seconds. See the header comment for what is refused. Errors: errc::authentication_failed.
[[nodiscard]] inline result<void> tsig_verify_response(std::span<const std::uint8_t> raw, const dns_message& decoded,
                                                       const tsig_key& key, const hmac_sha256_mac& request_mac,
                                                       std::uint64_t now,
                                                       std::uint16_t fudge = tsig_fudge_default_seconds) {
  using namespace tsig_internal;
  std::size_t tsig_count = 0;
  for (const dns_record& rr : decoded.additional) tsig_count += rr.type == dns_type::tsig ? 1 : 0;
  for (const dns_record& rr : decoded.answers) tsig_count += rr.type == dns_type::tsig ? 1 : 0;
  for (const dns_record& rr : decoded.authority) tsig_count += rr.type == dns_type::tsig ? 1 : 0;
  if (tsig_count == 0) {
    return refused("unsigned answer (" + rcode_text(decoded.rcode()) + ") to a signed request refused");
  }
  if (tsig_count > 1 || decoded.additional.empty() || decoded.additional.back().type != dns_type::tsig) {
    return refused("the TSIG record must be the only one and the last of the answer");
  }
  const dns_record& rr = decoded.additional.back();
  auto fields = parse_tsig_rdata(rr.rdata);
  if (!fields) return refused("malformed TSIG record: " + fields.error().detail);
  if (rr.klass != dns_class::any || rr.ttl != 0) return refused("TSIG record with a class other than ANY or a TTL");
  // Errors the server reports about our request come first: they explain why it is unsigned.
  // Each names the RCODE and the TSIG error, and what to check.
  if (fields->error != 0) {
    const std::string said = "server answered " + rcode_text(decoded.rcode()) + " with TSIG error " +
                             rcode_text(fields->error);
    switch (fields->error) {
      case dns_rcode::badsig:
        return refused(said + ": it could not verify our signature: the secret of key " + key.name +
                       " differs from the server's (copy the key again from the server's configuration)");
      case dns_rcode::badkey:
        return refused(said + ": it does not know key " + key.name +
                       " with algorithm hmac-sha256 for this zone (check the key name, and that the server's "
                       "update ACL names that key)");
      case dns_rcode::badtime: {
        std::string server_time;
        if (fields->other.size() == 6) {
          std::uint64_t t = 0;
          for (std::uint8_t b : fields->other) t = t << 8 | b;
          server_time = "; server time " + std::to_string(t) + ", ours " + std::to_string(now);
        }
        return refused(said + ": our clock and the server's differ by more than the fudge (" + std::to_string(fudge) +
                       " s)" + server_time + " (synchronise both clocks, e.g. with NTP)");
      }
      case dns_rcode::badtrunc: return refused(said + ": the server refuses truncated MACs");
      default: return refused(said);
    }
  }
  if (rr.name != key.name) return refused("answer signed with another key (" + rr.name + ")");
  if (fields->algorithm != tsig_algorithm_hmac_sha256) return refused("answer signed with algorithm " + fields->algorithm);
  if (fields->mac.size() != hmac_sha256_size) return refused("answer's MAC is not 32 octets (truncated MACs are refused)");
  // The digest covers the answer as it was before the TSIG record was added.
  PLANFENCE_ASSERT(rr.offset >= dns_header_size && rr.offset <= raw.size());
  std::vector<std::uint8_t> unsigned_answer(raw.begin(), raw.begin() + static_cast<std::ptrdiff_t>(rr.offset));
  unsigned_answer[0] = static_cast<std::uint8_t>(fields->original_id >> 8);
  unsigned_answer[1] = static_cast<std::uint8_t>(fields->original_id & 0xff);
  const unsigned arcount = static_cast<unsigned>(unsigned_answer[10] << 8 | unsigned_answer[11]);
  PLANFENCE_ASSERT(arcount >= 1);
  unsigned_answer[10] = static_cast<std::uint8_t>((arcount - 1) >> 8);
  unsigned_answer[11] = static_cast<std::uint8_t>((arcount - 1) & 0xff);
  hmac_sha256_state state(key.secret);
  std::vector<std::uint8_t> length;
  put16(length, static_cast<std::uint16_t>(request_mac.size()));
  state.update(length);
  state.update(request_mac);
  state.update(unsigned_answer);
  state.update(variables(key.name, fields->algorithm, fields->time_signed, fields->fudge, fields->error, fields->other));
  const hmac_sha256_mac expected = state.finish();
  if (!constant_time_equal(expected, fields->mac)) return refused("answer's MAC does not verify (forged or corrupted)");
  // Only after the MAC verifies is the time signed the server's.
  // Our fudge, not the answer's: the window a replay has is ours to decide.
  const std::uint64_t window = fudge;
  const std::uint64_t skew = now > fields->time_signed ? now - fields->time_signed : fields->time_signed - now;
  if (skew > window) {
    return refused("answer's time signed " + std::to_string(fields->time_signed) + " is " + std::to_string(skew) +
                   " s from ours, beyond the fudge (replayed, or clocks differ)");
  }
  return ok();
}

}  // namespace detail
}  // namespace v1
}  // namespace planfence
