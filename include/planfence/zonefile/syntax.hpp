// planfence/zonefile/syntax.hpp: RFC 1035 master files (zone files): a parser and a writer.
//
// What it is: the text format of DNS zones (RFC 1035 section 5), read and written the way
// planfence's zone-file store (zonefile/store.hpp) and recovery tools (`planfence-ctl export`)
// need it. `parse_zone` reads what real zone files contain; `format_records` writes records back
// so that they parse to the same records. Nothing here knows planfence's own records in a zone
// (stamps, weights, the fence floor: dns/zone_layout.hpp) nor plans (a plan as a zone, and a zone
// read back as endpoints: zonefile/zone.hpp).
//
//     auto records = planfence::parse_zone(text, {.origin = "example.test."});
//     if (!records) std::puts(records.error().message().c_str());  // "parse_error at 3:14: expected a TTL ..."
//     for (const planfence::zone_record& r : *records) { r.owner; r.ttl; r.type; r.rdata; }
//     std::string text = planfence::format_records(*records);
//
// Accepted input (docs/zonefile.md has the full account):
//  - comments (`;` to the end of the line), blank lines, `\r\n` line ends;
//  - `$ORIGIN name` (relative names are taken relative to the current origin) and `$TTL ttl`;
//    `$INCLUDE` is REFUSED with a clear error: the store rewrites a zone file whole, so an included
//    file would be silently inlined or lost. `$GENERATE` and other directives are refused too;
//  - parentheses spanning lines (not nested), quoted strings with `\"`, `\\`, `\X` and `\DDD`
//    escapes (a quoted string ends on its line);
//  - owner names absolute, relative, `@`, or omitted (the line starts with a blank: the previous
//    owner); a leading `*` label (wildcards); letters, digits, `-` and `_` in labels; escapes in
//    names are refused;
//  - TTL and class in either order, each optional: the TTL defaults to `$TTL`, else to the last
//    TTL given explicitly (RFC 1035 section 5.1); TTLs may use BIND's units (`1h30m`, `2d`, `1w`);
//    only class IN;
//  - record types: SOA, NS, A, AAAA, CNAME and TXT are validated and kept in canonical form
//    (record.hpp rules: RFC 5952 IPv6, lower-case absolute names, TXT re-escaped). Other common
//    types (MX, SRV, CAA, PTR, DNSSEC types, `TYPEnnn`, ... see `opaque_types`) are kept OPAQUELY:
//    their data is preserved token for token as written, with the origin in effect, never
//    interpreted; any other mnemonic is refused as an unknown type.
//
// Errors: every error is errc::parse_error with the 1-based line and column of the offending
// token (or just past the last token, when something is missing) and a detail that says what was
// expected. Bounds: `zone_parse_options::line_length_max` per physical line (default 65535),
// `records_max` records (default 2^20), `zone_entry_tokens_max` tokens per entry, RFC 1035 name
// limits (labels of 63 octets, names of 255 on the wire), 255-octet TXT strings, 16 per record.
//
// Zone semantics: parse_zone reads what is written, sound or not (check_zone_loadable in
// zonefile/zone.hpp checks what planfence writes).
//
// When not to use it: as a general DNS library. It keeps unknown types opaque instead of
// validating them, and refuses `$INCLUDE`, escaped names and classes other than IN.
//
// Cost: parsing is one pass, O(size of the text), allocating per record (1 to 3 µs per record
// measured on the loaded reference machine; docs/zonefile.md). Formatting is O(records), sorting
// O(records log records). Nothing here does I/O.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../generation.hpp"
#include "../record.hpp"
#include "../result.hpp"

