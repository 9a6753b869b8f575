// planfence/record.hpp: DNS records, record sets, and the validation of names and data.
//
// What it is: the values a plan assigns to an endpoint. A `record` is one A, AAAA, CNAME or TXT
// record with a TTL and an optional weight (weighted records, as a DNS provider's weighted
// routing serves them). A `record_set` is the immutable, sorted, validated set of records of one
// endpoint. Record data is kept in canonical presentation form (RFC 5952 for IPv6, lower-case
// absolute names, TXT strings re-escaped), so two sets are equal exactly when their canonical
// forms are equal, and the plan digest (S7) does not depend on how the input was spelled.
//
//     auto set = planfence::record_set::make({
//         planfence::make_record(planfence::record_type::a, 60, "192.0.2.10").value(),
//         planfence::make_record(planfence::record_type::aaaa, 60, "2001:DB8::A").value()});
//     // set->records()[1].rdata == "2001:db8::a"
//
// Validation (each failure is errc::invalid_name, invalid_ttl or invalid_rdata with a detail):
//  - names: RFC 1035 section 2.3.4, labels of 1 to 63 octets and at most 255 octets on the wire
//    (253 characters in presentation form without the final dot); letters, digits, hyphen and
//    underscore (underscore labels such as `_planfence` are service names, RFC 8552); absolute
//    (ending with a dot) or made absolute by the caller; stored lower-case.
//  - TTLs: 0 to 2147483647 (RFC 2181 section 8).
//  - A: four decimal octets without leading zeros. AAAA: RFC 4291 section 2.2 text forms,
//    stored in RFC 5952 form. CNAME: a name as above; a CNAME must be the only record of its
//    set (RFC 1034 section 3.6.2). TXT: one or more quoted character-strings of at most 255
//    octets each (RFC 1035 section 3.3.14), escapes \" \\ and \DDD.
//  - weights: 0 to 255, on A, AAAA and CNAME records.
//
// Cost: construction allocates and sorts; a built record_set is never modified, so any number of
// threads may read it without synchronisation.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "config.hpp"
#include "result.hpp"

