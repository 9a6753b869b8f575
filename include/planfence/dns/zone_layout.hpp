// planfence/dns/zone_layout.hpp: planfence's records inside a DNS zone, described once.
//
// What it is for. Two stores keep planfence's bookkeeping inside a DNS zone: the zone-file store
// (zonefile/store.hpp) writes it into master files, the RFC 2136 store (rfc2136/store.hpp) into a
// live server with DNS UPDATE. A zone written by one may be managed by the other (a zone file
// loaded into a server that automation then updates by RFC 2136), so both must read and write the
// same owners and the same texts: this header is the only place that names those owners and
// formats or parses those texts. Neither store has its own copy.
//
// The layout (docs/zone-layout.md has the same table and the reasons):
//
//   owner                                 type  text (one string)    written by
//   <endpoint>                            A, AAAA, CNAME, TXT        the endpoint's records (one CNAME at most)
//   _planfence.<endpoint>                 TXT   "gen=G fence=F"      every commit: the endpoint's stamp
//   _weight._planfence.<endpoint>         TXT   "TYPE rdata W"       every commit: one per weighted record
//   _fence._planfence.<zone>              TXT   "floor=F"            raise_fence: the zone's fence floor
//   _apply._planfence.<home zone>         TXT   "begun=B applied=A"  begin_apply, finish_apply (the marks)
//   _planfence-floor.<zone>  (legacy)     TXT   "floor=F"            nobody any more: read, then removed
//
// G is 1..generation_max (2^40 - 1), F and the floor 0..fence_max (2^24 - 1), W 0..255; all
// decimal without leading zeros. A text outside those ranges is refused (errc::parse_error), never
// clamped: a generation of 2^64 - 1 would wedge the endpoint for good. The floor in effect is the
// larger of the canonical and the legacy owner's; a store that writes the floor writes the
// canonical owner and removes the legacy one in the same atomic write, and a commit pins both as
// read. Endpoint names may not contain a label beginning with `_planfence` (reserved), and must
// leave room for their longest owner: `_weight._planfence.` adds 19 characters, so an endpoint
// has at most endpoint_text_length_max (235) characters with its final dot. The SOA serial of a
// zone planfence writes advances by one (RFC 1982 addition, next_serial) on every write; a zone
// exported from a plan takes soa_serial(generation, base) (generation.hpp).
//
//     std::string txt = planfence::dns::format_stamp(generation{7}, fence_token{3});  // "gen=7 fence=3"
//     auto s = planfence::dns::parse_stamp(txt);                // result<stamp>, range-checked
//     std::string owner = planfence::dns::floor_owner("example.test.");  // "_fence._planfence.example.test."
//
// Costs: every function is O(length of its text), allocates only its result, does no I/O.
//
// When not to use it: for the zone's other data (parse and write master files with
// zonefile/syntax.hpp, DNS messages with rfc2136/wire.hpp), or for stores that do not live in a
// DNS zone (etcd/layout.hpp describes etcd's keys).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "../config.hpp"
#include "../generation.hpp"
#include "../ids.hpp"
#include "../lease.hpp"
#include "../record.hpp"
#include "../result.hpp"
#include "../store.hpp"