namespace planfence {
inline namespace v1 {

/// Default bound on one physical line of a zone file.
inline constexpr std::size_t zone_line_length_max = 65535;
/// Default bound on records per zone file.
inline constexpr std::size_t zone_records_max = std::size_t{1} << 20;
/// Bound on tokens of one entry (a record or directive, parentheses included).
inline constexpr std::size_t zone_entry_tokens_max = 1024;
/// Lines the writer keeps below: longer records are split over lines with parentheses.
inline constexpr std::size_t zone_line_length_target = 4096;
static_assert(zone_line_length_target < zone_line_length_max);
static_assert(txt_string_length_max * 4 + 2 < zone_line_length_target,
              "a TXT string written with \\DDD escapes must fit a line the writer produces");


/// Types kept opaquely (data preserved as written, never interpreted). `TYPEnnn` (RFC 3597) too.
inline constexpr std::array<std::string_view, 36> opaque_types = {
    "MX",     "SRV",   "CAA",        "PTR",     "DNAME",  "HINFO",      "RP",     "LOC",    "NAPTR",
    "SPF",    "SSHFP", "TLSA",       "SMIMEA",  "OPENPGPKEY", "DS",     "DNSKEY", "RRSIG",  "NSEC",
    "NSEC3",  "NSEC3PARAM", "CDS",   "CDNSKEY", "CSYNC",  "ZONEMD",     "HTTPS",  "SVCB",   "URI",
    "CERT",   "KX",    "AFSDB",      "DHCID",   "IPSECKEY", "EUI48",    "EUI64",  "NID",    "L64"};

/// One resource record as read from (or to be written to) a zone file.
struct zone_record {
  std::string owner;      ///< absolute, lower-case, with the final dot
  std::uint32_t ttl = 0;  ///< 0..2147483647
  std::string type;       ///< upper-case mnemonic: "SOA", "NS", "A", "AAAA", "CNAME", "TXT", or an opaque type
  /// Canonical presentation data for SOA, NS, A, AAAA, CNAME and TXT (names absolute); for an
  /// opaque type the tokens as written, joined by one space.
  std::string rdata;
  /// Opaque types only: the $ORIGIN in effect where the record was read, which relative names
  /// inside its data refer to (the writer restores it). Empty for the other types.
  std::string origin;
  std::uint32_t line = 0;  ///< where it was read (0: built, not read); not compared

  friend bool operator==(const zone_record& x, const zone_record& y) noexcept {
    return x.owner == y.owner && x.ttl == y.ttl && x.type == y.type && x.rdata == y.rdata && x.origin == y.origin;
  }
};

/// What parse_zone needs besides the text.
struct zone_parse_options {
  /// The initial $ORIGIN (any case, with or without the final dot); empty: relative names are
  /// refused until a $ORIGIN directive.
  std::string origin{};
  std::size_t line_length_max = zone_line_length_max;
  std::size_t records_max = zone_records_max;
};

/// The fields of an SOA record (RFC 1035 section 3.3.13).
struct soa_fields {
  std::string mname;  ///< primary name server, absolute
  std::string rname;  ///< mailbox of the person responsible, absolute
  soa_serial_number serial{};
  std::uint32_t refresh = 3600;
  std::uint32_t retry = 600;
  std::uint32_t expire = 604800;
  std::uint32_t minimum = 60;
  friend bool operator==(const soa_fields&, const soa_fields&) = default;
};

/// Parses a zone file. Allocates; O(size of the text). Errors: errc::parse_error with line,
/// column and what was expected.
[[nodiscard]] inline result<std::vector<zone_record>> parse_zone(std::string_view text,
                                                                 const zone_parse_options& options = {});

/// Writes records as a zone file that parse_zone reads back to the same records: owner names
/// absolute, TTL and class explicit, a `$ORIGIN` line wherever an opaque record needs its origin,
/// long data split over lines with parentheses. `header` lines are written first as comments.
[[nodiscard]] inline std::string format_records(std::span<const zone_record> records, std::string_view header = {});

/// SOA data to and from its canonical presentation form ("mname rname serial refresh retry
/// expire minimum", names absolute). Errors: errc::invalid_rdata.
[[nodiscard]] inline result<soa_fields> parse_soa(std::string_view rdata);
[[nodiscard]] inline std::string format_soa(const soa_fields& soa);

// ---------------------------------------------------------------------------------------------
// Implementation.

namespace detail::zone {

struct token {
  std::string_view raw;  // as written, quotes included
  std::uint32_t line = 0;
  std::uint32_t column = 0;
  bool quoted = false;
};

struct entry {
  std::vector<token> tokens;
  bool owner_omitted = false;  // the entry's first line starts with a blank
  std::uint32_t line = 0;      // where the entry starts
  std::uint32_t end_line = 0;  // position just past its last token (for "expected ..." errors)
  std::uint32_t end_column = 0;
};

[[nodiscard]] constexpr char upper(char c) noexcept { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

[[nodiscard]] inline bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return upper(x) == upper(y); });
}

[[nodiscard]] inline std::string upper_string(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = upper(c);
  return out;
}

/// Splits the text into entries (RFC 1035 section 5.1: a line, or several joined by
/// parentheses), dropping comments. Calls `sink(entry&)` for each; stops at the first error the
/// sink returns.
class lexer {
 public:
  lexer(std::string_view text, std::size_t line_length_max) noexcept : text_(text), line_length_max_(line_length_max) {}

  /// The next entry, or an empty optional at the end of the text.
  [[nodiscard]] result<std::optional<entry>> next() {
    for (;;) {
      if (pos_ >= text_.size()) return std::optional<entry>{};
      entry e;
      e.line = line_;
      // An entry starts at the beginning of a physical line.
      PLANFENCE_ASSERT(column() == 1);
      e.owner_omitted = text_[pos_] == ' ' || text_[pos_] == '\t';
      int depth = 0;
      std::uint32_t open_line = 0, open_column = 0;
      for (;;) {
        if (auto checked = check_line_length(); !checked) return unexpected_error(std::move(checked).error());
        if (pos_ >= text_.size()) {
          if (depth > 0) return fail_at(errc::parse_error, open_line, open_column, "'(' is never closed: expected ')'");
          break;
        }
        const char c = text_[pos_];
        if (c == '\n') {
          advance_line();
          if (depth == 0) break;
          continue;
        }
        if (c == ' ' || c == '\t' || c == '\r') { ++pos_; continue; }
        if (c == ';') {
          while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
          continue;
        }
        if (c == '(') {
          if (depth > 0) return fail_at(errc::parse_error, line_, column(), "nested '(': expected ')' first");
          depth = 1;
          open_line = line_;
          open_column = column();
          ++pos_;
          continue;
        }
        if (c == ')') {
          if (depth == 0) return fail_at(errc::parse_error, line_, column(), "')' without '('");
          depth = 0;
          ++pos_;
          continue;
        }
        if (e.tokens.size() >= zone_entry_tokens_max) {
          return fail_at(errc::parse_error, line_, column(), "more than 1024 tokens in one entry");
        }
        auto t = c == '"' ? quoted() : bare();
        if (!t) return unexpected_error(std::move(t).error());
        e.tokens.push_back(*t);
        e.end_line = line_;
        e.end_column = column();
      }
      if (e.tokens.empty()) continue;  // a blank or comment-only line
      return std::optional<entry>{std::move(e)};
    }
  }

 private:
  [[nodiscard]] std::uint32_t column() const noexcept { return static_cast<std::uint32_t>(pos_ - line_start_ + 1); }

  void advance_line() noexcept {
    ++pos_;
    ++line_;
    line_start_ = pos_;
    checked_line_ = false;
  }

  // Checked once per physical line, when the lexer first stands on it.
  [[nodiscard]] result<void> check_line_length() {
    if (checked_line_) return ok();
    checked_line_ = true;
    const std::size_t end = text_.find('\n', line_start_);
    const std::size_t length = (end == std::string_view::npos ? text_.size() : end) - line_start_;
    if (length > line_length_max_) {
      return fail_at(errc::parse_error, line_, static_cast<std::uint32_t>(line_length_max_ + 1),
                     "line longer than " + std::to_string(line_length_max_) + " characters");
    }
    return ok();
  }