namespace planfence {
inline namespace v1 {

/// Bounds from RFC 1035 and RFC 2181, named so that their relations can be checked.
inline constexpr std::size_t label_length_max = 63;
inline constexpr std::size_t name_wire_length_max = 255;
inline constexpr std::size_t name_text_length_max = 253;  // without the final dot
inline constexpr std::uint32_t ttl_max = 2147483647;
inline constexpr std::size_t txt_string_length_max = 255;
inline constexpr std::size_t txt_strings_max = 16;     // per record, planfence's own bound
inline constexpr std::size_t records_per_set_max = 1024;  // planfence's own bound
static_assert(name_text_length_max + 2 == name_wire_length_max,
              "presentation form plus the first length octet and the root label");
static_assert(label_length_max < name_text_length_max);

enum class record_type : std::uint8_t { a, aaaa, cname, txt };

[[nodiscard]] constexpr std::string_view to_string(record_type type) noexcept {
  switch (type) {
    case record_type::a: return "A";
    case record_type::aaaa: return "AAAA";
    case record_type::cname: return "CNAME";
    case record_type::txt: return "TXT";
  }
  return "?";
}

/// "A", "AAAA", "CNAME" or "TXT" (case-insensitive).
[[nodiscard]] inline std::optional<record_type> parse_record_type(std::string_view text) noexcept {
  auto equals = [&](std::string_view name) {
    return text.size() == name.size() &&
           std::equal(text.begin(), text.end(), name.begin(), [](char x, char y) {
             return (x >= 'a' && x <= 'z' ? static_cast<char>(x - 'a' + 'A') : x) == y;
           });
  };
  for (record_type type : {record_type::a, record_type::aaaa, record_type::cname, record_type::txt}) {
    if (equals(to_string(type))) return type;
  }
  return std::nullopt;
}

/// The DNS TYPE value (RFC 1035, RFC 3596).
[[nodiscard]] constexpr std::uint16_t wire_type(record_type type) noexcept {
  switch (type) {
    case record_type::a: return 1;
    case record_type::aaaa: return 28;
    case record_type::cname: return 5;
    case record_type::txt: return 16;
  }
  return 0;
}

/// One record. Build with make_record, which validates and canonicalises `rdata`.
struct record {
  record_type type{};
  std::uint32_t ttl = 0;
  std::optional<std::uint8_t> weight{};  ///< set for weighted records
  std::string rdata{};                   ///< canonical presentation form

  friend bool operator==(const record&, const record&) = default;
  friend bool operator<(const record& x, const record& y) {
    return std::tie(x.type, x.rdata, x.ttl, x.weight) < std::tie(y.type, y.rdata, y.ttl, y.weight);
  }
};

namespace detail {

[[nodiscard]] constexpr bool is_name_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}
[[nodiscard]] constexpr char to_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

[[nodiscard]] inline result<std::string> canonical_ipv4(std::string_view text) {
  std::string out;
  std::size_t pos = 0;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      if (pos >= text.size() || text[pos] != '.') return fail(errc::invalid_rdata, "expected an IPv4 address a.b.c.d");
      ++pos;
      out += '.';
    }
    const std::size_t start = pos;
    unsigned value = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9' && pos - start < 4) {
      value = value * 10 + static_cast<unsigned>(text[pos] - '0');
      ++pos;
    }
    const std::size_t digits = pos - start;
    if (digits == 0 || digits > 3) return fail(errc::invalid_rdata, "expected an IPv4 address a.b.c.d");
    if (digits > 1 && text[start] == '0') return fail(errc::invalid_rdata, "IPv4 octet with a leading zero");
    if (value > 255) return fail(errc::invalid_rdata, "IPv4 octet above 255");
    out += text.substr(start, digits);
  }
  if (pos != text.size()) return fail(errc::invalid_rdata, "trailing characters after an IPv4 address");
  return out;
}

