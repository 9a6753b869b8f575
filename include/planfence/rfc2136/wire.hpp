// planfence/rfc2136/wire.hpp: the DNS wire format (RFC 1035, RFC 2136) the RFC 2136 store
// needs: messages built and decoded, no I/O (the transports are in transport.hpp).
//
// What it is for. The RFC 2136 store (rfc2136/store.hpp) reads stamps and records with
// queries (SOA, TXT, A, AAAA, CNAME) and commits with one UPDATE message: a zone section, a
// prerequisite section and an update section (RFC 2136 section 2). This header builds those
// messages and decodes the server's answers. TSIG (tsig.hpp) signs and verifies them.
//
//   dns_message_builder b(id, dns_opcode::update);
//   b.question("example.test.", dns_type::soa);                        // the zone section
//   b.prerequisite_rrset_equals("_planfence.www.example.test.", dns_type::txt, stamp_rdata);
//   b.update_delete_rrset("www.example.test.", dns_type::a);
//   b.update_add("www.example.test.", dns_type::a, 60, address_rdata);
//   std::vector<std::uint8_t> wire = std::move(b).finish();
//   auto answer = decode_message(response_bytes);                       // result<dns_message>
//
// When not to use it. It is not a general DNS library: it encodes only what planfence sends
// (no compression on output, no EDNS, no DNSSEC) and decodes any message but interprets only the
// record types above, SOA and TSIG; other rdata is kept as opaque bytes.
//
// Hostile input. decode_message is written for answers from the network, which may be forged or
// broken: every length is checked against the end of the message before it is read; a
// compression pointer must point strictly before the start of the label sequence it continues
// (so pointers only ever go backwards and cannot loop) and at most dns_pointer_hops_max are
// followed; a name longer than 255 octets, a label type other than 0 or 3, a count of records
// beyond dns_records_max, an rdata length beyond the message, or trailing bytes are each an
// errc::parse_error naming the offset. The fuzz target tests/fuzz/dns_response_fuzz.cpp runs it
// under AddressSanitizer and UndefinedBehaviorSanitizer.
//
// Costs. Encoding and decoding are linear in the message and allocate (vectors and strings).
// A stamp query is about 50 bytes, its answer about 100; an UPDATE for one endpoint with two
// records about 250 bytes plus 100 of TSIG.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../record.hpp"
#include "../result.hpp"