  [[nodiscard]] result<token> quoted() {
    const std::size_t start = pos_;
    const std::uint32_t col = column();
    ++pos_;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == '\n') break;
      if (c == '"') {
        ++pos_;
        return token{text_.substr(start, pos_ - start), line_, col, true};
      }
      if (c == '\\') {
        if (pos_ + 1 >= text_.size() || text_[pos_ + 1] == '\n') {
          return fail_at(errc::parse_error, line_, column(), "an escape at the end of a line: expected a character after '\\'");
        }
        pos_ += 2;
        continue;
      }
      if (c == '\0') return fail_at(errc::parse_error, line_, column(), "a NUL byte in a quoted string: write \\000");
      ++pos_;
    }
    return fail_at(errc::parse_error, line_, col, "a quoted string without its closing '\"' on the same line");
  }

  [[nodiscard]] result<token> bare() {
    const std::size_t start = pos_;
    const std::uint32_t col = column();
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' || c == '(' || c == ')' || c == '"') break;
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u >= 0x7f) {
        return fail_at(errc::parse_error, line_, column(), "a control or non-ASCII byte outside quotes: write \\DDD");
      }
      if (c == '\\') {
        if (pos_ + 1 >= text_.size() || text_[pos_ + 1] == '\n' || text_[pos_ + 1] == '\r') {
          return fail_at(errc::parse_error, line_, column(), "an escape at the end of a line: expected a character after '\\'");
        }
        const auto next = static_cast<unsigned char>(text_[pos_ + 1]);
        if (next < 0x20 || next >= 0x7f) {
          return fail_at(errc::parse_error, line_, column() + 1, "a control or non-ASCII byte outside quotes: write \\DDD");
        }
        pos_ += 2;
        continue;
      }
      ++pos_;
    }
    PLANFENCE_ASSERT(pos_ > start);
    return token{text_.substr(start, pos_ - start), line_, col, false};
  }

  std::string_view text_;
  std::size_t line_length_max_;
  std::size_t pos_ = 0;
  std::size_t line_start_ = 0;
  std::uint32_t line_ = 1;
  bool checked_line_ = false;
};

/// Decodes the escapes of a token (quotes removed): a character-string (RFC 1035 section 5.1).
[[nodiscard]] inline result<std::string> character_string(const token& t) {
  std::string_view body = t.raw;
  std::uint32_t column = t.column;
  if (t.quoted) {
    PLANFENCE_ASSERT(body.size() >= 2);
    body = body.substr(1, body.size() - 2);
    ++column;
  }
  std::string out;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    PLANFENCE_ASSERT(i + 1 < body.size());  // the lexer refused an escape at the end
    const char e = body[i + 1];
    if (e >= '0' && e <= '9') {
      unsigned value = 0;
      for (std::size_t k = 1; k <= 3; ++k) {
        if (i + k >= body.size() || body[i + k] < '0' || body[i + k] > '9') {
          return fail_at(errc::parse_error, t.line, column + static_cast<std::uint32_t>(i),
                         "expected three decimal digits after '\\' (\\DDD)");
        }
        value = value * 10 + static_cast<unsigned>(body[i + k] - '0');
      }
      if (value > 255) {
        return fail_at(errc::parse_error, t.line, column + static_cast<std::uint32_t>(i), "\\DDD escape above 255");
      }
      out += static_cast<char>(value);
      i += 3;
    } else {
      out += e;
      ++i;
    }
  }
  return out;
}

/// A decimal number of at most 20 digits no larger than `max`; leading zeros only if `leading_zeros`.
[[nodiscard]] inline bool decimal(std::string_view digits, std::uint64_t max, bool leading_zeros, std::uint64_t& out) noexcept {
  if (digits.empty() || digits.size() > 20) return false;
  if (!leading_zeros && digits.size() > 1 && digits[0] == '0') return false;
  std::uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (value > (max - d) / 10) return false;
    value = value * 10 + d;
  }
  out = value;
  return true;
}

[[nodiscard]] inline bool is_label_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/// Validates an absolute name or makes a relative one absolute under `origin`.
[[nodiscard]] inline result<std::string> absolute_name(std::string_view text, std::string_view origin, std::string* why) {
  auto bad = [&](std::string reason) -> result<std::string> {
    *why = std::move(reason);
    return fail(errc::invalid_name);
  };
  if (text == "@") {
    if (origin.empty()) return bad("'@' needs an origin: expected a $ORIGIN directive before it");
    return std::string(origin);
  }
  if (text.find('\\') != std::string_view::npos) return bad("escapes in names are not supported: expected letters, digits, '-' or '_'");
  if (text == ".") return std::string(".");
  std::string full;
  if (text.back() == '.') {
    full = text;
  } else {
    if (origin.empty()) return bad("relative name '" + std::string(text) + "' without an origin: expected a $ORIGIN directive or an absolute name");
    full = std::string(text) + "." + (origin == "." ? std::string{} : std::string(origin));
  }
  // full ends with exactly one dot for the root label.
  if (full.size() - 1 > name_text_length_max) return bad("name longer than 255 octets on the wire");
  std::size_t label_start = 0;
  for (std::size_t i = 0; i < full.size(); ++i) {
    char& c = full[i];
    if (c == '.') {
      const std::size_t length = i - label_start;
      if (length == 0) return bad("empty label in '" + std::string(text) + "'");
      if (length > label_length_max) return bad("label longer than 63 octets");
      label_start = i + 1;
      continue;
    }
    if (c == '*') {
      const bool alone = i == label_start && i + 1 < full.size() && full[i + 1] == '.';
      if (!alone || label_start != 0) return bad("'*' is only allowed as the whole leftmost label (a wildcard)");
      continue;
    }
    if (!is_label_char(c)) return bad(std::string("character '") + c + "' not allowed in a name");
    c = to_lower(c);
  }
  return full;
}