/// Parses the RFC 4291 section 2.2 forms into 16 octets.
[[nodiscard]] inline result<std::array<std::uint8_t, 16>> parse_ipv6(std::string_view text) {
  auto bad = [](const char* why) { return fail(errc::invalid_rdata, why); };
  std::array<std::uint16_t, 8> groups{};
  int count = 0;
  int gap = -1;  // index in `groups` where "::" stood
  std::size_t pos = 0;
  if (text.size() < 2 || text.size() > 45) return bad("not an IPv6 address");
  if (text.substr(0, 2) == "::") {
    gap = 0;
    pos = 2;
  } else if (text[0] == ':') {
    return bad("IPv6 address starts with a single colon");
  }
  while (pos < text.size()) {
    // An embedded IPv4 address may end the address (RFC 4291 section 2.2 form 3).
    const std::size_t next_colon = text.find(':', pos);
    const std::string_view piece = text.substr(pos, next_colon == std::string_view::npos ? std::string_view::npos : next_colon - pos);
    if (piece.find('.') != std::string_view::npos) {
      if (next_colon != std::string_view::npos) return bad("IPv4 part must end an IPv6 address");
      auto v4 = canonical_ipv4(piece);
      if (!v4) return bad("bad IPv4 part in an IPv6 address");
      if (count > 6) return bad("too many groups in an IPv6 address");
      unsigned octets[4] = {};
      std::size_t p = 0;
      for (unsigned& o : octets) {
        while (p < v4->size() && (*v4)[p] != '.') o = o * 10 + static_cast<unsigned>((*v4)[p++] - '0');
        ++p;
      }
      groups[static_cast<std::size_t>(count++)] = static_cast<std::uint16_t>(octets[0] << 8 | octets[1]);
      groups[static_cast<std::size_t>(count++)] = static_cast<std::uint16_t>(octets[2] << 8 | octets[3]);
      pos = text.size();
      break;
    }
    if (piece.empty() || piece.size() > 4) return bad("IPv6 group must have 1 to 4 hex digits");
    if (count >= 8) return bad("too many groups in an IPv6 address");
    unsigned value = 0;
    for (char c : piece) {
      const char l = to_lower(c);
      unsigned digit = 0;
      if (l >= '0' && l <= '9') digit = static_cast<unsigned>(l - '0');
      else if (l >= 'a' && l <= 'f') digit = static_cast<unsigned>(l - 'a' + 10);
      else return bad("IPv6 group with a non-hex character");
      value = value * 16 + digit;
    }
    groups[static_cast<std::size_t>(count++)] = static_cast<std::uint16_t>(value);
    pos += piece.size();
    if (pos == text.size()) break;
    // pos is at a colon.
    ++pos;
    if (pos < text.size() && text[pos] == ':') {
      if (gap >= 0) return bad("IPv6 address with two '::'");
      gap = count;
      ++pos;
    } else if (pos == text.size()) {
      return bad("IPv6 address ends with a single colon");
    }
  }
  if (gap < 0 && count != 8) return bad("IPv6 address with fewer than 8 groups and no '::'");
  if (gap >= 0 && count > 7) return bad("IPv6 '::' must stand for at least one group");
  std::array<std::uint16_t, 8> full{};
  if (gap >= 0) {
    const int tail = count - gap;
    for (int i = 0; i < gap; ++i) full[static_cast<std::size_t>(i)] = groups[static_cast<std::size_t>(i)];
    for (int i = 0; i < tail; ++i) full[static_cast<std::size_t>(8 - tail + i)] = groups[static_cast<std::size_t>(gap + i)];
  } else {
    full = groups;
  }
  std::array<std::uint8_t, 16> out{};
  for (std::size_t i = 0; i < 8; ++i) {
    out[2 * i] = static_cast<std::uint8_t>(full[i] >> 8);
    out[2 * i + 1] = static_cast<std::uint8_t>(full[i] & 0xff);
  }
  return out;
}

/// RFC 5952 section 4: lower case, no leading zeros, the longest run (first on ties) of two or
/// more zero groups as "::".
[[nodiscard]] inline std::string format_ipv6(const std::array<std::uint8_t, 16>& octets) {
  std::array<unsigned, 8> g{};
  for (std::size_t i = 0; i < 8; ++i) g[i] = static_cast<unsigned>(octets[2 * i] << 8 | octets[2 * i + 1]);
  int best_start = -1, best_length = 0;
  for (int i = 0; i < 8;) {
    if (g[static_cast<std::size_t>(i)] != 0) { ++i; continue; }
    int j = i;
    while (j < 8 && g[static_cast<std::size_t>(j)] == 0) ++j;
    if (j - i > best_length) { best_start = i; best_length = j - i; }
    i = j;
  }
  if (best_length < 2) best_start = -1;
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    if (i == best_start) {
      out += "::";
      i += best_length - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    const unsigned v = g[static_cast<std::size_t>(i)];
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const unsigned d = (v >> shift) & 0xf;
      if (d != 0 || started || shift == 0) { out += hex[d]; started = true; }
    }
  }
  return out;
}