namespace planfence {
inline namespace v1 {
namespace detail {

/// Bounds, each an error when exceeded by input and a programmer error when exceeded by output.
inline constexpr std::size_t dns_message_size_max = 65535;   // the TCP length prefix is 16 bits
inline constexpr std::size_t dns_udp_payload_max = 512;      // no EDNS: RFC 1035 section 4.2.1
inline constexpr std::size_t dns_header_size = 12;
inline constexpr std::size_t dns_records_max = 8192;         // all sections of one message together
inline constexpr std::size_t dns_pointer_hops_max = 64;      // compression pointers per name
inline constexpr std::size_t dns_rr_fixed_size = 10;         // type, class, ttl, rdlength
static_assert(dns_records_max * (1 + dns_rr_fixed_size) > dns_message_size_max,
              "the record bound must not be looser than what fits in a message anyway");
static_assert(name_wire_length_max == 255);

/// Record types and classes planfence uses (RFC 1035, 2136, 3596, 8945).
namespace dns_type {
inline constexpr std::uint16_t a = 1;
inline constexpr std::uint16_t ns = 2;
inline constexpr std::uint16_t cname = 5;
inline constexpr std::uint16_t soa = 6;
inline constexpr std::uint16_t ptr = 12;
inline constexpr std::uint16_t txt = 16;
inline constexpr std::uint16_t aaaa = 28;
inline constexpr std::uint16_t tsig = 250;
inline constexpr std::uint16_t axfr = 252;
inline constexpr std::uint16_t any = 255;
}  // namespace dns_type
namespace dns_class {
inline constexpr std::uint16_t in = 1;
inline constexpr std::uint16_t none = 254;
inline constexpr std::uint16_t any = 255;
}  // namespace dns_class

enum class dns_opcode : std::uint8_t { query = 0, update = 5 };

/// Response codes (RFC 1035, 2136) and the TSIG extended errors (RFC 8945 section 3).
namespace dns_rcode {
inline constexpr std::uint16_t noerror = 0;
inline constexpr std::uint16_t formerr = 1;
inline constexpr std::uint16_t servfail = 2;
inline constexpr std::uint16_t nxdomain = 3;
inline constexpr std::uint16_t notimp = 4;
inline constexpr std::uint16_t refused = 5;
inline constexpr std::uint16_t yxdomain = 6;
inline constexpr std::uint16_t yxrrset = 7;
inline constexpr std::uint16_t nxrrset = 8;
inline constexpr std::uint16_t notauth = 9;
inline constexpr std::uint16_t notzone = 10;
inline constexpr std::uint16_t badsig = 16;
inline constexpr std::uint16_t badkey = 17;
inline constexpr std::uint16_t badtime = 18;
inline constexpr std::uint16_t badtrunc = 22;
}  // namespace dns_rcode

/// "NOERROR", "NXRRSET", "BADSIG", ... (RFC 2136, 8945 mnemonics).
[[nodiscard]] constexpr std::string_view rcode_name(std::uint16_t rcode) noexcept {
  switch (rcode) {
    case dns_rcode::noerror: return "NOERROR";
    case dns_rcode::formerr: return "FORMERR";
    case dns_rcode::servfail: return "SERVFAIL";
    case dns_rcode::nxdomain: return "NXDOMAIN";
    case dns_rcode::notimp: return "NOTIMP";
    case dns_rcode::refused: return "REFUSED";
    case dns_rcode::yxdomain: return "YXDOMAIN";
    case dns_rcode::yxrrset: return "YXRRSET";
    case dns_rcode::nxrrset: return "NXRRSET";
    case dns_rcode::notauth: return "NOTAUTH";
    case dns_rcode::notzone: return "NOTZONE";
    case dns_rcode::badsig: return "BADSIG";
    case dns_rcode::badkey: return "BADKEY";
    case dns_rcode::badtime: return "BADTIME";
    case dns_rcode::badtrunc: return "BADTRUNC";
    default: return "RCODE?";
  }
}

/// rcode_name, or "RCODE n" for a code without a mnemonic (for messages).
[[nodiscard]] inline std::string rcode_text(std::uint16_t rcode) {
  const std::string_view name = rcode_name(rcode);
  return name == "RCODE?" ? "RCODE " + std::to_string(rcode) : std::string(name);
}

/// Header flag bits (the second 16-bit word of the header).
namespace dns_flag {
inline constexpr std::uint16_t qr = 0x8000;
inline constexpr std::uint16_t aa = 0x0400;
inline constexpr std::uint16_t tc = 0x0200;
inline constexpr std::uint16_t rd = 0x0100;
}  // namespace dns_flag

// ---------------------------------------------------------------------------------------------
// Names.

/// Appends the uncompressed wire form of canonical name `name` ("a.b." or "."). The name must
/// have passed canonical_name() (asserted: only letters, digits, '-', '_' and dots).
inline void append_wire_name(std::vector<std::uint8_t>& out, std::string_view name) {
  PLANFENCE_ASSERT(!name.empty());
  PLANFENCE_ASSERT(name.back() == '.');
  PLANFENCE_ASSERT(name.size() <= name_wire_length_max - 1 || name == ".");
  if (name == ".") {
    out.push_back(0);
    return;
  }
  std::size_t start = 0;
  while (start < name.size()) {
    const std::size_t dot = name.find('.', start);
    PLANFENCE_ASSERT(dot != std::string_view::npos);
    const std::size_t length = dot - start;
    PLANFENCE_ASSERT(length >= 1);
    PLANFENCE_ASSERT(length <= label_length_max);
    out.push_back(static_cast<std::uint8_t>(length));
    for (std::size_t i = start; i < dot; ++i) out.push_back(static_cast<std::uint8_t>(to_lower(name[i])));
    start = dot + 1;
  }
  out.push_back(0);
}

/// The uncompressed, lower-case wire form of a canonical name (what TSIG digests).
[[nodiscard]] inline std::vector<std::uint8_t> wire_name(std::string_view name) {
  std::vector<std::uint8_t> out;
  append_wire_name(out, name);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Building messages.

/// Builds one message. Sections must be filled in order (question, answer/prerequisite,
/// authority/update, additional); the counts are patched in finish(). No name compression.
class dns_message_builder {
 public:
  // The header is made by the vector's constructor: a resize() of the empty vector here makes
  // GCC 12 at -O3 warn (-Warray-bounds, a false positive) once the builder is inlined.
  dns_message_builder(std::uint16_t id, dns_opcode opcode, std::uint16_t flags = 0)
      : bytes_(dns_header_size, std::uint8_t{0}) {
    put16_at(0, id);
    put16_at(2, static_cast<std::uint16_t>(flags | static_cast<std::uint16_t>(static_cast<unsigned>(opcode) << 11)));
  }

  /// A question (for an UPDATE: the zone section, type SOA).
  void question(std::string_view name, std::uint16_t type, std::uint16_t klass = dns_class::in) {
    PLANFENCE_ASSERT(section_ == 0);
    append_wire_name(bytes_, name);
    put16(type);
    put16(klass);
    ++counts_[0];
  }

  /// Prerequisite "RRset exists (value dependent)" (RFC 2136 section 2.4.2): the RRset of
  /// `name`/`type` must be exactly the records whose rdata are given. One call per record.
  void prerequisite_rrset_equals(std::string_view name, std::uint16_t type, std::span<const std::uint8_t> rdata) {
    record(1, name, type, dns_class::in, 0, rdata);
  }
  /// Prerequisite "RRset does not exist" (RFC 2136 section 2.4.3).
  void prerequisite_rrset_absent(std::string_view name, std::uint16_t type) {
    record(1, name, type, dns_class::none, 0, {});
  }
  /// Update "delete an RRset" (RFC 2136 section 2.5.2).
  void update_delete_rrset(std::string_view name, std::uint16_t type) {
    record(2, name, type, dns_class::any, 0, {});
  }
  /// Update "add to an RRset" (RFC 2136 section 2.5.1).
  void update_add(std::string_view name, std::uint16_t type, std::uint32_t ttl, std::span<const std::uint8_t> rdata) {
    record(2, name, type, dns_class::in, ttl, rdata);
  }
  /// Any record in any section (1 answer/prerequisite, 2 authority/update, 3 additional).
  void record(int section, std::string_view name, std::uint16_t type, std::uint16_t klass, std::uint32_t ttl,
              std::span<const std::uint8_t> rdata) {
    PLANFENCE_ASSERT(section >= 1 && section <= 3);
    PLANFENCE_ASSERT(section >= section_);
    PLANFENCE_ASSERT(rdata.size() <= 0xffff);
    section_ = section;
    append_wire_name(bytes_, name);
    put16(type);
    put16(klass);
    put32(ttl);
    put16(static_cast<std::uint16_t>(rdata.size()));
    bytes_.insert(bytes_.end(), rdata.begin(), rdata.end());
    ++counts_[static_cast<std::size_t>(section)];
  }

  /// Records encoded elsewhere (body() of another builder that wrote only `section`): `count`
  /// records of that section, appended as they are. Names are never compressed, so a record's
  /// octets do not depend on the message it goes into.
  void append_records(int section, std::span<const std::uint8_t> records, std::size_t count) {
    PLANFENCE_ASSERT(section >= 1 && section <= 3);
    PLANFENCE_ASSERT(section >= section_);
    section_ = section;
    bytes_.insert(bytes_.end(), records.begin(), records.end());
    counts_[static_cast<std::size_t>(section)] += count;
  }

  /// Bytes so far (to check a size bound before adding more).
  [[nodiscard]] std::size_t size() const noexcept { return bytes_.size(); }
  /// The octets after the header: for a builder that wrote only records, those records.
  [[nodiscard]] std::span<const std::uint8_t> body() const noexcept {
    return std::span<const std::uint8_t>(bytes_).subspan(dns_header_size);
  }
  /// How many records (or questions, section 0) were written to `section` so far.
  [[nodiscard]] std::size_t count(int section) const noexcept {
    PLANFENCE_ASSERT(section >= 0 && section <= 3);
    return counts_[static_cast<std::size_t>(section)];
  }

  /// The message. Asserts the counts fit 16 bits; the caller checks dns_message_size_max.
  [[nodiscard]] std::vector<std::uint8_t> finish() && {
    for (std::size_t i = 0; i < 4; ++i) {
      PLANFENCE_ASSERT(counts_[i] <= 0xffff);
      put16_at(4 + 2 * i, static_cast<std::uint16_t>(counts_[i]));
    }
    return std::move(bytes_);
  }

 private:
  void put16(std::uint16_t v) {
    bytes_.push_back(static_cast<std::uint8_t>(v >> 8));
    bytes_.push_back(static_cast<std::uint8_t>(v & 0xff));
  }
  void put32(std::uint32_t v) {
    put16(static_cast<std::uint16_t>(v >> 16));
    put16(static_cast<std::uint16_t>(v & 0xffff));
  }
  void put16_at(std::size_t at, std::uint16_t v) {
    bytes_[at] = static_cast<std::uint8_t>(v >> 8);
    bytes_[at + 1] = static_cast<std::uint8_t>(v & 0xff);
  }
  std::vector<std::uint8_t> bytes_;
  std::array<std::size_t, 4> counts_{};
  int section_ = 0;
};

/// A query for `name`/`type` (RD clear: we ask the authoritative server itself).
[[nodiscard]] inline std::vector<std::uint8_t> make_query(std::uint16_t id, std::string_view name, std::uint16_t type) {
  dns_message_builder b(id, dns_opcode::query);
  b.question(name, type);
  return std::move(b).finish();
}

// ---------------------------------------------------------------------------------------------
// Rdata of the record types planfence writes.

/// The rdata of one planfence record (A: 4 octets, AAAA: 16, CNAME: a name, TXT: strings).
/// The record must come from make_record (canonical rdata); errors only for impossible input.
[[nodiscard]] inline result<std::vector<std::uint8_t>> encode_rdata(const record& r) {
  std::vector<std::uint8_t> out;
  switch (r.type) {
    case record_type::a: {
      auto v = canonical_ipv4(r.rdata);
      if (!v) return unexpected_error(v.error());
      unsigned octet = 0;
      for (char c : *v) {
        if (c == '.') {
          out.push_back(static_cast<std::uint8_t>(octet));
          octet = 0;
        } else {
          octet = octet * 10 + static_cast<unsigned>(c - '0');
        }
      }
      out.push_back(static_cast<std::uint8_t>(octet));
      break;
    }
    case record_type::aaaa: {
      auto v = parse_ipv6(r.rdata);
      if (!v) return unexpected_error(v.error());
      out.assign(v->begin(), v->end());
      break;
    }
    case record_type::cname: {
      auto v = canonical_name(r.rdata);
      if (!v) return fail(errc::invalid_rdata, v.error().detail);
      append_wire_name(out, *v);
      break;
    }
    case record_type::txt: {
      auto v = parse_txt(r.rdata);
      if (!v) return unexpected_error(v.error());
      for (const std::string& s : *v) {
        out.push_back(static_cast<std::uint8_t>(s.size()));
        out.insert(out.end(), s.begin(), s.end());
      }
      break;
    }
  }
  return out;
}

/// The rdata of a TXT record with one character-string (the stamp and the floor).
[[nodiscard]] inline std::vector<std::uint8_t> txt_rdata(std::string_view text) {
  PLANFENCE_ASSERT(text.size() <= txt_string_length_max);
  std::vector<std::uint8_t> out;
  out.push_back(static_cast<std::uint8_t>(text.size()));
  out.insert(out.end(), text.begin(), text.end());
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding messages.

struct dns_question {
  std::string name;  ///< lower-case presentation form with the final dot
  std::uint16_t type = 0;
  std::uint16_t klass = 0;
};

struct dns_record {
  std::string name;  ///< lower-case presentation form with the final dot
  std::uint16_t type = 0;
  std::uint16_t klass = 0;
  std::uint32_t ttl = 0;
  /// The rdata with any compressed names expanded (NS, CNAME, PTR, SOA), others as received.
  std::vector<std::uint8_t> rdata;
  /// For NS, CNAME, PTR: the target; for SOA: the primary server's name.
  std::string rdata_name;
  std::size_t offset = 0;  ///< where the record starts in the message (TSIG needs it)
};

struct dns_message {
  std::uint16_t id = 0;
  std::uint16_t flags = 0;
  std::vector<dns_question> questions;
  std::vector<dns_record> answers;     ///< for an UPDATE: the prerequisite section
  std::vector<dns_record> authority;   ///< for an UPDATE: the update section
  std::vector<dns_record> additional;  ///< TSIG, when present, is the last one

  [[nodiscard]] std::uint16_t rcode() const noexcept { return flags & 0x000f; }
  [[nodiscard]] bool is_response() const noexcept { return (flags & dns_flag::qr) != 0; }
  [[nodiscard]] bool truncated() const noexcept { return (flags & dns_flag::tc) != 0; }
  [[nodiscard]] bool authoritative() const noexcept { return (flags & dns_flag::aa) != 0; }
  [[nodiscard]] dns_opcode opcode() const noexcept { return static_cast<dns_opcode>((flags >> 11) & 0x0f); }
};

namespace dns_internal {

[[nodiscard]] inline unexpected_error bad(std::size_t offset, std::string_view what) {
  return fail(errc::parse_error, "DNS message at octet " + std::to_string(offset) + ": " + std::string(what));
}

inline void append_label_text(std::string& out, std::span<const std::uint8_t> label) {
  for (std::uint8_t raw : label) {
    const char c = to_lower(static_cast<char>(raw));
    if (is_name_char(c)) {
      out += c;
    } else {
      // Anything else (a dot or a control byte inside a label) is escaped, so a hostile label
      // can never be read back as two labels.
      out += '\\';
      out += static_cast<char>('0' + raw / 100);
      out += static_cast<char>('0' + raw / 10 % 10);
      out += static_cast<char>('0' + raw % 10);
    }
  }
  out += '.';
}

}  // namespace dns_internal

/// Reads a possibly compressed name at `offset` of `message`; on success `offset` is just past
/// it (past the first pointer when compressed). The result is lower-case presentation form.
[[nodiscard]] inline result<std::string> read_name(std::span<const std::uint8_t> message, std::size_t& offset) {
  std::string out;
  std::size_t position = offset;
  std::size_t segment_start = offset;  // a pointer must point strictly before this
  std::size_t wire_length = 0;
  std::size_t hops = 0;
  std::optional<std::size_t> end;
  for (;;) {
    if (position >= message.size()) return dns_internal::bad(position, "name runs past the end");
    const std::uint8_t length = message[position];
    if ((length & 0xc0) == 0xc0) {
      if (position + 1 >= message.size()) return dns_internal::bad(position, "compression pointer cut short");
      const std::size_t target = static_cast<std::size_t>(length & 0x3f) << 8 | message[position + 1];
      if (target >= segment_start) return dns_internal::bad(position, "compression pointer does not point backwards");
      if (++hops > dns_pointer_hops_max) return dns_internal::bad(position, "too many compression pointers");
      if (!end) end = position + 2;
      position = target;
      segment_start = target;
      continue;
    }
    if ((length & 0xc0) != 0) return dns_internal::bad(position, "reserved label type");
    if (length == 0) {
      wire_length += 1;
      if (!end) end = position + 1;
      break;
    }
    if (position + 1 + length > message.size()) return dns_internal::bad(position, "label runs past the end");
    wire_length += 1u + length;
    if (wire_length + 1 > name_wire_length_max) return dns_internal::bad(position, "name longer than 255 octets");
    dns_internal::append_label_text(out, message.subspan(position + 1, length));
    position += 1u + length;
  }
  if (out.empty()) out = ".";
  offset = *end;
  return out;
}

namespace dns_internal {

[[nodiscard]] inline std::uint16_t get16(std::span<const std::uint8_t> m, std::size_t at) noexcept {
  return static_cast<std::uint16_t>(m[at] << 8 | m[at + 1]);
}
[[nodiscard]] inline std::uint32_t get32(std::span<const std::uint8_t> m, std::size_t at) noexcept {
  return static_cast<std::uint32_t>(get16(m, at)) << 16 | get16(m, at + 2);
}

/// Appends the uncompressed wire form of the name at `offset` (for expanding rdata).
[[nodiscard]] inline result<void> expand_name(std::span<const std::uint8_t> message, std::size_t& offset,
                                              std::vector<std::uint8_t>& out, std::string* text) {
  auto name = read_name(message, offset);
  if (!name) return unexpected_error(name.error());
  // Re-encode from the text form, undoing the \DDD escapes of hostile labels byte for byte.
  const std::string& t = *name;
  if (t != ".") {
    std::vector<std::uint8_t> label;
    for (std::size_t i = 0; i < t.size(); ++i) {
      if (t[i] == '.') {
        out.push_back(static_cast<std::uint8_t>(label.size()));
        out.insert(out.end(), label.begin(), label.end());
        label.clear();
      } else if (t[i] == '\\') {
        label.push_back(static_cast<std::uint8_t>((t[i + 1] - '0') * 100 + (t[i + 2] - '0') * 10 + (t[i + 3] - '0')));
        i += 3;
      } else {
        label.push_back(static_cast<std::uint8_t>(t[i]));
      }
    }
  }
  out.push_back(0);
  if (text != nullptr) *text = t;
  return ok();
}

[[nodiscard]] inline result<dns_record> read_record(std::span<const std::uint8_t> message, std::size_t& offset) {
  dns_record rr;
  rr.offset = offset;
  auto name = read_name(message, offset);
  if (!name) return unexpected_error(name.error());
  rr.name = std::move(*name);
  if (offset + dns_rr_fixed_size > message.size()) return bad(offset, "record header cut short");
  rr.type = get16(message, offset);
  rr.klass = get16(message, offset + 2);
  rr.ttl = get32(message, offset + 4);
  const std::size_t rdlength = get16(message, offset + 8);
  offset += dns_rr_fixed_size;
  if (offset + rdlength > message.size()) return bad(offset, "rdata length beyond the message");
  const std::size_t rdata_end = offset + rdlength;
  // Names inside rdata may be compressed (RFC 1035 section 4.1.4; RFC 3597 section 4 limits
  // this to the well-known types), so expand them and check they end inside the rdata.
  const std::span<const std::uint8_t> bounded = message.first(rdata_end);
  std::size_t at = offset;
  switch (rr.type) {
    case dns_type::ns:
    case dns_type::cname:
    case dns_type::ptr: {
      if (rdlength == 0) break;  // an UPDATE's delete or prerequisite records have none
      if (auto r = expand_name(bounded, at, rr.rdata, &rr.rdata_name); !r) return unexpected_error(r.error());
      if (at != rdata_end) return bad(at, "bytes after the name in rdata");
      break;
    }
    case dns_type::soa: {
      if (rdlength == 0) break;
      if (auto r = expand_name(bounded, at, rr.rdata, &rr.rdata_name); !r) return unexpected_error(r.error());
      if (auto r = expand_name(bounded, at, rr.rdata, nullptr); !r) return unexpected_error(r.error());
      if (at + 20 != rdata_end) return bad(at, "SOA rdata must end with five 32-bit fields");
      rr.rdata.insert(rr.rdata.end(), message.begin() + static_cast<std::ptrdiff_t>(at),
                      message.begin() + static_cast<std::ptrdiff_t>(rdata_end));
      break;
    }
    default:
      rr.rdata.assign(message.begin() + static_cast<std::ptrdiff_t>(offset),
                      message.begin() + static_cast<std::ptrdiff_t>(rdata_end));
      break;
  }
  offset = rdata_end;
  return rr;
}

}  // namespace dns_internal

/// Decodes a whole message (header comment: hostile input). Errors: errc::parse_error.
[[nodiscard]] inline result<dns_message> decode_message(std::span<const std::uint8_t> message) {
  using dns_internal::bad;
  using dns_internal::get16;
  if (message.size() > dns_message_size_max) return bad(0, "longer than 65535 octets");
  if (message.size() < dns_header_size) return bad(0, "shorter than the 12-octet header");
  dns_message out;
  out.id = get16(message, 0);
  out.flags = get16(message, 2);
  const std::size_t counts[4] = {get16(message, 4), get16(message, 6), get16(message, 8), get16(message, 10)};
  if (counts[0] + counts[1] + counts[2] + counts[3] > dns_records_max) return bad(4, "more records than planfence accepts");
  // Each question takes at least 5 octets and each record at least 11: refuse counts that
  // cannot fit before allocating anything for them.
  if (dns_header_size + counts[0] * 5 + (counts[1] + counts[2] + counts[3]) * (1 + dns_rr_fixed_size) > message.size()) {
    return bad(4, "record counts larger than the message can hold");
  }
  std::size_t offset = dns_header_size;
  out.questions.reserve(counts[0]);
  for (std::size_t i = 0; i < counts[0]; ++i) {
    dns_question q;
    auto name = read_name(message, offset);
    if (!name) return unexpected_error(name.error());
    q.name = std::move(*name);
    if (offset + 4 > message.size()) return bad(offset, "question cut short");
    q.type = get16(message, offset);
    q.klass = get16(message, offset + 2);
    offset += 4;
    out.questions.push_back(std::move(q));
  }
  std::vector<dns_record>* sections[3] = {&out.answers, &out.authority, &out.additional};
  for (std::size_t s = 0; s < 3; ++s) {
    sections[s]->reserve(counts[s + 1]);
    for (std::size_t i = 0; i < counts[s + 1]; ++i) {
      auto rr = dns_internal::read_record(message, offset);
      if (!rr) return unexpected_error(rr.error());
      sections[s]->push_back(std::move(*rr));
    }
  }
  if (offset != message.size()) return bad(offset, "trailing octets after the last record");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rdata of answers, back to planfence records.

/// The character-strings of TXT rdata. Errors: errc::parse_error for a string running past the
/// rdata.
[[nodiscard]] inline result<std::vector<std::string>> decode_txt_strings(std::span<const std::uint8_t> rdata) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < rdata.size()) {
    const std::size_t length = rdata[at];
    if (at + 1 + length > rdata.size()) return fail(errc::parse_error, "TXT character-string runs past its rdata");
    out.emplace_back(rdata.begin() + static_cast<std::ptrdiff_t>(at + 1),
                     rdata.begin() + static_cast<std::ptrdiff_t>(at + 1 + length));
    at += 1 + length;
  }
  if (out.empty()) return fail(errc::parse_error, "TXT rdata without a string");
  return out;
}

/// The planfence record for an answer of type A, AAAA, CNAME or TXT (canonical rdata, no
/// weight). Errors: errc::parse_error (malformed rdata), errc::invalid_rdata (another type, or
/// data planfence's records cannot hold).
[[nodiscard]] inline result<record> decode_record(const dns_record& rr) {
  std::string text;
  record_type type{};
  switch (rr.type) {
    case dns_type::a:
      if (rr.rdata.size() != 4) return fail(errc::parse_error, "A rdata is not 4 octets");
      type = record_type::a;
      text = std::to_string(rr.rdata[0]) + "." + std::to_string(rr.rdata[1]) + "." + std::to_string(rr.rdata[2]) + "." +
             std::to_string(rr.rdata[3]);
      break;
    case dns_type::aaaa: {
      if (rr.rdata.size() != 16) return fail(errc::parse_error, "AAAA rdata is not 16 octets");
      type = record_type::aaaa;
      std::array<std::uint8_t, 16> octets{};
      std::copy(rr.rdata.begin(), rr.rdata.end(), octets.begin());
      text = format_ipv6(octets);
      break;
    }
    case dns_type::cname:
      if (rr.rdata.empty()) return fail(errc::parse_error, "CNAME without a target");
      type = record_type::cname;
      text = rr.rdata_name;
      break;
    case dns_type::txt: {
      auto strings = decode_txt_strings(rr.rdata);
      if (!strings) return unexpected_error(strings.error());
      type = record_type::txt;
      text = format_txt(*strings);
      break;
    }
    default: return fail(errc::invalid_rdata, "record type " + std::to_string(rr.type) + " is not one planfence serves");
  }
  return make_record(type, rr.ttl > ttl_max ? ttl_max : rr.ttl, text);
}

}  // namespace detail
}  // namespace v1
}  // namespace planfence
