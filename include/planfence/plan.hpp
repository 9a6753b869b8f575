// planfence/plan.hpp: immutable DNS plans, their digest, and their text form.
//
// What it is: a plan assigns a record set to each of its endpoints and carries the generation
// that orders it among plans. A plan never changes after it is built: enactors on many threads
// read it without synchronisation, and its SHA-256 digest over a canonical encoding (the text form
// below, without its digest line) names its content, which is what S5 (one generation, one plan)
// and S7 (integrity) compare. Successive generations built with `plan_builder::based_on` share
// every unchanged endpoint (name and record set) instead of copying it.
//
//     auto builder = planfence::plan_builder{planfence::generation{7}, created_unix_ms};
//     auto set = planfence::record_set::make({planfence::make_record(
//         planfence::record_type::a, 60, "192.0.2.10").value()});
//     builder.set("db.us-east-1.example.", std::move(*set)).value();
//     planfence::plan plan = std::move(builder).build().value();
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
// Cost: building sorts the endpoints (O(n log n)) and hashes the canonical encoding (SHA-256,
// about the speed of formatting the text); lookup by name is O(1) expected through an
// open-addressing index built once. A plan of n endpoints costs about 24 bytes per endpoint
// plus the endpoints it does not share with an earlier plan.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.hpp"
#include "detail/sha256.hpp"
#include "generation.hpp"
#include "ids.hpp"
#include "record.hpp"
#include "result.hpp"