/// Splits TXT presentation data into its character-strings ("a" "b\"c" -> {a, b"c}).
[[nodiscard]] inline result<std::vector<std::string>> parse_txt(std::string_view text) {
  std::vector<std::string> strings;
  std::size_t pos = 0;
  auto bad = [](const char* why) { return fail(errc::invalid_rdata, why); };
  while (pos < text.size()) {
    if (text[pos] == ' ') { ++pos; continue; }
    if (text[pos] != '"') return bad("TXT data must be quoted strings");
    ++pos;
    std::string s;
    bool closed = false;
    while (pos < text.size()) {
      const char c = text[pos++];
      if (c == '"') { closed = true; break; }
      if (c == '\\') {
        if (pos >= text.size()) return bad("TXT string ends inside an escape");
        const char e = text[pos];
        if (e >= '0' && e <= '9') {
          if (pos + 3 > text.size()) return bad("TXT \\DDD escape needs three digits");
          unsigned v = 0;
          for (int k = 0; k < 3; ++k) {
            const char d = text[pos + static_cast<std::size_t>(k)];
            if (d < '0' || d > '9') return bad("TXT \\DDD escape needs three digits");
            v = v * 10 + static_cast<unsigned>(d - '0');
          }
          if (v > 255) return bad("TXT \\DDD escape above 255");
          s += static_cast<char>(v);
          pos += 3;
        } else {
          // \X quotes X, but a raw control or non-ASCII byte stays raw: it must be \DDD.
          if (static_cast<unsigned char>(e) < 0x20 || static_cast<unsigned char>(e) >= 0x7f) {
            return bad("TXT string with a raw control or non-ASCII byte: use \\DDD");
          }
          s += e;
          ++pos;
        }
        continue;
      }
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
        return bad("TXT string with a raw control or non-ASCII byte: use \\DDD");
      }
      s += c;
    }
    if (!closed) return bad("TXT string without a closing quote");
    if (s.size() > txt_string_length_max) return bad("TXT character-string longer than 255 octets");
    strings.push_back(std::move(s));
    if (strings.size() > txt_strings_max) return bad("more than 16 TXT character-strings in one record");
    if (pos < text.size() && text[pos] != ' ') return bad("TXT strings must be separated by a space");
  }
  if (strings.empty()) return bad("TXT record without a string");
  return strings;
}

[[nodiscard]] inline std::string format_txt(const std::vector<std::string>& strings) {
  std::string out;
  for (const std::string& s : strings) {
    if (!out.empty()) out += ' ';
    out += '"';
    for (char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (u < 0x20 || u >= 0x7f) {
        out += '\\';
        out += static_cast<char>('0' + u / 100);
        out += static_cast<char>('0' + u / 10 % 10);
        out += static_cast<char>('0' + u % 10);
      } else {
        out += c;
      }
    }
    out += '"';
  }
  return out;
}

}  // namespace detail

/// Validates a domain name and returns it lower-case and absolute (with the final dot).
/// `text` may omit the final dot. Errors: errc::invalid_name with the reason.
[[nodiscard]] inline result<std::string> canonical_name(std::string_view text) {
  if (text == ".") return std::string(".");
  if (!text.empty() && text.back() == '.') text.remove_suffix(1);
  if (text.empty()) return fail(errc::invalid_name, "empty name");
  if (text.size() > name_text_length_max) return fail(errc::invalid_name, "name longer than 255 octets on the wire");
  std::string out;
  out.reserve(text.size() + 1);
  std::size_t label_length = 0;
  for (char raw : text) {
    const char c = detail::to_lower(raw);
    if (c == '.') {
      if (label_length == 0) return fail(errc::invalid_name, "empty label");
      label_length = 0;
      out += c;
      continue;
    }
    if (!detail::is_name_char(c)) return fail(errc::invalid_name, std::string("character '") + raw + "' not allowed in a name");
    if (++label_length > label_length_max) return fail(errc::invalid_name, "label longer than 63 octets");
    out += c;
  }
  // Only one final dot is the root label: "a.." ends with an empty label.
  if (label_length == 0) return fail(errc::invalid_name, "empty label");
  out += '.';
  PLANFENCE_ASSERT(out.size() <= name_text_length_max + 1);
  return out;
}