/// Decimal or BIND-style units (s, m, h, d, w), at most ttl_max.
[[nodiscard]] inline std::optional<std::uint32_t> parse_ttl(std::string_view text) noexcept {
  if (text.empty() || text[0] < '0' || text[0] > '9') return std::nullopt;
  std::uint64_t total = 0;
  std::uint64_t number = 0;
  bool digits = false;
  bool units = false;
  for (char raw : text) {
    const char c = upper(raw);
    if (c >= '0' && c <= '9') {
      number = number * 10 + static_cast<std::uint64_t>(c - '0');
      digits = true;
      if (number > ttl_max) return std::nullopt;
      continue;
    }
    if (!digits) return std::nullopt;
    std::uint64_t scale = 0;
    switch (c) {
      case 'S': scale = 1; break;
      case 'M': scale = 60; break;
      case 'H': scale = 3600; break;
      case 'D': scale = 86400; break;
      case 'W': scale = 604800; break;
      default: return std::nullopt;
    }
    total += number * scale;
    if (total > ttl_max) return std::nullopt;
    number = 0;
    digits = false;
    units = true;
  }
  if (digits) {
    if (units) return std::nullopt;  // "1h30" is ambiguous: BIND refuses it too
    total += number;
  }
  if (total > ttl_max) return std::nullopt;
  return static_cast<std::uint32_t>(total);
}

