// planfence/plan_text.hpp: the text form of a plan: format_plan and parse_plan.
//
// What it is for: moving plans between processes and onto disk (the durable history, the etcd
// registry, planfence-ctl, planners written in other languages). The text is canonical: the
// same plan always formats to the same bytes, and its digest line carries the SHA-256 of
// everything above it, which is the plan's digest (plan.hpp), so that a parsed plan is checked
// against what its author published (S7).
//
//     std::string text = planfence::format_plan(plan);       // round-trips exactly:
//     planfence::plan again = planfence::parse_plan(text).value();
//
// The text form (canonical; the parser also accepts comments starting with '#', blank lines,
// upper-case names and records in any order, and reports line and column for every error):
//
//     planfence-plan 1
//     generation 7
//     created-unix-ms 1761200000000
//     intent bulk-change                       (only when the plan means a large change, S4)
//     endpoint db.us-east-1.example.
//       A 60 192.0.2.10
//       A 60 weight=10 192.0.2.11
//     endpoint old.example. intent=empty       (a deliberately emptied endpoint, S4)
//     digest sha256:<64 lower-case hex digits>
//
// Endpoints appear sorted by name and records in canonical order (record.hpp).
//
// When not to use it: inside one process, pass the plan itself (plans are immutable and their
// structure is shared; a text round trip copies everything). For a DNS server's view of the
// records, export a zone file instead (zonefile/zone.hpp).
//
// Guarantees: parse_plan returns a plan only when the whole text is valid (lines at most
// plan_line_length_max, at most plan_endpoints_max endpoints, each name defined once, every
// record valid) and, when a digest line is present, only when the content hashes to it (S7);
// otherwise an error with the 1-based line and column of what was wrong.
//
// Cost: format_plan is O(plan size) and allocates the text; parse_plan is O(text size) plus
// building the plan (plan_builder::build, O(n log n) and the digest) and allocates every entry.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.hpp"
#include "generation.hpp"
#include "plan.hpp"
#include "record.hpp"
#include "result.hpp"