namespace planfence {
inline namespace v1 {
namespace dns {

/// The labels planfence reserves in a zone.
inline constexpr std::string_view planfence_label = "_planfence";
inline constexpr std::string_view weight_label = "_weight";
inline constexpr std::string_view fence_label = "_fence";
inline constexpr std::string_view apply_label = "_apply";
/// The floor's owner label before both stores agreed on `_fence._planfence`: read, never written.
inline constexpr std::string_view legacy_floor_label = "_planfence-floor";

/// The longest prefix planfence puts before an endpoint's name: "_weight._planfence.".
inline constexpr std::size_t owner_prefix_length_max = weight_label.size() + 1 + planfence_label.size() + 1;
/// The longest endpoint name, with its final dot, whose owners all fit 255 octets on the wire.
inline constexpr std::size_t endpoint_text_length_max = name_text_length_max + 1 - owner_prefix_length_max;
static_assert(owner_prefix_length_max == 19 && endpoint_text_length_max == 235);

/// One allocation each (they are built per endpoint written).
[[nodiscard]] inline std::string stamp_owner(std::string_view endpoint) {
  std::string out;
  out.reserve(planfence_label.size() + 1 + endpoint.size());
  out += planfence_label;
  out += '.';
  out += endpoint;
  return out;
}
[[nodiscard]] inline std::string weight_owner(std::string_view endpoint) {
  std::string out;
  out.reserve(owner_prefix_length_max + endpoint.size());
  out += weight_label;
  out += '.';
  out += planfence_label;
  out += '.';
  out += endpoint;
  return out;
}
/// The canonical owner of a zone's fence floor.
[[nodiscard]] inline std::string floor_owner(std::string_view zone) {
  return std::string(fence_label) + "." + std::string(planfence_label) + "." + std::string(zone);
}
/// The owner of a store's apply marks (in the store's home zone: docs/zone-layout.md).
[[nodiscard]] inline std::string marks_owner(std::string_view zone) {
  return std::string(apply_label) + "." + std::string(planfence_label) + "." + std::string(zone);
}
/// The legacy owner of the fence floor (read for migration, removed by every write of the floor).
[[nodiscard]] inline std::string legacy_floor_owner(std::string_view zone) {
  return std::string(legacy_floor_label) + "." + std::string(zone);
}

/// Whether a label is reserved: `_planfence`, or any label beginning with it (`_planfence-floor`).
[[nodiscard]] constexpr bool is_reserved_label(std::string_view label) noexcept {
  return label.substr(0, planfence_label.size()) == planfence_label;
}

/// Whether a name (canonical, absolute) has a reserved label anywhere.
[[nodiscard]] constexpr bool has_reserved_label(std::string_view name) noexcept {
  std::size_t start = 0;
  while (start < name.size()) {
    std::size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    if (is_reserved_label(name.substr(start, dot - start))) return true;
    start = dot + 1;
  }
  return false;
}

/// Why `endpoint` (canonical) cannot be an endpoint: a reserved label, or too long for its weight
/// owner. Empty when it can.
[[nodiscard]] inline std::string endpoint_name_problem(std::string_view endpoint) {
  if (has_reserved_label(endpoint)) {
    return "endpoint " + std::string(endpoint) + ": labels beginning with _planfence are reserved for planfence's records";
  }
  if (endpoint.size() > endpoint_text_length_max) {
    return "endpoint " + std::string(endpoint) + " is longer than " + std::to_string(endpoint_text_length_max) +
           " characters: its weight owner " + weight_owner(endpoint) + " would exceed 255 octets on the wire";
  }
  return {};
}

// ---- numbers -----------------------------------------------------------------------------------

/// A decimal number as planfence writes it: no sign, no leading zero.
enum class number_status { ok, malformed, too_large };

/// Parses `text` as such a number no larger than `max`; `too_large` when it has only digits but
/// exceeds `max` (or 2^64 - 1).
[[nodiscard]] constexpr number_status parse_number(std::string_view text, std::uint64_t max, std::uint64_t& out) noexcept {
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return number_status::malformed;
  std::uint64_t value = 0;
  bool overflow = false;
  for (char c : text) {
    if (c < '0' || c > '9') return number_status::malformed;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (overflow || value > (~std::uint64_t{0} - d) / 10) {
      overflow = true;
      continue;
    }
    value = value * 10 + d;
  }
  if (overflow || value > max) return number_status::too_large;
  out = value;
  return number_status::ok;
}

/// "generation N is out of range: expected 1 to 1099511627775 (...)"; `value` as written.
/// One number of a two-field text: as written, its value and whether it parsed.
struct labelled_number {
  std::string_view text;
  std::uint64_t value = 0;
  number_status status = number_status::malformed;
};
/// "<first_label>X<second_label>Y" (the stamp's "gen=G fence=F", the marks' "begun=B applied=A"):
/// `shaped` when the labels are where they belong, then each number parsed against its maximum.
struct labelled_pair {
  bool shaped = false;
  labelled_number first, second;
};
[[nodiscard]] constexpr labelled_pair split_pair(std::string_view text, std::string_view first_label,
                                                 std::string_view second_label, std::uint64_t first_max,
                                                 std::uint64_t second_max) noexcept {
  labelled_pair out;
  const std::size_t split = text.find(' ');
  if (text.substr(0, first_label.size()) != first_label || split == std::string_view::npos ||
      text.substr(split, second_label.size()) != second_label) {
    return out;
  }
  out.shaped = true;
  out.first.text = text.substr(first_label.size(), split - first_label.size());
  out.second.text = text.substr(split + second_label.size());
  out.first.status = parse_number(out.first.text, first_max, out.first.value);
  out.second.status = parse_number(out.second.text, second_max, out.second.value);
  return out;
}

[[nodiscard]] inline std::string generation_range_problem(std::string_view value) {
  return "generation " + std::string(value) + " is out of range: expected 1 to " + std::to_string(generation_max.value()) +
         " (2^40 - 1, the largest generation planfence represents)";
}
/// "`what` N is out of range: expected 0 to 16777215 (...)"; `value` as written.
[[nodiscard]] inline std::string fence_range_problem(std::string_view value, std::string_view what) {
  return std::string(what) + " " + std::string(value) + " is out of range: expected 0 to " +
         std::to_string(fence_max.value()) + " (2^24 - 1, the largest fence token a lease authority issues)";
}
/// Empty when the stamp can be written and read back; else why not.
[[nodiscard]] inline std::string stamp_range_problem(generation gen, fence_token fence) {
  std::string out;
  if (gen == generation_none || gen > generation_max) out = generation_range_problem(std::to_string(gen.value()));
  if (fence > fence_max) out += (out.empty() ? "" : "; ") + fence_range_problem(std::to_string(fence.value()), "fence");
  return out;
}

/// `text` as it may be quoted in a message: non-printable octets as \DDD, quotes and backslashes
/// escaped, cut at 80 octets.
[[nodiscard]] inline std::string printable(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\%03u", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > 80) out += "...";
  return out;
}

// ---- stamps ------------------------------------------------------------------------------------

/// "gen=G fence=F", the text of `_planfence.<endpoint>`.
[[nodiscard]] inline std::string format_stamp(generation gen, fence_token fence) {
  return "gen=" + std::to_string(gen.value()) + " fence=" + std::to_string(fence.value());
}

/// The stamp in "gen=G fence=F" (version 0). Errors: errc::parse_error, "malformed stamp" or the
/// value out of range (generation 1..generation_max, fence 0..fence_max), quoting the text.
[[nodiscard]] inline result<stamp> parse_stamp(std::string_view text) {
  const std::string quoted = "\"" + printable(text) + "\"";
  const labelled_pair p = split_pair(text, "gen=", " fence=", generation_max.value(), fence_max.value());
  if (!p.shaped) return fail(errc::parse_error, "malformed stamp " + quoted + ": expected \"gen=G fence=F\"");
  if (p.first.status == number_status::malformed || p.second.status == number_status::malformed) {
    return fail(errc::parse_error, "malformed stamp " + quoted + ": expected \"gen=G fence=F\" in decimal");
  }
  // A stamp beyond the ranges would wedge the endpoint (every later generation "stale") or raise
  // its fence past every token a lease authority can issue: refused, never clamped.
  if (p.first.status == number_status::too_large || p.first.value == 0) {
    return fail(errc::parse_error, quoted + ": " + generation_range_problem(p.first.text));
  }
  if (p.second.status == number_status::too_large) {
    return fail(errc::parse_error, quoted + ": " + fence_range_problem(p.second.text, "fence"));
  }
  return stamp{generation{p.first.value}, fence_token{p.second.value}, 0};
}

// ---- the fence floor ---------------------------------------------------------------------------

/// "floor=F", the text of `_fence._planfence.<zone>` (and of the legacy owner).
[[nodiscard]] inline std::string format_floor(fence_token floor) { return "floor=" + std::to_string(floor.value()); }

/// The floor in "floor=F". Errors: errc::parse_error, "malformed fence floor" or "floor N is out
/// of range", quoting the text.
[[nodiscard]] inline result<fence_token> parse_floor(std::string_view text) {
  const std::string quoted = "\"" + printable(text) + "\"";
  std::uint64_t value = 0;
  const number_status status =
      text.substr(0, 6) == "floor=" ? parse_number(text.substr(6), fence_max.value(), value) : number_status::malformed;
  if (status == number_status::malformed) {
    return fail(errc::parse_error, "malformed fence floor " + quoted + ": expected \"floor=F\" in decimal");
  }
  if (status == number_status::too_large) return fail(errc::parse_error, quoted + ": " + fence_range_problem(text.substr(6), "floor"));
  return fence_token{value};
}

/// The floor in effect: the larger of the canonical owner's and the legacy owner's (absent: 0).
[[nodiscard]] constexpr fence_token effective_floor(std::optional<fence_token> canonical, std::optional<fence_token> legacy) noexcept {
  return std::max(canonical.value_or(fence_token{}), legacy.value_or(fence_token{}));
}

// ---- the apply marks ---------------------------------------------------------------------------

/// The zone that holds a store's apply marks: of the store's zones (canonical names, lower case,
/// final dot), the smallest as a string. Both DNS stores use it, so a zone set written by one is
/// continued by the other. Changing a store's zone set can move the home zone: the marks are then
/// read as never written, and the next apply writes every endpoint of its plan (safe, not fast).
[[nodiscard]] inline std::string_view home_zone(std::span<const std::string> zones) noexcept {
  PLANFENCE_ASSERT(!zones.empty());
  return *std::min_element(zones.begin(), zones.end());
}

/// "begun=B applied=A", the text of `_apply._planfence.<home zone>` (generation_none as 0).
[[nodiscard]] inline std::string format_marks(const apply_marks& marks) {
  return "begun=" + std::to_string(marks.begun.value()) + " applied=" + std::to_string(marks.applied.value());
}

/// The marks in "begun=B applied=A" (version 0). Errors: errc::parse_error, malformed, out of
/// range (0..generation_max) or applied above begun, quoting the text.
[[nodiscard]] inline result<apply_marks> parse_marks(std::string_view text) {
  const std::string quoted = "\"" + printable(text) + "\"";
  const labelled_pair p = split_pair(text, "begun=", " applied=", generation_max.value(), generation_max.value());
  if (!p.shaped) return fail(errc::parse_error, "malformed apply marks " + quoted + ": expected \"begun=B applied=A\"");
  if (p.first.status == number_status::malformed || p.second.status == number_status::malformed) {
    return fail(errc::parse_error, "malformed apply marks " + quoted + ": expected \"begun=B applied=A\" in decimal");
  }
  for (const labelled_number& n : {p.first, p.second}) {
    if (n.status == number_status::too_large) return fail(errc::parse_error, quoted + ": " + generation_range_problem(n.text));
  }
  if (p.second.value > p.first.value) return fail(errc::parse_error, "apply marks " + quoted + ": applied is above begun");
  return apply_marks{generation{p.first.value}, generation{p.second.value}, 0};
}

// ---- weights -----------------------------------------------------------------------------------

/// One `_weight._planfence.<endpoint>` record, parsed: the weighted record's type and data, and
/// where it came from (its TTL, a line of a zone file, 0 for a server's answer).
struct weight_entry {
  std::string type;   ///< "A", "AAAA" or "CNAME"
  std::string rdata;  ///< canonical data, no space in it
  std::uint8_t weight = 0;
  std::uint32_t ttl = 0;
  std::uint32_t line = 0;
};

/// "TYPE rdata W" for a weighted record (the text of one weight TXT record; its TTL is the record's).
[[nodiscard]] inline std::string format_weight(const record& r) {
  PLANFENCE_ASSERT(r.weight.has_value());
  return std::string(to_string(r.type)) + ' ' + r.rdata + ' ' + std::to_string(*r.weight);
}

/// The weight in "TYPE rdata W" (the weighted types' data never contain a space). Errors:
/// errc::parse_error, "malformed weight", quoting the text.
[[nodiscard]] inline result<weight_entry> parse_weight(std::string_view text, std::uint32_t ttl = 0, std::uint32_t line = 0) {
  const std::size_t first = text.find(' ');
  const std::size_t last = text.rfind(' ');
  std::uint64_t weight = 0;
  if (first == std::string_view::npos || last == first || first == 0 ||
      parse_number(text.substr(last + 1), 255, weight) != number_status::ok) {
    return fail(errc::parse_error, "malformed weight \"" + printable(text) + "\": expected \"TYPE data weight\" with a weight 0 to 255");
  }
  return weight_entry{std::string(text.substr(0, first)), std::string(text.substr(first + 1, last - first - 1)),
                      static_cast<std::uint8_t>(weight), ttl, line};
}

/// Of several weighted CNAMEs, the one a zone serves (DNS allows one CNAME per name): the
/// heaviest, the first in canonical order on a tie.
[[nodiscard]] inline const record* served_cname(std::span<const record> records) noexcept {
  const record* best = nullptr;
  for (const record& r : records) {
    if (r.type != record_type::cname) continue;
    if (best == nullptr || r.weight.value_or(0) > best->weight.value_or(0)) best = &r;
  }
  return best;
}

/// The records a zone serves for an endpoint that should serve `records`: all but the CNAMEs other
/// than served_cname (those are kept in the weights only).
[[nodiscard]] inline std::vector<record> served_records(std::span<const record> records) {
  const record* cname = served_cname(records);
  std::vector<record> out;
  for (const record& r : records) {
    if (r.type == record_type::cname && &r != cname) continue;
    out.push_back(r);
  }
  return out;
}

/// The weight texts of `records`, in their order (none for unweighted records).
[[nodiscard]] inline std::vector<std::string> weight_texts(std::span<const record> records) {
  std::vector<std::string> out;
  for (const record& r : records) {
    if (r.weight) out.push_back(format_weight(r));
  }
  return out;
}

/// Puts the weights read beside an endpoint back on its served records, and restores the CNAMEs
/// kept in the weights only, then sorts: the endpoint's records exactly as its plan had them.
/// Errors: errc::parse_error at the entry's line (column 1): a second weight for one record, or a
/// weight for a record the endpoint does not have (or cannot be weighted).
[[nodiscard]] inline result<void> restore_weights(std::vector<record>& records, std::span<const weight_entry> weights,
                                                  std::string_view endpoint) {
  for (std::size_t i = 0; i < weights.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (weights[j].type == weights[i].type && weights[j].rdata == weights[i].rdata) {
        return fail_at(errc::parse_error, weights[i].line, 1, "a second weight for " + weights[i].type + " " + weights[i].rdata);
      }
    }
  }
  const auto is_weighted_cname = [&](const record& r) {
    return r.type == record_type::cname && std::any_of(weights.begin(), weights.end(), [&](const weight_entry& w) {
             return w.type == "CNAME" && w.rdata == r.rdata;
           });
  };
  const auto cnames = std::count_if(records.begin(), records.end(), [](const record& r) { return r.type == record_type::cname; });
  const bool cname_kept = cnames == 1 && std::any_of(records.begin(), records.end(), is_weighted_cname);
  std::vector<record> restored;
  for (const weight_entry& w : weights) {
    auto it = std::find_if(records.begin(), records.end(),
                           [&](const record& r) { return to_string(r.type) == w.type && r.rdata == w.rdata; });
    if (it != records.end() && it->type != record_type::txt) {
      it->weight = w.weight;
      continue;
    }
    if (it == records.end() && w.type == "CNAME" && cname_kept) {
      if (auto target = make_record(record_type::cname, w.ttl, w.rdata, w.weight)) {
        restored.push_back(std::move(*target));
        continue;
      }
    }
    return fail_at(errc::parse_error, w.line, 1,
                   "a weight for " + w.type + " " + w.rdata + ", which " + std::string(endpoint) +
                       " does not have (or cannot be weighted)");
  }
  for (record& r : restored) records.push_back(std::move(r));
  std::sort(records.begin(), records.end());
  return ok();
}

// ---- the SOA serial ----------------------------------------------------------------------------

/// The serial of a zone planfence creates.
inline constexpr soa_serial_number initial_serial{1};
/// The serial after one more write: RFC 1982 addition of one.
[[nodiscard]] constexpr soa_serial_number next_serial(soa_serial_number s) noexcept { return serial_add(s, 1); }

}  // namespace dns
}  // namespace v1
}  // namespace planfence