[[nodiscard]] inline bool is_opaque_type(std::string_view upper_type) noexcept {
  if (std::find(opaque_types.begin(), opaque_types.end(), upper_type) != opaque_types.end()) return true;
  if (upper_type.size() > 4 && upper_type.substr(0, 4) == "TYPE" && upper_type.size() <= 9) {
    unsigned value = 0;
    for (char c : upper_type.substr(4)) {
      if (c < '0' || c > '9') return false;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    return value <= 65535 && upper_type[4] != '0';
  }
  return false;
}

[[nodiscard]] inline bool is_known_type(std::string_view upper_type) noexcept {
  return upper_type == "SOA" || upper_type == "NS" || upper_type == "A" || upper_type == "AAAA" ||
         upper_type == "CNAME" || upper_type == "TXT";
}

[[nodiscard]] inline bool looks_like_class(std::string_view text) noexcept {
  return iequals(text, "IN") || iequals(text, "CH") || iequals(text, "HS") || iequals(text, "CS") ||
         (text.size() > 5 && iequals(text.substr(0, 5), "CLASS"));
}

/// Splits "a.b.c." into labels, leftmost first (root: none).
[[nodiscard]] inline std::vector<std::string_view> labels(std::string_view name) {
  std::vector<std::string_view> out;
  if (name == ".") return out;
  std::size_t start = 0;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '.') {
      out.push_back(name.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

/// Whether `name` is `zone` or below it (both canonical).
[[nodiscard]] inline bool inside(std::string_view name, std::string_view zone) noexcept {
  if (zone == ".") return true;
  if (name.size() < zone.size()) return false;
  if (name.substr(name.size() - zone.size()) != zone) return false;
  return name.size() == zone.size() || name[name.size() - zone.size() - 1] == '.';
}

class parser {
 public:
  parser(std::string_view text, const zone_parse_options& options) : lexer_(text, options.line_length_max), options_(options) {}

  [[nodiscard]] result<std::vector<zone_record>> run() {
    if (!options_.origin.empty()) {
      std::string why;
      auto origin = options_.origin.back() == '.' ? absolute_name(options_.origin, "", &why)
                                                  : absolute_name(options_.origin + ".", "", &why);
      if (!origin) return fail(errc::invalid_name, "zone_parse_options::origin: " + why);
      origin_ = std::move(*origin);
    }
    for (;;) {
      auto next = lexer_.next();
      if (!next) return unexpected_error(std::move(next).error());
      if (!next->has_value()) break;
      const entry& e = **next;
      if (!e.owner_omitted && e.tokens[0].raw[0] == '$' && !e.tokens[0].quoted) {
        if (auto d = directive(e); !d) return unexpected_error(std::move(d).error());
        continue;
      }
      if (records_.size() >= options_.records_max) {
        return fail_at(errc::parse_error, e.tokens[0].line, e.tokens[0].column,
                       "more than " + std::to_string(options_.records_max) + " records");
      }
      if (auto r = record_entry(e); !r) return unexpected_error(std::move(r).error());
    }
    return std::move(records_);
  }

 private:
  [[nodiscard]] static unexpected_error at(const token& t, std::string what) {
    return fail_at(errc::parse_error, t.line, t.column, std::move(what));
  }
  [[nodiscard]] static unexpected_error at_end(const entry& e, std::string what) {
    return fail_at(errc::parse_error, e.end_line, e.end_column, std::move(what));
  }

  [[nodiscard]] result<std::string> name(const token& t, const char* role) {
    if (t.quoted) return at(t, std::string("expected ") + role + ", not a quoted string");
    std::string why;
    auto n = absolute_name(t.raw, origin_, &why);
    if (!n) return at(t, std::string("bad ") + role + " '" + std::string(t.raw) + "': " + why);
    return n;
  }

  [[nodiscard]] result<void> directive(const entry& e) {
    const token& d = e.tokens[0];
    if (iequals(d.raw, "$ORIGIN")) {
      if (e.tokens.size() < 2) return at_end(e, "expected a domain name after $ORIGIN");
      if (e.tokens.size() > 2) return at(e.tokens[2], "expected the end of the $ORIGIN line");
      auto n = name(e.tokens[1], "an origin name");
      if (!n) return unexpected_error(std::move(n).error());
      origin_ = std::move(*n);
      return ok();
    }
    if (iequals(d.raw, "$TTL")) {
      if (e.tokens.size() < 2) return at_end(e, "expected a TTL after $TTL");
      if (e.tokens.size() > 2) return at(e.tokens[2], "expected the end of the $TTL line");
      auto ttl = e.tokens[1].quoted ? std::nullopt : parse_ttl(e.tokens[1].raw);
      if (!ttl) return at(e.tokens[1], "expected a TTL (0 to 2147483647 seconds, or units like 1h30m)");
      default_ttl_ = *ttl;
      return ok();
    }
    if (iequals(d.raw, "$INCLUDE")) {
      return at(d, "$INCLUDE is not supported: planfence rewrites a zone file whole, so every record must be in "
                   "the one file (inline the included file)");
    }
    if (iequals(d.raw, "$GENERATE")) return at(d, "$GENERATE is not supported: expected the records written out");
    return at(d, "unknown directive '" + std::string(d.raw) + "': expected $ORIGIN or $TTL");
  }

  [[nodiscard]] result<void> record_entry(const entry& e) {
    std::size_t i = 0;
    zone_record out;
    out.line = e.line;
    if (e.owner_omitted) {
      if (last_owner_.empty()) {
        return fail_at(errc::parse_error, e.line, 1, "no previous owner: expected an owner name at the start of the line");
      }
      out.owner = last_owner_;
    } else {
      auto owner = name(e.tokens[0], "owner name");
      if (!owner) return unexpected_error(std::move(owner).error());
      out.owner = std::move(*owner);
      i = 1;
    }
    std::optional<std::uint32_t> ttl;
    bool have_class = false;
    for (; i < e.tokens.size(); ++i) {
      const token& t = e.tokens[i];
      if (t.quoted) return at(t, "expected a TTL, the class IN or a record type, not a quoted string");
      if (!ttl && t.raw[0] >= '0' && t.raw[0] <= '9') {
        ttl = parse_ttl(t.raw);
        if (!ttl) return at(t, "expected a TTL (0 to 2147483647 seconds, or units like 1h30m)");
        continue;
      }
      if (!have_class && looks_like_class(t.raw)) {
        if (!iequals(t.raw, "IN")) return at(t, "only class IN is supported");
        have_class = true;
        continue;
      }
      break;
    }
    if (i >= e.tokens.size()) return at_end(e, "expected a record type (SOA, NS, A, AAAA, CNAME, TXT, ...)");
    const token& type_token = e.tokens[i];
    out.type = upper_string(type_token.raw);
    const bool known = is_known_type(out.type);
    if (!known && !is_opaque_type(out.type)) {
      if (looks_like_class(type_token.raw)) return at(type_token, "the class given twice: expected a record type");
      if (type_token.raw[0] >= '0' && type_token.raw[0] <= '9') return at(type_token, "the TTL given twice: expected a record type");
      return at(type_token, "unknown record type '" + std::string(type_token.raw) +
                                "': expected SOA, NS, A, AAAA, CNAME, TXT or a type kept opaquely (MX, SRV, CAA, ...)");
    }
    ++i;
    if (ttl) {
      out.ttl = *ttl;
      last_explicit_ttl_ = *ttl;
    } else if (default_ttl_) {
      out.ttl = *default_ttl_;
    } else if (last_explicit_ttl_) {
      out.ttl = *last_explicit_ttl_;
    } else {
      return at(type_token, "no TTL: expected a TTL before the type, or a $TTL directive");
    }
    const std::span<const token> data(e.tokens.data() + i, e.tokens.size() - i);
    auto rdata = record_data(e, out.type, data);
    if (!rdata) return unexpected_error(std::move(rdata).error());
    out.rdata = std::move(*rdata);
    if (!known) out.origin = origin_;
    last_owner_ = out.owner;
    records_.push_back(std::move(out));
    return ok();
  }

  [[nodiscard]] result<std::string> single(const entry& e, std::span<const token> data, const char* what) {
    if (data.empty()) return at_end(e, std::string("expected ") + what);
    if (data.size() > 1) return at(data[1], std::string("expected the end of the record after ") + what);
    return std::string(data[0].raw);
  }

  /// The data of a record of type `type` in canonical form (validated types) or as written.
  [[nodiscard]] result<std::string> record_data(const entry& e, const std::string& type, std::span<const token> data) {
    if (type == "A" || type == "AAAA") return address_data(e, type == "A", data);
    if (type == "CNAME" || type == "NS") return name_data(e, type == "NS", data);
    if (type == "TXT") return txt_data(e, data);
    if (type == "SOA") return soa_data(e, data);
    if (data.empty()) return at_end(e, "expected the record's data");
    std::string out;
    for (const token& t : data) {
      if (!out.empty()) out += ' ';
      out += t.raw;
    }
    return out;
  }

  [[nodiscard]] result<std::string> address_data(const entry& e, bool v4, std::span<const token> data) {
    auto text = single(e, data, v4 ? "an IPv4 address" : "an IPv6 address");
    if (!text) return text;
    if (data[0].quoted) return at(data[0], "expected an address, not a quoted string");
    auto r = make_record(v4 ? record_type::a : record_type::aaaa, 0, *text);
    if (!r) return at(data[0], (v4 ? "expected an IPv4 address: " : "expected an IPv6 address: ") + r.error().detail);
    return std::move(r->rdata);
  }

  [[nodiscard]] result<std::string> name_data(const entry& e, bool ns, std::span<const token> data) {
    auto text = single(e, data, "a domain name");
    if (!text) return text;
    auto target = name(data[0], ns ? "name server name" : "CNAME target");
    if (!target || ns) return target;
    auto r = make_record(record_type::cname, 0, *target);
    if (!r) return at(data[0], "expected a CNAME target: " + r.error().detail);
    return std::move(r->rdata);
  }

  [[nodiscard]] result<std::string> txt_data(const entry& e, std::span<const token> data) {
    if (data.empty()) return at_end(e, "expected one or more character-strings (\"...\")");
    std::vector<std::string> strings;
    for (const token& t : data) {
      auto s = character_string(t);
      if (!s) return unexpected_error(std::move(s).error());
      if (s->size() > txt_string_length_max) return at(t, "a TXT character-string longer than 255 octets: split it into several strings");
      if (strings.size() >= txt_strings_max) return at(t, "more than 16 TXT character-strings in one record");
      strings.push_back(std::move(*s));
    }
    return planfence::detail::format_txt(strings);
  }

  [[nodiscard]] result<std::string> soa_data(const entry& e, std::span<const token> data) {
    static constexpr const char* fields[] = {"the primary name server (MNAME)", "the responsible mailbox (RNAME)",
                                             "a serial", "a refresh time", "a retry time", "an expire time",
                                             "a minimum TTL"};
    if (data.size() > 7) return at(data[7], "expected the end of the SOA record after its seven fields");
    if (data.size() < 7) return at_end(e, std::string("expected ") + fields[data.size()] + " in the SOA record");
    soa_fields soa;
    auto mname = name(data[0], "SOA MNAME");
    if (!mname) return unexpected_error(std::move(mname).error());
    auto rname = name(data[1], "SOA RNAME");
    if (!rname) return unexpected_error(std::move(rname).error());
    soa.mname = std::move(*mname);
    soa.rname = std::move(*rname);
    std::uint64_t serial = 0;
    if (data[2].quoted || !decimal(data[2].raw, 0xffffffffULL, true, serial)) {
      return at(data[2], "expected a serial (a decimal number 0 to 4294967295)");
    }
    soa.serial = soa_serial_number{static_cast<std::uint32_t>(serial)};
    std::uint32_t* timers[] = {&soa.refresh, &soa.retry, &soa.expire, &soa.minimum};
    for (std::size_t k = 0; k < 4; ++k) {
      auto v = data[3 + k].quoted ? std::nullopt : parse_ttl(data[3 + k].raw);
      if (!v) return at(data[3 + k], std::string("expected ") + fields[3 + k] + " (seconds, or units like 1h)");
      *timers[k] = *v;
    }
    return format_soa(soa);
  }

  lexer lexer_;
  const zone_parse_options& options_;
  std::string origin_;
  std::string last_owner_;
  std::optional<std::uint32_t> default_ttl_;
  std::optional<std::uint32_t> last_explicit_ttl_;
  std::vector<zone_record> records_;
};

/// Sort key: owners grouped by their labels from the root down (a name's `_planfence` records sit
/// right after it), SOA first, then NS, then the other types.
/// A name's sort key, one byte at a time without building it: its labels (each ended by '.')
/// from right to left, separated by '\1'; next() gives -1 after the last byte.
class owner_key_stream {
 public:
  explicit owner_key_stream(std::string_view name) noexcept : name_(name) {
    const std::size_t last = name.rfind('.');
    if (name == "." || last == std::string_view::npos) {
      done_ = true;
      return;
    }
    label_ending_at(last);
  }
  [[nodiscard]] int next() noexcept {
    if (done_) return -1;
    if (pos_ < end_) return static_cast<unsigned char>(name_[pos_++]);
    if (begin_ == 0) {
      done_ = true;
      return -1;
    }
    label_ending_at(begin_ - 1);  // the '.' before this label ends the one to its left
    return 1;
  }

 private:
  void label_ending_at(std::size_t dot) noexcept {
    end_ = dot;
    const std::size_t before = dot == 0 ? std::string_view::npos : name_.rfind('.', dot - 1);
    begin_ = before == std::string_view::npos ? 0 : before + 1;
    pos_ = begin_;
  }
  std::string_view name_;
  std::size_t begin_ = 0, end_ = 0, pos_ = 0;
  bool done_ = false;
};

/// Appends a name's sort key (the bytes owner_key_stream gives), a label at a time.
inline void append_owner_key(std::string& out, std::string_view name) {
  const std::size_t last = name.rfind('.');
  if (name == "." || last == std::string_view::npos) return;
  for (std::size_t end = last;;) {
    const std::size_t before = end == 0 ? std::string_view::npos : name.rfind('.', end - 1);
    const std::size_t begin = before == std::string_view::npos ? 0 : before + 1;
    out.append(name.data() + begin, end - begin);
    if (begin == 0) return;
    out += '\1';
    end = begin - 1;
  }
}

/// Compares two names' sort keys (owner_key_stream) as strings compare: <0, 0 or >0.
[[nodiscard]] inline int compare_owner_keys(std::string_view a, std::string_view b) noexcept {
  if (a == b) return 0;
  owner_key_stream x(a), y(b);
  for (;;) {
    const int cx = x.next(), cy = y.next();
    if (cx != cy) return cx < cy ? -1 : 1;
    if (cx < 0) return 0;
  }
}

[[nodiscard]] inline int type_rank(std::string_view type) noexcept {
  if (type == "SOA") return 0;
  if (type == "NS") return 1;
  return 2;
}

}  // namespace detail::zone

inline result<std::vector<zone_record>> parse_zone(std::string_view text, const zone_parse_options& options) {
  detail::zone::parser p(text, options);
  return p.run();
}

inline std::string format_soa(const soa_fields& soa) {
  return soa.mname + ' ' + soa.rname + ' ' + std::to_string(soa.serial.value) + ' ' + std::to_string(soa.refresh) + ' ' +
         std::to_string(soa.retry) + ' ' + std::to_string(soa.expire) + ' ' + std::to_string(soa.minimum);
}

inline result<soa_fields> parse_soa(std::string_view rdata) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start <= rdata.size()) {
    const std::size_t space = rdata.find(' ', start);
    parts.push_back(rdata.substr(start, space == std::string_view::npos ? std::string_view::npos : space - start));
    if (space == std::string_view::npos) break;
    start = space + 1;
  }
  if (parts.size() != 7) return fail(errc::invalid_rdata, "SOA data must have seven fields");
  soa_fields soa;
  std::string why;
  auto mname = detail::zone::absolute_name(parts[0], "", &why);
  if (!mname) return fail(errc::invalid_rdata, "SOA MNAME: " + why);
  auto rname = detail::zone::absolute_name(parts[1], "", &why);
  if (!rname) return fail(errc::invalid_rdata, "SOA RNAME: " + why);
  soa.mname = std::move(*mname);
  soa.rname = std::move(*rname);
  std::uint64_t values[5] = {};
  for (std::size_t k = 0; k < 5; ++k) {
    if (!detail::zone::decimal(parts[2 + k], k == 0 ? 0xffffffffULL : std::uint64_t{ttl_max}, false, values[k])) {
      return fail(errc::invalid_rdata, "SOA numbers must be decimal");
    }
  }
  soa.serial = soa_serial_number{static_cast<std::uint32_t>(values[0])};
  soa.refresh = static_cast<std::uint32_t>(values[1]);
  soa.retry = static_cast<std::uint32_t>(values[2]);
  soa.expire = static_cast<std::uint32_t>(values[3]);
  soa.minimum = static_cast<std::uint32_t>(values[4]);
  return soa;
}