namespace planfence {
inline namespace v1 {

/// planfence's bound on the length of one line of plan text.
inline constexpr std::size_t plan_line_length_max = 8192;

/// The canonical text form of `p`, digest line included. parse_plan(format_plan(p)) equals p,
/// and format_plan(parse_plan(t)) == t for every canonical text t.
[[nodiscard]] inline std::string format_plan(const plan& p) {
  std::string out;
  detail::write_plan_body(p, [&](std::string_view piece) { out += piece; });
  out += "digest sha256:";
  out += p.digest_hex();
  out += '\n';
  return out;
}

/// Options for parse_plan.
struct parse_plan_options {
  /// Refuse text without a digest line (stored plan history must carry one). A digest that is
  /// present is always checked (S7).
  bool require_digest = true;
};

namespace detail {

struct plan_line_reader {
  std::string_view text;
  std::size_t pos = 0;
  std::uint32_t line_number = 0;

  /// The next line without its newline, or false at the end.
  bool next(std::string_view& line) {
    if (pos >= text.size()) return false;
    const std::size_t end = text.find('\n', pos);
    line = text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    ++line_number;
    return true;
  }
};

[[nodiscard]] inline bool parse_decimal(std::string_view digits, std::uint64_t& out) noexcept {
  if (digits.empty() || digits.size() > 20) return false;
  if (digits.size() > 1 && digits[0] == '0') return false;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
  return ec == std::errc{} && end == digits.data() + digits.size();
}

/// Where parse_plan is in the text: the current significant line, and the errors that point
/// into it (1-based line and column).
struct plan_text_cursor {
  plan_line_reader reader;
  std::string_view line;

  [[nodiscard]] std::uint32_t column_of(std::string_view part) const noexcept {
    return static_cast<std::uint32_t>(part.data() - line.data() + 1);
  }
  [[nodiscard]] unexpected_error error_at(errc code, std::string_view part, std::string detail_text) const {
    return fail_at(code, reader.line_number, column_of(part), std::move(detail_text));
  }
  [[nodiscard]] unexpected_error end_of_input_error(const char* expected) const {
    return fail_at(errc::parse_error, reader.line_number + 1, 1, std::string("unexpected end of input: expected ") + expected);
  }

  /// Reads the next significant line (skipping blank lines and comments).
  bool next_line() {
    while (reader.next(line)) {
      if (line.size() > plan_line_length_max) return true;  // reported by check_line
      const std::size_t first = line.find_first_not_of(' ');
      if (first == std::string_view::npos || line[first] == '#') continue;
      return true;
    }
    return false;
  }

  /// The current line is not too long and holds no carriage return and no tab.
  [[nodiscard]] result<void> check_line() const {
    if (line.size() > plan_line_length_max) return error_at(errc::parse_error, line, "line longer than 8192 characters");
    if (auto cr = line.find('\r'); cr != std::string_view::npos) {
      return error_at(errc::parse_error, line.substr(cr), "carriage return: plan text uses \\n line ends");
    }
    if (auto tab = line.find('\t'); tab != std::string_view::npos) {
      return error_at(errc::parse_error, line.substr(tab), "tab: plan text separates fields with spaces");
    }
    return ok();
  }

  /// The next space-separated word of `rest` (empty at its end), which it removes from `rest`.
  static std::string_view split_word(std::string_view& rest) {
    const std::size_t start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) {
      rest = rest.substr(rest.size());
      return rest;
    }
    rest.remove_prefix(start);
    const std::size_t end = rest.find(' ');
    const std::string_view word = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
    return word;
  }
};

/// The header's numbers.
struct plan_text_header {
  std::uint64_t gen = 0;
  std::uint64_t created_unix_ms = 0;
};

/// Reads the first line: 'planfence-plan 1'.
[[nodiscard]] inline result<void> read_plan_version(plan_text_cursor& in) {
  std::uint64_t version = 0;
  if (!in.next_line()) return in.end_of_input_error("'planfence-plan 1'");
  if (auto c = in.check_line(); !c) return unexpected_error(c.error());
  std::string_view rest = in.line;
  const std::string_view word = in.split_word(rest);
  if (word != "planfence-plan") return in.error_at(errc::parse_error, word.empty() ? in.line : word, "expected 'planfence-plan 1' (is this a plan file?)");
  const std::string_view number = in.split_word(rest);
  if (!parse_decimal(number, version) || version != 1) return in.error_at(errc::parse_error, number.empty() ? rest : number, "unsupported plan format version: this planfence reads version 1");
  if (const auto extra = in.split_word(rest); !extra.empty()) return in.error_at(errc::parse_error, extra, "unexpected text after the version");
  return ok();
}

/// Reads a header line 'KEYWORD NUMBER' into `out`.
[[nodiscard]] inline result<void> read_plan_header_number(plan_text_cursor& in, std::string_view keyword, std::uint64_t& out) {
  if (!in.next_line()) return in.end_of_input_error(std::string(keyword).c_str());
  if (auto c = in.check_line(); !c) return c;
  std::string_view rest = in.line;
  const std::string_view word = in.split_word(rest);
  if (word != keyword) return in.error_at(errc::parse_error, word.empty() ? in.line : word, "expected '" + std::string(keyword) + "'");
  const std::string_view number = in.split_word(rest);
  if (number.empty()) return in.error_at(errc::parse_error, rest, "expected a number after '" + std::string(keyword) + "'");
  if (!parse_decimal(number, out)) return in.error_at(errc::parse_error, number, "expected a decimal number without leading zeros");
  if (const auto extra = in.split_word(rest); !extra.empty()) return in.error_at(errc::parse_error, extra, "unexpected text after the number");
  return ok();
}

/// Reads the header's three fixed lines (the optional intent line is read with the body, since
/// comments and blank lines may come before it).
[[nodiscard]] inline result<plan_text_header> read_plan_header(plan_text_cursor& in) {
  if (auto r = read_plan_version(in); !r) return unexpected_error(r.error());
  plan_text_header header;
  if (auto r = read_plan_header_number(in, "generation", header.gen); !r) return unexpected_error(r.error());
  if (header.gen == 0 || header.gen > generation_max.value()) {
    std::string_view rest = in.line;
    in.split_word(rest);
    return in.error_at(errc::parse_error, in.split_word(rest), "generation must be between 1 and 2^40 - 1");
  }
  if (auto r = read_plan_header_number(in, "created-unix-ms", header.created_unix_ms); !r) return unexpected_error(r.error());
  return header;
}

/// Reads the lines after the header, one at a time (read_line), into a plan_builder, then
/// builds the plan and checks it against the digest line (finish).
class plan_body_reader {
 public:
  plan_body_reader(plan_text_cursor& in, plan_builder builder) : in_(&in), builder_(std::move(builder)) {}

  /// Reads the cursor's current line.
  [[nodiscard]] result<void> read_line() {
    plan_text_cursor& in = *in_;
    if (auto c = in.check_line(); !c) return unexpected_error(c.error());
    if (!digest_hex_.empty()) return in.error_at(errc::parse_error, in.line, "nothing may follow the digest line");
    std::string_view rest = in.line;
    const bool indented = !in.line.empty() && in.line[0] == ' ';
    const std::string_view word = in.split_word(rest);
    if (!indented && word == "intent") return read_intent(word, rest);
    if (!indented && word == "endpoint") return read_endpoint(rest);
    if (!indented && word == "digest") return read_digest(rest);
    if (!indented) {
      return in.error_at(errc::parse_error, word, "expected 'endpoint', 'digest' or an indented record");
    }
    return read_record(word, rest);
  }

  /// The plan, once every line was read. Errors: the last endpoint's, a missing digest line
  /// (when required), the builder's, and a digest that does not match the content (S7).
  [[nodiscard]] result<plan> finish(const parse_plan_options& options) && {
    if (auto r = finish_endpoint(); !r) return unexpected_error(r.error());
    if (digest_hex_.empty() && options.require_digest) return in_->end_of_input_error("'digest sha256:...'");
    auto built = std::move(builder_).build();
    if (!built) return unexpected_error(built.error());
    if (!digest_hex_.empty() && built->digest_hex() != digest_hex_) {
      return fail_at(errc::digest_mismatch, digest_line_, digest_column_,
                     "the plan's content hashes to sha256:" + built->digest_hex() + " (S7: refusing a plan that does not match its digest)");
    }
    return built;
  }

 private:
  /// 'intent bulk-change', before the first endpoint.
  [[nodiscard]] result<void> read_intent(std::string_view word, std::string_view rest) {
    plan_text_cursor& in = *in_;
    const std::string_view what = in.split_word(rest);
    if (saw_endpoint_or_digest_) return in.error_at(errc::parse_error, word, "'intent bulk-change' belongs in the header, before the first endpoint");
    if (what != "bulk-change") return in.error_at(errc::parse_error, what.empty() ? rest : what, "expected 'intent bulk-change'");
    if (bulk_seen_) return in.error_at(errc::parse_error, word, "'intent bulk-change' given twice");
    if (const auto extra = in.split_word(rest); !extra.empty()) return in.error_at(errc::parse_error, extra, "unexpected text after 'intent bulk-change'");
    bulk_seen_ = true;
    builder_.intend_bulk_change();
    return ok();
  }

  /// 'endpoint NAME [intent=empty]': ends the previous endpoint and starts this one.
  [[nodiscard]] result<void> read_endpoint(std::string_view rest) {
    plan_text_cursor& in = *in_;
    saw_endpoint_or_digest_ = true;
    if (auto r = finish_endpoint(); !r) return unexpected_error(r.error());
    const std::string_view name = in.split_word(rest);
    if (name.empty()) return in.error_at(errc::parse_error, rest, "expected an endpoint name");
    auto canonical = canonical_name(name);
    if (!canonical) return in.error_at(errc::invalid_name, name, canonical.error().detail);
    if (name.back() != '.') return in.error_at(errc::invalid_name, name, "endpoint names must be absolute (end with '.')");
    const std::string_view option = in.split_word(rest);
    current_empty_intent_ = false;
    if (!option.empty()) {
      if (option != "intent=empty") return in.error_at(errc::parse_error, option, "expected 'intent=empty' or the end of the line");
      current_empty_intent_ = true;
    }
    if (const auto extra = in.split_word(rest); !extra.empty()) return in.error_at(errc::parse_error, extra, "unexpected text after the endpoint");
    if (auto [it, inserted] = seen_.emplace(*canonical, in.reader.line_number); !inserted) {
      return in.error_at(errc::invalid_plan, name, "endpoint " + *canonical + " already defined at line " + std::to_string(it->second));
    }
    if (++endpoint_count_ > plan_endpoints_max) return in.error_at(errc::invalid_plan, name, "more than 2^24 endpoints");
    current_name_ = std::move(*canonical);
    current_line_ = in.reader.line_number;
    current_column_ = in.column_of(name);
    have_endpoint_ = true;
    return ok();
  }

  /// 'digest sha256:HEX': ends the last endpoint; the digest is compared in finish().
  [[nodiscard]] result<void> read_digest(std::string_view rest) {
    plan_text_cursor& in = *in_;
    saw_endpoint_or_digest_ = true;
    if (auto r = finish_endpoint(); !r) return unexpected_error(r.error());
    const std::string_view value = in.split_word(rest);
    constexpr std::string_view prefix = "sha256:";
    if (value.substr(0, prefix.size()) != prefix) return in.error_at(errc::parse_error, value.empty() ? rest : value, "expected 'sha256:' and 64 hex digits");
    const std::string_view hex = value.substr(prefix.size());
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
      return in.error_at(errc::parse_error, hex.empty() ? value : hex, "expected 64 lower-case hex digits");
    }
    if (const auto extra = in.split_word(rest); !extra.empty()) return in.error_at(errc::parse_error, extra, "unexpected text after the digest");
    digest_hex_ = hex;
    digest_line_ = in.reader.line_number;
    digest_column_ = in.column_of(hex);
    return ok();
  }

  /// An indented record line: TYPE TTL [weight=W] RDATA (`word` is the type).
  [[nodiscard]] result<void> read_record(std::string_view word, std::string_view rest) {
    plan_text_cursor& in = *in_;
    if (!have_endpoint_) return in.error_at(errc::parse_error, word, "record outside an endpoint: put it under an 'endpoint NAME' line");
    if (current_empty_intent_) return in.error_at(errc::invalid_plan, word, "endpoint marked intent=empty has a record");
    const auto type = parse_record_type(word);
    if (!type) return in.error_at(errc::parse_error, word, "expected a record type: A, AAAA, CNAME or TXT");
    const std::string_view ttl_text = in.split_word(rest);
    std::uint64_t ttl = 0;
    if (ttl_text.empty()) return in.error_at(errc::parse_error, rest, "expected a TTL");
    if (!parse_decimal(ttl_text, ttl)) return in.error_at(errc::invalid_ttl, ttl_text, "expected a TTL in seconds");
    if (ttl > ttl_max) return in.error_at(errc::invalid_ttl, ttl_text, "TTL above 2147483647 (RFC 2181 section 8)");
    std::optional<std::uint8_t> weight;
    const std::size_t data_start = rest.find_first_not_of(' ');
    if (data_start == std::string_view::npos) return in.error_at(errc::parse_error, rest, "expected record data");
    rest.remove_prefix(data_start);
    if (rest.substr(0, 7) == "weight=") {
      if (auto r = read_record_weight(rest, weight); !r) return r;
    }
    if (*type != record_type::txt) {
      // One word of data; trailing spaces are ignored as on every other line, and the column of
      // an error is that of the extra text, not of the space before it.
      const std::size_t space = rest.find(' ');
      if (space != std::string_view::npos) {
        const std::size_t extra = rest.find_first_not_of(' ', space);
        if (extra != std::string_view::npos) return in.error_at(errc::parse_error, rest.substr(extra), "unexpected text after the record data");
        rest = rest.substr(0, space);
      }
    }
    auto made = make_record(*type, ttl, rest, weight);
    if (!made) return in.error_at(made.error().code, rest, made.error().detail);
    if (current_records_.size() >= records_per_set_max) return in.error_at(errc::invalid_plan, word, "more than 1024 records for one endpoint");
    current_records_.push_back(std::move(*made));
    return ok();
  }

  /// 'weight=W' at the start of `rest` (a record's data), which it then removes from `rest`.
  [[nodiscard]] result<void> read_record_weight(std::string_view& rest, std::optional<std::uint8_t>& weight) const {
    const plan_text_cursor& in = *in_;
    std::string_view copy = rest;
    const std::string_view weight_word = in.split_word(copy);
    std::uint64_t w = 0;
    if (!parse_decimal(weight_word.substr(7), w) || w > 255) return in.error_at(errc::parse_error, weight_word, "expected weight=0..255");
    weight = static_cast<std::uint8_t>(w);
    const std::size_t after = copy.find_first_not_of(' ');
    if (after == std::string_view::npos) return in.error_at(errc::parse_error, copy, "expected record data after the weight");
    rest = copy.substr(after);
    return ok();
  }

  /// Hands the endpoint being read, if any, to the builder.
  [[nodiscard]] result<void> finish_endpoint() {
    if (!have_endpoint_) return ok();
    auto set = record_set::make(std::move(current_records_), current_empty_intent_);
    current_records_.clear();
    if (!set) return fail_at(set.error().code, current_line_, current_column_, set.error().detail + " in endpoint " + current_name_);
    auto added = builder_.set(current_name_, std::move(*set));
    PLANFENCE_ASSERT(added.has_value());  // the name was validated when the line was read
    have_endpoint_ = false;
    return ok();
  }

  plan_text_cursor* in_;
  plan_builder builder_;
  // The endpoint being read.
  std::string current_name_;
  std::uint32_t current_line_ = 0;
  std::uint32_t current_column_ = 0;
  bool current_empty_intent_ = false;
  bool have_endpoint_ = false;
  std::vector<record> current_records_;
  // The whole text so far.
  std::map<std::string, std::uint32_t, std::less<>> seen_;  // name -> line of first definition
  std::size_t endpoint_count_ = 0;
  bool saw_endpoint_or_digest_ = false;
  bool bulk_seen_ = false;
  std::string_view digest_hex_;
  std::uint32_t digest_line_ = 0;
  std::uint32_t digest_column_ = 0;
};

}  // namespace detail

/// Parses the text form. Every error is errc::parse_error (or the validation code of what was
/// wrong: invalid_name, invalid_ttl, invalid_rdata, invalid_plan, digest_mismatch) with the 1-based
/// line and column where it was found and a sentence saying what was expected. Nothing is
/// returned unless the whole text is valid.
[[nodiscard]] inline result<plan> parse_plan(std::string_view text, parse_plan_options options = {}) {
  detail::plan_text_cursor in{detail::plan_line_reader{text}, {}};
  auto header = detail::read_plan_header(in);
  if (!header) return unexpected_error(header.error());
  detail::plan_body_reader body{in, plan_builder{generation{header->gen}, header->created_unix_ms}};
  while (in.next_line()) {
    if (auto r = body.read_line(); !r) return unexpected_error(r.error());
  }
  return std::move(body).finish(options);
}

}  // namespace v1
}  // namespace planfence