/// Validates and canonicalises one record.
[[nodiscard]] inline result<record> make_record(record_type type, std::uint64_t ttl, std::string_view rdata,
                                                std::optional<std::uint8_t> weight = std::nullopt) {
  if (ttl > ttl_max) return fail(errc::invalid_ttl, "TTL above 2147483647");
  if (weight && type == record_type::txt) return fail(errc::invalid_rdata, "TXT records cannot be weighted");
  record out{type, static_cast<std::uint32_t>(ttl), weight, {}};
  switch (type) {
    case record_type::a: {
      auto v = detail::canonical_ipv4(rdata);
      if (!v) return unexpected_error(v.error());
      out.rdata = std::move(*v);
      break;
    }
    case record_type::aaaa: {
      auto v = detail::parse_ipv6(rdata);
      if (!v) return unexpected_error(v.error());
      out.rdata = detail::format_ipv6(*v);
      break;
    }
    case record_type::cname: {
      auto v = canonical_name(rdata);
      if (!v) return fail(errc::invalid_rdata, "CNAME target: " + v.error().detail);
      out.rdata = std::move(*v);
      break;
    }
    case record_type::txt: {
      auto v = detail::parse_txt(rdata);
      if (!v) return unexpected_error(v.error());
      out.rdata = detail::format_txt(*v);
      break;
    }
  }
  return out;
}

/// The immutable, sorted, validated records of one endpoint.
///
/// An empty set is refused by the enactor's S4 guard unless `intended_empty()` says the plan
/// means it (an endpoint deliberately taken out of service).
class record_set {
 public:
  /// The empty set (not marked as intended: the S4 guard refuses to commit it).
  record_set() = default;

  /// Validates and sorts. Errors: errc::invalid_plan for duplicates, a CNAME beside other
  /// records, an intended-empty set that has records, or more than records_per_set_max records.
  [[nodiscard]] static result<record_set> make(std::vector<record> records, bool intended_empty = false) {
    if (records.size() > records_per_set_max) return fail(errc::invalid_plan, "more than 1024 records for one endpoint");
    if (intended_empty && !records.empty()) return fail(errc::invalid_plan, "intent=empty on an endpoint that has records");
    std::sort(records.begin(), records.end());
    if (std::adjacent_find(records.begin(), records.end(), [](const record& x, const record& y) {
          return x.type == y.type && x.rdata == y.rdata;
        }) != records.end()) {
      return fail(errc::invalid_plan, "duplicate record");
    }
    const auto cnames = std::count_if(records.begin(), records.end(),
                                      [](const record& r) { return r.type == record_type::cname; });
    const bool weighted_cnames = cnames > 1 && std::all_of(records.begin(), records.end(), [](const record& r) {
      return r.type == record_type::cname && r.weight.has_value();
    });
    if (cnames > 0 && static_cast<std::size_t>(cnames) != records.size()) {
      return fail(errc::invalid_plan, "a CNAME must be the only data of its name (RFC 1034 section 3.6.2)");
    }
    if (cnames > 1 && !weighted_cnames) return fail(errc::invalid_plan, "several CNAMEs are only allowed as weighted records");
    record_set out;
    out.records_ = std::move(records);
    out.intended_empty_ = intended_empty;
    return out;
  }

  [[nodiscard]] std::span<const record> records() const noexcept { return records_; }
  [[nodiscard]] bool empty() const noexcept { return records_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return records_.size(); }
  [[nodiscard]] bool intended_empty() const noexcept { return intended_empty_; }
  friend bool operator==(const record_set&, const record_set&) = default;

 private:
  std::vector<record> records_;
  bool intended_empty_ = false;
};

/// Number of records of `before` that `after` does not have (removed or changed), used by the
/// S4 guard to measure how much of an endpoint a commit changes. Both are sorted.
[[nodiscard]] inline std::size_t records_removed(const record_set& before, const record_set& after) {
  std::size_t removed = 0;
  auto it = after.records().begin();
  for (const record& r : before.records()) {
    while (it != after.records().end() && *it < r) ++it;
    if (it == after.records().end() || !(*it == r)) ++removed;
  }
  return removed;
}

}  // namespace v1
}  // namespace planfence