namespace detail::zone {

/// format_records appending to `out`: reserves what the records need (the data of an opaque
/// record split over lines may need more) and builds no string per record. O(bytes written).
inline void append_records(std::string& out, std::span<const zone_record> records, std::string_view header) {
  std::size_t need = header.size() + 8;
  for (const zone_record& r : records) need += r.owner.size() + r.type.size() + r.rdata.size() + 16;  // ' ', TTL, " IN ", ' ', '\n'
  out.reserve(out.size() + need);
  std::size_t start = 0;
  while (start < header.size()) {
    const std::size_t end = header.find('\n', start);
    const std::string_view line = header.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    out += "; ";
    out += line;
    out += '\n';
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  auto write = [&](const zone_record& r) {
    char ttl[16];
    const auto digits = std::to_chars(std::begin(ttl), std::end(ttl), r.ttl);
    PLANFENCE_ASSERT(digits.ec == std::errc{});
    const std::size_t head = r.owner.size() + 1 + static_cast<std::size_t>(digits.ptr - ttl) + 4 + r.type.size() + 1;
    out += r.owner;
    out += ' ';
    out.append(ttl, digits.ptr);
    out += " IN ";
    out += r.type;
    out += ' ';
    if (head + r.rdata.size() <= zone_line_length_target) {
      out += r.rdata;
      out += '\n';
      return;
    }
    // Split the data at its tokens' boundaries: one token per line inside parentheses. Tokens
    // never contain a line break and are no longer than the line they were read from.
    detail::zone::lexer split(r.rdata, r.rdata.size() + 1);
    auto tokens = split.next();
    if (!tokens || !tokens->has_value()) {  // data built by hand that does not lex: one line, as given
      out += r.rdata;
      out += '\n';
      return;
    }
    out += "(\n";
    for (const detail::zone::token& t : (**tokens).tokens) {
      out += t.raw;
      out += '\n';
    }
    out += ")\n";
  };
  // In the given order. An opaque record read without an origin can only precede the first
  // $ORIGIN in text that parse_zone read (an origin, once set, is never unset), so writing in order
  // restores every opaque record's origin; one built with an empty origin after others with one
  // is written under the current origin.
  std::string_view origin;
  for (const zone_record& r : records) {
    const bool opaque = !detail::zone::is_known_type(r.type);
    if (opaque && !r.origin.empty() && r.origin != origin) {
      origin = r.origin;
      out += "$ORIGIN ";
      out += origin;
      out += '\n';
    }
    write(r);
  }
}

}  // namespace detail::zone

inline std::string format_records(std::span<const zone_record> records, std::string_view header) {
  std::string out;
  detail::zone::append_records(out, records, header);
  return out;
}

namespace detail::zone {

/// The single character-string of a canonical TXT rdata, or nullopt if it has several.
[[nodiscard]] inline std::optional<std::string> single_txt(std::string_view rdata) {
  auto strings = planfence::detail::parse_txt(rdata);
  if (!strings || strings->size() != 1) return std::nullopt;
  return std::move((*strings)[0]);
}

[[nodiscard]] inline result<std::string> zone_name(std::string_view zone) {
  std::string why;
  if (zone.empty()) return fail(errc::invalid_name, "empty zone name");
  auto n = absolute_name(zone.back() == '.' ? std::string(zone) : std::string(zone) + ".", "", &why);
  if (!n) return fail(errc::invalid_name, "zone '" + std::string(zone) + "': " + why);
  if (n->find('*') != std::string::npos) return fail(errc::invalid_name, "zone '" + std::string(zone) + "': a wildcard");
  return n;
}

/// Orders records for writing: SOA first, then by owner from the root label down, then type:
/// the labels from the root down joined by '\1', which sorts below every character a label may
/// hold, so that comparing those keys compares the label sequences.
///
/// The result is that of one stable sort of the whole vector by that key. `sorted_prefix`: the
/// caller knows the first `sorted_prefix` records are in order (a zone written before, with
/// records removed: what a commit keeps), so they are not compared with each other again.
/// The records after the sorted prefix (what a commit appends) get their keys built once, into
/// one buffer, are sorted by those keys (runs already in order are found and merged, not sorted
/// again), then merged into the prefix: by binary search when they are few, else linearly.
/// O(n + k log k) with n the prefix and k the rest, O(k log n) comparisons when k is small.
inline void sort_records(std::vector<zone_record>& records, std::string_view zone, std::size_t sorted_prefix = 0) {
  // The key: the zone's SOA first, then the owner's labels right to left (compared as if joined
  // by '\1', owner_key_stream), then SOA, NS, the rest, then the type; equal keys keep their
  // order (a stable sort).
  auto less = [zone](const zone_record& x, const zone_record& y) {
    const bool x_rest = x.type != "SOA" || x.owner != zone, y_rest = y.type != "SOA" || y.owner != zone;
    if (x_rest != y_rest) return x_rest < y_rest;
    if (const int c = compare_owner_keys(x.owner, y.owner); c != 0) return c < 0;
    const int xr = type_rank(x.type), yr = type_rank(y.type);
    if (xr != yr) return xr < yr;
    return x.type < y.type;
  };
  PLANFENCE_ASSERT(sorted_prefix <= records.size());
  const auto from = records.begin() + static_cast<std::ptrdiff_t>(sorted_prefix == 0 ? 0 : sorted_prefix - 1);
  const auto mid_it = std::is_sorted_until(from, records.end(), less);
  if (mid_it == records.end()) return;
  std::size_t mid = static_cast<std::size_t>(mid_it - records.begin());
  // A prefix much shorter than the rest (a zone being filled) is sorted with it, by keys: one of
  // the runs, instead of a merge that compares records, which costs more than building keys.
  if (mid < (records.size() - mid) / 8) mid = 0;
  const std::size_t k = records.size() - mid;

  // The tail's keys, built once: the owner's key bytes (owner_key_stream) in one buffer.
  struct tail_key {
    std::uint32_t offset, length;
    bool rest;
    int rank;
    std::uint32_t index;  // position in the tail
  };
  std::string buffer;
  std::size_t key_bytes = 0;  // a key is never longer than its owner
  for (std::size_t i = mid; i < records.size(); ++i) key_bytes += records[i].owner.size();
  buffer.reserve(key_bytes);
  std::vector<tail_key> keys;
  keys.reserve(k);
  for (std::size_t i = 0; i < k; ++i) {
    const zone_record& r = records[mid + i];
    const std::size_t offset = buffer.size();
    append_owner_key(buffer, r.owner);
    keys.push_back(tail_key{static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(buffer.size() - offset),
                            r.type != "SOA" || r.owner != zone, type_rank(r.type), static_cast<std::uint32_t>(i)});
  }
  auto key_less = [&](const tail_key& x, const tail_key& y) {
    if (x.rest != y.rest) return x.rest < y.rest;
    const int c = std::memcmp(buffer.data() + x.offset, buffer.data() + y.offset, std::min(x.length, y.length));
    if (c != 0) return c < 0;
    if (x.length != y.length) return x.length < y.length;
    if (x.rank != y.rank) return x.rank < y.rank;
    return records[mid + x.index].type < records[mid + y.index].type;
  };
  // A natural merge sort: the runs already in order, merged pairwise (adjacent runs only, each
  // merge stable), so a tail appended in order costs one pass.
  std::vector<std::size_t> runs{0};
  for (std::size_t i = 1; i < k; ++i) {
    if (key_less(keys[i], keys[i - 1])) runs.push_back(i);
  }
  runs.push_back(k);
  while (runs.size() > 2) {
    std::vector<std::size_t> merged{0};
    for (std::size_t r = 0; r + 1 < runs.size(); r += 2) {
      if (r + 2 < runs.size()) {
        std::inplace_merge(keys.begin() + static_cast<std::ptrdiff_t>(runs[r]), keys.begin() + static_cast<std::ptrdiff_t>(runs[r + 1]),
                           keys.begin() + static_cast<std::ptrdiff_t>(runs[r + 2]), key_less);
        merged.push_back(runs[r + 2]);
      } else {
        merged.push_back(runs[r + 1]);
      }
    }
    runs = std::move(merged);
  }
  // The tail put in that order in place (following the permutation's cycles: moves, no copy of
  // the records and no second vector of them, whose fresh pages cost more than the moves).
  constexpr std::uint32_t placed = static_cast<std::uint32_t>(-1);
  std::vector<std::uint32_t> source_of(k);
  for (std::size_t j = 0; j < k; ++j) source_of[j] = keys[j].index;
  keys = {};
  buffer = {};
  for (std::size_t start = 0; start < k; ++start) {
    if (source_of[start] == placed || source_of[start] == start) continue;
    zone_record held = std::move(records[mid + start]);
    std::size_t j = start;
    for (;;) {
      const std::size_t source = source_of[j];
      source_of[j] = placed;
      if (source == start) {
        records[mid + j] = std::move(held);
        break;
      }
      records[mid + j] = std::move(records[mid + source]);
      j = source;
    }
  }
  // Merge into the prefix: a tail record goes after every prefix record not above it (the prefix
  // came first: stable). Few records: their places by binary search (O(k log n) comparisons),
  // then the prefix moves once, from the back; many: std::inplace_merge (stable, a buffer of the
  // smaller side).
  std::size_t log_n = 1;
  while ((std::size_t{1} << log_n) < mid) ++log_n;
  if (k * log_n >= mid) {
    std::inplace_merge(records.begin(), records.begin() + static_cast<std::ptrdiff_t>(mid), records.end(), less);
    return;
  }
  std::vector<zone_record> tail(std::make_move_iterator(records.begin() + static_cast<std::ptrdiff_t>(mid)),
                                std::make_move_iterator(records.end()));
  std::vector<std::size_t> places(k);
  std::size_t at = 0;
  for (std::size_t j = 0; j < k; ++j) {
    at = static_cast<std::size_t>(std::upper_bound(records.begin() + static_cast<std::ptrdiff_t>(at),
                                                   records.begin() + static_cast<std::ptrdiff_t>(mid), tail[j], less) -
                                  records.begin());
    places[j] = at;
  }
  std::size_t write = mid + k;
  std::size_t read = mid;  // prefix records [0, read) not moved yet
  for (std::size_t j = k; j-- > 0;) {
    while (read > places[j]) records[--write] = std::move(records[--read]);
    records[--write] = std::move(tail[j]);
  }
}

}  // namespace detail::zone

}  // namespace v1
}  // namespace planfence