namespace planfence {
inline namespace v1 {

/// planfence's bound on endpoints per plan (a regional plan covers hundreds of thousands).
inline constexpr std::size_t plan_endpoints_max = std::size_t{1} << 24;
/// planfence's bound on the length of one line of plan text.
inline constexpr std::size_t plan_line_length_max = 8192;

/// FNV-1a over a canonical name: the hash stores precompute per endpoint so that finding an
/// endpoint in a plan costs one probe and one string compare.
[[nodiscard]] constexpr std::uint64_t endpoint_name_hash(std::string_view name) noexcept {
  std::uint64_t hash = 14695981039346656037ULL;
  for (char c : name) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

/// One endpoint of a plan: its canonical name and its record set. Shared between plans.
struct endpoint_entry {
  std::string name;
  std::uint64_t name_hash = 0;
  record_set records;
};

class plan;
namespace detail {
template <class Sink>
void write_plan_body(const plan& p, Sink&& sink);
}

/// An immutable plan. Build it with plan_builder or parse_plan.
///
/// Thread safety: every const member may be called concurrently. Lookups never allocate.
class plan {
 public:
  plan(plan&&) noexcept = default;
  plan& operator=(plan&&) noexcept = default;
  plan(const plan&) = delete;
  plan& operator=(const plan&) = delete;

  [[nodiscard]] generation gen() const noexcept { return gen_; }
  [[nodiscard]] std::uint64_t created_unix_ms() const noexcept { return created_unix_ms_; }
  /// The plan says a large change is intended (the S4 zone share guard lets it through).
  [[nodiscard]] bool bulk_change_intended() const noexcept { return bulk_change_; }
  /// Endpoints sorted by name.
  [[nodiscard]] std::span<const std::shared_ptr<const endpoint_entry>> endpoints() const noexcept {
    return entries_;
  }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

  /// The endpoint with this canonical name, or nullptr. O(1) expected, never allocates.
  [[nodiscard]] const endpoint_entry* find(std::string_view name) const noexcept {
    return find(name, endpoint_name_hash(name));
  }
  /// As find(name), with the hash precomputed by endpoint_name_hash.
  [[nodiscard]] const endpoint_entry* find(std::string_view name, std::uint64_t hash) const noexcept {
    if (index_.empty()) return nullptr;
    const std::size_t mask = index_.size() - 1;
    for (std::size_t slot = hash & mask;; slot = (slot + 1) & mask) {
      const std::uint32_t at = index_[slot];
      if (at == 0) return nullptr;
      const endpoint_entry& entry = *entries_[at - 1];
      if (entry.name_hash == hash && entry.name == name) return &entry;
    }
  }

  /// SHA-256 of the canonical encoding (the text form without its digest line).
  [[nodiscard]] const detail::sha256_digest& digest() const noexcept { return digest_; }
  [[nodiscard]] std::string digest_hex() const { return detail::to_hex(digest_); }

  /// Recomputes the digest from the content and compares (S7). O(size of the plan).
  [[nodiscard]] result<void> verify() const {
    if (compute_digest() != digest_) return fail(errc::digest_mismatch, "plan content does not match its digest");
    return ok();
  }

 private:
  friend class plan_builder;
  friend struct plan_access;
  plan() = default;

  [[nodiscard]] detail::sha256_digest compute_digest() const {
    detail::sha256 hasher;
    detail::write_plan_body(*this, [&](std::string_view piece) { hasher.update(piece); });
    return hasher.finish();
  }
  void build_index() {
    std::size_t capacity = 1;
    while (capacity < entries_.size() * 2) capacity <<= 1;
    index_.assign(entries_.empty() ? 0 : capacity, 0);
    const std::size_t mask = index_.size() - 1;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      std::size_t slot = entries_[i]->name_hash & mask;
      while (index_[slot] != 0) slot = (slot + 1) & mask;
      index_[slot] = static_cast<std::uint32_t>(i + 1);
    }
  }

  generation gen_{};
  std::uint64_t created_unix_ms_ = 0;
  bool bulk_change_ = false;
  std::vector<std::shared_ptr<const endpoint_entry>> entries_;
  std::vector<std::uint32_t> index_;  // open addressing: entry index + 1, 0 = empty
  detail::sha256_digest digest_{};
};

/// Builds a plan, optionally starting from an earlier one whose unchanged endpoints it shares.
class plan_builder {
 public:
  plan_builder(generation gen, std::uint64_t created_unix_ms) : gen_(gen), created_(created_unix_ms) {}

  /// Starts from `previous`: every endpoint not set or removed later is shared, not copied.
  [[nodiscard]] static plan_builder based_on(const plan& previous, generation gen, std::uint64_t created_unix_ms) {
    plan_builder builder(gen, created_unix_ms);
    builder.base_.assign(previous.endpoints().begin(), previous.endpoints().end());
    return builder;
  }

  /// Assigns `records` to the endpoint `name` (any case, with or without the final dot).
  [[nodiscard]] result<void> set(std::string_view name, record_set records) {
    auto canonical = canonical_name(name);
    if (!canonical) return unexpected_error(canonical.error());
    auto entry = std::make_shared<endpoint_entry>();
    entry->name_hash = endpoint_name_hash(*canonical);
    entry->name = std::move(*canonical);
    entry->records = std::move(records);
    const std::string key = entry->name;
    changes_[key] = std::move(entry);
    return ok();
  }
  /// Removes the endpoint `name` from the plan being built (the plan then says nothing about it).
  [[nodiscard]] result<void> remove(std::string_view name) {
    auto canonical = canonical_name(name);
    if (!canonical) return unexpected_error(canonical.error());
    changes_[*canonical] = nullptr;
    return ok();
  }
  /// Marks the plan as an intended large change (S4 zone guard).
  void intend_bulk_change() noexcept { bulk_change_ = true; }

  /// The plan. Errors: errc::invalid_plan (generation 0 or above generation_max, too many
  /// endpoints).
  [[nodiscard]] result<plan> build() && {
    if (gen_ == generation_none || gen_ > generation_max) {
      return fail(errc::invalid_plan, "generation must be between 1 and 2^40 - 1");
    }
    plan out;
    out.gen_ = gen_;
    out.created_unix_ms_ = created_;
    out.bulk_change_ = bulk_change_;
    out.entries_.reserve(base_.size() + changes_.size());
    // Merge the sorted base with the sorted changes.
    auto change = changes_.begin();
    for (auto& shared : base_) {
      while (change != changes_.end() && change->first < shared->name) {
        if (change->second) out.entries_.push_back(std::move(change->second));
        ++change;
      }
      if (change != changes_.end() && change->first == shared->name) {
        if (change->second) out.entries_.push_back(std::move(change->second));
        ++change;
        continue;
      }
      out.entries_.push_back(std::move(shared));
    }
    for (; change != changes_.end(); ++change) {
      if (change->second) out.entries_.push_back(std::move(change->second));
    }
    if (out.entries_.size() > plan_endpoints_max) return fail(errc::invalid_plan, "more than 2^24 endpoints");
    PLANFENCE_ASSERT(std::is_sorted(out.entries_.begin(), out.entries_.end(),
                                    [](const auto& x, const auto& y) { return x->name < y->name; }));
    out.build_index();
    out.digest_ = out.compute_digest();
    base_.clear();
    changes_.clear();
    return out;
  }

 private:
  generation gen_;
  std::uint64_t created_;
  bool bulk_change_ = false;
  std::vector<std::shared_ptr<const endpoint_entry>> base_;
  std::map<std::string, std::shared_ptr<const endpoint_entry>, std::less<>> changes_;
};

namespace detail {

inline void append_decimal(std::string& out, std::uint64_t value) {
  char buffer[24];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
  PLANFENCE_ASSERT(ec == std::errc{});
  out.append(buffer, end);
}

/// Writes the canonical encoding (every line of the text form but the digest) piece by piece.
template <class Sink>
void write_plan_body(const plan& p, Sink&& sink) {
  std::string line;
  line = "planfence-plan 1\ngeneration ";
  append_decimal(line, p.gen().value());
  line += "\ncreated-unix-ms ";
  append_decimal(line, p.created_unix_ms());
  line += '\n';
  if (p.bulk_change_intended()) line += "intent bulk-change\n";
  sink(std::string_view(line));
  for (const auto& entry : p.endpoints()) {
    line = "endpoint ";
    line += entry->name;
    if (entry->records.intended_empty()) line += " intent=empty";
    line += '\n';
    for (const record& r : entry->records.records()) {
      line += "  ";
      line += to_string(r.type);
      line += ' ';
      append_decimal(line, r.ttl);
      if (r.weight) {
        line += " weight=";
        append_decimal(line, *r.weight);
      }
      line += ' ';
      line += r.rdata;
      line += '\n';
    }
    sink(std::string_view(line));
  }
}

}  // namespace detail

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

}  // namespace detail

/// Parses the text form. Every error is errc::parse_error (or the validation code of what was
/// wrong: invalid_name, invalid_ttl, invalid_rdata, invalid_plan, digest_mismatch) with the 1-based
/// line and column where it was found and a sentence saying what was expected. Nothing is
/// returned unless the whole text is valid.
[[nodiscard]] inline result<plan> parse_plan(std::string_view text, parse_plan_options options = {}) {
  using detail::parse_decimal;
  detail::plan_line_reader reader{text};
  std::string_view line;
  auto column_of = [&](std::string_view part) {
    return static_cast<std::uint32_t>(part.data() - line.data() + 1);
  };
  auto error_at = [&](errc code, std::string_view part, std::string detail_text) {
    return fail_at(code, reader.line_number, column_of(part), std::move(detail_text));
  };

  // Reads the next significant line (skipping blank lines and comments).
  auto next_line = [&]() -> bool {
    while (reader.next(line)) {
      if (line.size() > plan_line_length_max) return true;  // reported by the caller
      const std::size_t first = line.find_first_not_of(' ');
      if (first == std::string_view::npos || line[first] == '#') continue;
      return true;
    }
    return false;
  };
  auto split_word = [](std::string_view& rest) {
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
  };
  auto check_line = [&]() -> result<void> {
    if (line.size() > plan_line_length_max) return error_at(errc::parse_error, line, "line longer than 8192 characters");
    if (auto cr = line.find('\r'); cr != std::string_view::npos) {
      return error_at(errc::parse_error, line.substr(cr), "carriage return: plan text uses \\n line ends");
    }
    if (auto tab = line.find('\t'); tab != std::string_view::npos) {
      return error_at(errc::parse_error, line.substr(tab), "tab: plan text separates fields with spaces");
    }
    return ok();
  };
  auto end_of_input_error = [&](const char* expected) {
    return fail_at(errc::parse_error, reader.line_number + 1, 1, std::string("unexpected end of input: expected ") + expected);
  };

  // Header: three fixed lines and an optional intent line.
  auto header_number = [&](std::string_view keyword, std::uint64_t& out) -> result<void> {
    if (!next_line()) return end_of_input_error(std::string(keyword).c_str());
    if (auto c = check_line(); !c) return c;
    std::string_view rest = line;
    const std::string_view word = split_word(rest);
    if (word != keyword) return error_at(errc::parse_error, word.empty() ? line : word, "expected '" + std::string(keyword) + "'");
    const std::string_view number = split_word(rest);
    if (number.empty()) return error_at(errc::parse_error, rest, "expected a number after '" + std::string(keyword) + "'");
    if (!parse_decimal(number, out)) return error_at(errc::parse_error, number, "expected a decimal number without leading zeros");
    if (const auto extra = split_word(rest); !extra.empty()) return error_at(errc::parse_error, extra, "unexpected text after the number");
    return ok();
  };

  std::uint64_t version = 0;
  if (!next_line()) return end_of_input_error("'planfence-plan 1'");
  {
    if (auto c = check_line(); !c) return unexpected_error(c.error());
    std::string_view rest = line;
    const std::string_view word = split_word(rest);
    if (word != "planfence-plan") return error_at(errc::parse_error, word.empty() ? line : word, "expected 'planfence-plan 1' (is this a plan file?)");
    const std::string_view number = split_word(rest);
    if (!parse_decimal(number, version) || version != 1) return error_at(errc::parse_error, number.empty() ? rest : number, "unsupported plan format version: this planfence reads version 1");
    if (const auto extra = split_word(rest); !extra.empty()) return error_at(errc::parse_error, extra, "unexpected text after the version");
  }
  std::uint64_t gen = 0;
  std::uint64_t created = 0;
  if (auto r = header_number("generation", gen); !r) return unexpected_error(r.error());
  if (gen == 0 || gen > generation_max.value()) {
    std::string_view rest = line;
    split_word(rest);
    return error_at(errc::parse_error, split_word(rest), "generation must be between 1 and 2^40 - 1");
  }
  if (auto r = header_number("created-unix-ms", created); !r) return unexpected_error(r.error());

  plan_builder builder{generation{gen}, created};
  std::string current_name;
  std::uint32_t current_line = 0;
  std::uint32_t current_column = 0;
  bool current_empty_intent = false;
  bool have_endpoint = false;
  std::vector<record> current_records;
  std::map<std::string, std::uint32_t, std::less<>> seen;  // name -> line of first definition
  std::size_t endpoint_count = 0;
  bool saw_endpoint_or_digest = false;
  bool bulk_seen = false;

  auto finish_endpoint = [&]() -> result<void> {
    if (!have_endpoint) return ok();
    auto set = record_set::make(std::move(current_records), current_empty_intent);
    current_records.clear();
    if (!set) return fail_at(set.error().code, current_line, current_column, set.error().detail + " in endpoint " + current_name);
    auto added = builder.set(current_name, std::move(*set));
    PLANFENCE_ASSERT(added.has_value());  // the name was validated when the line was read
    have_endpoint = false;
    return ok();
  };

  std::string_view digest_hex;
  std::uint32_t digest_line = 0;
  std::uint32_t digest_column = 0;
  while (next_line()) {
    if (auto c = check_line(); !c) return unexpected_error(c.error());
    if (!digest_hex.empty()) return error_at(errc::parse_error, line, "nothing may follow the digest line");
    std::string_view rest = line;
    const bool indented = !line.empty() && line[0] == ' ';
    const std::string_view word = split_word(rest);
    if (!indented && word == "intent") {
      const std::string_view what = split_word(rest);
      if (saw_endpoint_or_digest) return error_at(errc::parse_error, word, "'intent bulk-change' belongs in the header, before the first endpoint");
      if (what != "bulk-change") return error_at(errc::parse_error, what.empty() ? rest : what, "expected 'intent bulk-change'");
      if (bulk_seen) return error_at(errc::parse_error, word, "'intent bulk-change' given twice");
      if (const auto extra = split_word(rest); !extra.empty()) return error_at(errc::parse_error, extra, "unexpected text after 'intent bulk-change'");
      bulk_seen = true;
      builder.intend_bulk_change();
      continue;
    }
    if (!indented && word == "endpoint") {
      saw_endpoint_or_digest = true;
      if (auto r = finish_endpoint(); !r) return unexpected_error(r.error());
      const std::string_view name = split_word(rest);
      if (name.empty()) return error_at(errc::parse_error, rest, "expected an endpoint name");
      auto canonical = canonical_name(name);
      if (!canonical) return error_at(errc::invalid_name, name, canonical.error().detail);
      if (name.back() != '.') return error_at(errc::invalid_name, name, "endpoint names must be absolute (end with '.')");
      const std::string_view option = split_word(rest);
      current_empty_intent = false;
      if (!option.empty()) {
        if (option != "intent=empty") return error_at(errc::parse_error, option, "expected 'intent=empty' or the end of the line");
        current_empty_intent = true;
      }
      if (const auto extra = split_word(rest); !extra.empty()) return error_at(errc::parse_error, extra, "unexpected text after the endpoint");
      if (auto [it, inserted] = seen.emplace(*canonical, reader.line_number); !inserted) {
        return error_at(errc::invalid_plan, name, "endpoint " + *canonical + " already defined at line " + std::to_string(it->second));
      }
      if (++endpoint_count > plan_endpoints_max) return error_at(errc::invalid_plan, name, "more than 2^24 endpoints");
      current_name = std::move(*canonical);
      current_line = reader.line_number;
      current_column = column_of(name);
      have_endpoint = true;
      continue;
    }
    if (!indented && word == "digest") {
      saw_endpoint_or_digest = true;
      if (auto r = finish_endpoint(); !r) return unexpected_error(r.error());
      const std::string_view value = split_word(rest);
      constexpr std::string_view prefix = "sha256:";
      if (value.substr(0, prefix.size()) != prefix) return error_at(errc::parse_error, value.empty() ? rest : value, "expected 'sha256:' and 64 hex digits");
      const std::string_view hex = value.substr(prefix.size());
      if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string_view::npos) {
        return error_at(errc::parse_error, hex.empty() ? value : hex, "expected 64 lower-case hex digits");
      }
      if (const auto extra = split_word(rest); !extra.empty()) return error_at(errc::parse_error, extra, "unexpected text after the digest");
      digest_hex = hex;
      digest_line = reader.line_number;
      digest_column = column_of(hex);
      continue;
    }
    if (!indented) {
      return error_at(errc::parse_error, word, "expected 'endpoint', 'digest' or an indented record");
    }
    // A record line: TYPE TTL [weight=W] RDATA
    if (!have_endpoint) return error_at(errc::parse_error, word, "record outside an endpoint: put it under an 'endpoint NAME' line");
    if (current_empty_intent) return error_at(errc::invalid_plan, word, "endpoint marked intent=empty has a record");
    const auto type = parse_record_type(word);
    if (!type) return error_at(errc::parse_error, word, "expected a record type: A, AAAA, CNAME or TXT");
    const std::string_view ttl_text = split_word(rest);
    std::uint64_t ttl = 0;
    if (ttl_text.empty()) return error_at(errc::parse_error, rest, "expected a TTL");
    if (!parse_decimal(ttl_text, ttl)) return error_at(errc::invalid_ttl, ttl_text, "expected a TTL in seconds");
    if (ttl > ttl_max) return error_at(errc::invalid_ttl, ttl_text, "TTL above 2147483647 (RFC 2181 section 8)");
    std::optional<std::uint8_t> weight;
    const std::size_t data_start = rest.find_first_not_of(' ');
    if (data_start == std::string_view::npos) return error_at(errc::parse_error, rest, "expected record data");
    rest.remove_prefix(data_start);
    if (rest.substr(0, 7) == "weight=") {
      std::string_view copy = rest;
      const std::string_view weight_word = split_word(copy);
      std::uint64_t w = 0;
      if (!parse_decimal(weight_word.substr(7), w) || w > 255) return error_at(errc::parse_error, weight_word, "expected weight=0..255");
      weight = static_cast<std::uint8_t>(w);
      const std::size_t after = copy.find_first_not_of(' ');
      if (after == std::string_view::npos) return error_at(errc::parse_error, copy, "expected record data after the weight");
      rest = copy.substr(after);
    }
    if (*type != record_type::txt) {
      // One word of data; trailing spaces are ignored as on every other line, and the column of
      // an error is that of the extra text, not of the space before it.
      const std::size_t space = rest.find(' ');
      if (space != std::string_view::npos) {
        const std::size_t extra = rest.find_first_not_of(' ', space);
        if (extra != std::string_view::npos) return error_at(errc::parse_error, rest.substr(extra), "unexpected text after the record data");
        rest = rest.substr(0, space);
      }
    }
    auto made = make_record(*type, ttl, rest, weight);
    if (!made) return error_at(made.error().code, rest, made.error().detail);
    if (current_records.size() >= records_per_set_max) return error_at(errc::invalid_plan, word, "more than 1024 records for one endpoint");
    current_records.push_back(std::move(*made));
  }
  if (auto r = finish_endpoint(); !r) return unexpected_error(r.error());
  if (digest_hex.empty() && options.require_digest) return end_of_input_error("'digest sha256:...'");
  auto built = std::move(builder).build();
  if (!built) return unexpected_error(built.error());
  if (!digest_hex.empty() && built->digest_hex() != digest_hex) {
    return fail_at(errc::digest_mismatch, digest_line, digest_column,
                   "the plan's content hashes to sha256:" + built->digest_hex() + " (S7: refusing a plan that does not match its digest)");
  }
  return built;
}

}  // namespace v1
}  // namespace planfence
